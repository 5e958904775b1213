package dev.interlayer.agent;

import com.google.protobuf.ByteString;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.control.IntegrityProof;
import dev.interlayer.control.JarSignature;
import dev.interlayer.engine.Engine;
import dev.interlayer.orchestrator.v1.Ack;
import dev.interlayer.orchestrator.v1.AgentMessage;
import dev.interlayer.orchestrator.v1.AgentsGrpc;
import dev.interlayer.orchestrator.v1.DesiredModule;
import dev.interlayer.orchestrator.v1.EnrollRequest;
import dev.interlayer.orchestrator.v1.EnrollResponse;
import dev.interlayer.orchestrator.v1.EnrollmentGrpc;
import dev.interlayer.orchestrator.v1.FetchChunk;
import dev.interlayer.orchestrator.v1.FetchRequest;
import dev.interlayer.orchestrator.v1.Hello;
import dev.interlayer.orchestrator.v1.LoadedPackage;
import dev.interlayer.orchestrator.v1.OrchestratorMessage;
import dev.interlayer.orchestrator.v1.Proof;
import dev.interlayer.orchestrator.v1.Report;
import dev.interlayer.orchestrator.v1.ReportedModule;
import dev.interlayer.orchestrator.v1.Snapshot;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleConfig;
import dev.interlayer.runtime.ModuleLoadException;
import dev.interlayer.runtime.ModuleRegistry;
import dev.interlayer.runtime.ModuleState;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * The agent's side of an orchestrator: enrolls once with a one-time token (the orchestrator's CA issues the agent's
 * client certificate), then holds one stream on which it receives its desired state as versioned snapshots, applies
 * each through the module registry, and acknowledges or refuses it with the reason; it reports its modules and
 * connections every {@link #REPORT_EVERY}; it answers the orchestrator's integrity challenges with a proof of the
 * module packages it has loaded, signed with its certificate's key.
 *
 * <p>Every jar is checked before anything of a snapshot is loaded: its SHA-256 against the snapshot's, and its
 * signature against the orchestrator's module-signing key the agent received when it enrolled. A jar that fails
 * either check refuses the whole snapshot. The last applied snapshot and its verified jars are kept in the state
 * folder, so an agent that restarts while the orchestrator is unreachable comes back with its last good state; while
 * unreachable it keeps serving and reconnects with backoff (1 s doubling to 30 s).
 *
 * <pre>
 *   STATE/agent.key, agent.crt   the agent's TLS identity (0600 key)
 *   STATE/signing.pub            the orchestrator's module-signing key, from enrollment
 *   STATE/jars/SHA256.jar        verified module jars
 *   STATE/snapshot.pb            the last snapshot applied
 * </pre>
 *
 * <p>Threading: one thread runs enrollment, the stream and every apply; the registry is thread-safe.
 */
public final class OrchestratorLink implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.agent");
    static final Duration REPORT_EVERY = Duration.ofSeconds(10);
    private static final Duration MAX_BACKOFF = Duration.ofSeconds(30);

    /**
     * {@code agent.orchestrator}.
     *
     * @param addresses the orchestrator's agent listeners (one per replica), tried in turn: after one fails, the next
     * @param ca the orchestrator's CA certificate (PEM)
     * @param tokenFile the one-time enrollment token's file, or null when the agent enrolled already
     * @param stateDir the agent's certificate, the signing key and the last good state
     */
    public record Settings(List<InetSocketAddress> addresses, Path ca, Path tokenFile, Path stateDir) {
        public Settings {
            addresses = List.copyOf(addresses);
        }
    }

    private final Settings settings;
    private final ModuleRegistry registry;
    private final Engine engine;
    private final Function<String, ModuleConfig> configs;
    private final ExecutorService worker;
    /** Modules the orchestrator manages here: name → the desired module they came from. */
    private final Map<String, DesiredModule> managed = new LinkedHashMap<>();
    private volatile boolean closed;
    private volatile ManagedChannel channel;
    private volatile long applied;
    private volatile String lastRefusal;
    /** The orchestrator address in use: the link moves to the next when one fails. */
    private volatile InetSocketAddress address;

    private OrchestratorLink(Settings settings, ModuleRegistry registry, Engine engine, Function<String, ModuleConfig> configs) {
        this.settings = settings;
        this.registry = registry;
        this.engine = engine;
        this.configs = configs;
        this.address = settings.addresses().getFirst();
        this.worker = Executors.newSingleThreadExecutor(r -> Thread.ofPlatform().daemon().name("interlayer-orchestrator-link").unstarted(r));
    }

    /** Starts the link: applies the last good state kept in the state folder, then connects in the background. */
    static OrchestratorLink start(Settings s, ModuleRegistry registry, Engine engine, Function<String, ModuleConfig> configs) throws IOException {
        Files.createDirectories(s.stateDir().resolve("jars"));
        Files.setPosixFilePermissions(s.stateDir(), PosixFilePermissions.fromString("rwx------"));
        OrchestratorLink link = new OrchestratorLink(s, registry, engine, configs);
        link.restore();
        link.worker.execute(link::run);
        return link;
    }

    /** The revision of the last snapshot applied. */
    public long appliedRevision() {
        return applied;
    }

    /** Why the last snapshot was refused, or null. */
    public String lastRefusal() {
        return lastRefusal;
    }

    private void restore() {
        Path file = settings.stateDir().resolve("snapshot.pb");
        if (!Files.exists(file) || !Files.exists(settings.stateDir().resolve("signing.pub"))) {
            return;
        }
        try {
            Snapshot s = Snapshot.parseFrom(Files.readAllBytes(file));
            String problem = apply(s, null);
            if (problem == null) {
                LOG.log(Level.INFO, "orchestrator: restored the last good state (revision {0,number,#}: {1}) from {2}", s.getRevision(), ids(s), file);
            } else {
                LOG.log(Level.ERROR, "orchestrator: the last good state in {0} could not be restored: {1}", file, problem);
            }
        } catch (IOException e) {
            LOG.log(Level.ERROR, "orchestrator: cannot read the last good state {0}: {1}", file, e.getMessage());
        }
    }

    // ---- the connection loop ---------------------------------------------------------------------

    private void run() {
        long backoff = 1000;
        int at = 0;
        List<InetSocketAddress> all = settings.addresses();
        while (!closed) {
            address = all.get(at);
            at = (at + 1) % all.size();
            // after one address fails the next is tried at once; after a round of them all, with backoff
            long wait = at == 0 ? backoff : 0;
            String next = at == 0 ? "connecting again in " + wait / 1000 + " s" : "trying " + all.get(at).getHostString() + ":" + all.get(at).getPort() + " next";
            try {
                if (!enrolled()) {
                    enroll();
                }
                stream();
                backoff = 1000;
            } catch (StatusRuntimeException e) {
                String why = e.getStatus().getDescription() == null ? e.getStatus().getCode().toString() : e.getStatus().getDescription();
                if (!closed) {
                    LOG.log(Level.WARNING, "orchestrator {0}:{1,number,#}: {2} ({3}); keeping the current modules, {4}",
                            address.getHostString(), address.getPort(), why, e.getStatus().getCode(), next);
                }
            } catch (RuntimeException | IOException | GeneralSecurityException e) {
                if (!closed) {
                    LOG.log(Level.WARNING, "orchestrator {0}:{1,number,#}: {2}; keeping the current modules, {3}",
                            address.getHostString(), address.getPort(), e.getMessage(), next);
                }
            } catch (InterruptedException e) {
                return;
            }
            try {
                Thread.sleep(wait);
            } catch (InterruptedException e) {
                return;
            }
            if (at == 0) {
                backoff = Math.min(MAX_BACKOFF.toMillis(), backoff * 2);
            }
        }
    }

    private boolean enrolled() {
        Path d = settings.stateDir();
        return Files.exists(d.resolve("agent.crt")) && Files.exists(d.resolve("agent.key")) && Files.exists(d.resolve("signing.pub"));
    }

    private void enroll() throws IOException, GeneralSecurityException {
        if (settings.tokenFile() == null || !Files.isReadable(settings.tokenFile())) {
            throw new IOException("the agent has not enrolled and has no enrollment token"
                    + (settings.tokenFile() == null ? "" : " (" + settings.tokenFile() + " cannot be read)")
                    + "; make one with 'interlayer fleet token NAME' and put it into agent.orchestrator.token-file");
        }
        String token = Files.readString(settings.tokenFile(), StandardCharsets.UTF_8).strip();
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"));
        KeyPair kp = g.generateKeyPair();
        ManagedChannel ch = NettyChannelBuilder.forAddress(address.getHostString(), address.getPort())
                .sslContext(GrpcSslContexts.forClient().trustManager(settings.ca().toFile()).build()).build();
        try {
            EnrollResponse r = EnrollmentGrpc.newBlockingStub(ch).withDeadlineAfter(30, TimeUnit.SECONDS)
                    .enroll(EnrollRequest.newBuilder().setToken(token).setPublicKey(ByteString.copyFrom(kp.getPublic().getEncoded())).build());
            JarSignature.publicKey(r.getSigningKeyPem()); // a key it cannot use is no enrollment
            Path d = settings.stateDir();
            writeSecret(d.resolve("agent.key"), "-----BEGIN PRIVATE KEY-----\n"
                    + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(kp.getPrivate().getEncoded()) + "\n-----END PRIVATE KEY-----\n");
            Files.writeString(d.resolve("signing.pub"), r.getSigningKeyPem());
            Files.writeString(d.resolve("agent.crt"), r.getCertificatePem());
            LOG.log(Level.INFO, "orchestrator: enrolled as {0}; certificate and key in {1}", r.getAgent(), d);
        } catch (StatusRuntimeException e) {
            if (e.getStatus().getCode() == Status.Code.PERMISSION_DENIED || e.getStatus().getCode() == Status.Code.INVALID_ARGUMENT) {
                LOG.log(Level.ERROR, "orchestrator: enrollment refused: {0}", e.getStatus().getDescription());
            }
            throw e;
        } finally {
            ch.shutdownNow();
        }
    }

    /** Holds the stream until it ends. */
    private void stream() throws IOException, InterruptedException {
        Path d = settings.stateDir();
        ManagedChannel ch = NettyChannelBuilder.forAddress(address.getHostString(), address.getPort())
                .sslContext(GrpcSslContexts.forClient().keyManager(d.resolve("agent.crt").toFile(), d.resolve("agent.key").toFile())
                        .trustManager(settings.ca().toFile()).build())
                .keepAliveTime(20, TimeUnit.SECONDS).keepAliveTimeout(10, TimeUnit.SECONDS).maxInboundMessageSize(4 << 20).build();
        channel = ch;
        java.util.concurrent.LinkedBlockingQueue<Object> inbox = new java.util.concurrent.LinkedBlockingQueue<>();
        Object done = new Object();
        try {
            StreamObserver<AgentMessage> out = AgentsGrpc.newStub(ch).connect(new StreamObserver<>() {
                @Override
                public void onNext(OrchestratorMessage m) {
                    inbox.add(m);
                }

                @Override
                public void onError(Throwable t) {
                    inbox.add(t);
                }

                @Override
                public void onCompleted() {
                    inbox.add(done);
                }
            });
            out.onNext(AgentMessage.newBuilder().setHello(Hello.newBuilder().setVersion(Agent.version()).setAppliedRevision(applied).setReport(report())).build());
            boolean connected = false;
            while (!closed) {
                Object m = inbox.poll(REPORT_EVERY.toMillis(), TimeUnit.MILLISECONDS);
                if (m == null) {
                    out.onNext(AgentMessage.newBuilder().setReport(report()).build());
                } else if (m instanceof OrchestratorMessage om && om.hasSnapshot()) {
                    if (!connected) {
                        LOG.log(Level.INFO, "orchestrator {0}:{1,number,#}: connected", address.getHostString(), address.getPort());
                        connected = true;
                    }
                    Snapshot s = om.getSnapshot();
                    String problem = apply(s, AgentsGrpc.newBlockingStub(ch));
                    Ack.Builder ack = Ack.newBuilder().setRevision(s.getRevision()).setApplied(problem == null).setReport(report());
                    if (problem != null) {
                        ack.setReason(problem);
                    }
                    out.onNext(AgentMessage.newBuilder().setAck(ack).build());
                } else if (m instanceof OrchestratorMessage om && om.hasChallenge()) {
                    out.onNext(AgentMessage.newBuilder().setProof(proof(om.getChallenge().getNonce().toByteArray())).build());
                } else if (m instanceof Throwable t) {
                    throw t instanceof StatusRuntimeException sre ? sre : Status.fromThrowable(t).asRuntimeException();
                } else if (m == done) {
                    throw Status.UNAVAILABLE.withDescription("the orchestrator ended the stream").asRuntimeException();
                }
            }
            out.onCompleted();
        } finally {
            channel = null;
            ch.shutdownNow();
        }
    }

    // ---- applying a snapshot ---------------------------------------------------------------------

    /**
     * Applies a snapshot: every jar it needs is fetched (with {@code fetch}; null: only from the state folder) and checked
     * first, then loaded; modules the orchestrator put here and the snapshot no longer lists are revoked.
     *
     * @return null if applied, else why it was refused (nothing was revoked for it; what it loaded was undone)
     */
    private String apply(Snapshot s, AgentsGrpc.AgentsBlockingStub fetch) {
        PublicKey key;
        try {
            key = JarSignature.publicKey(Files.readString(settings.stateDir().resolve("signing.pub")));
        } catch (IOException | GeneralSecurityException e) {
            return refuse(s, "the orchestrator's module-signing key in " + settings.stateDir().resolve("signing.pub") + " cannot be read ("
                    + e.getMessage() + "); enroll the agent again");
        }
        Map<DesiredModule, Path> toLoad = new LinkedHashMap<>();
        for (DesiredModule d : s.getModulesList()) {
            if (running(d)) {
                continue;
            }
            Path jar = settings.stateDir().resolve("jars").resolve(d.getSha256() + ".jar");
            try {
                byte[] bytes = Files.exists(jar) ? Files.readAllBytes(jar) : fetch == null ? null : fetch(fetch, d);
                if (bytes == null) {
                    return refuse(s, id(d) + ": its jar is not in " + jar.getParent() + " and the orchestrator is not reachable");
                }
                String sha = sha256(bytes);
                if (!sha.equals(d.getSha256())) {
                    return refuse(s, id(d) + ": the jar received has SHA-256 " + sha + ", not the " + d.getSha256() + " the snapshot names;"
                            + " it was changed on the way or in the orchestrator's store");
                }
                if (!JarSignature.verify(key, bytes, d.getSignature().toByteArray())) {
                    Files.deleteIfExists(jar);
                    return refuse(s, id(d) + " (jar SHA-256 " + sha + "): its signature does not verify with the orchestrator's module-signing key"
                            + " (" + settings.stateDir().resolve("signing.pub") + "); the jar was changed after the orchestrator signed it, or signed by"
                            + " another key; not loaded");
                }
                if (!Files.exists(jar)) {
                    Path tmp = jar.resolveSibling(jar.getFileName() + ".tmp");
                    Files.write(tmp, bytes);
                    Files.move(tmp, jar, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
                }
                toLoad.put(d, jar);
            } catch (IOException e) {
                return refuse(s, id(d) + ": cannot keep its jar in " + jar.getParent() + ": " + e.getMessage());
            } catch (StatusRuntimeException e) {
                return refuse(s, id(d) + ": the orchestrator did not send its jar: " + e.getStatus().getDescription());
            }
        }
        List<Replaced> replaced = replacedBy(toLoad.keySet());
        List<LoadedModule> loadedNow = new ArrayList<>();
        for (Map.Entry<DesiredModule, Path> e : toLoad.entrySet()) {
            DesiredModule d = e.getKey();
            String name = d.getModule().getName();
            try {
                List<LoadedModule> got = registry.loadJar(e.getValue(), configs, (ModuleDescriptor desc) -> desc.name().equals(name));
                LoadedModule m = got.stream().filter(x -> x.name().equals(name)).findFirst().orElse(null);
                loadedNow.addAll(got);
                if (m == null || !m.version().equals(d.getModule().getVersion())) {
                    return refuse(s, id(d) + ": its jar declares " + (m == null ? "no module " + name : m.id()) + "; upload the right jar"
                            + undo(loadedNow, replaced));
                }
            } catch (ModuleLoadException x) {
                return refuse(s, id(d) + " did not load: " + x.getMessage() + undo(loadedNow, replaced));
            }
        }
        for (DesiredModule d : s.getModulesList()) {
            DesiredModule before = toLoad.containsKey(d) ? null : managed.get(d.getModule().getName());
            managed.put(d.getModule().getName(), d);
            LoadedModule m = current(d);
            if (m != null) {
                lifecycle(m, d, before, s.getRevision());
            }
        }
        List<String> wanted = s.getModulesList().stream().map(d -> d.getModule().getName()).toList();
        for (Iterator<Map.Entry<String, DesiredModule>> it = managed.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<String, DesiredModule> e = it.next();
            if (!wanted.contains(e.getKey())) {
                for (LoadedModule m : registry.modules()) {
                    if (m.name().equals(e.getKey())) {
                        m.revoke();
                    }
                }
                LOG.log(Level.INFO, "orchestrator: revoked {0} (revision {1,number,#})", id(e.getValue()), s.getRevision());
                it.remove();
            }
        }
        try {
            Path f = settings.stateDir().resolve("snapshot.pb");
            Path tmp = f.resolveSibling("snapshot.pb.tmp");
            Files.write(tmp, s.toByteArray());
            Files.move(tmp, f, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            LOG.log(Level.WARNING, "orchestrator: cannot keep the state of revision {0,number,#} for a restart: {1}", s.getRevision(), e.getMessage());
        }
        applied = s.getRevision();
        lastRefusal = null;
        if (!toLoad.isEmpty()) {
            LOG.log(Level.INFO, "orchestrator: applied revision {0,number,#}: {1}", s.getRevision(), ids(s));
        }
        return null;
    }

    /**
     * A module running here that loading a snapshot's new version of it retires: what is needed to give it back.
     *
     * @param jar the verified jar it can be loaded again from, or null if there is none
     */
    private record Replaced(LoadedModule module, ModuleState state, int priority, Path jar) {}

    /** The modules that loading {@code toLoad} will retire: those of the same names that attach to new connections or the orchestrator deprecated. */
    private List<Replaced> replacedBy(java.util.Collection<DesiredModule> toLoad) {
        List<String> names = toLoad.stream().map(d -> d.getModule().getName()).toList();
        List<Replaced> out = new ArrayList<>();
        for (LoadedModule m : registry.modules()) {
            DesiredModule had = managed.get(m.name());
            boolean deprecatedHere = m.state() == ModuleState.DEPRECATED && had != null && had.getState().equals("DEPRECATED")
                    && had.getModule().getVersion().equals(m.version());
            if (names.contains(m.name()) && (m.state().attachesNew() || deprecatedHere)) {
                out.add(new Replaced(m, m.state(), m.priority(), jarOf(m)));
            }
        }
        return out;
    }

    /** The jar {@code m} can be loaded again from: its copy in the state folder, else the file it came from if that is unchanged. */
    private Path jarOf(LoadedModule m) {
        Path kept = settings.stateDir().resolve("jars").resolve(m.pkg().sha256() + ".jar");
        if (Files.isRegularFile(kept)) {
            return kept;
        }
        try {
            Path from = Path.of(m.pkg().location());
            return Files.isRegularFile(from) && sha256(Files.readAllBytes(from)).equals(m.pkg().sha256()) ? from : null;
        } catch (IOException | java.nio.file.InvalidPathException e) {
            return null;
        }
    }

    /**
     * Undoes the loads of a snapshot that is refused after some of its jars loaded: revokes what it loaded and loads the
     * versions those retired again from their jars, with the state and priority they had (connections they still serve
     * keep the retired instance until they end).
     *
     * @return what was undone, to append to the refusal
     */
    private String undo(List<LoadedModule> loadedNow, List<Replaced> replaced) {
        if (loadedNow.isEmpty()) {
            return "";
        }
        List<String> done = new ArrayList<>();
        for (LoadedModule m : loadedNow) {
            m.revoke();
            done.add(m.id() + " unloaded");
        }
        for (Replaced r : replaced) {
            LoadedModule old = r.module();
            if (loadedNow.stream().noneMatch(m -> m.name().equals(old.name()))) {
                continue; // nothing of its name loaded: it was not retired
            }
            if (r.jar() == null) {
                done.add(old.id() + " could not be loaded again: its jar is gone (" + old.pkg().location() + ")");
                continue;
            }
            try {
                LoadedModule back = registry.loadJar(r.jar(), configs, desc -> desc.name().equals(old.name()) && desc.version().equals(old.version()))
                        .stream().filter(x -> x.name().equals(old.name())).findFirst()
                        .orElseThrow(() -> new ModuleLoadException(r.jar() + " no longer declares " + old.id()));
                back.setState(r.state());
                back.setPriority(r.priority());
                done.add(old.id() + " loaded again (" + r.state() + ", priority " + r.priority() + ")");
            } catch (ModuleLoadException | IllegalStateException e) {
                done.add(old.id() + " could not be loaded again: " + e.getMessage());
            }
        }
        LOG.log(Level.WARNING, "orchestrator: undid a refused snapshot: {0}", String.join(", ", done));
        return "; undone: " + String.join(", ", done);
    }

    /**
     * Whether the module {@code d} names runs here already from the same jar: attaching to new connections, or
     * deprecated because the orchestrator said so (not because a newer one replaced it here).
     */
    private boolean running(DesiredModule d) {
        DesiredModule have = managed.get(d.getModule().getName());
        if (have == null || !have.getSha256().equals(d.getSha256()) || !have.getModule().equals(d.getModule())) {
            return false;
        }
        LoadedModule m = current(d);
        return m != null && (m.state().attachesNew() || m.state() == ModuleState.DEPRECATED && have.getState().equals("DEPRECATED"));
    }

    /** The loaded module {@code d} names (name and version), unless it is on its way out. */
    private LoadedModule current(DesiredModule d) {
        LoadedModule found = null;
        for (LoadedModule m : registry.modules()) {
            if (m.name().equals(d.getModule().getName()) && m.version().equals(d.getModule().getVersion()) && !m.state().leaving()
                    && m.state() != ModuleState.FAILED) {
                found = m; // the newest, if a jar of the same version was loaded twice
            }
        }
        return found;
    }

    /**
     * Sets the state and priority {@code d} asks for, when the module was loaded now ({@code before} null) or they
     * changed since the snapshot before: a module the agent's fault policy quarantined stays so until the orchestrator
     * changes its state.
     */
    private static void lifecycle(LoadedModule m, DesiredModule d, DesiredModule before, long revision) {
        String state = d.getState().isEmpty() ? "ACTIVE" : d.getState();
        if (before == null || !before.getState().equals(d.getState())) {
            try {
                if (m.state() != ModuleState.valueOf(state)) {
                    m.setState(ModuleState.valueOf(state));
                    LOG.log(Level.INFO, "orchestrator: {0} is {1} (revision {2,number,#})", m.id(), state, revision);
                }
            } catch (IllegalStateException | IllegalArgumentException e) {
                LOG.log(Level.WARNING, "orchestrator: cannot make {0} {1}: {2}", m.id(), state, e.getMessage());
            }
        }
        if (d.hasPriority() && (before == null || !before.hasPriority() || before.getPriority() != d.getPriority()) && m.priority() != d.getPriority()) {
            m.setPriority(d.getPriority());
            LOG.log(Level.INFO, "orchestrator: {0} has priority {1,number,#} (revision {2,number,#})", m.id(), d.getPriority(), revision);
        }
    }

    private String refuse(Snapshot s, String why) {
        String text = why + "; nothing of revision " + s.getRevision() + " was applied, the modules running stay";
        LOG.log(Level.ERROR, "orchestrator: refused revision {0,number,#}: {1}", s.getRevision(), text);
        lastRefusal = text;
        return text;
    }

    private static byte[] fetch(AgentsGrpc.AgentsBlockingStub stub, DesiredModule d) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream((int) Math.min(d.getSize(), 64 << 20));
        Iterator<FetchChunk> it = stub.withDeadlineAfter(60, TimeUnit.SECONDS).fetch(FetchRequest.newBuilder().setSha256(d.getSha256()).build());
        while (it.hasNext()) {
            FetchChunk c = it.next();
            if (out.size() + c.getData().size() > d.getSize()) {
                throw Status.DATA_LOSS.withDescription("the orchestrator sent more than the " + d.getSize() + " bytes the snapshot names").asRuntimeException();
            }
            out.writeBytes(c.getData().toByteArray());
        }
        return out.toByteArray();
    }

    /**
     * The answer to an integrity challenge: every module package loaded here (the registry's SHA-256 of the file it
     * came from), signed with the private key of the agent's certificate over the nonce.
     */
    private Proof proof(byte[] nonce) throws IOException {
        List<LoadedPackage> packages = new ArrayList<>();
        for (LoadedModule m : registry.modules()) {
            packages.add(LoadedPackage.newBuilder().setName(m.name()).setVersion(m.version()).setSha256(m.pkg().sha256())
                    .setState(m.state().name()).build());
        }
        try {
            String pem = Files.readString(settings.stateDir().resolve("agent.key"));
            byte[] der = Base64.getMimeDecoder().decode(pem.replace("-----BEGIN PRIVATE KEY-----", "").replace("-----END PRIVATE KEY-----", ""));
            PrivateKey key = KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(der));
            return Proof.newBuilder().setNonce(ByteString.copyFrom(nonce)).addAllPackages(packages)
                    .setSignature(ByteString.copyFrom(IntegrityProof.sign(key, nonce, packages))).build();
        } catch (GeneralSecurityException | IllegalArgumentException e) {
            throw new IOException("cannot sign the integrity proof with " + settings.stateDir().resolve("agent.key") + ": " + e.getMessage()
                    + "; enroll the agent again", e);
        }
    }

    private Report report() {
        Report.Builder r = Report.newBuilder();
        for (LoadedModule m : registry.modules()) {
            DesiredModule d = managed.get(m.name());
            boolean ours = d != null && d.getModule().getVersion().equals(m.version());
            r.addModules(ReportedModule.newBuilder().setName(m.name()).setVersion(m.version()).setState(m.state().name())
                    .setSha256(ours ? d.getSha256() : "").setSource(ours ? "orchestrator" : "agent").setLive(m.liveAttachments()).setFaults(m.faults()).setPriority(m.priority()));
        }
        return r.setConnections(engine.connections().size()).build();
    }

    private static String id(DesiredModule d) {
        return d.getModule().getName() + "@" + d.getModule().getVersion();
    }

    private static String ids(Snapshot s) {
        return s.getModulesCount() == 0 ? "no modules" : String.join(", ", s.getModulesList().stream().map(OrchestratorLink::id).toList());
    }

    private static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void writeSecret(Path file, String text) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.deleteIfExists(tmp);
        Files.createFile(tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(tmp, text);
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    @Override
    public void close() {
        closed = true;
        ManagedChannel ch = channel;
        if (ch != null) {
            ch.shutdownNow();
        }
        worker.shutdownNow();
        try {
            worker.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
