package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static dev.interlayer.it.Fleets.freePort;
import static dev.interlayer.it.Fleets.runs;
import static dev.interlayer.it.Fleets.through;
import static dev.interlayer.it.Fleets.xor;

import com.google.protobuf.ByteString;
import dev.interlayer.agent.Agent;
import dev.interlayer.cli.Main;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.it.Fleets.Cli;
import dev.interlayer.it.Fleets.Held;
import dev.interlayer.orchestrator.Orchestrator;
import dev.interlayer.orchestrator.OrchestratorSettings;
import dev.interlayer.orchestrator.v1.AckState;
import dev.interlayer.orchestrator.v1.AgentStatus;
import dev.interlayer.orchestrator.v1.EnrollRequest;
import dev.interlayer.orchestrator.v1.EnrollmentGrpc;
import dev.interlayer.orchestrator.v1.EnrollResponse;
import dev.interlayer.orchestrator.v1.AgentMessage;
import dev.interlayer.orchestrator.v1.AgentsGrpc;
import dev.interlayer.orchestrator.v1.Hello;
import dev.interlayer.orchestrator.v1.LoadedPackage;
import dev.interlayer.orchestrator.v1.OrchestratorMessage;
import dev.interlayer.orchestrator.v1.Proof;
import dev.interlayer.control.IntegrityProof;
import io.grpc.stub.StreamObserver;
import java.security.KeyPair;
import dev.interlayer.orchestrator.v1.Integrity;
import dev.interlayer.orchestrator.v1.StatusResponse;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import java.io.ByteArrayOutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetSocketAddress;
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
    private Agent inProcessAgent3;
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
        if (inProcessAgent3 != null) {
            inProcessAgent3.close();
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

    private Cli fleet(String... args) {
        return Fleets.fleet(orchestrator.socket(), args);
    }

    private Path token(String agent) throws Exception {
        return Fleets.token(orchestrator.socket(), tmp, agent, "zone=eu");
    }

    private String agentYaml(String name, int listen, InetSocketAddress upstream) throws Exception {
        return Fleets.agentYaml(tmp, name, "127.0.0.1:" + orchestrator.agentAddress().getPort(), token(name), orchestrator.caFile(), listen, upstream);
    }

    private StatusResponse status() {
        return Fleets.status(orchestrator.socket());
    }

    private void waitForAgents(String what, Predicate<AgentStatus> each, String... agents) throws Exception {
        Fleets.waitForAgents(orchestrator.socket(), what, each, agents);
    }

    /** Starts agent a1 as a separate process from the distribution jar, in front of {@code app}; returns its listener's port. */
    private int startProcessAgent(TestServer app) throws Exception {
        Path a1 = Files.createDirectories(tmp.resolve("a1"));
        int port = freePort();
        Files.writeString(a1.resolve("agent.yaml"), agentYaml("a1", port, app.address()));
        processAgent = Fleets.process(tmp, a1.resolve("agent.log"), "run", "--config", a1.resolve("agent.yaml").toString()).start();
        return port;
    }

    /** Starts an agent in this JVM in front of {@code app}. */
    private Agent startInProcessAgent(String name, TestServer app) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve(name));
        Files.writeString(dir.resolve("agent.yaml"), agentYaml(name, 0, app.address()));
        return Agent.start(dev.interlayer.agent.AgentConfig.load(dir.resolve("agent.yaml")));
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
            int port1 = startProcessAgent(app1);
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

    private long applied(String what, Predicate<AgentStatus> each) throws Exception {
        long rev = status().getRevision();
        waitForAgents(what, a -> a.getAck() == AckState.APPLIED && a.getAppliedRevision() == rev && each.test(a), "a1", "a2", "a3");
        return rev;
    }

    @Test
    void rotateToggleDeprecatePriorityAndRevokeReachTheLiveConnectionsOfThreeAgents() throws Exception {
        startOrchestrator(null);
        ByteArrayOutputStream[] upstream = {new ByteArrayOutputStream(), new ByteArrayOutputStream(), new ByteArrayOutputStream()};
        try (TestServer app1 = TestServer.echo(upstream[0]); TestServer app2 = TestServer.echo(upstream[1]); TestServer app3 = TestServer.echo(upstream[2])) {
            int[] port = new int[3];
            port[0] = startProcessAgent(app1);
            inProcessAgent = startInProcessAgent("a2", app2);
            port[1] = inProcessAgent.listeners().get("out").getPort();
            inProcessAgent3 = startInProcessAgent("a3", app3);
            port[2] = inProcessAgent3.listeners().get("out").getPort();
            waitForAgents("three agents enrolled and connected", AgentStatus::getConnected, "a1", "a2", "a3");

            for (String[] v : new String[][] {{"1.0.0", "1"}, {"2.0.0", "2"}}) {
                Cli up = fleet("upload", HotReplaceTest.markerJar(tmp, v[0], Integer.parseInt(v[1])).toString());
                assertThat(up.code()).as(up.err()).isZero();
            }
            String message = "abcdefghij".repeat(300);
            String v1 = xor(message, 1);
            String v2 = xor(message, 2);

            // refused before anything changes, each saying what to do
            Cli bad = fleet("rotate", "marker@2.0.0");
            assertThat(bad.code()).isEqualTo(Main.FAILURE);
            assertThat(bad.err()).contains("no deployment of module marker is live").contains("interlayer fleet deploy marker@2.0.0");
            bad = fleet("toggle", "marker", "--inactive");
            assertThat(bad.err()).contains("no deployment of module marker is live");

            Cli c = fleet("deploy", "marker@1.0.0", "--to", "all");
            assertThat(c.code()).as(c.err()).isZero();
            long deployed = applied("marker@1.0.0 active everywhere", a -> runs(a, "marker", "1.0.0", "ACTIVE"));
            for (int i = 0; i < 3; i++) {
                assertThat(through(port[i], upstream[i], message)).as("a" + (i + 1) + "'s upstream, marker 1.0.0").isEqualTo(v1);
            }

            bad = fleet("rotate", "marker@9.9.9");
            assertThat(bad.code()).isEqualTo(Main.FAILURE);
            assertThat(bad.err()).contains("no jar of marker@9.9.9 was uploaded").contains("interlayer fleet upload");
            bad = fleet("rotate", "marker@1.0.0");
            assertThat(bad.err()).contains("of version 1.0.0 already");

            // rotate: a connection opened before keeps 1.0.0 (deprecated), new connections get 2.0.0
            long rotated;
            try (Fleets.Held held = Fleets.Held.open(port[0], upstream[0])) {
                assertThat(held.send(message)).isEqualTo(v1);
                c = fleet("rotate", "marker@2.0.0");
                assertThat(c.code()).as(c.err()).isZero();
                assertThat(c.out()).contains("rotated to marker@2.0.0").contains("a1").contains("a2").contains("a3");
                rotated = applied("marker@2.0.0 active and 1.0.0 deprecated on a1, where a connection holds it",
                        a -> runs(a, "marker", "2.0.0", "ACTIVE") && (!a.getName().equals("a1") || runs(a, "marker", "1.0.0", "DEPRECATED")));
                assertThat(held.send(message)).as("the connection opened before the rotation").isEqualTo(v1);
                for (int i = 0; i < 3; i++) {
                    assertThat(through(port[i], upstream[i], message)).as("a" + (i + 1) + "'s upstream after the rotation").isEqualTo(v2);
                }
                assertThat(held.send(message)).as("the connection opened before the rotation, still").isEqualTo(v1);
            }
            waitForAgents("1.0.0 unloaded after its last connection", a -> a.getModulesList().stream()
                    .noneMatch(m -> m.getName().equals("marker") && m.getVersion().equals("1.0.0")), "a1", "a2", "a3");

            // toggle: inactive passes bytes untouched, active customizes again
            try (Fleets.Held held = Fleets.Held.open(port[1], upstream[1])) {
                assertThat(held.send(message)).isEqualTo(v2);
                c = fleet("toggle", "marker", "--inactive");
                assertThat(c.code()).as(c.err()).isZero();
                applied("marker inactive everywhere", a -> runs(a, "marker", "2.0.0", "INACTIVE"));
                assertThat(held.send(message)).as("an open connection of an inactive module").isEqualTo(message);
                for (int i = 0; i < 3; i++) {
                    assertThat(through(port[i], upstream[i], message)).as("a" + (i + 1) + ", marker inactive").isEqualTo(message);
                }
                c = fleet("toggle", "marker", "--active");
                assertThat(c.code()).as(c.err()).isZero();
                applied("marker active again", a -> runs(a, "marker", "2.0.0", "ACTIVE"));
                assertThat(held.send(message)).as("the open connection, marker active again").isEqualTo(v2);
            }
            for (int i = 0; i < 3; i++) {
                assertThat(through(port[i], upstream[i], message)).as("a" + (i + 1) + ", marker active again").isEqualTo(v2);
            }

            // priority reaches every agent
            int priority = 100 + (int) (deployed % 50);
            c = fleet("priority", "marker", Integer.toString(priority));
            assertThat(c.code()).as(c.err()).isZero();
            applied("marker has the new priority", a -> a.getModulesList().stream()
                    .anyMatch(m -> m.getName().equals("marker") && m.getPriority() == priority));

            // deprecate: the open connection keeps it, new ones pass untouched
            try (Fleets.Held held = Fleets.Held.open(port[2], upstream[2])) {
                assertThat(held.send(message)).isEqualTo(v2);
                c = fleet("deprecate", "marker");
                assertThat(c.code()).as(c.err()).isZero();
                applied("marker deprecated everywhere", a -> runs(a, "marker", "2.0.0", "DEPRECATED"));
                assertThat(held.send(message)).as("a connection of the deprecated module").isEqualTo(v2);
                for (int i = 0; i < 3; i++) {
                    assertThat(through(port[i], upstream[i], message)).as("a" + (i + 1) + ", marker deprecated").isEqualTo(message);
                }
            }
            c = fleet("toggle", "marker", "--active");
            assertThat(c.code()).as(c.err()).isZero();
            applied("marker active after deprecation", a -> runs(a, "marker", "2.0.0", "ACTIVE"));

            // revoke: detached from the open connection at once
            long revoked;
            try (Fleets.Held held = Fleets.Held.open(port[0], upstream[0])) {
                assertThat(held.send(message)).isEqualTo(v2);
                c = fleet("revoke", "marker");
                assertThat(c.code()).as(c.err()).isZero();
                revoked = applied("marker gone everywhere", a -> a.getModulesList().stream().noneMatch(m -> m.getName().equals("marker")));
                assertThat(held.send(message)).as("the open connection after the revocation").isEqualTo(message);
            }
            for (int i = 0; i < 3; i++) {
                assertThat(through(port[i], upstream[i], message)).as("a" + (i + 1) + " after the revocation").isEqualTo(message);
            }

            // the agent's history says what it was sent and applied, and when
            c = fleet("status", "a1");
            assertThat(c.code()).as(c.err()).isZero();
            assertThat(c.out()).contains("agent a1").doesNotContain("agent a2").contains("history of a1")
                    .contains("applied revision " + deployed + "; runs marker@1.0.0 ACTIVE")
                    .contains("sent revision " + rotated + ": marker@2.0.0 ACTIVE")
                    .contains("sent revision " + revoked + ": no modules").contains("applied revision " + revoked);
            bad = fleet("status", "nosuch");
            assertThat(bad.code()).isEqualTo(Main.FAILURE);
            assertThat(bad.err()).contains("no agent named nosuch is enrolled");
        }
    }

    @Test
    void anAgentRunningAJarOtherThanTheDeployedOneIsMarkedByItsIntegrityProof() throws Exception {
        startOrchestrator(null);
        ByteArrayOutputStream upstream1 = new ByteArrayOutputStream();
        try (TestServer app1 = TestServer.echo(upstream1); TestServer app2 = TestServer.echo()) {
            int port1 = startProcessAgent(app1);
            inProcessAgent = startInProcessAgent("a2", app2);
            waitForAgents("both agents connected", AgentStatus::getConnected, "a1", "a2");
            Cli c = fleet("upload", HotReplaceTest.markerJar(tmp, "1.0.0", 1).toString());
            assertThat(c.code()).as(c.err()).isZero();
            c = fleet("deploy", "marker@1.0.0", "--to", "all");
            assertThat(c.code()).as(c.err()).isZero();
            long rev = status().getRevision();
            waitForAgents("both agents applied", a -> a.getAck() == AckState.APPLIED && a.getAppliedRevision() == rev, "a1", "a2");

            c = fleet("verify");
            assertThat(c.code()).as(c.out() + c.err()).isZero();
            assertThat(c.out()).contains("a1: VERIFIED").contains("a2: VERIFIED");
            assertThat(status().getAgentsList()).allMatch(a -> a.getIntegrity() == Integrity.VERIFIED && a.getIntegrityUnixMs() > 0);

            // someone with the agent's control socket loads other code under the deployed module's name and version
            Path other = HotReplaceTest.markerJar(Files.createDirectories(tmp.resolve("other")), "1.0.0", 5);
            String otherSha = java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(other)));
            StringWriter out = new StringWriter();
            StringWriter err = new StringWriter();
            int code = Main.execute(new PrintWriter(out), new PrintWriter(err), "modules", "load", other.toString(), "--socket",
                    tmp.resolve("a1.sock").toString());
            assertThat(code).as(out + "" + err).isZero();
            String message = "abcdefghij".repeat(100);
            assertThat(through(port1, upstream1, message)).as("a1 runs the other code").isEqualTo(xor(message, 5));

            c = fleet("verify");
            assertThat(c.code()).as("verify exits 1 when an agent does not match").isEqualTo(Main.FAILURE);
            assertThat(c.out()).contains("a2: VERIFIED").contains("a1: MISMATCH").contains("marker@1.0.0 runs (ACTIVE) from jar SHA-256 " + otherSha)
                    .contains("which the orchestrator did not deploy");
            c = fleet("status");
            assertThat(c.out()).contains("! integrity MISMATCH");
            c = fleet("status", "a1");
            assertThat(c.out()).as("a1's history").contains("history of a1").contains("integrity MISMATCH: marker@1.0.0");

            // an agent that cannot answer is marked too
            inProcessAgent.close();
            inProcessAgent = null;
            waitForAgents("a2 gone", a -> !a.getName().equals("a2") || !a.getConnected(), "a1", "a2");
            c = fleet("verify", "a2");
            assertThat(c.code()).isEqualTo(Main.FAILURE);
            assertThat(c.out()).contains("a2: NO_ANSWER: not connected when challenged");
        }
    }

    /** The next challenge the orchestrator sends on a hand-made agent stream. */
    private static byte[] nextChallenge(java.util.concurrent.BlockingQueue<Object> in) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (System.nanoTime() < deadline) {
            Object m = in.poll(1, TimeUnit.SECONDS);
            if (m instanceof Throwable t) {
                throw new AssertionError("the stream ended", t);
            }
            if (m instanceof OrchestratorMessage om && om.hasChallenge()) {
                return om.getChallenge().getNonce().toByteArray();
            }
        }
        throw new AssertionError("no challenge within 30 s");
    }

    @Test
    void aProofSignedWithAnotherKeyOrForAnotherNonceIsAMismatch() throws Exception {
        startOrchestrator(null);
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"));
        KeyPair mine = g.generateKeyPair();
        ManagedChannel enrollment = NettyChannelBuilder.forAddress("127.0.0.1", orchestrator.agentAddress().getPort())
                .sslContext(GrpcSslContexts.forClient().trustManager(orchestrator.caFile().toFile()).build()).build();
        EnrollResponse enrolled;
        try {
            enrolled = EnrollmentGrpc.newBlockingStub(enrollment).withDeadlineAfter(30, TimeUnit.SECONDS).enroll(EnrollRequest.newBuilder()
                    .setToken(Files.readString(token("a3")).strip()).setPublicKey(ByteString.copyFrom(mine.getPublic().getEncoded())).build());
        } finally {
            enrollment.shutdownNow();
        }
        Path key = Files.writeString(tmp.resolve("a3.key"), "-----BEGIN PRIVATE KEY-----\n"
                + java.util.Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(mine.getPrivate().getEncoded()) + "\n-----END PRIVATE KEY-----\n");
        Path cert = Files.writeString(tmp.resolve("a3.crt"), enrolled.getCertificatePem());
        ManagedChannel ch = NettyChannelBuilder.forAddress("127.0.0.1", orchestrator.agentAddress().getPort())
                .sslContext(GrpcSslContexts.forClient().keyManager(cert.toFile(), key.toFile()).trustManager(orchestrator.caFile().toFile()).build()).build();
        try {
            java.util.concurrent.BlockingQueue<Object> in = new java.util.concurrent.LinkedBlockingQueue<>();
            StreamObserver<AgentMessage> out = AgentsGrpc.newStub(ch).connect(new StreamObserver<>() {
                @Override
                public void onNext(OrchestratorMessage m) {
                    in.add(m);
                }

                @Override
                public void onError(Throwable t) {
                    in.add(t);
                }

                @Override
                public void onCompleted() {
                    in.add(new IllegalStateException("completed"));
                }
            });
            out.onNext(AgentMessage.newBuilder().setHello(Hello.newBuilder().setVersion("test")).build());
            waitForAgents("the hand-made agent connected", AgentStatus::getConnected, "a3");

            // a proof signed with a key other than the certificate's
            var verify = java.util.concurrent.CompletableFuture.supplyAsync(() -> fleet("verify", "a3"));
            byte[] nonce = nextChallenge(in);
            List<LoadedPackage> none = List.of();
            out.onNext(AgentMessage.newBuilder().setProof(Proof.newBuilder().setNonce(ByteString.copyFrom(nonce))
                    .setSignature(ByteString.copyFrom(IntegrityProof.sign(g.generateKeyPair().getPrivate(), nonce, none)))).build());
            Cli c = verify.get(60, TimeUnit.SECONDS);
            assertThat(c.code()).as(c.out() + c.err()).isEqualTo(Main.FAILURE);
            assertThat(c.out()).contains("a3: MISMATCH: the proof's signature does not verify with the key of the agent's certificate");

            // the same agent, signing right
            verify = java.util.concurrent.CompletableFuture.supplyAsync(() -> fleet("verify", "a3"));
            byte[] second = nextChallenge(in);
            Proof good = Proof.newBuilder().setNonce(ByteString.copyFrom(second))
                    .setSignature(ByteString.copyFrom(IntegrityProof.sign(mine.getPrivate(), second, none))).build();
            out.onNext(AgentMessage.newBuilder().setProof(good).build());
            c = verify.get(60, TimeUnit.SECONDS);
            assertThat(c.code()).as(c.out() + c.err()).isZero();
            assertThat(c.out()).contains("a3: VERIFIED");

            // that good proof again: a replay
            out.onNext(AgentMessage.newBuilder().setProof(good).build());
            waitForAgents("the replay is marked", a -> a.getIntegrity() == Integrity.MISMATCH
                    && a.getIntegrityReason().contains("answered a challenge it was not sent"), "a3");
            out.onCompleted();
        } finally {
            ch.shutdownNow();
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
