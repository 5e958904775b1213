package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.agent.Agent;
import dev.interlayer.agent.AgentConfig;
import dev.interlayer.orchestrator.Orchestrator;
import dev.interlayer.orchestrator.OrchestratorSettings;
import dev.interlayer.orchestrator.v1.AgentStatus;
import dev.interlayer.orchestrator.v1.StatusResponse;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
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

    Fleets.Cli fleet(String... args) {
        return Fleets.fleet(settings.socket(), args);
    }

    /** {@link #fleet}, failing the test unless it exits 0. */
    Fleets.Cli ok(String... args) {
        Fleets.Cli c = fleet(args);
        assertThat(c.code()).as(String.join(" ", args) + ": " + c.err()).isZero();
        return c;
    }

    /** A new one-time token for {@code agent} (label zone=eu), in a file. */
    Path token(String agent) throws Exception {
        return Fleets.token(settings.socket(), dir, agent, "zone=eu");
    }

    /** Starts an agent in this JVM, enrolled with a new token, with one listener {@code out} in front of {@code upstream}. */
    Agent agent(String name, InetSocketAddress upstream) throws Exception {
        Path home = Files.createDirectories(dir.resolve(name));
        Files.writeString(home.resolve("agent.yaml"), Fleets.agentYaml(dir, name, "127.0.0.1:" + orchestrator.agentAddress().getPort(),
                token(name), orchestrator.caFile(), 0, upstream));
        Agent a = Agent.start(AgentConfig.load(home.resolve("agent.yaml")));
        agents.add(a);
        return a;
    }

    StatusResponse status() {
        return Fleets.status(settings.socket());
    }

    /** Waits (60 s at most) until exactly {@code names} are enrolled and each passes {@code each}; returns the fleet's revision. */
    long waitForAgents(String what, Predicate<AgentStatus> each, String... names) throws Exception {
        return Fleets.waitForStatus(settings.socket(), what, s -> s.getAgentsCount() == names.length && s.getAgentsList().stream().allMatch(each))
                .getRevision();
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
