package dev.interlayer.bench.fleet;

import com.google.protobuf.ByteString;
import dev.interlayer.control.ControlClient;
import dev.interlayer.control.IntegrityProof;
import dev.interlayer.control.JarSignature;
import dev.interlayer.orchestrator.v1.Ack;
import dev.interlayer.orchestrator.v1.AgentMessage;
import dev.interlayer.orchestrator.v1.AgentsGrpc;
import dev.interlayer.orchestrator.v1.DeployRequest;
import dev.interlayer.orchestrator.v1.DesiredModule;
import dev.interlayer.orchestrator.v1.EnrollRequest;
import dev.interlayer.orchestrator.v1.EnrollResponse;
import dev.interlayer.orchestrator.v1.EnrollmentGrpc;
import dev.interlayer.orchestrator.v1.FetchChunk;
import dev.interlayer.orchestrator.v1.FetchRequest;
import dev.interlayer.orchestrator.v1.FleetGrpc;
import dev.interlayer.orchestrator.v1.Hello;
import dev.interlayer.orchestrator.v1.LoadedPackage;
import dev.interlayer.orchestrator.v1.ModuleRef;
import dev.interlayer.orchestrator.v1.OrchestratorMessage;
import dev.interlayer.orchestrator.v1.Proof;
import dev.interlayer.orchestrator.v1.Report;
import dev.interlayer.orchestrator.v1.Snapshot;
import dev.interlayer.orchestrator.v1.StatusRequest;
import dev.interlayer.orchestrator.v1.StatusResponse;
import dev.interlayer.orchestrator.v1.Target;
import dev.interlayer.orchestrator.v1.TokenRequest;
import dev.interlayer.orchestrator.v1.UploadHeader;
import dev.interlayer.orchestrator.v1.UploadRequest;
import dev.interlayer.orchestrator.v1.UploadResponse;
import io.grpc.ManagedChannel;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.handler.ssl.SslContext;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The fleet scale benchmark (bench/fleet-scale): starts {@code interlayer orchestrator} as its own process (embedded
 * PostgreSQL), enrolls N simulated agents with real one-time tokens (each its own EC key and the client certificate the
 * orchestrator's CA issues), opens one mutual-TLS gRPC stream per agent (its own TLS connection: a certificate is per
 * connection), then deploys one module to all and times until every agent acknowledged it: each agent, as a real one,
 * fetches the jar over its own connection, checks its SHA-256 and the orchestrator's Ed25519 signature, then acknowledges.
 * Reports the time until every acknowledgement was sent and until the orchestrator's state shows them all, and the
 * orchestrator's CPU and memory from /proc of its process (and of its PostgreSQL's processes).
 */
public final class FleetScale {

    private static final Duration WAIT = Duration.ofMinutes(10);

    private final Path repo;
    private final Path work;
    private final EventLoopGroup loops = new MultiThreadIoEventLoopGroup(2, EpollIoHandler.newFactory());
    private final ExecutorService callbacks = Executors.newFixedThreadPool(2, r -> Thread.ofPlatform().daemon().name("sim-callback").unstarted(r));

    private FleetScale(Path repo, Path work) {
        this.repo = repo;
        this.work = work;
    }

    public static void main(String[] args) throws Exception {
        Path repo = Path.of(".");
        List<Integer> sizes = List.of(1000, 10000);
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--repo" -> repo = Path.of(args[++i]);
                case "--agents" -> sizes = java.util.Arrays.stream(args[++i].split(",")).map(String::strip).map(Integer::parseInt).toList();
                default -> {
                    System.err.println("usage: bench/fleet-scale [--agents N[,N...]]   (default 1000,10000)");
                    System.exit(2);
                }
            }
        }
        List<String> rows = new ArrayList<>();
        for (int n : sizes) {
            Path work = Files.createTempDirectory("interlayer-fleet-scale-");
            Files.setPosixFilePermissions(work, PosixFilePermissions.fromString("rwxr-xr-x")); // the database's user enters it
            FleetScale f = new FleetScale(repo, work);
            try {
                rows.add(f.run(n));
            } finally {
                f.loops.shutdownGracefully(0, 1, TimeUnit.SECONDS);
                f.callbacks.shutdownNow();
            }
        }
        System.out.println();
        System.out.println("| agents | connect all (s) | deploy → all acks sent (s) | → all recorded APPLIED (s) | orchestrator CPU during deploy (s) | PostgreSQL CPU during deploy (s) | orchestrator RSS after / peak (MiB) |");
        System.out.println("|---:|---:|---:|---:|---:|---:|---:|");
        rows.forEach(System.out::println);
    }

    /** One simulated agent: its identity, its stream, what it acknowledged. */
    private final class Agent {
        final String name;
        final KeyPair keys;
        X509Certificate cert;
        ManagedChannel channel;
        StreamObserver<AgentMessage> out;
        final CompletableFuture<Void> first = new CompletableFuture<>();
        volatile long acked;
        volatile List<DesiredModule> loaded = List.of();
        final java.util.Set<String> have = java.util.concurrent.ConcurrentHashMap.newKeySet();
        final java.util.concurrent.atomic.AtomicBoolean counted = new java.util.concurrent.atomic.AtomicBoolean();

        Agent(String name, KeyPair keys) {
            this.name = name;
            this.keys = keys;
        }

        void connect(int port, X509Certificate ca) throws Exception {
            SslContext ssl = GrpcSslContexts.forClient().keyManager(keys.getPrivate(), cert).trustManager(ca).build();
            channel = NettyChannelBuilder.forAddress("127.0.0.1", port).sslContext(ssl).eventLoopGroup(loops).channelType(EpollSocketChannel.class)
                    .executor(callbacks).flowControlWindow(64 << 10).maxInboundMessageSize(4 << 20).build();
            out = AgentsGrpc.newStub(channel).connect(new StreamObserver<>() {
                @Override
                public void onNext(OrchestratorMessage m) {
                    if (m.hasSnapshot()) {
                        apply(m.getSnapshot());
                    } else if (m.hasChallenge()) {
                        prove(m.getChallenge().getNonce().toByteArray());
                    }
                }

                @Override
                public void onError(Throwable t) {
                    first.completeExceptionally(t);
                    if (!stopping) {
                        System.err.println("agent " + name + ": stream ended: " + t);
                    }
                }

                @Override
                public void onCompleted() {
                    if (!stopping) {
                        System.err.println("agent " + name + ": the orchestrator ended the stream");
                    }
                }
            });
            send(AgentMessage.newBuilder().setHello(Hello.newBuilder().setVersion("fleet-scale").setReport(Report.getDefaultInstance())).build());
        }

        synchronized void send(AgentMessage m) {
            out.onNext(m);
        }

        /** As a real agent: the packages it loaded, signed with its certificate's key over the nonce. */
        void prove(byte[] nonce) {
            List<LoadedPackage> packages = loaded.stream().map(d -> LoadedPackage.newBuilder().setName(d.getModule().getName())
                    .setVersion(d.getModule().getVersion()).setSha256(d.getSha256()).setState("ACTIVE").build()).toList();
            try {
                send(AgentMessage.newBuilder().setProof(Proof.newBuilder().setNonce(ByteString.copyFrom(nonce)).addAllPackages(packages)
                        .setSignature(ByteString.copyFrom(IntegrityProof.sign(keys.getPrivate(), nonce, packages)))).build());
            } catch (java.security.GeneralSecurityException e) {
                throw new IllegalStateException(e);
            }
        }

        /** As a real agent: every jar fetched over its own connection and checked, then the acknowledgement. */
        void apply(Snapshot s) {
            if (s.getModulesCount() == 0) {
                ack(s.getRevision());
                return;
            }
            List<CompletableFuture<Void>> jars = new ArrayList<>();
            for (DesiredModule d : s.getModulesList()) {
                if (have.contains(d.getSha256())) {
                    continue; // as a real agent: a verified jar is kept, not fetched again
                }
                CompletableFuture<Void> got = new CompletableFuture<>();
                jars.add(got);
                ByteArrayOutputStream jar = new ByteArrayOutputStream((int) d.getSize());
                AgentsGrpc.newStub(channel).fetch(FetchRequest.newBuilder().setSha256(d.getSha256()).build(), new StreamObserver<>() {
                    @Override
                    public void onNext(FetchChunk c) {
                        jar.writeBytes(c.getData().toByteArray());
                    }

                    @Override
                    public void onError(Throwable t) {
                        got.completeExceptionally(t);
                    }

                    @Override
                    public void onCompleted() {
                        byte[] b = jar.toByteArray();
                        if (!sha256(b).equals(d.getSha256()) || !JarSignature.verify(signingKey, b, d.getSignature().toByteArray())) {
                            got.completeExceptionally(new IllegalStateException("the jar of " + d.getModule().getName() + " does not verify"));
                        } else {
                            have.add(d.getSha256());
                            got.complete(null);
                        }
                    }
                });
            }
            CompletableFuture.allOf(jars.toArray(CompletableFuture[]::new)).whenComplete((v, t) -> {
                if (t != null) {
                    System.err.println("agent " + name + ": refused revision " + s.getRevision() + ": " + t);
                    send(AgentMessage.newBuilder().setAck(Ack.newBuilder().setRevision(s.getRevision()).setApplied(false).setReason(t.toString())).build());
                } else {
                    loaded = s.getModulesList();
                    ack(s.getRevision());
                }
            });
        }

        void ack(long revision) {
            send(AgentMessage.newBuilder().setAck(Ack.newBuilder().setRevision(revision).setApplied(true)).build());
            acked = revision;
            count();
            first.complete(null);
        }

        /** Counts the acknowledgement of the deployed revision, once. */
        void count() {
            if (acked == deployed && counted.compareAndSet(false, true)) {
                lastAck.accumulateAndGet(System.nanoTime(), Math::max);
                acks.countDown();
            }
        }
    }

    private volatile PublicKey signingKey;
    private volatile boolean stopping;
    private volatile long deployed = -1;
    private volatile CountDownLatch acks;
    private final AtomicLong lastAck = new AtomicLong();

    private String run(int n) throws Exception {
        Path data = work.resolve("orchestrator");
        Path socket = work.resolve("orchestrator.sock");
        int port;
        try (var s = new java.net.ServerSocket(0)) {
            port = s.getLocalPort();
        }
        Path jarFile = repo.resolve("cli/target/interlayer.jar");
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx2g",
                "--sun-misc-unsafe-memory-access=allow", "--enable-native-access=ALL-UNNAMED"));
        if (System.getenv("FLEET_SCALE_JFR") != null) { // a flight recording of the orchestrator, for where its time goes
            cmd.add("-XX:StartFlightRecording=filename=" + work.resolve("orchestrator.jfr") + ",settings=profile");
        }
        cmd.addAll(List.of("-jar", jarFile.toString(), "orchestrator", "--data-dir", data.toString(), "--listen", "127.0.0.1:" + port,
                "--name", "127.0.0.1", "--socket", socket.toString()));
        Process orch = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(work.resolve("orchestrator.log").toFile()).start();
        System.out.printf(Locale.ROOT, "%n== %d agents; orchestrator pid %d, log %s%n", n, orch.pid(), work.resolve("orchestrator.log"));
        ManagedChannel fleet = ControlClient.unix(socket, loops).channel();
        List<Agent> agents = new ArrayList<>();
        try {
            waitFor("the orchestrator answers", () -> {
                try {
                    FleetGrpc.newBlockingStub(fleet).withDeadlineAfter(5, TimeUnit.SECONDS).status(StatusRequest.getDefaultInstance());
                    return true;
                } catch (RuntimeException e) {
                    if (!orch.isAlive()) {
                        throw new IllegalStateException("the orchestrator exited; see " + work.resolve("orchestrator.log"));
                    }
                    return false;
                }
            });
            X509Certificate ca = certificate(Files.readString(data.resolve("ca.crt")));

            long t = System.nanoTime();
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
            g.initialize(new ECGenParameterSpec("secp256r1"));
            for (int i = 0; i < n; i++) {
                agents.add(new Agent(String.format(Locale.ROOT, "sim-%05d", i), g.generateKeyPair()));
            }
            enroll(agents, fleet, port, ca);
            System.out.printf(Locale.ROOT, "keys, tokens and enrollment of %d agents: %.1f s%n", n, seconds(t));

            t = System.nanoTime();
            Semaphore connecting = new Semaphore(256);
            for (Agent a : agents) {
                connecting.acquire();
                a.connect(port, ca);
                a.first.whenComplete((v, e) -> connecting.release());
            }
            CompletableFuture.allOf(agents.stream().map(a -> a.first).toArray(CompletableFuture[]::new)).get(WAIT.toSeconds(), TimeUnit.SECONDS);
            double connect = seconds(t);
            System.out.printf(Locale.ROOT, "%d streams open, first snapshot acknowledged: %.1f s%n", n, connect);

            upload(fleet, Files.readAllBytes(repo.resolve("bench/modules/pass/target/pass.jar")), "pass.jar", "pass");
            upload(fleet, Files.readAllBytes(repo.resolve("bench/modules/rewrite/target/rewrite.jar")), "rewrite.jar", "rewrite");
            double[] warm = deploy(fleet, "pass", "1.0.0", agents, orch.pid(), data);
            System.out.printf(Locale.ROOT, "warm-up: pass@1.0.0 to all: acknowledgements sent after %.2f s, recorded after %.2f s%n", warm[0], warm[1]);
            double[] d = deploy(fleet, "rewrite", "1.1.0", agents, orch.pid(), data);
            long[] mem = memory(orch.pid());
            System.out.printf(Locale.ROOT, "rewrite@1.1.0 to all %d agents: acknowledgements sent after %.2f s, recorded by the orchestrator after %.2f s%n",
                    n, d[0], d[1]);
            return String.format(Locale.ROOT, "| %d | %.1f | %.2f | %.2f | %.2f | %.2f | %d / %d |", n, connect, d[0], d[1], d[2], d[3],
                    mem[0] >> 10, mem[1] >> 10);
        } finally {
            stopping = true;
            for (Agent a : agents) {
                if (a.channel != null) {
                    a.channel.shutdownNow();
                }
            }
            fleet.shutdownNow();
            orch.destroy();
            if (!orch.waitFor(60, TimeUnit.SECONDS)) {
                orch.destroyForcibly();
            }
        }
    }

    /**
     * Deploys {@code module}@{@code version} to all and waits until every agent acknowledged it and the orchestrator
     * recorded it.
     *
     * @return seconds until the last acknowledgement was sent, until all were recorded, and the CPU seconds of the
     *         orchestrator and of its PostgreSQL until the last was sent
     */
    private double[] deploy(ManagedChannel fleet, String module, String version, List<Agent> agents, long pid, Path data) throws Exception {
        Thread.sleep(2000); // what came before settles
        long[] cpu0 = cpu(pid, data);
        acks = new CountDownLatch(agents.size());
        lastAck.set(0);
        agents.forEach(a -> a.counted.set(false));
        long t = System.nanoTime();
        deployed = -2; // acknowledgements from here on count once the revision is known
        long rev = FleetGrpc.newBlockingStub(fleet).deploy(DeployRequest.newBuilder().setModule(ModuleRef.newBuilder().setName(module)
                .setVersion(version)).setTarget(Target.newBuilder().setKind(Target.Kind.ALL)).build()).getRevision();
        deployed = rev;
        agents.forEach(Agent::count); // those that acknowledged before the revision was known here
        if (!acks.await(WAIT.toSeconds(), TimeUnit.SECONDS)) {
            throw new IllegalStateException(acks.getCount() + " agents did not acknowledge revision " + rev);
        }
        double sent = (lastAck.get() - t) / 1e9;
        long[] cpu1 = cpu(pid, data);
        while (true) {
            StatusResponse st = FleetGrpc.newBlockingStub(fleet).status(StatusRequest.getDefaultInstance());
            long applied = st.getAgentsList().stream().filter(a -> a.getAppliedRevision() >= rev).count();
            if (applied == agents.size()) {
                return new double[] {sent, seconds(t), (cpu1[0] - cpu0[0]) / 100.0, (cpu1[1] - cpu0[1]) / 100.0};
            }
            if (seconds(t) > WAIT.toSeconds()) {
                throw new IllegalStateException("the orchestrator recorded " + applied + " of " + agents.size() + " acknowledgements");
            }
            Thread.sleep(500);
        }
    }

    /** Makes a token per agent over the operators' socket and trades it for the agent's certificate, 64 at a time. */
    private void enroll(List<Agent> agents, ManagedChannel fleet, int port, X509Certificate ca) throws Exception {
        ManagedChannel tls = NettyChannelBuilder.forAddress("127.0.0.1", port).sslContext(GrpcSslContexts.forClient().trustManager(ca).build())
                .eventLoopGroup(loops).channelType(EpollSocketChannel.class).build();
        try {
            Semaphore inFlight = new Semaphore(64);
            List<CompletableFuture<Void>> done = new ArrayList<>();
            ExecutorService pool = Executors.newFixedThreadPool(32);
            for (Agent a : agents) {
                inFlight.acquire();
                done.add(CompletableFuture.runAsync(() -> {
                    try {
                        String token = FleetGrpc.newBlockingStub(fleet).token(TokenRequest.newBuilder().setAgent(a.name).build()).getToken();
                        EnrollResponse r = EnrollmentGrpc.newBlockingStub(tls).enroll(EnrollRequest.newBuilder().setToken(token)
                                .setPublicKey(ByteString.copyFrom(a.keys.getPublic().getEncoded())).build());
                        a.cert = certificate(r.getCertificatePem());
                        if (signingKey == null) {
                            signingKey = JarSignature.publicKey(r.getSigningKeyPem());
                        }
                    } catch (Exception e) {
                        throw new IllegalStateException("enrolling " + a.name + ": " + e, e);
                    } finally {
                        inFlight.release();
                    }
                }, pool));
            }
            CompletableFuture.allOf(done.toArray(CompletableFuture[]::new)).get(WAIT.toSeconds(), TimeUnit.SECONDS);
            pool.shutdown();
        } finally {
            tls.shutdownNow();
        }
    }

    private static void upload(ManagedChannel fleet, byte[] jar, String file, String module) throws Exception {
        CompletableFuture<UploadResponse> r = new CompletableFuture<>();
        StreamObserver<UploadRequest> up = FleetGrpc.newStub(fleet).upload(new StreamObserver<>() {
            @Override
            public void onNext(UploadResponse v) {
                r.complete(v);
            }

            @Override
            public void onError(Throwable t) {
                r.completeExceptionally(t);
            }

            @Override
            public void onCompleted() {}
        });
        up.onNext(UploadRequest.newBuilder().setHeader(UploadHeader.newBuilder().setFileName(file).setSize(jar.length).setSha256(sha256(jar))
                .addModules(ModuleRef.newBuilder().setName(module).setVersion(module.equals("rewrite") ? "1.1.0" : "1.0.0"))).build());
        up.onNext(UploadRequest.newBuilder().setChunk(ByteString.copyFrom(jar)).build());
        up.onCompleted();
        r.get(60, TimeUnit.SECONDS);
    }

    /**
     * CPU ticks (1/100 s) of the orchestrator's JVM, and of its PostgreSQL: the postmaster, the server processes it
     * has now, and those that ended (counted into the postmaster's children's time).
     */
    private static long[] cpu(long pid, Path data) throws Exception {
        long pg = 0;
        long postmaster = Long.parseLong(Files.readAllLines(data.resolve("postgres/postmaster.pid")).getFirst().strip());
        try (var procs = Files.list(Path.of("/proc"))) {
            for (Path p : procs.filter(p -> p.getFileName().toString().chars().allMatch(Character::isDigit)).toList()) {
                long[] st = stat(p);
                if (st != null && st[0] == postmaster) {
                    pg += st[2] + st[3];
                } else if (st != null && st[1] == postmaster) {
                    pg += st[2];
                }
            }
        }
        long[] own = stat(Path.of("/proc", Long.toString(pid)));
        return new long[] {own == null ? 0 : own[2], pg};
    }

    /** pid, parent pid, user + system ticks, and the ended children's of /proc/PID/stat; null if gone. */
    private static long[] stat(Path proc) {
        try {
            String s = Files.readString(proc.resolve("stat"));
            String[] f = s.substring(s.lastIndexOf(')') + 2).split(" ");
            return new long[] {Long.parseLong(proc.getFileName().toString()), Long.parseLong(f[1]), Long.parseLong(f[11]) + Long.parseLong(f[12]),
                    Long.parseLong(f[13]) + Long.parseLong(f[14])};
        } catch (Exception e) {
            return null;
        }
    }

    /** VmRSS and VmHWM of the process, in KiB. */
    private static long[] memory(long pid) throws Exception {
        long rss = 0;
        long hwm = 0;
        for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
            if (line.startsWith("VmRSS:")) {
                rss = Long.parseLong(line.replaceAll("\\D", ""));
            } else if (line.startsWith("VmHWM:")) {
                hwm = Long.parseLong(line.replaceAll("\\D", ""));
            }
        }
        return new long[] {rss, hwm};
    }

    private static X509Certificate certificate(String pem) throws Exception {
        return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(new ByteArrayInputStream(pem.getBytes(java.nio.charset.StandardCharsets.US_ASCII)));
    }

    private static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static double seconds(long since) {
        return (System.nanoTime() - since) / 1e9;
    }

    private static void waitFor(String what, java.util.function.BooleanSupplier cond) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("not within 3 minutes: " + what);
            }
            Thread.sleep(200);
        }
    }
}
