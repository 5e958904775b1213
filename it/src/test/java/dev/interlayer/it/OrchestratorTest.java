package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import dev.interlayer.agent.Agent;
import dev.interlayer.cli.Main;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.orchestrator.Orchestrator;
import dev.interlayer.orchestrator.OrchestratorSettings;
import dev.interlayer.orchestrator.v1.AckState;
import dev.interlayer.orchestrator.v1.AgentStatus;
import dev.interlayer.orchestrator.v1.EnrollRequest;
import dev.interlayer.orchestrator.v1.EnrollmentGrpc;
import dev.interlayer.orchestrator.v1.StatusResponse;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyPairGenerator;
import java.security.spec.ECGenParameterSpec;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An orchestrator with its embedded PostgreSQL and real agents on loopback (one a separate process, one in this JVM),
 * with traffic flowing through them: what the fleet commands deploy and revoke shows in the bytes of live connections.
 */
class OrchestratorTest {

    private static final String TAG = "<interlayer-layer4.5-sample-tag>";

    @TempDir
    Path tmp;

    private Orchestrator orchestrator;
    private Process processAgent;
    private Agent inProcessAgent;
    private final LogCapture log = new LogCapture();

    @BeforeEach
    void open() throws Exception {
        // the embedded PostgreSQL runs as an unprivileged user, which must be able to enter the data folder's parents
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxr-xr-x"));
        log.start("interlayer.agent");
    }

    @AfterEach
    void close() throws Exception {
        log.stop();
        if (inProcessAgent != null) {
            inProcessAgent.close();
        }
        if (processAgent != null) {
            processAgent.destroy();
            if (!processAgent.waitFor(15, TimeUnit.SECONDS)) {
                processAgent.destroyForcibly();
            }
            assertThat(Files.readString(tmp.resolve("a1/agent.log"))).as("the agent process's log").doesNotContain("LEAK:");
        }
        if (orchestrator != null) {
            orchestrator.close();
        }
    }

    private Orchestrator startOrchestrator(Path policy) throws Exception {
        OrchestratorSettings s = OrchestratorSettings.embedded(tmp.resolve("orchestrator"), new InetSocketAddress("127.0.0.1", 0))
                .withSocket(tmp.resolve("orchestrator.sock")).withPolicy(policy);
        orchestrator = Orchestrator.start(s);
        return orchestrator;
    }

    private record Cli(int code, String out, String err) {}

    private Cli fleet(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        String[] all = new String[args.length + 3];
        all[0] = "fleet";
        System.arraycopy(args, 0, all, 1, args.length);
        all[args.length + 1] = "--socket";
        all[args.length + 2] = orchestrator.socket().toString();
        int code = Main.execute(new PrintWriter(out), new PrintWriter(err), all);
        return new Cli(code, out.toString(), err.toString());
    }

    private Path token(String agent) throws Exception {
        Cli c = fleet("token", agent, "--label", "zone=eu");
        assertThat(c.code()).as(c.err()).isZero();
        return Files.writeString(tmp.resolve(agent + ".token"), c.out().strip());
    }

    private String agentYaml(String name, int listen, InetSocketAddress upstream) throws Exception {
        return """
                agent:
                  control: {socket: %s}
                  orchestrator: {address: 127.0.0.1:%d, token-file: %s, ca: %s}
                listeners:
                  - name: out
                    listen: 127.0.0.1:%d
                    upstream: 127.0.0.1:%d
                    role: client
                """.formatted(tmp.resolve(name + ".sock"), orchestrator.agentAddress().getPort(), token(name), orchestrator.caFile(), listen,
                upstream.getPort());
    }

    private StatusResponse status() {
        Cli c = fleet("status", "--json");
        assertThat(c.code()).as(c.err()).isZero();
        try {
            StatusResponse.Builder b = StatusResponse.newBuilder();
            com.google.protobuf.util.JsonFormat.parser().merge(c.out(), b);
            return b.build();
        } catch (Exception e) {
            throw new AssertionError(c.out(), e);
        }
    }

    private void waitForAgents(String what, Predicate<AgentStatus> each, String... agents) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (true) {
            StatusResponse s = status();
            if (s.getAgentsCount() == agents.length && s.getAgentsList().stream().allMatch(each)) {
                return;
            }
            assertThat(System.nanoTime()).as("not within 60 s: " + what + "; fleet status: " + s).isLessThan(deadline);
            Thread.sleep(200);
        }
    }

    /** Sends a message through the agent at {@code port} and returns what the upstream received of it. */
    private static String through(int port, ByteArrayOutputStream received, String message) throws Exception {
        synchronized (received) {
            received.reset();
        }
        byte[] m = message.getBytes(StandardCharsets.UTF_8);
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(10_000);
            OutputStream out = s.getOutputStream();
            out.write(m);
            out.flush();
            s.shutdownOutput();
            InputStream in = s.getInputStream();
            byte[] back = in.readAllBytes();
            assertThat(new String(back, StandardCharsets.UTF_8)).as("the reply through the agent").isEqualTo(message);
        }
        synchronized (received) {
            return received.toString(StandardCharsets.UTF_8);
        }
    }

    private static int freePort() throws Exception {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    private static String java() {
        return System.getProperty("interlayer.java", Path.of(System.getProperty("java.home"), "bin", "java").toString());
    }

    private Path sampleJar(String name) {
        return Agents.sampleModules().resolve("module-" + name + ".jar");
    }

    @Test
    void deployAndRevokeReachTheLiveConnectionsOfEveryAgentAndAgentsKeepTheirLastGoodStateWithoutTheOrchestrator() throws Exception {
        startOrchestrator(null);
        ByteArrayOutputStream upstream1 = new ByteArrayOutputStream();
        ByteArrayOutputStream upstream2 = new ByteArrayOutputStream();
        try (TestServer app1 = TestServer.echo(upstream1); TestServer app2 = TestServer.echo(upstream2)) {
            // a1: a separate agent process, started from the distribution jar
            Path a1 = Files.createDirectories(tmp.resolve("a1"));
            int port1 = freePort();
            Files.writeString(a1.resolve("agent.yaml"), agentYaml("a1", port1, app1.address()));
            Path jar = Files.copy(Path.of(System.getProperty("interlayer.distJar", "../cli/target/interlayer.jar")), tmp.resolve("interlayer.jar"));
            processAgent = new ProcessBuilder(java(), "--sun-misc-unsafe-memory-access=allow", "--enable-native-access=ALL-UNNAMED",
                    "-Dio.netty.leakDetection.level=paranoid", "-jar", jar.toString(), "run", "--config", a1.resolve("agent.yaml").toString())
                    .redirectErrorStream(true).redirectOutput(a1.resolve("agent.log").toFile()).start();
            // a2: an agent in this JVM
            Path a2 = Files.createDirectories(tmp.resolve("a2"));
            Files.writeString(a2.resolve("agent.yaml"), agentYaml("a2", 0, app2.address()));
            inProcessAgent = Agent.start(dev.interlayer.agent.AgentConfig.load(a2.resolve("agent.yaml")));
            int port2 = inProcessAgent.listeners().get("out").getPort();
            waitForAgents("both agents enrolled and connected", AgentStatus::getConnected, "a1", "a2");

            // nothing deployed: the bytes pass untouched
            assertThat(through(port1, upstream1, "hello ".repeat(100))).doesNotContain(TAG);

            Cli up = fleet("upload", sampleJar("tag").toString());
            assertThat(up.code()).as(up.err()).isZero();
            assertThat(up.out()).contains("tag@1.0.0");
            Cli dep = fleet("deploy", "tag@1.0.0", "--to", "all");
            assertThat(dep.code()).as(dep.err()).isZero();
            assertThat(dep.out()).contains("a1").contains("a2");
            long rev = status().getRevision();
            waitForAgents("both agents applied the deployment", a -> a.getAck() == AckState.APPLIED && a.getAppliedRevision() == rev
                    && a.getModulesList().stream().anyMatch(m -> m.getName().equals("tag") && m.getSource().equals("orchestrator")), "a1", "a2");
            String message = "x".repeat(5000);
            assertThat(through(port1, upstream1, message)).as("what a1's upstream received").contains(TAG);
            assertThat(through(port2, upstream2, message)).as("what a2's upstream received").contains(TAG);

            Cli rv = fleet("revoke", "tag");
            assertThat(rv.code()).as(rv.err()).isZero();
            long revoked = status().getRevision();
            waitForAgents("both agents revoked tag", a -> a.getAppliedRevision() == revoked
                    && a.getModulesList().stream().noneMatch(m -> m.getName().equals("tag") && m.getState().equals("ACTIVE")), "a1", "a2");
            assertThat(through(port1, upstream1, message)).doesNotContain(TAG);
            assertThat(through(port2, upstream2, message)).doesNotContain(TAG);

            // deployed again, by label; then the orchestrator (and its database) stops: the agents keep serving with it
            dep = fleet("deploy", "tag@1.0.0", "--to", "label=zone=eu");
            assertThat(dep.code()).as(dep.err()).isZero();
            long again = status().getRevision();
            waitForAgents("both agents applied the deployment again", a -> a.getAck() == AckState.APPLIED && a.getAppliedRevision() == again, "a1", "a2");
            orchestrator.close();
            orchestrator = null;
            Thread.sleep(1500);
            assertThat(processAgent.isAlive()).isTrue();
            assertThat(through(port1, upstream1, message)).as("a1 without its orchestrator").contains(TAG);
            assertThat(through(port2, upstream2, message)).as("a2 without its orchestrator").contains(TAG);
            Agents.waitFor("a2 says it keeps its modules", () -> log.lines().stream().anyMatch(l -> l.contains("keeping the current modules")));
        }
    }

    @Test
    void aTamperedJarIsRefusedByTheAgentBeforeAnythingOfItLoads() throws Exception {
        startOrchestrator(null);
        try (TestServer app = TestServer.echo()) {
            Path a2 = Files.createDirectories(tmp.resolve("a2"));
            Files.writeString(a2.resolve("agent.yaml"), agentYaml("a2", 0, app.address()));
            inProcessAgent = Agent.start(dev.interlayer.agent.AgentConfig.load(a2.resolve("agent.yaml")));
            waitForAgents("the agent connected", AgentStatus::getConnected, "a2");
            Cli up = fleet("upload", sampleJar("tag").toString());
            assertThat(up.code()).as(up.err()).isZero();
            String sha = up.out().replaceAll("(?s).*SHA-256 ([0-9a-f]{64}).*", "$1").strip();
            // someone with write access to the database swaps the jar's bytes (and names them by their new hash): the
            // signature the orchestrator made over the original no longer matches
            byte[] tampered = Files.readAllBytes(sampleJar("tcplog"));
            String tamperedSha = java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(tampered));
            var db = orchestrator.database();
            try (Connection c = DriverManager.getConnection(db.url(), db.user(), db.password())) {
                c.setAutoCommit(false);
                try (PreparedStatement p = c.prepareStatement("INSERT INTO artifacts (sha256, file_name, size, signature, content, uploaded_at, uploaded_by)"
                        + " SELECT ?, file_name, ?, signature, ?, uploaded_at, uploaded_by FROM artifacts WHERE sha256 = ?")) {
                    p.setString(1, tamperedSha);
                    p.setLong(2, tampered.length);
                    p.setBytes(3, tampered);
                    p.setString(4, sha);
                    assertThat(p.executeUpdate()).isEqualTo(1);
                }
                try (PreparedStatement p = c.prepareStatement("UPDATE modules SET sha256 = ? WHERE sha256 = ?")) {
                    p.setString(1, tamperedSha);
                    p.setString(2, sha);
                    p.executeUpdate();
                }
                c.commit();
            }
            Cli dep = fleet("deploy", "tag@1.0.0", "--to", "agent=a2");
            assertThat(dep.code()).as(dep.err()).isZero();
            waitForAgents("the agent refused", a -> a.getAck() == AckState.REFUSED, "a2");
            AgentStatus a = status().getAgents(0);
            assertThat(a.getAckReason()).contains("tag@1.0.0").contains("signature does not verify").contains("nothing of revision");
            assertThat(inProcessAgent.registry().modules()).noneMatch(m -> m.name().equals("tag") || m.name().equals("tcplog"));
            assertThat(log.lines()).anyMatch(l -> l.startsWith("orchestrator: refused revision") && l.contains("signature does not verify"));
            assertThat(Files.list(tmp.resolve("a2/orchestrator-state/jars")).toList()).as("no unverified jar is kept").isEmpty();
        }
    }

    @Test
    void aWrongOrReusedEnrollmentTokenIsRefusedWithTheReason() throws Exception {
        startOrchestrator(null);
        ManagedChannel ch = NettyChannelBuilder.forAddress("127.0.0.1", orchestrator.agentAddress().getPort())
                .sslContext(GrpcSslContexts.forClient().trustManager(orchestrator.caFile().toFile()).build()).build();
        try {
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
            g.initialize(new ECGenParameterSpec("secp256r1"));
            ByteString key = ByteString.copyFrom(g.generateKeyPair().getPublic().getEncoded());
            var enroll = EnrollmentGrpc.newBlockingStub(ch).withDeadlineAfter(30, TimeUnit.SECONDS);
            assertThatThrownBy(() -> enroll.enroll(EnrollRequest.newBuilder().setToken("ilt1.not-a-token-it-issued").setPublicKey(key).build()))
                    .isInstanceOf(StatusRuntimeException.class).hasMessageContaining("PERMISSION_DENIED")
                    .hasMessageContaining("not one this orchestrator issued");
            String token = Files.readString(token("a3")).strip();
            assertThat(enroll.enroll(EnrollRequest.newBuilder().setToken(token).setPublicKey(key).build()).getAgent()).isEqualTo("a3");
            assertThatThrownBy(() -> enroll.enroll(EnrollRequest.newBuilder().setToken(token).setPublicKey(key).build()))
                    .isInstanceOf(StatusRuntimeException.class).hasMessageContaining("PERMISSION_DENIED")
                    .hasMessageContaining("already used").hasMessageContaining("interlayer fleet token a3");
        } finally {
            ch.shutdownNow();
        }
    }

    @Test
    void aReadOnlyCallerMayReadTheFleetButNotDeploy() throws Exception {
        Path policy = Files.writeString(tmp.resolve("policy.yaml"), """
                rules:
                  - name: operators
                    caller: {transport: uds, uid: 4242}
                    endpoint: Fleet
                    decision: granted
                  - name: read-only
                    caller: {transport: uds}
                    endpoint: Fleet
                    method: Status
                    decision: granted
                  - name: responses
                    on: response
                    decision: granted
                """);
        startOrchestrator(policy);
        assertThat(fleet("status").code()).isZero();
        Cli dep = fleet("deploy", "tag@1.0.0", "--to", "all");
        assertThat(dep.code()).isEqualTo(Main.DENIED);
        assertThat(dep.err()).contains("denied by rule 'default'").contains("Fleet.Deploy");
        assertThat(orchestrator.audit().query(100, "denied", "Fleet", 0)).as("the audit log").anyMatch(e -> e.method().equals("Deploy"));
    }
}
