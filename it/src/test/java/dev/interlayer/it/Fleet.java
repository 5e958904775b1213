package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.agent.Agent;
import dev.interlayer.agent.AgentConfig;
import dev.interlayer.cli.Main;
import dev.interlayer.orchestrator.Orchestrator;
import dev.interlayer.orchestrator.OrchestratorSettings;
import dev.interlayer.orchestrator.v1.AgentStatus;
import dev.interlayer.orchestrator.v1.StatusResponse;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/**
 * A real orchestrator (embedded PostgreSQL) in a test's folder, the {@code interlayer fleet} CLI against it, and agents in
 * this JVM enrolled with real tokens: what the orchestrator tests beyond {@link OrchestratorTest} share.
 */
final class Fleet implements AutoCloseable {

    final Path dir;
    private final OrchestratorSettings settings;
    private Orchestrator orchestrator;
    private final List<Agent> agents = new ArrayList<>();

    /** The result of one {@code interlayer fleet} command. */
    record Cli(int code, String out, String err) {}

    private Fleet(Path dir, OrchestratorSettings settings) {
        this.dir = dir;
        this.settings = settings;
    }

    /** Starts an orchestrator with its data in {@code dir/orchestrator}; {@code edit} may change its settings. */
    static Fleet start(Path dir, java.util.function.UnaryOperator<OrchestratorSettings> edit) throws Exception {
        // the embedded PostgreSQL runs as an unprivileged user, which must be able to enter the data folder's parents
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Fleet f = new Fleet(dir, edit.apply(OrchestratorSettings.embedded(dir.resolve("orchestrator"), new InetSocketAddress("127.0.0.1", 0))
                .withSocket(dir.resolve("orchestrator.sock"))));
        f.orchestrator = Orchestrator.start(f.settings);
        return f;
    }

    Orchestrator orchestrator() {
        return orchestrator;
    }

    Cli fleet(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        List<String> all = new ArrayList<>(List.of("fleet"));
        all.addAll(List.of(args));
        all.addAll(List.of("--socket", settings.socket().toString()));
        int code = Main.execute(new PrintWriter(out), new PrintWriter(err), all.toArray(String[]::new));
        return new Cli(code, out.toString(), err.toString());
    }

    /** {@link #fleet}, failing the test unless it exits 0. */
    Cli ok(String... args) {
        Cli c = fleet(args);
        assertThat(c.code()).as(String.join(" ", args) + ": " + c.err()).isZero();
        return c;
    }

    /** A new one-time token for {@code agent} (label zone=eu), in a file. */
    Path token(String agent) throws Exception {
        return Files.writeString(dir.resolve(agent + ".token"), ok("token", agent, "--label", "zone=eu").out().strip());
    }

    /** Starts an agent in this JVM, enrolled with a new token, with one listener {@code out} in front of {@code upstream}. */
    Agent agent(String name, InetSocketAddress upstream) throws Exception {
        Path home = Files.createDirectories(dir.resolve(name));
        Files.writeString(home.resolve("agent.yaml"), """
                agent:
                  control: {socket: %s}
                  orchestrator: {address: 127.0.0.1:%d, token-file: %s, ca: %s}
                listeners:
                  - name: out
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:%d
                    role: client
                """.formatted(dir.resolve(name + ".sock"), orchestrator.agentAddress().getPort(), token(name), orchestrator.caFile(),
                upstream.getPort()));
        Agent a = Agent.start(AgentConfig.load(home.resolve("agent.yaml")));
        agents.add(a);
        return a;
    }

    StatusResponse status() {
        Cli c = ok("status", "--json");
        try {
            StatusResponse.Builder b = StatusResponse.newBuilder();
            com.google.protobuf.util.JsonFormat.parser().merge(c.out(), b);
            return b.build();
        } catch (Exception e) {
            throw new AssertionError(c.out(), e);
        }
    }

    /** Waits (60 s at most) until exactly {@code names} are enrolled and each passes {@code each}; returns the fleet's revision. */
    long waitForAgents(String what, Predicate<AgentStatus> each, String... names) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (true) {
            StatusResponse s = status();
            if (s.getAgentsCount() == names.length && s.getAgentsList().stream().allMatch(each)) {
                return s.getRevision();
            }
            assertThat(System.nanoTime()).as("not within 60 s: " + what + "; fleet status: " + s).isLessThan(deadline);
            Thread.sleep(200);
        }
    }

    static boolean runs(AgentStatus a, String module, String version, String state) {
        return a.getModulesList().stream().anyMatch(m -> m.getName().equals(module) && m.getVersion().equals(version) && m.getState().equals(state));
    }

    /** One connection through an agent to an echo server that keeps what it {@code received}. */
    record Held(Socket socket, java.io.ByteArrayOutputStream received) implements AutoCloseable {
        static Held open(int port, java.io.ByteArrayOutputStream received) throws Exception {
            Socket s = new Socket("127.0.0.1", port);
            s.setSoTimeout(10_000);
            return new Held(s, received);
        }

        /** Sends {@code message}, checks its echo (the module changes it back), returns what the upstream received of it. */
        String send(String message) throws Exception {
            synchronized (received) {
                received.reset();
            }
            byte[] m = message.getBytes(StandardCharsets.UTF_8);
            OutputStream out = socket.getOutputStream();
            out.write(m);
            out.flush();
            InputStream in = socket.getInputStream();
            assertThat(new String(in.readNBytes(m.length), StandardCharsets.UTF_8)).as("the echo through the agent").isEqualTo(message);
            synchronized (received) {
                return received.toString(StandardCharsets.UTF_8);
            }
        }

        /** {@link #send} on a new connection. */
        static String through(int port, java.io.ByteArrayOutputStream received, String message) throws Exception {
            try (Held h = open(port, received)) {
                return h.send(message);
            }
        }

        @Override
        public void close() throws Exception {
            socket.close();
        }
    }

    /**
     * Enrolls {@code name} with a new token as an agent would (a key pair made here) and returns a channel that presents
     * the certificate the orchestrator issued: for streams a test writes by hand.
     */
    io.grpc.ManagedChannel enrolledChannel(String name) throws Exception {
        java.security.KeyPairGenerator g = java.security.KeyPairGenerator.getInstance("EC");
        g.initialize(new java.security.spec.ECGenParameterSpec("secp256r1"));
        java.security.KeyPair pair = g.generateKeyPair();
        io.grpc.ManagedChannel enrollment = io.grpc.netty.NettyChannelBuilder.forAddress("127.0.0.1", orchestrator.agentAddress().getPort())
                .sslContext(io.grpc.netty.GrpcSslContexts.forClient().trustManager(orchestrator.caFile().toFile()).build()).build();
        dev.interlayer.orchestrator.v1.EnrollResponse enrolled;
        try {
            enrolled = dev.interlayer.orchestrator.v1.EnrollmentGrpc.newBlockingStub(enrollment).withDeadlineAfter(30, java.util.concurrent.TimeUnit.SECONDS)
                    .enroll(dev.interlayer.orchestrator.v1.EnrollRequest.newBuilder().setToken(Files.readString(token(name)).strip())
                            .setPublicKey(com.google.protobuf.ByteString.copyFrom(pair.getPublic().getEncoded())).build());
        } finally {
            enrollment.shutdownNow();
        }
        Path key = Files.writeString(dir.resolve(name + ".key"), "-----BEGIN PRIVATE KEY-----\n"
                + java.util.Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(pair.getPrivate().getEncoded()) + "\n-----END PRIVATE KEY-----\n");
        Path cert = Files.writeString(dir.resolve(name + ".crt"), enrolled.getCertificatePem());
        return io.grpc.netty.NettyChannelBuilder.forAddress("127.0.0.1", orchestrator.agentAddress().getPort()).maxInboundMessageSize(64 << 20)
                .sslContext(io.grpc.netty.GrpcSslContexts.forClient().keyManager(cert.toFile(), key.toFile())
                        .trustManager(orchestrator.caFile().toFile()).build()).build();
    }

    /** Stops the orchestrator (and its database) and keeps its folder, for {@link #restart()}. */
    void stopOrchestrator() {
        orchestrator.close();
        orchestrator = null;
    }

    void restart() throws Exception {
        orchestrator = Orchestrator.start(settings);
    }

    @Override
    public void close() {
        agents.forEach(Agent::close);
        if (orchestrator != null) {
            orchestrator.close();
        }
    }
}
