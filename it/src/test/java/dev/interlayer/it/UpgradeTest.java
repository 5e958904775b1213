package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.interlayer.control.ControlClient;
import dev.interlayer.control.testing.OtherUser;
import dev.interlayer.control.testing.TempDirs;
import dev.interlayer.control.v1.AuditQuery;
import dev.interlayer.control.v1.HealthRequest;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.engine.testing.UdpEchoServer;
import java.io.IOException;
import java.io.InputStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Seamless restart ({@code interlayer run --takeover}) with real agent processes on loopback: agent A serves a listener;
 * agent B takes over its listening sockets under a connection storm; A stops accepting, drains and exits 0. Nothing is
 * refused or reset, A's long-lived connections finish byte-exact (or are cut at the drain deadline), B serves after.
 */
class UpgradeTest {

    private Path dir;
    private Path jar;
    private Path socket;
    private TestServer echo;
    private InetSocketAddress web;
    private InetSocketAddress dns;
    private UdpEchoServer udpEcho;
    private final List<Process> agents = new ArrayList<>();

    @BeforeEach
    void setUp() throws Exception {
        dir = Files.createTempDirectory("interlayer-upgrade-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        jar = Files.copy(Path.of(System.getProperty("interlayer.distJar", "../cli/target/interlayer.jar")), dir.resolve("interlayer.jar"));
        echo = TestServer.echo();
        udpEcho = new UdpEchoServer();
        socket = dir.resolve("control.sock");
        try (ServerSocket free = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            web = new InetSocketAddress("127.0.0.1", free.getLocalPort());
        }
        try (DatagramSocket free = new DatagramSocket(0, java.net.InetAddress.getLoopbackAddress())) {
            dns = new InetSocketAddress("127.0.0.1", free.getLocalPort());
        }
        Files.writeString(dir.resolve("agent.yaml"), config(web));
        Files.createDirectories(dir.resolve("modules"));
    }

    /** The agent's config with listener web on {@code webAt}. */
    private String config(InetSocketAddress webAt) {
        return """
                agent:
                  control: {socket: control.sock}
                  modules-dir: modules
                  io-threads: 2
                  stop-timeout: 20s
                listeners:
                  - {name: web, listen: 127.0.0.1:%d, upstream: 127.0.0.1:%d, role: client}
                  - {name: dns, protocol: udp, listen: 127.0.0.1:%d, upstream: 127.0.0.1:%d, role: client}
                """.formatted(webAt.getPort(), echo.address().getPort(), dns.getPort(), udpEcho.address().getPort());
    }

    @AfterEach
    void tearDown() throws Exception {
        for (Process p : agents) {
            if (p.isAlive()) p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
        echo.close();
        udpEcho.close();
        TempDirs.delete(dir);
    }

    @Test
    void aStormThroughATakeoverLosesNothingAndTheOldAgentDrains() throws Exception {
        Process a = agent("a");
        List<CompletableFuture<Long>> streams = new ArrayList<>();
        Storm storm = new Storm(web, 200);
        try {
            // on A: 4 KiB every 20 ms until A has stopped accepting (the new agent serves), then 128 KiB more during the drain
            java.util.function.BooleanSupplier beforeRelease = () -> !logQuietly("a").contains("serves the listeners now");
            for (int i = 0; i < 3; i++) {
                streams.add(CompletableFuture.supplyAsync(() -> stream(beforeRelease), Thread::startVirtualThread));
            }
            Thread.sleep(1000);
            Process b = agent("b", "--takeover");
            assertThat(a.waitFor(30, TimeUnit.SECONDS)).as("A exits after its drain: " + log("a")).isTrue();
            assertThat(a.exitValue()).as(log("a")).isZero();
            Thread.sleep(1000);
            assertThat(b.isAlive()).as(log("b")).isTrue();
        } finally {
            storm.close();
        }
        for (CompletableFuture<Long> s : streams) {
            assertThat(s.get(30, TimeUnit.SECONDS)).as("a long-lived connection on A, byte-exact through the takeover").isGreaterThan(128 * 1024);
        }
        assertThat(storm.failures()).as("refused, reset or broken connections").isEmpty();
        assertThat(storm.ok()).as("connections served during the storm").isGreaterThan(300);
        assertThat(log("a")).contains("took over the listeners; every connection finished");
        assertThat(log("b")).contains("takeover: listener web serves on the 2 socket(s)", "takeover: listener dns serves on the 1 socket(s)");
        // B warmed its connection path up (agent.warm-up's default) while A still served the storm
        assertThat(log("b")).containsPattern("warm-up before the takeover: [\\d,]+ exchanges through 1 chain\\(s\\) of 4 listeners \\(no module\\)")
                .doesNotContain("failed, the first");
        assertServedBy(agents.get(1));
    }

    @Test
    void aListenerMovedToAnotherAddressIsBoundAfreshAndTheOldAddressCloses() throws Exception {
        Process a = agent("a");
        InetSocketAddress moved;
        try (ServerSocket free = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            moved = new InetSocketAddress("127.0.0.1", free.getLocalPort());
        }
        Files.writeString(dir.resolve("agent.yaml"), config(moved));
        agent("b", "--takeover");
        assertThat(a.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(a.exitValue()).as(log("a")).isZero();
        assertThat(log("b")).contains("takeover: listener web was tcp " + web.getAddress().getHostAddress() + ":" + web.getPort()
                + " in process " + a.pid() + ", the config says tcp 127.0.0.1:" + moved.getPort() + ": binding it afresh");
        assertThat(Storm.stream(moved, 8192, 0)).isEqualTo(8192);
        assertThatThrownBy(() -> Storm.stream(web, 1, 0)).as("the old address closed with the old agent").isInstanceOf(java.net.ConnectException.class);
    }

    @Test
    void connectionsThatOutliveTheDrainDeadlineAreCutThere() throws Exception {
        Process a = agent("a");
        try (Socket idle = new Socket()) {
            idle.connect(web, 5_000);
            idle.setSoTimeout(20_000);
            idle.getOutputStream().write("hello".getBytes());
            assertThat(idle.getInputStream().readNBytes(5)).isEqualTo("hello".getBytes());
            long start = System.nanoTime();
            agent("b", "--takeover", "--drain", "1500ms");
            assertThat(a.waitFor(30, TimeUnit.SECONDS)).isTrue();
            assertThat(a.exitValue()).as(log("a")).isZero();
            assertThat(endOf(idle.getInputStream())).as("the idle connection is cut").isTrue();
            assertThat(Duration.ofNanos(System.nanoTime() - start)).as("not before the deadline").isGreaterThan(Duration.ofMillis(1500));
        }
        assertThat(log("a")).contains("1 connection(s) still open at the drain deadline (1500 ms) are cut");
        assertServedBy(agents.get(1));
    }

    @Test
    void aTakeoverByAnotherUserIsDeniedAndAudited() throws Exception {
        assumeTrue(OtherUser.available(), "needs root and runuser to start the new agent as a second real user");
        OtherUser.ensure();
        agent("a");
        Files.setPosixFilePermissions(dir.resolve("agent.yaml"), PosixFilePermissions.fromString("rw-r--r--"));
        Files.setPosixFilePermissions(jar, PosixFilePermissions.fromString("rw-r--r--"));
        ControlCliTest.Run denied = ControlCliTest.run(List.of("runuser", "-u", OtherUser.NAME, "--", ControlCliTest.java(),
                "--sun-misc-unsafe-memory-access=allow", "--enable-native-access=ALL-UNNAMED", "-jar", jar.toString(), "run", "--config",
                dir.resolve("agent.yaml").toString(), "--takeover"));
        assertThat(denied.code()).as(denied.err()).isEqualTo(1);
        assertThat(denied.err()).contains("takeover: the agent on " + socket + " refused it: PERMISSION_DENIED", "grant Upgrade.Takeover");
        try (ControlClient c = ControlClient.unix(socket)) {
            assertThat(c.audit().query(AuditQuery.newBuilder().setDecision("denied").build()).getEntriesList())
                    .anySatisfy(e -> {
                        assertThat(e.getEndpoint() + "." + e.getMethod()).isEqualTo("Upgrade.Takeover");
                        assertThat(e.getCaller().getUser()).isEqualTo(OtherUser.NAME);
                    });
        }
        assertServedBy(agents.getFirst());
        assertThat(Files.exists(Path.of(socket + ".handover"))).as("no handover socket was opened").isFalse();
    }

    @Test
    void aTakeoverWithNoAgentRunningStartsNormally() throws Exception {
        agent("b", "--takeover");
        assertThat(log("b")).contains("takeover: no agent serves " + socket + " (no such socket); binding the listeners as a normal start");
        assertServedBy(agents.getFirst());
    }

    @Test
    void drainWithoutTakeoverIsAUsageError() throws Exception {
        ControlCliTest.Run r = ControlCliTest.run(List.of(ControlCliTest.java(), "--sun-misc-unsafe-memory-access=allow",
                "--enable-native-access=ALL-UNNAMED", "-jar", jar.toString(), "run", "--config", dir.resolve("agent.yaml").toString(), "--drain", "5s"));
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--drain goes with --takeover (how long the old agent drains); add --takeover, or leave --drain out");
    }

    @Test
    void theOldAgentKilledDuringTheHandoverLeavesTheNewOneServing() throws Exception {
        Process a = agent("a");
        Storm storm = new Storm(web, 100);
        Process b;
        try {
            b = start("b", "--takeover");
            waitForLog("b", "takeover: received");
            a.destroyForcibly();
            waitForLog("b", "agent running from");
            Thread.sleep(500);
        } finally {
            storm.close();
        }
        assertThat(b.isAlive()).as(log("b")).isTrue();
        assertServedBy(b);
        // connections A had accepted when it was killed are lost with it; every other one is served
        assertThat(storm.ok()).isPositive();
    }

    /** Starts an agent process from the test's config with {@code extra} options and waits until it serves. */
    private Process agent(String name, String... extra) throws Exception {
        Process p = start(name, extra);
        waitForLog(name, "agent running from");
        return p;
    }

    private Process start(String name, String... extra) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(ControlCliTest.java(), "--sun-misc-unsafe-memory-access=allow", "--enable-native-access=ALL-UNNAMED",
                "-Dio.netty.leakDetection.level=paranoid", "-jar", jar.toString(), "run", "--config", dir.resolve("agent.yaml").toString()));
        cmd.addAll(List.of(extra));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve(name + ".log").toFile()).start();
        agents.add(p);
        return p;
    }

    private void waitForLog(String name, String line) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!log(name).contains(line)) {
            assertThat(System.nanoTime()).as("'" + line + "' not logged by " + name + " within 60 s: " + log(name)).isLessThan(deadline);
            Thread.sleep(20);
        }
    }

    private String log(String name) throws IOException {
        Path f = dir.resolve(name + ".log");
        return Files.exists(f) ? Files.readString(f) : "";
    }

    /** Streams through listener web while {@code more} says so, then 128 KiB; the bytes echoed byte-exact. */
    private long stream(java.util.function.BooleanSupplier more) {
        java.util.concurrent.atomic.AtomicLong extra = new java.util.concurrent.atomic.AtomicLong(32);
        try {
            return Storm.stream(web, 0, 20, () -> more.getAsBoolean() || extra.decrementAndGet() >= 0);
        } catch (IOException | InterruptedException e) {
            throw new IllegalStateException(e);
        }
    }

    private String logQuietly(String name) {
        try {
            return log(name);
        } catch (IOException e) {
            return "";
        }
    }

    /** Whether the peer ended the connection (end of stream or reset) before the read timeout. */
    private static boolean endOf(InputStream in) {
        try {
            return in.read() == -1;
        } catch (java.net.SocketTimeoutException e) {
            return false;
        } catch (IOException reset) {
            return true;
        }
    }

    /** {@code p} answers on the control socket, and a connection through the listener echoes. */
    private void assertServedBy(Process p) throws Exception {
        try (ControlClient c = ControlClient.unix(socket)) {
            assertThat(c.health().check(HealthRequest.getDefaultInstance()).getPid()).isEqualTo(p.pid());
        }
        assertThat(Storm.stream(web, 8192, 0)).isEqualTo(8192);
        try (DatagramSocket udp = new DatagramSocket()) {
            udp.setSoTimeout(5_000);
            byte[] ping = ("ping from " + p.pid()).getBytes();
            udp.send(new DatagramPacket(ping, ping.length, dns));
            DatagramPacket back = new DatagramPacket(new byte[64], 64);
            udp.receive(back);
            assertThat(new String(back.getData(), 0, back.getLength())).as("a datagram through listener dns").isEqualTo("ping from " + p.pid());
        }
    }
}
