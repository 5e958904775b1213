package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.agent.Agent;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.orchestrator.v1.AckState;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.testing.TestJars;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import dev.interlayer.cli.Main;
import dev.interlayer.orchestrator.v1.Ack;
import dev.interlayer.orchestrator.v1.AgentMessage;
import dev.interlayer.orchestrator.v1.AgentsGrpc;
import dev.interlayer.orchestrator.v1.Hello;
import dev.interlayer.orchestrator.v1.Report;
import dev.interlayer.orchestrator.v1.ReportedModule;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What goes wrong around an orchestrator, with a real orchestrator, its embedded PostgreSQL and real agents on loopback:
 * a snapshot that fails half-way on an agent, a database that stops, a client that sends garbage on the agents' stream.
 */
class OrchestratorFaultsTest {

    @TempDir
    Path tmp;

    private Fleet fleet;

    private final LogCapture log = new LogCapture();

    @BeforeEach
    void open() {
        log.start("interlayer.agent");
    }

    @AfterEach
    void close() {
        log.stop();
        if (fleet != null) {
            fleet.close();
        }
    }

    /** A jar of module {@code name}@1.0.0 whose init throws. */
    private static Path brokenJar(Path dir, String name) {
        String cls = "broken." + Character.toUpperCase(name.charAt(0)) + name.substring(1);
        return TestJars.jar().source(cls, TestJars.streamModule(cls, name, "1.0.0", """
                    public void init(ModuleEnv env) { throw new IllegalStateException("%s refuses to start"); }
                """.formatted(name))).service(cls).write(dir.resolve(name + ".jar"));
    }

    /** Starts agent a1 in front of {@code app}, waits until it is connected and uploads marker 1.0.0 and 2.0.0. */
    private Agent markersUploadedAndAgentConnected(TestServer app) throws Exception {
        Agent agent = fleet.agent("a1", app.address());
        fleet.waitForAgents("a1 connected", a -> a.getConnected(), "a1");
        fleet.ok("upload", HotReplaceTest.markerJar(tmp, "1.0.0", 1).toString());
        fleet.ok("upload", HotReplaceTest.markerJar(tmp, "2.0.0", 2).toString());
        return agent;
    }

    @Test
    void aSnapshotThatFailsAfterALoadIsUndoneAndTheAgentRunsWhatItRanBefore() throws Exception {
        fleet = Fleet.start(tmp, s -> s);
        ByteArrayOutputStream upstream = new ByteArrayOutputStream();
        try (TestServer app = TestServer.echo(upstream)) {
            Agent agent = markersUploadedAndAgentConnected(app);
            int port = agent.listeners().get("out").getPort();
            fleet.ok("upload", brokenJar(tmp, "broken").toString());
            String message = "abcdefghij".repeat(300);

            fleet.ok("deploy", "marker@1.0.0", "--to", "all");
            long v1 = fleet.status().getRevision();
            fleet.waitForAgents("marker@1.0.0 applied", a -> a.getAck() == AckState.APPLIED && a.getAppliedRevision() == v1, "a1");
            fleet.ok("priority", "marker", "77");
            long prio = fleet.status().getRevision();
            fleet.waitForAgents("priority 77 applied", a -> a.getAck() == AckState.APPLIED && a.getAppliedRevision() == prio, "a1");
            assertThat(Fleets.Held.through(port, upstream, message)).isEqualTo(Fleets.xor(message, 1));

            try (Fleets.Held held = Fleets.Held.open(port, upstream)) {
                assertThat(held.send(message)).isEqualTo(Fleets.xor(message, 1));
                // a module whose init fails: refused, and nothing else changes
                fleet.ok("deploy", "broken@1.0.0", "--to", "all");
                fleet.waitForAgents("broken refused", a -> a.getAck() == AckState.REFUSED, "a1");
                // the next snapshot loads marker@2.0.0 (its newest deployment comes first), which retires 1.0.0, then
                // broken@1.0.0 fails: marker@2.0.0 must not stay, 1.0.0 must run as before
                fleet.ok("rotate", "marker@2.0.0");
                long rotated = fleet.status().getRevision();
                fleet.waitForAgents("the rotation refused", a -> a.getAck() == AckState.REFUSED && a.getDesiredRevision() == rotated, "a1");
                String reason = fleet.status().getAgents(0).getAckReason();
                assertThat(reason).contains("broken@1.0.0 did not load").contains("broken refuses to start")
                        .contains("undone: marker@2.0.0 unloaded, marker@1.0.0 loaded again (ACTIVE, priority 77)")
                        .contains("nothing of revision " + rotated + " was applied");
                assertThat(agent.registry().modules()).as("what the agent's registry holds")
                        .noneMatch(m -> m.id().equals("marker@2.0.0") && !m.state().leaving());
                LoadedModule now = agent.registry().find("marker").orElseThrow();
                assertThat(now.version()).isEqualTo("1.0.0");
                assertThat(now.state().name()).isEqualTo("ACTIVE");
                assertThat(now.priority()).isEqualTo(77);
                assertThat(held.send(message)).as("the connection opened before keeps 1.0.0").isEqualTo(Fleets.xor(message, 1));
                assertThat(Fleets.Held.through(port, upstream, message)).as("a new connection gets 1.0.0 again").isEqualTo(Fleets.xor(message, 1));
            }

            // once the broken module is gone, the rotation applies
            fleet.ok("revoke", "broken");
            long fixed = fleet.status().getRevision();
            fleet.waitForAgents("marker@2.0.0 applied", a -> a.getAck() == AckState.APPLIED && a.getAppliedRevision() == fixed
                    && Fleets.runs(a, "marker", "2.0.0", "ACTIVE"), "a1");
            assertThat(Fleets.Held.through(port, upstream, message)).isEqualTo(Fleets.xor(message, 2));
        }
    }

    /** Runs the embedded PostgreSQL's pg_ctl on its cluster as the user that owns it, as the orchestrator does. */
    private void pgCtl(String... args) throws Exception {
        Path cluster = fleet.orchestrator().database().cluster();
        int uid = (Integer) Files.getAttribute(cluster, "unix:uid");
        int gid = (Integer) Files.getAttribute(cluster, "unix:gid");
        List<String> cmd = new ArrayList<>();
        if (uid != (Integer) Files.getAttribute(tmp, "unix:uid")) {
            cmd.addAll(List.of("setpriv", "--reuid=" + uid, "--regid=" + gid, "--clear-groups", "--"));
        }
        cmd.addAll(List.of(tmp.resolve("orchestrator/pgsql/bin/pg_ctl").toString(), "-D", cluster.toString()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).directory(tmp.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(90, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as("pg_ctl " + String.join(" ", args) + ": " + out).isZero();
    }

    @Test
    void whileTheDatabaseIsDownAgentsKeepServingFleetCallsAreUnavailableAndAllResumesWhenItIsBack() throws Exception {
        fleet = Fleet.start(tmp, s -> s);
        ByteArrayOutputStream upstream = new ByteArrayOutputStream();
        try (TestServer app = TestServer.echo(upstream)) {
            Agent agent = markersUploadedAndAgentConnected(app);
            int port = agent.listeners().get("out").getPort();
            fleet.ok("deploy", "marker@1.0.0", "--to", "all");
            long v1 = fleet.status().getRevision();
            fleet.waitForAgents("marker@1.0.0 applied", a -> a.getAck() == AckState.APPLIED && a.getAppliedRevision() == v1, "a1");
            String message = "abcdefghij".repeat(300);
            int dbPort = java.net.URI.create(fleet.orchestrator().database().url().substring("jdbc:".length())).getPort();

            try (Fleets.Held held = Fleets.Held.open(port, upstream)) {
                assertThat(held.send(message)).isEqualTo(Fleets.xor(message, 1));
                pgCtl("-m", "fast", "-w", "stop");

                Fleets.Cli c = fleet.fleet("status");
                assertThat(c.code()).as(c.out()).isEqualTo(Main.FAILURE);
                assertThat(c.err()).contains("the orchestrator's database").contains("agents keep their last good state");
                c = fleet.fleet("rotate", "marker@2.0.0");
                assertThat(c.code()).isEqualTo(Main.FAILURE);
                assertThat(c.err()).contains("the orchestrator's database");
                // past the agent's report interval: its stream meets the stopped database, the agent keeps serving
                Thread.sleep(10_000 + 2000);
                assertThat(held.send(message)).as("a live connection while the database is down").isEqualTo(Fleets.xor(message, 1));
                assertThat(Fleets.Held.through(port, upstream, message)).as("a new connection while the database is down").isEqualTo(Fleets.xor(message, 1));

                Agents.waitFor("the agent's stream met the stopped database", () -> log.lines().stream()
                        .anyMatch(l -> l.contains("the orchestrator's database") && l.contains("keeping the current modules")));
                assertThat(log.lines()).noneMatch(l -> l.contains("a bug"));

                pgCtl("-l", fleet.orchestrator().database().cluster().resolve("postgresql.log").toString(), "-w", "-t", "60", "-o",
                        "-p " + dbPort + " -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c timezone=UTC", "start");
                Agents.waitFor("fleet status answers again", () -> fleet.fleet("status").code() == Main.OK);
                fleet.ok("rotate", "marker@2.0.0");
                long v2 = fleet.status().getRevision();
                fleet.waitForAgents("the agent is back and applied the rotation", a -> a.getConnected() && a.getAck() == AckState.APPLIED
                        && a.getAppliedRevision() == v2, "a1");
                assertThat(held.send(message)).as("the connection opened before the rotation").isEqualTo(Fleets.xor(message, 1));
                assertThat(Fleets.Held.through(port, upstream, message)).isEqualTo(Fleets.xor(message, 2));
            }
        }
    }

    /** A hand-made agent stream: what the orchestrator sends on it, and how it ended. */
    private static final class RawStream {
        final BlockingQueue<Object> in = new LinkedBlockingQueue<>();
        final ClientCall<byte[], byte[]> call;

        RawStream(ManagedChannel ch) {
            MethodDescriptor<byte[], byte[]> connect = MethodDescriptor.<byte[], byte[]>newBuilder().setType(MethodDescriptor.MethodType.BIDI_STREAMING)
                    .setFullMethodName(AgentsGrpc.getConnectMethod().getFullMethodName()).setRequestMarshaller(BYTES).setResponseMarshaller(BYTES).build();
            call = ch.newCall(connect, CallOptions.DEFAULT);
            call.start(new ClientCall.Listener<>() {
                @Override
                public void onMessage(byte[] m) {
                    in.add(m);
                    call.request(1);
                }

                @Override
                public void onClose(Status status, Metadata trailers) {
                    in.add(status);
                }
            }, new Metadata());
            call.request(1);
        }

        void send(byte[] m) {
            call.sendMessage(m);
        }

        /** The status the orchestrator ended the stream with (within 30 s). */
        Status ended() throws Exception {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (System.nanoTime() < deadline) {
                if (in.poll(1, TimeUnit.SECONDS) instanceof Status s) {
                    return s;
                }
            }
            throw new AssertionError("the orchestrator did not end the stream within 30 s");
        }
    }

    private static final MethodDescriptor.Marshaller<byte[]> BYTES = new MethodDescriptor.Marshaller<>() {
        @Override
        public java.io.InputStream stream(byte[] value) {
            return new java.io.ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(java.io.InputStream stream) {
            try {
                return stream.readAllBytes();
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }
    };

    @Test
    void garbageOnTheAgentsStreamIsRefusedWithTheReasonAndDisturbsNoOtherAgent() throws Exception {
        fleet = Fleet.start(tmp, s -> s);
        ByteArrayOutputStream upstream = new ByteArrayOutputStream();
        try (TestServer app = TestServer.echo(upstream)) {
            Agent agent = fleet.agent("a1", app.address());
            int port = agent.listeners().get("out").getPort();
            ManagedChannel ch = fleet.enrolledChannel("bad");
            try {
                fleet.waitForAgents("a1 connected", a -> !a.getName().equals("a1") || a.getConnected(), "a1", "bad");

                // bytes that are no protobuf message
                RawStream raw = new RawStream(ch);
                raw.send(new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, 0x01, 0x02});
                Status s = raw.ended();
                assertThat(s.getCode()).as(s.toString()).isIn(Status.Code.INVALID_ARGUMENT, Status.Code.INTERNAL);
                assertThat(s.getDescription()).as(s.toString()).isNotBlank();

                // an acknowledgement before the hello
                raw = new RawStream(ch);
                raw.send(AgentMessage.newBuilder().setAck(Ack.newBuilder().setRevision(99).setApplied(true)).build().toByteArray());
                s = raw.ended();
                assertThat(s.getCode()).as(s.toString()).isEqualTo(Status.Code.INVALID_ARGUMENT);
                assertThat(s.getDescription()).contains("hello");

                // an acknowledgement of a revision it was never sent
                raw = new RawStream(ch);
                raw.send(AgentMessage.newBuilder().setHello(Hello.newBuilder().setVersion("test")).build().toByteArray());
                raw.send(AgentMessage.newBuilder().setAck(Ack.newBuilder().setRevision(12345).setApplied(true)).build().toByteArray());
                s = raw.ended();
                assertThat(s.getCode()).as(s.toString()).isEqualTo(Status.Code.INVALID_ARGUMENT);
                assertThat(s.getDescription()).contains("revision 12345").contains("not sent");

                // a message past the size limit
                raw = new RawStream(ch);
                byte[] huge = new byte[8 << 20];
                raw.send(AgentMessage.newBuilder().setHello(Hello.newBuilder().setVersion("test")
                        .setReport(Report.newBuilder().addModules(ReportedModule.newBuilder().setName("x").setSha256(new String(huge, StandardCharsets.ISO_8859_1)))))
                        .build().toByteArray());
                s = raw.ended();
                assertThat(s.getCode()).as(s.toString()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
                assertThat(s.getDescription()).as(s.toString()).isNotBlank();

                // the real agent was not disturbed: it stayed connected and applies a deployment
                fleet.ok("upload", HotReplaceTest.markerJar(tmp, "1.0.0", 1).toString());
                fleet.ok("deploy", "marker@1.0.0", "--to", "agent=a1");
                long rev = fleet.status().getRevision();
                fleet.waitForAgents("a1 applied", a -> !a.getName().equals("a1") || a.getAck() == AckState.APPLIED && a.getAppliedRevision() == rev,
                        "a1", "bad");
                String message = "abcdefghij".repeat(300);
                assertThat(Fleets.Held.through(port, upstream, message)).isEqualTo(Fleets.xor(message, 1));
                fleet.ok("status", "a1");
                assertThat(fleet.ok("status", "a1").out()).doesNotContain("disconnected");
            } finally {
                ch.shutdownNow();
            }
        }
    }
}
