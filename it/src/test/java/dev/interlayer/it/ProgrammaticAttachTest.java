package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.interlayer.agent.Agent;
import dev.interlayer.client.InterlayerAttach;
import dev.interlayer.control.AuditLog;
import dev.interlayer.control.ControlClient;
import dev.interlayer.control.v1.AttachProcessRequest;
import dev.interlayer.control.v1.AttachProcessResponse;
import dev.interlayer.control.v1.DetachProcessRequest;
import dev.interlayer.control.v1.ListConnectionsRequest;
import dev.interlayer.control.testing.TempDirs;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Programmatic attach by the application itself, with real processes: an agent (its control and attach sockets, its
 * policy and audit log) with a loopback listener whose upstream is a receiver that records, per request, whether the
 * {@code tag} module's tag is in the bytes it got. The module is {@code mode: programmatic}: only a process that asked
 * gets it. Unmodified {@code curl} under {@code LD_PRELOAD=libinterlayer-attach.so} asks at its start; this JVM asks
 * through {@link InterlayerAttach}.
 */
class ProgrammaticAttachTest {

    private static final String TAG = "<interlayer-layer4.5-sample-tag>";
    private static final int NOBODY = 65534;

    private static Path dir;
    private static Agent agent;
    private static ServerSocket receiver;
    private static Thread serving;
    private static final BlockingQueue<String> seen = new LinkedBlockingQueue<>();
    private static int port;
    private static Path attachSocket;
    private static Path shim;

    @BeforeAll
    static void start() throws Exception {
        assumeTrue(Files.isDirectory(Path.of("/proc/net")), "needs Linux (the agent finds a connection's process in /proc)");
        InterceptionLab.install("curl", "curl");
        shim = Path.of(System.getProperty("interlayer.attachShim", "../native/target/classes/libinterlayer-attach.so")).toAbsolutePath();
        assertThat(shim).as("the shim is built by the native module").exists();
        dir = Files.createTempDirectory("interlayer-attach-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x")); // the other user reaches the socket
        receiver = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        serving = Thread.ofPlatform().daemon().start(ProgrammaticAttachTest::serve);
        Agents.deploySample("tag", dir.resolve("modules"));
        Agents.deploySample("tcplog", dir.resolve("modules"));
        attachSocket = dir.resolve("control-attach.sock");
        agent = Agents.start(dir, """
                agent:
                  modules-dir: %s
                  io-threads: 2
                  control: {socket: %s}
                listeners:
                  - name: web
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:%d
                    role: client
                modules:
                  - name: tag
                    mode: programmatic
                    params: {every: 40}
                  - name: tcplog
                    mode: global
                """.formatted(dir.resolve("modules"), dir.resolve("control.sock"), receiver.getLocalPort()));
        port = agent.listeners().get("web").getPort();
        assertThat(agent.control().orElseThrow().attachSocket()).isEqualTo(attachSocket);
        Agents.waitFor("tag loaded", () -> agent.registry().find("tag").isPresent());
    }

    @AfterAll
    static void stop() throws Exception {
        if (agent != null) agent.close();
        if (receiver != null) receiver.close();
        if (serving != null) serving.join(5000);
        if (dir != null) TempDirs.delete(dir);
    }

    /** Reads each request up to its blank line, records its first line and whether it carried the tag, answers. */
    private static void serve() {
        while (!receiver.isClosed()) {
            try (Socket s = receiver.accept()) {
                s.setSoTimeout(5000);
                InputStream in = s.getInputStream();
                StringBuilder got = new StringBuilder();
                byte[] buf = new byte[4096];
                while (!got.toString().replace(TAG, "").contains("\r\n\r\n")) {
                    int n = in.read(buf);
                    if (n < 0) break;
                    got.append(new String(buf, 0, n, StandardCharsets.ISO_8859_1));
                }
                String text = got.toString();
                String first = text.replace(TAG, "").lines().findFirst().orElse("");
                seen.add((text.contains(TAG) ? "tagged " : "plain ") + first);
                OutputStream out = s.getOutputStream();
                out.write("HTTP/1.0 200 OK\r\n\r\nok".getBytes(StandardCharsets.US_ASCII)); // shorter than every: never tagged
                out.flush();
            } catch (IOException e) {
                // the receiver closed, or one client went away
            }
        }
    }

    private static String next() throws InterruptedException {
        String s = seen.poll(10, TimeUnit.SECONDS);
        assertThat(s).as("a request reached the receiver").isNotNull();
        return s;
    }

    /** Runs {@code cmd} (as {@code uid}, -1: root) with {@code env} added; its exit code and output. */
    private static InterceptionLab.Run run(int uid, Map<String, String> env, String... cmd) throws Exception {
        List<String> c = new ArrayList<>();
        if (uid >= 0) c.addAll(List.of("setpriv", "--reuid", String.valueOf(uid), "--regid", String.valueOf(uid), "--clear-groups"));
        c.addAll(List.of(cmd));
        ProcessBuilder pb = new ProcessBuilder(c).redirectErrorStream(true);
        pb.environment().putAll(env);
        Process p = pb.start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        return new InterceptionLab.Run(p.exitValue(), out);
    }

    private static InterceptionLab.Run curl(int uid, String path, Map<String, String> env) throws Exception {
        return run(uid, env, "curl", "-sS", "-m", "5", "http://127.0.0.1:" + port + path);
    }

    private static Map<String, String> preload(String modules) {
        return Map.of("LD_PRELOAD", shim.toString(), "INTERLAYER_ATTACH", modules, "INTERLAYER_ATTACH_SOCKET", attachSocket.toString());
    }

    @Test
    void curlUnderThePreloadedShimGetsTheModuleAndTheSameCurlWithoutItDoesNot() throws Exception {
        InterceptionLab.Run with = curl(-1, "/with-shim", preload("tag"));
        assertThat(with.out()).isEqualTo("ok");
        assertThat(next()).isEqualTo("tagged GET /with-shim HTTP/1.1");

        InterceptionLab.Run without = curl(-1, "/without", Map.of());
        assertThat(without.out()).isEqualTo("ok");
        assertThat(next()).isEqualTo("plain GET /without HTTP/1.1");
    }

    @Test
    void aJavaProgramGetsTheModuleForConnectionsInsideTheTryBlockAndNotAfter() throws Exception {
        try (var a = InterlayerAttach.at(attachSocket).attach("tag", 0, null)) {
            assertThat(a.module()).startsWith("tag@");
            assertThat(agent.engine().processAttachments().list()).anySatisfy(r -> {
                assertThat(r.pid()).isEqualTo((int) ProcessHandle.current().pid());
                assertThat(r.module()).isEqualTo("tag");
            });
            assertThat(request("/inside")).isEqualTo("ok");
            assertThat(next()).isEqualTo("tagged GET /inside HTTP/1.0");
        }
        assertThat(agent.engine().processAttachments().list()).noneMatch(r -> r.pid() == ProcessHandle.current().pid());
        assertThat(request("/after")).isEqualTo("ok");
        assertThat(next()).isEqualTo("plain GET /after HTTP/1.0");
    }

    @Test
    void theControlSocketsAttachProcessRegistersTheCallingProcessUntilDetachProcess() throws Exception {
        try (ControlClient c = ControlClient.unix(dir.resolve("control.sock"))) {
            AttachProcessResponse r = c.connections().attachProcess(AttachProcessRequest.newBuilder().setModule("tag").setSeconds(60).build());
            assertThat(r.getModule()).startsWith("tag@");
            assertThat(c.connections().list(ListConnectionsRequest.getDefaultInstance()).getProcessAttachmentsList())
                    .anySatisfy(a -> assertThat(a.getPid()).isEqualTo(ProcessHandle.current().pid()));
            assertThat(request("/grpc")).isEqualTo("ok");
            assertThat(next()).isEqualTo("tagged GET /grpc HTTP/1.0");
            c.connections().detachProcess(DetachProcessRequest.newBuilder().setId(r.getId()).build());
            assertThat(request("/grpc-after")).isEqualTo("ok");
            assertThat(next()).isEqualTo("plain GET /grpc-after HTTP/1.0");
            assertThatThrownBy(() -> c.connections().detachProcess(DetachProcessRequest.newBuilder().setId(r.getId()).build()))
                    .hasMessageContaining("NOT_FOUND").hasMessageContaining("holds no registration " + r.getId());
        }
    }

    @Test
    void aRegistrationForOneConnectionEndsAfterIt() throws Exception {
        try (var a = InterlayerAttach.at(attachSocket).attach("tag", 1, null)) {
            assertThat(request("/first")).isEqualTo("ok");
            assertThat(next()).isEqualTo("tagged GET /first HTTP/1.0");
            assertThat(request("/second")).isEqualTo("ok");
            assertThat(next()).isEqualTo("plain GET /second HTTP/1.0");
        }
    }

    /** One HTTP/1.0 request from this JVM through the agent's listener; the answer's body. */
    private static String request(String path) throws IOException {
        try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
            s.setSoTimeout(5000);
            s.getOutputStream().write(("GET " + path + " HTTP/1.0\r\nUser-Agent: the Java client library test\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            String answer = new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
            return answer.substring(answer.indexOf("\r\n\r\n") + 4);
        }
    }

    @Test
    void aGlobalOrUnknownModuleIsRefusedWithItsReason() {
        InterlayerAttach client = InterlayerAttach.at(attachSocket);
        assertThatThrownBy(() -> client.attach("tcplog", 0, null)).isInstanceOf(InterlayerAttach.AttachException.class)
                .hasMessageContaining("is mode: global").hasMessageContaining("ask for a module of mode: programmatic");
        assertThatThrownBy(() -> client.attach("nope", 0, null)).isInstanceOf(InterlayerAttach.AttachException.class)
                .hasMessageContaining("no module named 'nope' is loaded");
        assertThatThrownBy(() -> client.attach("tag@9.9.9", 0, null)).isInstanceOf(InterlayerAttach.AttachException.class)
                .hasMessageContaining("not 9.9.9");
        assertThat(audit("AttachProcess", AuditLog.GRANTED)).anySatisfy(e -> assertThat(e.caller().pid()).isEqualTo(ProcessHandle.current().pid()));
    }

    @Test
    void aUserThePolicyDeniesIsRefusedAndAuditedAndItsCurlStillWorks() throws Exception {
        InterceptionLab.Run r = curl(NOBODY, "/nobody", preload("tag"));
        assertThat(r.out()).startsWith("interlayer-attach: tag not attached: the agent refused: denied by rule 'default': no rule of the agent's policy grants")
                .endsWith("ok");
        assertThat(r.out().lines().filter(l -> l.startsWith("interlayer-attach:"))).hasSize(1);
        assertThat(next()).isEqualTo("plain GET /nobody HTTP/1.1");
        assertThat(audit("AttachProcess", AuditLog.DENIED)).anySatisfy(e -> {
            assertThat(e.caller().uid()).isEqualTo(NOBODY);
            assertThat(e.caller().transport()).isEqualTo("attach");
            assertThat(e.rule()).isEqualTo("default");
        });
    }

    @Test
    void withoutAnAgentTheShimSaysSoOnceAndCurlConnectsAsUsual() throws Exception {
        Map<String, String> env = Map.of("LD_PRELOAD", shim.toString(), "INTERLAYER_ATTACH", "tag,tcplog",
                "INTERLAYER_ATTACH_SOCKET", dir.resolve("no-agent.sock").toString());
        InterceptionLab.Run r = curl(-1, "/no-agent", env);
        assertThat(r.out()).startsWith("interlayer-attach: tag not attached: cannot reach the Interlayer agent's attach socket").endsWith("ok");
        assertThat(r.out().lines().filter(l -> l.startsWith("interlayer-attach:"))).hasSize(1);
        assertThat(next()).isEqualTo("plain GET /no-agent HTTP/1.1");
    }

    @Test
    void malformedRequestsAreRefusedWithTheirReasonAndAudited() throws Exception {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(attachSocket));
            assertThat(ask(ch, "attach")).startsWith("error invalid request: expected 'attach MODULE[@VERSION]");
            assertThat(ask(ch, "attach Tag_1")).startsWith("error invalid request: ").contains("module").contains("format module-name");
            assertThat(ask(ch, "attach tag connections=-1")).isEqualTo("error invalid request: 'connections=-1': -1 is not a number from 0 to 2147483647");
            assertThat(ask(ch, "attach tag seconds=999999")).startsWith("error invalid request: ").contains("seconds");
            assertThat(ask(ch, "detach 0")).startsWith("error invalid request: ").contains("id");
            assertThat(ask(ch, "x".repeat(2000))).startsWith("error invalid request: a line longer than 1024 bytes");
            ByteBuffer b = ByteBuffer.allocate(16);
            assertThat(ch.read(b)).as("a line too long closes the connection").isEqualTo(-1);
        }
        assertThat(audit("AttachProcess", AuditLog.INVALID)).extracting(AuditLog.Entry::rule).contains("structure");
        assertThat(audit("DetachProcess", AuditLog.INVALID)).isNotEmpty();
    }

    @Test
    void aUserHoldsAtMostItsLimitOfAttachConnections() throws Exception {
        // as nobody: 33 connections held open at once, then what each is told
        String script = """
                import socket, sys
                held = []
                for i in range(33):
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(sys.argv[1])
                    held.append(s)
                for s in held:                  # the agent serves them on two event loops: any one may be the 33rd
                    s.settimeout(0.2)
                    try:
                        sys.stdout.write(s.recv(4096).decode())
                    except socket.timeout:
                        pass
                """;
        InterceptionLab.Run r = run(NOBODY, Map.of(), InterceptionLab.python(), "-c", script, attachSocket.toString());
        assertThat(r.out()).isEqualTo("error uid 65534 already holds 32 connections to the attach socket (agent.control.max-connections-per-uid); close one\n");
        assertThat(audit("AttachProcess", AuditLog.DENIED)).anySatisfy(e -> assertThat(e.rule()).isEqualTo("connection-limit"));
        // the connections were released when the script exited: the user may connect again
        assertThat(curl(NOBODY, "/after-limit", preload("tag")).out()).contains("denied by rule 'default'");
        assertThat(next()).isEqualTo("plain GET /after-limit HTTP/1.1");
    }

    private static String ask(SocketChannel ch, String line) throws IOException {
        ch.write(ByteBuffer.wrap((line + "\n").getBytes(StandardCharsets.UTF_8)));
        ByteBuffer in = ByteBuffer.allocate(4096);
        while (true) {
            if (ch.read(in) < 0) return new String(in.array(), 0, in.position(), StandardCharsets.UTF_8);
            String s = new String(in.array(), 0, in.position(), StandardCharsets.UTF_8);
            if (s.endsWith("\n")) return s.strip();
        }
    }

    @Test
    void aProcessThatExitsLeavesNoRegistration() throws Exception {
        ProcessBuilder sleeper = new ProcessBuilder("sleep", "60").redirectErrorStream(true);
        sleeper.environment().putAll(preload("tag"));
        Process p = sleeper.start();
        try {
            Agents.waitFor("the sleeper's registration", () -> registrations(p.pid()) == 1);
            assertThat(agent.engine().processAttachments().list()).filteredOn(r -> r.pid() == p.pid())
                    .singleElement().satisfies(r -> assertThat(r.command()).isEqualTo("sleep"));
            InterceptionLab.Run list = run(-1, Map.of(), System.getProperty("interlayer.java"), "--enable-native-access=ALL-UNNAMED",
                    "--sun-misc-unsafe-memory-access=allow", "-jar", InterceptionLab.distJar(), "conns", "list", "--socket", dir.resolve("control.sock").toString());
            assertThat(list.out()).contains("process attachments").containsPattern("\\d+ +" + p.pid() + " +sleep +tag +0 +it exits or detaches");
        } finally {
            p.destroyForcibly().waitFor();
        }
        Agents.waitFor("the sleeper's registration to end", () -> registrations(p.pid()) == 0);
    }

    private static long registrations(long pid) {
        return agent.engine().processAttachments().list().stream().filter(r -> r.pid() == pid).count();
    }

    private static List<AuditLog.Entry> audit(String method, String decision) {
        return agent.control().orElseThrow().audit().query(1000, decision, "Connections", 0).stream().filter(e -> e.method().equals(method)).toList();
    }
}
