package dev.interlayer.control;

import io.grpc.BindableService;
import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.InternalNettyServerCredentials;
import io.grpc.netty.InternalProtocolNegotiators;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionService;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslProvider;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An agent's control endpoint: the IDL's services and the standard gRPC health and reflection services, each
 * behind the {@link SecurityModule}, served on a Unix domain socket (callers identified by their peer credentials)
 * and optionally on TCP with mutual TLS (callers identified by their client certificate).
 *
 * <pre>
 *   CLI ──uds (SO_PEERCRED)──┐
 *                            ├─▶ SecurityModule ─▶ Modules | Connections | Listeners | Events | Audit | Policy | Config | Health
 *                            │                     | grpc.health.v1.Health | grpc.reflection.v1[alpha].ServerReflection
 *   orchestrator ──mTLS──────┘        │                              │
 *                                     └─▶ AuditLog                    └─▶ ModuleRegistry, Engine
 * </pre>
 *
 * <p>Lifecycle: {@link #start} binds everything or nothing; {@link #close} stops both listeners, ends open
 * calls, and removes the socket file.
 */
public final class ControlServer implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.control");
    /** Largest message the endpoint accepts: a 1 MiB upload chunk plus framing. */
    static final int MAX_MESSAGE = 2 * 1024 * 1024;

    private final ControlSettings settings;
    private final SecurityModule security;
    private final Served served;
    private final PolicyHolder policy;
    private final AuditLog audit;
    private final Rejections rejections;
    private final ExecutorService executor;
    private final EventLoopGroup boss;
    private final EventLoopGroup workers;
    private final Server uds;
    private final Server tls;
    private final HealthStatusManager probes;
    /** The attach socket of an agent's endpoint, or null (set once, right after the start). */
    private AttachServer attach;

    private ControlServer(ControlSettings settings, SecurityModule security, Served served, PolicyHolder policy, AuditLog audit,
                          Rejections rejections, ExecutorService executor, EventLoopGroup boss, EventLoopGroup workers, Server uds, Server tls,
                          HealthStatusManager probes) {
        this.settings = settings;
        this.security = security;
        this.served = served;
        this.policy = policy;
        this.audit = audit;
        this.rejections = rejections;
        this.executor = executor;
        this.boss = boss;
        this.workers = workers;
        this.uds = uds;
        this.tls = tls;
        this.probes = probes;
    }

    /** The deprecated v1alpha server reflection, which older tools (grpc_cli, older grpcurl) still ask for; v1 is served beside it. */
    @SuppressWarnings("deprecation")
    private static BindableService reflectionV1alpha() {
        return ProtoReflectionService.newInstance();
    }

    /**
     * Starts the endpoint.
     *
     * @throws ControlException saying what is wrong and what to do: a bad policy (file:line), an audit file
     *         that cannot be opened, a socket held by a running agent, a TLS file that cannot be read, an
     *         address in use
     */
    public static ControlServer start(ControlSettings s, ControlTarget target) throws ControlException {
        ControlServer server = start(s, new AgentServices(target));
        if (s.attachSocket() != null) {
            try {
                server.attach = AttachServer.start(s.attachSocket(), server.security, target, server.boss, server.workers, s.limits().connectionsPerUid());
            } catch (ControlException | RuntimeException e) {
                server.close();
                throw e;
            }
        }
        return server;
    }

    /**
     * What an endpoint serves beside its transport: the IDL, its constraints, the policy used when the settings name no
     * file, and the services (the agent's control endpoint; the orchestrator's). The endpoint owns it once
     * {@link #start(ControlSettings, Served)} is called, and closes it when it stops (or fails to start).
     */
    public interface Served extends AutoCloseable {
        /** The IDL whose services it serves (the standard health and reflection services are added beside them). */
        Idl idl();

        /** The constraints every request and response is checked against. */
        Constraints constraints();

        /** The policy in force when the settings name no policy file; {@code uid} is the uid this process runs as. */
        Policy builtinPolicy(long uid);

        /** Its services, made once, when the endpoint starts. */
        List<BindableService> services(Parts parts);

        /**
         * Whether a TLS client without a certificate completes the handshake (the orchestrator's enrollment: the
         * token proves the caller). Such a caller has an empty subject: only rules that name no certificate field
         * match it. False: a client certificate is required, as on the agent.
         */
        default boolean tlsWithoutCertificate() {
            return false;
        }

        @Override
        default void close() {}
    }

    /**
     * What the endpoint hands its services.
     *
     * @param policy the policy in force
     * @param audit the audit log
     * @param executor the executor calls run on (for streams that feed themselves)
     * @param security whether the security module's checks are on
     */
    public record Parts(PolicyHolder policy, AuditLog audit, ExecutorService executor, boolean security) {}

    /** The agent's control endpoint: control.proto's services over its registry and engine. */
    private static final class AgentServices implements Served {
        private final ControlTarget target;
        private final java.util.concurrent.atomic.AtomicReference<Handover> handover = new java.util.concurrent.atomic.AtomicReference<>();
        private EventHub events;
        private Departures departures;

        AgentServices(ControlTarget target) {
            this.target = target;
        }

        @Override
        public Idl idl() {
            return Idl.control();
        }

        @Override
        public Constraints constraints() {
            return Constraints.builtin();
        }

        @Override
        public Policy builtinPolicy(long uid) {
            return Policy.builtinDefault(uid);
        }

        @Override
        public List<BindableService> services(Parts p) {
            events = new EventHub(target.registry());
            departures = new Departures(target.registry());
            return List.of(new ModulesEndpoint(target, departures), new ConnectionsEndpoint(target), new ListenersEndpoint(target),
                    new EventsEndpoint(events, p.executor()), new AuditEndpoint(p.audit(), p.executor()), new PolicyEndpoint(p.policy()),
                    new ConfigEndpoint(target.config()), new HealthEndpoint(target, p.policy(), p.security()), new UpgradeEndpoint(handover));
        }

        @Override
        public void close() {
            if (events != null) {
                events.close();
            }
            if (departures != null) {
                departures.close();
            }
        }
    }

    /**
     * Starts an endpoint that serves {@code served}.
     *
     * @throws ControlException saying what is wrong and what to do (see {@link #start(ControlSettings, ControlTarget)})
     */
    public static ControlServer start(ControlSettings s, Served served) throws ControlException {
        QuietKeepAlive.install();
        TransportNoise.install();
        if (!Epoll.isAvailable()) {
            served.close();
            throw new ControlException("the control socket needs Linux with Netty's native epoll transport, which is unavailable here: "
                    + Epoll.unavailabilityCause());
        }
        long agentUid = Policy.processUid();
        PolicyHolder policy;
        Idl idl = served.idl();
        try {
            policy = s.policy() == null ? PolicyHolder.of(served.builtinPolicy(agentUid)) : PolicyHolder.file(s.policy(), agentUid, true, idl);
        } catch (YamlException e) {
            served.close();
            throw new ControlException("the control policy is not valid: " + e.getMessage());
        }
        AuditLog audit = null;
        Rejections rejections = null;
        ExecutorService executor = null;
        EventLoopGroup boss = null;
        EventLoopGroup workers = null;
        Server uds = null;
        Server tls = null;
        try {
            try {
                audit = new AuditLog(s.auditCapacity(), s.auditFile(), s.auditFiles());
            } catch (IOException e) {
                throw new ControlException("cannot open the audit file " + s.auditFile() + " for appending: " + e.getMessage()
                        + "; check agent.control.audit-file and the folder's permissions");
            }
            SecurityModule security = new SecurityModule(idl, served.constraints(), policy, audit, s.security());
            executor = Executors.newCachedThreadPool(daemon("interlayer-control"));
            boss = new MultiThreadIoEventLoopGroup(1, daemon("interlayer-control-accept"), EpollIoHandler.newFactory());
            workers = new MultiThreadIoEventLoopGroup(2, daemon("interlayer-control-io"), EpollIoHandler.newFactory());
            rejections = new Rejections(audit, boss);
            ConnectionGuard guard = new ConnectionGuard(s.limits(), rejections, agentUid);
            // grpc.health.v1: "" (the whole endpoint) is SERVING from the start; each service by its full name too
            HealthStatusManager probes = new HealthStatusManager();
            idl.methods().stream().map(m -> m.descriptor().getService().getFullName()).distinct()
                    .forEach(service -> probes.setStatus(service, HealthCheckResponse.ServingStatus.SERVING));
            List<BindableService> services = new java.util.ArrayList<>(served.services(new Parts(policy, audit, executor, s.security())));
            services.addAll(List.of(probes.getHealthService(), ProtoReflectionServiceV1.newInstance(), reflectionV1alpha()));
            prepareSocket(s.socket());
            NettyServerBuilder ub = NettyServerBuilder.forAddress(new DomainSocketAddress(s.socket().toString()),
                            InternalNettyServerCredentials.create(new UdsIdentity(guard)))
                    .channelType(EpollServerDomainSocketChannel.class);
            uds = configure(ub, boss, workers, executor, services, security, s.limits(), rejections, idl).build();
            try {
                uds.start();
            } catch (IOException e) {
                throw new ControlException("cannot listen on the control socket " + s.socket() + ": " + e.getMessage()
                        + "; check that its folder is writable, or set agent.control.socket");
            }
            try {
                Files.setPosixFilePermissions(s.socket(), PosixFilePermissions.fromString("rw-rw-rw-"));
            } catch (IOException e) {
                LOG.log(Level.WARNING, "cannot make the control socket {0} reachable for every user: {1}", s.socket(), e.toString());
            }
            if (s.tls() != null) {
                tls = startTls(s.tls(), boss, workers, executor, services, security, s.limits(), rejections, guard, served.tlsWithoutCertificate());
            }
            LOG.log(Level.INFO, "control endpoint on {0}{1}; policy {2} ({3} rules){4}", s.socket(),
                    tls == null ? "" : " and mutual TLS on " + Protos.address((InetSocketAddress) tls.getListenSockets().get(0)),
                    policy.current().policy().source(), policy.current().policy().size(),
                    s.security() ? "" : "; SECURITY MODULE OFF (benchmark mode)");
            return new ControlServer(s, security, served, policy, audit, rejections, executor, boss, workers, uds, tls, probes);
        } catch (ControlException | RuntimeException | Error e) {
            stopAll(uds, tls, boss, workers, executor, served, policy, rejections, audit);
            throw e;
        }
    }

    private static NettyServerBuilder configure(NettyServerBuilder b, EventLoopGroup boss, EventLoopGroup workers, ExecutorService executor,
                                                List<BindableService> services, SecurityModule security, ControlSettings.Limits limits,
                                                Rejections rejections, Idl idl) {
        b.bossEventLoopGroup(boss).workerEventLoopGroup(workers).executor(executor).maxInboundMessageSize(MAX_MESSAGE)
                .permitKeepAliveWithoutCalls(true).permitKeepAliveTime(10, TimeUnit.SECONDS)
                .maxConnectionIdle(limits.idleTimeout().toNanos(), TimeUnit.NANOSECONDS)
                .addStreamTracerFactory(new OversizeAudit(rejections, idl));
        for (BindableService svc : services) {
            b.addService(ServerInterceptors.intercept(Undecodable.decodeChecked(svc.bindService()), security));
        }
        return b;
    }

    private static Server startTls(ControlSettings.Tls t, EventLoopGroup boss, EventLoopGroup workers, ExecutorService executor,
                                   List<BindableService> services, SecurityModule security, ControlSettings.Limits limits, Rejections rejections,
                                   ConnectionGuard guard, boolean withoutCertificate) throws ControlException {
        SslContext ssl;
        try {
            ssl = GrpcSslContexts.configure(io.netty.handler.ssl.SslContextBuilder.forServer(t.cert().toFile(), t.key().toFile()), SslProvider.JDK)
                    .trustManager(t.clientCa().toFile())
                    .clientAuth(withoutCertificate ? ClientAuth.OPTIONAL : ClientAuth.REQUIRE)
                    .build();
        } catch (IOException | RuntimeException e) {
            throw new ControlException("agent.control.tls: cannot use cert " + t.cert() + ", key " + t.key() + " and client-ca " + t.clientCa()
                    + ": " + e.getMessage() + "; give PEM files: the certificate chain, its PKCS#8 private key, and the CA that signs client certificates");
        }
        NettyServerBuilder b = NettyServerBuilder.forAddress(t.listen(), InternalNettyServerCredentials.create(guard.tls(InternalProtocolNegotiators.serverTls(ssl))))
                .channelType(EpollServerSocketChannel.class);
        if (withoutCertificate) {
            b.addTransportFilter(new AnonymousTls());
        }
        Server server = configure(b, boss, workers, executor, services, security, limits, rejections, security.idl()).build();
        try {
            return server.start();
        } catch (IOException e) {
            throw new ControlException("agent.control.tls: cannot listen on " + Protos.address(t.listen()) + ": " + e.getMessage()
                    + "; pick another address or port, or stop what holds it");
        }
    }

    /** Names a TLS client that sent no certificate: a caller with an empty subject, which rules over certificate fields never match. */
    private static final class AnonymousTls extends io.grpc.ServerTransportFilter {
        @Override
        public io.grpc.Attributes transportReady(io.grpc.Attributes attrs) {
            javax.net.ssl.SSLSession session = attrs.get(io.grpc.Grpc.TRANSPORT_ATTR_SSL_SESSION);
            if (session == null) {
                return attrs;
            }
            try {
                session.getPeerCertificates();
                return attrs; // identified by its certificate
            } catch (javax.net.ssl.SSLPeerUnverifiedException none) {
                return attrs.toBuilder().set(SecurityModule.CALLER_ATTRIBUTE, Caller.tls("", List.of())).build();
            }
        }
    }

    /** Creates the socket's folder; refuses a socket a live agent serves; removes a stale one. */
    private static void prepareSocket(Path socket) throws ControlException {
        prepareSocket(socket, "control", "socket");
    }

    /** {@link #prepareSocket(Path)} for the {@code what} socket, which {@code agent.control.KEY} sets. */
    static void prepareSocket(Path socket, String what, String key) throws ControlException {
        try {
            Path dir = socket.toAbsolutePath().getParent();
            if (dir != null && !Files.isDirectory(dir)) {
                Files.createDirectories(dir);
                try {
                    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
                } catch (IOException | UnsupportedOperationException e) {
                    // the folder's default mode stays; callers of other users may not reach the socket
                }
            }
        } catch (IOException e) {
            throw new ControlException("cannot create the folder of the " + what + " socket " + socket + ": " + e.getMessage()
                    + "; set agent.control." + key + " to a path in a writable folder");
        }
        if (!Files.exists(socket, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (SocketChannel probe = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            probe.connect(UnixDomainSocketAddress.of(socket));
            throw new ControlException("another agent already serves the " + what + " socket " + socket
                    + "; stop it, or give this agent another socket with agent.control." + key);
        } catch (IOException notServed) {
            try {
                Files.delete(socket); // left behind by an agent that did not stop cleanly
            } catch (IOException e) {
                throw new ControlException("cannot remove the stale " + what + " socket " + socket + ": " + e.getMessage());
            }
        }
    }

    private static ThreadFactory daemon(String prefix) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, prefix + "-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }

    /** The Unix socket it serves. */
    public Path socket() {
        return settings.socket();
    }

    /** The attach socket it serves, or null. */
    public Path attachSocket() {
        return attach == null ? null : attach.socket();
    }

    /** The bound address of the mutual-TLS listener, or null. */
    public InetSocketAddress tlsAddress() {
        return tls == null ? null : (InetSocketAddress) tls.getListenSockets().get(0);
    }

    /**
     * Lets a new agent process take over this agent's listeners through {@code Upgrade.Takeover}: {@code h} answers it (until
     * then the call is refused as unavailable). Only the agent's control endpoint serves it.
     */
    public void handover(Handover h) {
        if (!(served instanceof AgentServices a)) {
            throw new IllegalStateException("only the agent's control endpoint hands over listeners");
        }
        a.handover.set(h);
    }

    /** The audit log. */
    public AuditLog audit() {
        return audit;
    }

    /** The policy in force and its source. */
    public PolicyHolder policy() {
        return policy;
    }

    /** The security module. */
    public SecurityModule security() {
        return security;
    }

    @Override
    public void close() {
        probes.enterTerminalState(); // health watchers learn NOT_SERVING before the listeners stop
        if (attach != null) {
            attach.close();
        }
        stopAll(uds, tls, boss, workers, executor, served, policy, rejections, audit);
        try {
            Files.deleteIfExists(settings.socket());
        } catch (IOException e) {
            LOG.log(Level.DEBUG, "cannot remove the control socket {0}: {1}", settings.socket(), e.toString());
        }
    }

    private static void stopAll(Server uds, Server tls, EventLoopGroup boss, EventLoopGroup workers, ExecutorService executor, Served served,
                                PolicyHolder policy, Rejections rejections, AuditLog audit) {
        for (Server s : new Server[] {uds, tls}) {
            if (s != null) {
                s.shutdown();
                try {
                    if (!s.awaitTermination(1, TimeUnit.SECONDS)) {
                        s.shutdownNow().awaitTermination(2, TimeUnit.SECONDS);
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
        served.close();
        if (boss != null) {
            boss.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(3, TimeUnit.SECONDS);
        }
        if (workers != null) {
            workers.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(3, TimeUnit.SECONDS);
        }
        if (executor != null) {
            executor.shutdownNow();
        }
        policy.close();
        if (rejections != null) {
            rejections.close(); // its last counts, into the audit file before it closes
        }
        if (audit != null) {
            audit.close();
        }
    }
}
