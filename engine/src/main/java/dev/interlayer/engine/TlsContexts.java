package dev.interlayer.engine;

import dev.interlayer.api.TlsTicketKey;
import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.OpenSslSessionContext;
import io.netty.handler.ssl.OpenSslSessionTicketKey;
import io.netty.handler.ssl.ReferenceCountedOpenSslContext;
import io.netty.handler.ssl.SniHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import io.netty.util.DomainWildcardMappingBuilder;
import io.netty.util.Mapping;
import io.netty.util.ReferenceCountUtil;
import java.io.File;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.cert.CertPathBuilder;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertStore;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.CollectionCertStoreParameters;
import java.security.cert.PKIXBuilderParameters;
import java.security.cert.PKIXRevocationChecker;
import java.security.cert.X509CRL;
import java.security.cert.X509CertSelector;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Date;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import javax.net.ssl.CertPathTrustManagerParameters;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * The TLS contexts of one listener, built from its {@link TlsSettings} when it starts and closed when it stops: the
 * server contexts of its {@code tls:} block (one per certificate, chosen by SNI) and the client context of its
 * upstream's. Every file is read and checked here, so a bad one stops the listener with a message that names the file
 * and the fix; a connection only gets handlers.
 *
 * <p>The contexts form one <em>generation</em>, swapped whole when the files are read again ({@link #reload}, on
 * {@code interlayer tls reload} or when {@link #watch} sees them change): a new handshake takes the generation current
 * when its handler is made; an open connection keeps its SSLEngine, and with it the context it was made from (BoringSSL's
 * engines hold a reference to their context). The replaced generation lets its contexts go after every handshake that
 * could still pick from it has had its chance (the handshake timeout and a margin). A failed reload keeps the generation
 * in use.
 */
public final class TlsContexts implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.engine");
    /** How often {@link #watch} looks at the files; a change is loaded once the files looked the same twice in a row. */
    static final long POLL_MILLIS = 1000;
    /** One agent thread for every listener's file watching, ticket key rotation and deferred releases. */
    private static volatile ScheduledExecutorService timer;

    /**
     * One set of contexts read from the files at one moment.
     *
     * @param certificates what was loaded, for replies and logs: {@code CN=a.test (server, a.test) until 2027-01-01T00:00:00Z}
     */
    private record Generation(Mapping<String, SslContext> servers, List<SslContext> serverContexts, SslContext client, List<SslContext> owned,
                              List<String> certificates, AtomicBoolean released) {
        void release() {
            if (released.compareAndSet(false, true)) owned.forEach(ReferenceCountUtil::release);
        }
    }

    private final TlsSettings terminate;
    private final TlsSettings originate;
    private final String serverName;
    private final int upstreamPort;
    /** The listener's name, for log lines ("" when only checked). */
    private String listener = "";
    /** The {@code tls} modules of the accepted side and of the upstream's (null: none), see {@link TlsModuleBinding}. */
    private volatile TlsModuleBinding acceptedModule;
    private volatile TlsModuleBinding upstreamModule;
    private volatile Generation current;
    /** Replaced generations not released yet (guarded by this). */
    private final List<Generation> retired = new ArrayList<>();
    private final List<ScheduledFuture<?>> tasks = new ArrayList<>();
    private ScheduledFuture<?> watching;
    private boolean closed;
    /** The files' state when last loaded, and as last seen if different (the watch's, guarded by this). */
    private List<Object> loaded;
    private List<Object> pending;
    /**
     * Session ticket keys (BoringSSL, terminating, session-tickets on): the first encrypts new tickets, all decrypt; null
     * where the agent does not manage them (guarded by this).
     */
    private List<TlsTicketKey> ticketKeys;
    /** Server contexts a tls module's certificates use, which get the ticket keys too (guarded by this). */
    private final List<SslContext> moduleContexts = new ArrayList<>();
    /** Where each side's handshake secrets go; null where neither a key-log file nor the module's keyLog wants them. */
    private volatile TlsKeyLog acceptedKeys;
    private volatile TlsKeyLog upstreamKeys;
    /** The contexts building on this thread: {@link #finish} installs their key log. */
    private static final ThreadLocal<TlsContexts> BUILDING = new ThreadLocal<>();

    private TlsContexts(TlsSettings terminate, TlsSettings originate, String serverName, int upstreamPort) {
        this.terminate = terminate;
        this.originate = originate;
        this.serverName = serverName;
        this.upstreamPort = upstreamPort;
    }

    /**
     * Builds the contexts of a listener terminating {@code terminate} and originating {@code originate} to
     * {@code upstream} (either may be null).
     *
     * @throws TlsException naming the file or setting that is wrong and what to do
     */
    public static TlsContexts build(TlsSettings terminate, TlsSettings originate, InetSocketAddress upstream) throws TlsException {
        return build(terminate, originate, upstream, "", null, null);
    }

    private static TlsContexts build(TlsSettings terminate, TlsSettings originate, InetSocketAddress upstream, String listener,
                                     TlsModuleBinding in, TlsModuleBinding out) throws TlsException {
        String name = originate == null ? null : originate.serverName() != null ? originate.serverName() : upstream.getHostString();
        if (terminate != null && !terminate.sessionTickets() && TlsProvider.resolve(terminate.provider()) != SslProvider.JDK
                && terminate.protocols().contains("TLSv1.3")) {
            // BoringSSL ignores SSL_OP_NO_TICKET in TLS 1.3, and netty-tcnative's setNumTickets(0) does nothing on it
            throw new TlsException("session-tickets: false works with protocols: [TLSv1.2] only: with provider openssl, TLS 1.3 session"
                    + " tickets cannot be turned off; set protocols: [TLSv1.2], or remove session-tickets: false");
        }
        TlsContexts t = new TlsContexts(terminate, originate, name, upstream == null ? 0 : upstream.getPort());
        t.acceptedModule = in;
        t.upstreamModule = out;
        if (in != null) in.own(t);
        if (out != null) out.own(t);
        t.listener = listener;
        t.acceptedKeys = keyLog(listener, terminate, in, true);
        t.upstreamKeys = keyLog(listener, originate, out, false);
        t.loaded = t.signature();
        if (terminate != null && terminate.sessionTickets() && TlsProvider.resolve(terminate.provider()) != SslProvider.JDK) {
            synchronized (t) {
                t.ticketKeys = t.nextTicketKeys(List.of(), true);
            }
        }
        try {
            t.current = t.generation();
        } catch (TlsException | RuntimeException e) {
            t.closeKeyLogs();
            throw e;
        }
        return t;
    }

    /** When each warning about files was last logged: the config check and the listener's start read the same files. */
    private static final java.util.concurrent.ConcurrentHashMap<String, Long> WARNED = new java.util.concurrent.ConcurrentHashMap<>();

    /** Logs {@code line} unless the same line was logged in the last minute. */
    private static void warnOnce(String line) {
        long now = System.nanoTime();
        Long was = WARNED.put(line, now);
        if (was == null || now - was > TimeUnit.MINUTES.toNanos(1)) LOG.log(System.Logger.Level.WARNING, line);
        if (WARNED.size() > 1000) WARNED.clear();
    }

    /**
     * The key log of one side: where its {@code key-log} file is set or its module (as loaded now) overrides keyLog; null
     * otherwise, and then its contexts get no callback at all.
     *
     * @throws TlsException for a key-log file with the JDK's provider, which cannot give the secrets
     */
    private static TlsKeyLog keyLog(String listener, TlsSettings s, TlsModuleBinding m, boolean terminating) throws TlsException {
        if (s == null) return null;
        boolean jdk = TlsProvider.resolve(s.provider()) == SslProvider.JDK;
        if (s.keyLog() != null && jdk) {
            throw new TlsException("key-log needs provider: openssl; the JDK's TLS does not hand out its secrets. Set provider: openssl,"
                    + " or remove key-log");
        }
        boolean module = m != null && m.logsKeys();
        if (module && jdk) {
            LOG.log(System.Logger.Level.WARNING, "listener {0}: tls module {1} overrides keyLog, which provider jdk never calls; use provider:"
                    + " openssl for it", listener, m.name());
            return null;
        }
        if (s.keyLog() == null && !module) return null;
        if (s.keyLog() != null) {
            warnOnce("the secrets of every " + (terminating ? "client" : "upstream") + " handshake" + (listener.isEmpty() ? "" : " of listener "
                    + listener) + " are written to " + s.keyLog() + ": whoever reads it can decrypt that traffic. Remove key-log when you are done");
        }
        TlsKeyLog k = new TlsKeyLog(listener, terminating, s.keyLog());
        k.bind(m);
        return k;
    }

    /** Appends a key log line to {@code terminating}'s side's key-log file (the default keyLog step). */
    void appendKeyLog(boolean terminating, String line) {
        TlsKeyLog k = terminating ? acceptedKeys : upstreamKeys;
        if (k != null) k.append(line);
    }

    private void closeKeyLogs() {
        if (acceptedKeys != null) acceptedKeys.close();
        if (upstreamKeys != null) upstreamKeys.close();
    }

    // ---- session tickets -------------------------------------------------------------------------------

    /**
     * The default ticket keys: the {@code ticket-keys} files' (the first encrypts) when set, else a new random key and the
     * newest of {@code current}.
     *
     * @throws TlsException naming a ticket-keys file that cannot be read or is not 48 bytes
     */
    List<TlsTicketKey> defaultTicketKeys(List<TlsTicketKey> current) throws TlsException {
        if (terminate == null) throw new IllegalStateException("no terminating side");
        if (terminate.ticketKeys().isEmpty()) {
            return current.isEmpty() ? List.of(TlsTicketKey.random()) : List.of(TlsTicketKey.random(), current.getFirst());
        }
        List<TlsTicketKey> out = new ArrayList<>();
        for (Path f : terminate.ticketKeys()) {
            byte[] b;
            try {
                b = Files.readAllBytes(f);
            } catch (IOException e) {
                throw new TlsException("ticket-keys file " + f + " cannot be read (" + e + "); make it readable by the agent's user");
            }
            if (b.length != TlsTicketKey.SIZE) {
                throw new TlsException("ticket-keys file " + f + " is " + b.length + " bytes; a session ticket key is " + TlsTicketKey.SIZE
                        + " random bytes: make one with openssl rand " + TlsTicketKey.SIZE + " > " + f.getFileName());
            }
            out.add(TlsTicketKey.of(b));
        }
        return out;
    }

    /**
     * The ticket keys to use next (guarded by this): the module's sessionTicketKeys where it overrides it, else the default
     * ({@code rotate}: a new random key; not rotating, the random keys in use stay and the files are read again). A module
     * that fails keeps the keys in use (at start, the default's).
     */
    private List<TlsTicketKey> nextTicketKeys(List<TlsTicketKey> current, boolean rotate) throws TlsException {
        TlsModuleBinding m = acceptedModule;
        if (m != null && m.choosesTicketKeys()) {
            try {
                return m.ticketKeys(current);
            } catch (TlsModuleException e) {
                LOG.log(System.Logger.Level.WARNING, "{0}", e.getMessage());
                if (!current.isEmpty()) return current;
            }
        }
        if (!rotate && terminate.ticketKeys().isEmpty() && !current.isEmpty()) return current;
        return defaultTicketKeys(current);
    }

    private static OpenSslSessionTicketKey[] netty(List<TlsTicketKey> keys) {
        OpenSslSessionTicketKey[] out = new OpenSslSessionTicketKey[keys.size()];
        for (int i = 0; i < out.length; i++) {
            TlsTicketKey k = keys.get(i);
            out[i] = new OpenSslSessionTicketKey(k.name(), k.hmacKey(), k.aesKey());
        }
        return out;
    }

    /**
     * Sets how {@code contexts} (server contexts of one generation) resume sessions: with the agent's ticket keys, or
     * (session-tickets: false) not at all: no tickets, no session cache. The JDK's contexts keep their own behaviour.
     */
    private void sessions(List<SslContext> contexts) {
        for (SslContext c : contexts) {
            if (!(c instanceof ReferenceCountedOpenSslContext o)) continue;
            OpenSslSessionContext sc = (OpenSslSessionContext) o.sessionContext();
            if (ticketKeys != null) {
                sc.setTicketKeys(netty(ticketKeys));
            } else if (!terminate.sessionTickets()) {
                // Netty's BoringSSL contexts start with SSL_OP_NO_TICKET (setTicketKeys clears it), which stops TLS 1.2
                // tickets; the session cache goes too. TLS 1.3 tickets cannot be stopped (build refuses that case).
                sc.setSessionCacheEnabled(false);
            }
        }
    }

    /**
     * A new key encrypts tickets from now on; the one before still decrypts for this period, then is dropped. Runs at
     * multiples of the rotation period on the wall clock, so every agent rotates at the same moments.
     */
    private synchronized void rotateTicketKeys() {
        if (closed || ticketKeys == null) return;
        try {
            setTicketKeys(nextTicketKeys(ticketKeys, true));
        } catch (TlsException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot rotate the session ticket keys: {0}; the keys in use stay until the next rotation",
                    e.getMessage());
        }
        scheduleRotation();
    }

    /** Makes {@code keys} those of every server context in use (guarded by this). */
    private void setTicketKeys(List<TlsTicketKey> keys) {
        ticketKeys = keys;
        sessions(current.serverContexts());
        sessions(moduleContexts);
    }

    private synchronized void scheduleRotation() {
        long period = terminate.ticketKeyRotation().toMillis();
        schedule(this::rotateTicketKeys, period - System.currentTimeMillis() % period);
    }

    /** Reads every file and builds a generation; nothing is kept if one fails. */
    private Generation generation() throws TlsException {
        TlsContexts prev = BUILDING.get();
        BUILDING.set(this);
        try {
            return buildGeneration();
        } finally {
            BUILDING.set(prev);
        }
    }

    private Generation buildGeneration() throws TlsException {
        List<SslContext> owned = new ArrayList<>();
        List<String> certificates = new ArrayList<>();
        try {
            Mapping<String, SslContext> servers = null;
            List<SslContext> serverContexts = List.of();
            if (terminate != null) {
                if (terminate.identities().isEmpty()) throw new TlsException("tls: needs cert and key: the certificate the agent shows clients");
                SslContext defaultServer = null;
                for (TlsSettings.Identity id : terminate.identities()) {
                    SslContext c = server(terminate, id);
                    owned.add(c);
                    if (defaultServer == null && id.names().isEmpty()) defaultServer = c;
                    certificates.add(summary(id, "server"));
                }
                if (defaultServer == null) defaultServer = owned.getFirst();
                DomainWildcardMappingBuilder<SslContext> b = new DomainWildcardMappingBuilder<>(defaultServer);
                for (int i = 0; i < terminate.identities().size(); i++) {
                    for (String name : terminate.identities().get(i).names()) b.add(name, owned.get(i));
                }
                servers = b.build();
                serverContexts = List.copyOf(owned);
                synchronized (this) {
                    sessions(serverContexts);
                }
            }
            SslContext client = null;
            if (originate != null) {
                client = client(originate);
                owned.add(client);
                for (TlsSettings.Identity id : originate.identities()) certificates.add(summary(id, "client"));
            }
            return new Generation(servers, serverContexts, client, List.copyOf(owned), List.copyOf(certificates), new AtomicBoolean());
        } catch (TlsException | RuntimeException e) {
            owned.forEach(ReferenceCountUtil::release);
            throw e;
        }
    }

    /** {@code CN=a.test (server, a.test) until 2027-01-01T00:00:00Z}: the leaf of {@code id}, read already by {@link #load}. */
    private static String summary(TlsSettings.Identity id, String role) {
        String names = id.names().isEmpty() ? "" : ", " + String.join(" ", id.names());
        try {
            X509Certificate leaf = Pem.certificates(id.cert().toFile())[0];
            return leaf.getSubjectX500Principal().getName() + " (" + role + names + ") until " + leaf.getNotAfter().toInstant();
        } catch (Exception e) {
            return id.cert() + " (" + role + names + ")";
        }
    }

    /**
     * As {@link #build(TlsSettings, TlsSettings, InetSocketAddress)}, with the {@code tls} modules the settings name
     * ({@code module:}) bound through {@code host} (null: none are bound, as for {@code run --check}).
     */
    static TlsContexts build(TlsSettings terminate, TlsSettings originate, InetSocketAddress upstream, String listener,
                             TlsModuleBinding.Host host) throws TlsException {
        TlsModuleBinding in = host == null || terminate == null || terminate.module() == null ? null
                : new TlsModuleBinding(host, listener, terminate, true);
        TlsModuleBinding out = host == null || originate == null || originate.module() == null ? null
                : new TlsModuleBinding(host, listener, originate, false);
        return TlsModuleBinding.during(in, out, () -> build(terminate, originate, upstream, listener, in, out));
    }

    /** The {@code tls} module binding of the accepted side ({@code accepted}) or the upstream's; null where none is named. */
    TlsModuleBinding module(boolean accepted) {
        return accepted ? acceptedModule : upstreamModule;
    }

    /**
     * A server context for {@code id} built as the listener's own are, with their ticket keys and key log: for the
     * certificates a {@code tls} module chooses.
     */
    SslContext serverContext(TlsSettings s, TlsSettings.Identity id) throws TlsException {
        TlsContexts prev = BUILDING.get();
        BUILDING.set(this);
        SslContext c;
        try {
            c = server(s, id);
        } finally {
            BUILDING.set(prev);
        }
        synchronized (this) {
            if (!closed) {
                moduleContexts.add(c);
                sessions(List.of(c));
            }
        }
        return c;
    }

    /** The leaf certificate of {@code id}, read and checked as {@link #load} does. */
    static X509Certificate leaf(TlsSettings.Identity id) throws TlsException {
        return load(id).chain[0];
    }

    /**
     * Reads and checks {@code s} as {@link #build} would ({@code server}: a {@code tls:} block, else an upstream's), then
     * lets everything go: for {@code run --check}.
     */
    public static void check(TlsSettings s, boolean server) throws TlsException {
        build(server ? s : null, server ? null : s, new InetSocketAddress("127.0.0.1", 1)).close();
    }

    /**
     * Reads every file again and, if all are good, makes the result the generation new handshakes use; the replaced one
     * is released once no handshake can still pick from it. Open connections are not touched.
     *
     * @return what was loaded: each certificate's subject, role and expiry
     * @throws TlsException naming what is wrong; the generation in use stays
     */
    public synchronized List<String> reload() throws TlsException {
        if (closed) throw new TlsException("the listener has stopped");
        loaded = signature();
        pending = null;
        List<TlsTicketKey> keys = ticketKeys == null ? null : nextTicketKeys(ticketKeys, false); // the files' keys, read again
        // a module version loaded since that overrides keyLog: the new contexts get the callback
        if (acceptedKeys == null && terminate != null) acceptedKeys = keyLog(listener, terminate, acceptedModule, true);
        if (upstreamKeys == null && originate != null) upstreamKeys = keyLog(listener, originate, upstreamModule, false);
        if (acceptedModule != null) acceptedModule.reloaded();
        if (upstreamModule != null) upstreamModule.reloaded();
        List<TlsTicketKey> was = ticketKeys;
        ticketKeys = keys;
        Generation g;
        try {
            g = TlsModuleBinding.during(acceptedModule, upstreamModule, this::generation); // a tls module's settings apply again
        } catch (TlsException | RuntimeException e) {
            ticketKeys = was;
            throw e;
        }
        Generation old = current;
        current = g;
        if (keys != null) sessions(moduleContexts);
        retired.add(old);
        long grace = Math.max(terminate == null ? 0 : terminate.handshakeTimeout().toMillis(), originate == null ? 0 : originate.handshakeTimeout().toMillis())
                + 10_000;
        schedule(() -> releaseRetired(old), grace);
        return g.certificates();
    }

    private synchronized void releaseRetired(Generation g) {
        retired.remove(g);
        g.release();
    }

    /** What the current generation loaded: each certificate's subject, role and expiry. */
    public List<String> certificates() {
        return current.certificates();
    }

    /**
     * Looks at the files every {@link #POLL_MILLIS} from now on and reloads when they changed and then stayed the same for
     * one look (a file being written is not read half done). A failed reload is one log line; the old certificates stay.
     * Also starts rotating the session ticket keys, where the agent manages them.
     */
    public synchronized void watch(String listener) {
        if (closed || watching != null) return;
        if (ticketKeys != null) scheduleRotation();
        else if (terminate != null && TlsProvider.resolve(terminate.provider()) == SslProvider.JDK
                && !terminate.ticketKeyRotation().equals(TlsSettings.DEFAULT_TICKET_KEY_ROTATION)) {
            LOG.log(System.Logger.Level.WARNING, "listener {0}: ticket-key-rotation has no effect with provider jdk: the JDK''s TLS makes and"
                    + " rotates its own session ticket keys; use provider: openssl to rotate them every {1}", listener, terminate.ticketKeyRotation());
        }
        watching = timer().scheduleWithFixedDelay(() -> poll(listener), POLL_MILLIS, POLL_MILLIS, TimeUnit.MILLISECONDS);
        tasks.add(watching);
    }

    private synchronized void poll(String listener) {
        if (closed) return;
        List<Object> now = signature();
        if (now.equals(loaded)) {
            pending = null;
            return;
        }
        if (!now.equals(pending)) {
            pending = now; // changed since the last look: wait until it holds still
            return;
        }
        try {
            List<String> certs = reload();
            LOG.log(System.Logger.Level.INFO, "listener {0}: TLS files changed, reloaded: {1}; open connections keep their certificates",
                    listener, String.join(", ", certs));
        } catch (TlsException e) {
            LOG.log(System.Logger.Level.WARNING, "listener {0}: TLS files changed but cannot be loaded: {1}; the old certificates stay in use"
                    + " until the files are fixed", listener, e.getMessage());
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "listener {0}: TLS files changed but cannot be loaded: {1}; the old certificates stay in use"
                    + " until the files are fixed", listener, messages(e));
        }
    }

    /** Every file's modification time, size and identity (a missing one: its name), in settings order. */
    private List<Object> signature() {
        List<Object> out = new ArrayList<>();
        java.util.Set<Path> files = new java.util.LinkedHashSet<>();
        if (terminate != null) files.addAll(terminate.files());
        if (originate != null) files.addAll(originate.files());
        for (Path f : files) {
            try {
                java.nio.file.attribute.BasicFileAttributes a = Files.readAttributes(f, java.nio.file.attribute.BasicFileAttributes.class);
                out.add(List.of(f, a.lastModifiedTime().to(TimeUnit.NANOSECONDS), a.size(), String.valueOf(a.fileKey())));
            } catch (IOException e) {
                out.add(List.of(f, "missing"));
            }
        }
        return out;
    }

    private synchronized void schedule(Runnable r, long millis) {
        if (!closed) tasks.add(timer().schedule(r, millis, TimeUnit.MILLISECONDS));
        tasks.removeIf(f -> f.isDone() && f != watching);
    }

    private static ScheduledExecutorService timer() {
        ScheduledExecutorService t = timer;
        if (t == null) {
            synchronized (TlsContexts.class) {
                if ((t = timer) == null) {
                    java.util.concurrent.ScheduledThreadPoolExecutor x = new java.util.concurrent.ScheduledThreadPoolExecutor(1,
                            r -> Thread.ofPlatform().name("interlayer-tls").daemon().unstarted(r));
                    x.setRemoveOnCancelPolicy(true);
                    timer = t = x;
                }
            }
        }
        return t;
    }

    /** The handler that terminates TLS on an accepted socket: picks the certificate by SNI, then becomes an SslHandler. */
    SniHandler serverHandler(long connectionId, InetSocketAddress peer) {
        TlsModuleBinding m = acceptedModule;
        boolean keys = acceptedKeys != null;
        if (m != null) return m.serverHandler(current.servers(), terminate.handshakeTimeout().toMillis(), keys, connectionId, peer);
        if (keys) return new KeyLoggingSni(current.servers(), terminate.handshakeTimeout().toMillis(), connectionId, peer);
        return new SniHandler(current.servers(), terminate.handshakeTimeout().toMillis());
    }

    /** An SniHandler whose SslHandler's handshake secrets are logged, with the connection they belong to. */
    private static final class KeyLoggingSni extends SniHandler {
        private final long connectionId;
        private final InetSocketAddress peer;

        KeyLoggingSni(Mapping<String, SslContext> servers, long timeoutMillis, long connectionId, InetSocketAddress peer) {
            super(servers, timeoutMillis);
            this.connectionId = connectionId;
            this.peer = peer;
        }

        @Override
        protected SslHandler newSslHandler(SslContext context, ByteBufAllocator allocator) {
            SslHandler h = super.newSslHandler(context, allocator);
            TlsKeyLog.register(h, connectionId, peer);
            return h;
        }
    }

    /** The handler that originates TLS to the upstream: sends the server name as SNI and verifies the certificate against it. */
    SslHandler clientHandler(ByteBufAllocator alloc, long connectionId, InetSocketAddress peer) {
        SslHandler h = current.client().newHandler(alloc, serverName, upstreamPort);
        h.setHandshakeTimeoutMillis(originate.handshakeTimeout().toMillis());
        if (upstreamKeys != null) TlsKeyLog.register(h, connectionId, peer);
        return h;
    }

    /** The name sent as SNI and verified against the upstream's certificate. */
    String serverName() {
        return serverName;
    }

    /** The settings of the accepted side ({@code accepted}) or the upstream's. */
    TlsSettings settings(boolean accepted) {
        return accepted ? terminate : originate;
    }

    boolean terminates() {
        return terminate != null;
    }

    boolean originates() {
        return originate != null;
    }

    /** What runs where, for the listener's log line: e.g. {@code terminates TLS (openssl), originates TLS (jdk) to example.com}. */
    public String describe() {
        List<String> out = new ArrayList<>();
        if (terminate != null) {
            out.add("terminates TLS (" + TlsProvider.name(TlsProvider.resolve(terminate.provider())) + ", " + terminate.identities().size()
                    + " certificate(s), client-auth " + terminate.clientAuth().name().toLowerCase()
                    + (acceptedModule == null ? "" : ", " + acceptedModule.describe()) + ")");
        }
        if (originate != null) {
            out.add("originates TLS (" + TlsProvider.name(TlsProvider.resolve(originate.provider())) + ") to " + serverName
                    + (originate.verify() ? "" : ", upstream certificate NOT verified") + (upstreamModule == null ? "" : ", " + upstreamModule.describe()));
        }
        return String.join(", ", out);
    }

    /** Stops watching and releases every generation's contexts (open connections keep what their engines hold). */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        tasks.forEach(f -> f.cancel(false));
        tasks.clear();
        retired.forEach(Generation::release);
        retired.clear();
        current.release();
        if (acceptedModule != null) acceptedModule.close();
        if (upstreamModule != null) upstreamModule.close();
        moduleContexts.clear();
        closeKeyLogs();
    }

    // ---- building ------------------------------------------------------------------------------------

    private static SslContext server(TlsSettings s, TlsSettings.Identity id) throws TlsException {
        Loaded k = load(id);
        SslContextBuilder b = SslContextBuilder.forServer(k.key, k.chain);
        b.clientAuth(switch (s.clientAuth()) {
            case NONE -> ClientAuth.NONE;
            case OPTIONAL -> ClientAuth.OPTIONAL;
            case REQUIRED -> ClientAuth.REQUIRE;
        });
        if (s.ca() != null) b.trustManager(trust(s));
        return finish(b, s, true);
    }

    private static SslContext client(TlsSettings s) throws TlsException {
        SslContextBuilder b = SslContextBuilder.forClient();
        if (!s.identities().isEmpty()) {
            Loaded k = load(s.identities().getFirst());
            b.keyManager(k.key, k.chain);
        }
        if (!s.verify()) {
            b.trustManager(InsecureTrustManagerFactory.INSTANCE).endpointIdentificationAlgorithm(null);
        } else {
            if (s.ca() != null || !s.crl().isEmpty()) b.trustManager(trust(s));
            b.endpointIdentificationAlgorithm("HTTPS");
        }
        return finish(b, s, false);
    }

    /** Sets what both sides share, builds, and checks the cipher list on a first engine (providers refuse unknown names late). */
    private static SslContext finish(SslContextBuilder b, TlsSettings s, boolean server) throws TlsException {
        s = TlsModuleBinding.adjust(s, b, server); // a tls module's protocols, ciphers and peer verification, where one is bound
        TlsContexts owner = BUILDING.get();
        SslProvider p = TlsProvider.resolve(s.provider());
        b.sslProvider(p).protocols(s.protocols());
        if (!s.ciphers().isEmpty()) b.ciphers(s.ciphers());
        if (!s.alpn().isEmpty()) {
            b.applicationProtocolConfig(new ApplicationProtocolConfig(ApplicationProtocolConfig.Protocol.ALPN,
                    ApplicationProtocolConfig.SelectorFailureBehavior.NO_ADVERTISE,
                    ApplicationProtocolConfig.SelectedListenerFailureBehavior.ACCEPT, s.alpn()));
        }
        SslContext c;
        try {
            c = b.build();
        } catch (IOException | RuntimeException e) {
            throw new TlsException("cannot set up TLS (" + TlsProvider.name(p) + "): " + messages(e) + "; check protocols (TLSv1.2, TLSv1.3)"
                    + (s.ciphers().isEmpty() ? "" : " and ciphers (names such as TLS_AES_128_GCM_SHA256 or TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)"));
        }
        SSLEngine e = null;
        try {
            e = c.newEngine(ByteBufAllocator.DEFAULT);
            List<String> enabled = Arrays.asList(e.getEnabledCipherSuites());
            List<String> unknown = s.ciphers().stream().filter(x -> !enabled.contains(x)).toList();
            if (!unknown.isEmpty()) {
                throw new TlsException("ciphers " + unknown + " are not available with provider " + TlsProvider.name(p) + " and protocols "
                        + s.protocols() + "; use names from: " + String.join(", ", enabled));
            }
        } catch (RuntimeException x) {
            ReferenceCountUtil.release(c);
            throw new TlsException("ciphers " + s.ciphers() + ": " + messages(x) + " (provider " + TlsProvider.name(p)
                    + "); list cipher suites the provider supports, e.g. TLS_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
        } catch (TlsException x) {
            ReferenceCountUtil.release(c);
            throw x;
        } finally {
            ReferenceCountUtil.release(e);
        }
        TlsKeyLog keys = owner == null ? null : server ? owner.acceptedKeys : owner.upstreamKeys;
        if (keys != null && c instanceof ReferenceCountedOpenSslContext o) {
            try {
                TlsKeyLog.install(o, keys);
            } catch (TlsException x) {
                ReferenceCountUtil.release(c);
                throw x;
            }
        }
        return c;
    }

    private record Loaded(X509Certificate[] chain, PrivateKey key) {}

    /** Reads a certificate chain and its key and checks that they belong together. */
    private static Loaded load(TlsSettings.Identity id) throws TlsException {
        String password = null;
        if (id.passwordFile() != null) {
            Path pf = id.passwordFile();
            readable(pf, "key-password-file", "a file whose first line is the passphrase of " + id.key());
            try {
                String text = Files.readString(pf, StandardCharsets.UTF_8);
                int nl = text.indexOf('\n');
                password = (nl < 0 ? text : text.substring(0, nl)).stripTrailing();
            } catch (IOException e) {
                throw new TlsException("key-password-file " + pf + " cannot be read (" + e.getMessage() + "); make it readable by the agent's user");
            }
        }
        readable(id.cert(), "cert", "a PEM certificate chain, the leaf first");
        readable(id.key(), "key", "a PEM PKCS#8 private key");
        X509Certificate[] chain;
        try {
            chain = Pem.certificates(id.cert().toFile());
        } catch (Exception e) {
            throw new TlsException("cert " + id.cert() + " holds no readable certificate (" + messages(e) + "); give the certificate chain in PEM"
                    + " (-----BEGIN CERTIFICATE-----), the leaf first");
        }
        if (chain == null || chain.length == 0) {
            throw new TlsException("cert " + id.cert() + " holds no certificate; give the certificate chain in PEM (-----BEGIN CERTIFICATE-----), the leaf first");
        }
        PrivateKey key;
        try {
            key = Pem.key(id.key().toFile(), password);
        } catch (Exception e) {
            throw new TlsException(keyProblem(id, password, e));
        }
        if (key == null) {
            throw new TlsException("key " + id.key() + " holds no private key; give a PEM PKCS#8 key (-----BEGIN PRIVATE KEY-----)");
        }
        if (!matches(chain[0].getPublicKey(), key)) {
            throw new TlsException("key " + id.key() + " does not belong to the certificate in " + id.cert() + " ("
                    + chain[0].getSubjectX500Principal().getName() + "); give the key the certificate was issued for, or the certificate of this key");
        }
        return new Loaded(chain, key);
    }

    private static String keyProblem(TlsSettings.Identity id, String password, Exception e) {
        String text;
        try {
            text = Files.readString(id.key(), StandardCharsets.US_ASCII);
        } catch (IOException | RuntimeException x) {
            text = "";
        }
        if (text.contains("BEGIN ENCRYPTED PRIVATE KEY") && password == null) {
            return "key " + id.key() + " is encrypted; set key-password-file to a file whose first line is its passphrase";
        }
        if (text.contains("BEGIN ENCRYPTED PRIVATE KEY")) {
            return "key " + id.key() + " cannot be decrypted with the passphrase in " + id.passwordFile() + " (wrong passphrase?: "
                    + messages(e) + "); put the key's passphrase on the first line of " + id.passwordFile();
        }
        if (text.contains("BEGIN RSA PRIVATE KEY") || text.contains("BEGIN EC PRIVATE KEY")) {
            return "key " + id.key() + " is not PKCS#8 (it is a traditional OpenSSL key); convert it: openssl pkcs8 -topk8 -in " + id.key()
                    + " -out key.pk8 (add -nocrypt for no passphrase)";
        }
        return "key " + id.key() + " holds no readable private key (" + messages(e) + "); give a PEM PKCS#8 key (-----BEGIN PRIVATE KEY----- or"
                + " -----BEGIN ENCRYPTED PRIVATE KEY----- with key-password-file)";
    }

    /**
     * Signs with the key and verifies with the certificate's public key: the one test every key type supports. Both keys
     * are first put in the JDK's own form (a PEM reader may hand out BouncyCastle's, when it is on the class path).
     */
    private static boolean matches(PublicKey pub, PrivateKey key) {
        String type = key.getAlgorithm().equals("ECDSA") ? "EC" : key.getAlgorithm();
        String alg = switch (type) {
            case "RSA" -> "SHA256withRSA";
            case "EC" -> "SHA256withECDSA";
            case "Ed25519", "EdDSA" -> "Ed25519";
            case "Ed448" -> "Ed448";
            default -> null;
        };
        if (alg == null) return true; // a key type without a probe here: the handshake will tell
        try {
            KeyFactory f = KeyFactory.getInstance(type);
            PrivateKey k = f.generatePrivate(new PKCS8EncodedKeySpec(key.getEncoded()));
            PublicKey p = KeyFactory.getInstance(pub.getAlgorithm().equals("ECDSA") ? "EC" : pub.getAlgorithm())
                    .generatePublic(new X509EncodedKeySpec(pub.getEncoded()));
            byte[] probe = "interlayer key check".getBytes(StandardCharsets.US_ASCII);
            Signature s = Signature.getInstance(alg);
            s.initSign(k);
            s.update(probe);
            byte[] sig = s.sign();
            Signature v = Signature.getInstance(alg);
            v.initVerify(p);
            v.update(probe);
            return v.verify(sig);
        } catch (Exception e) {
            return false; // a key of another type than the certificate's
        }
    }

    /**
     * The trust of {@code s}: its {@code ca}, and with {@code crl} the JDK's PKIX with revocation checked against those
     * CRLs only (no OCSP, nothing fetched from the network). A certificate whose issuer has no CRL here is not checked for
     * revocation. Both providers take the factory's trust manager.
     */
    static javax.net.ssl.TrustManagerFactory trust(TlsSettings s) throws TlsException {
        if (s.crl().isEmpty()) return trust(s.ca());
        if (s.ca() == null) {
            throw new TlsException("crl needs ca: the CA certificate(s) that signed the CRLs and that peers' certificates chain to; set ca");
        }
        trust(s.ca()); // the same checks and messages as without CRLs
        X509Certificate[] cas;
        try {
            cas = Pem.certificates(s.ca().toFile());
        } catch (Exception e) {
            throw new TlsException("ca " + s.ca() + " holds no readable CA certificate (" + messages(e) + "); give CA certificates in PEM");
        }
        List<X509CRL> crls = new ArrayList<>();
        for (Path f : s.crl()) crls.addAll(crls(f, cas));
        try {
            KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
            ks.load(null, null);
            for (int i = 0; i < cas.length; i++) ks.setCertificateEntry("ca" + i, cas[i]);
            PKIXBuilderParameters p = new PKIXBuilderParameters(ks, new X509CertSelector());
            p.addCertStore(CertStore.getInstance("Collection", new CollectionCertStoreParameters(crls)));
            p.setRevocationEnabled(true);
            PKIXRevocationChecker rc = (PKIXRevocationChecker) CertPathBuilder.getInstance("PKIX").getRevocationChecker();
            // CRLs only (never OCSP), and a certificate whose issuer has no current CRL here passes unchecked
            rc.setOptions(EnumSet.of(PKIXRevocationChecker.Option.PREFER_CRLS, PKIXRevocationChecker.Option.NO_FALLBACK,
                    PKIXRevocationChecker.Option.SOFT_FAIL));
            p.addCertPathChecker(rc);
            javax.net.ssl.TrustManagerFactory f = javax.net.ssl.TrustManagerFactory.getInstance("PKIX");
            f.init(new CertPathTrustManagerParameters(p));
            List<X509CRL> expired = crls.stream().filter(c -> c.getNextUpdate() != null && c.getNextUpdate().before(new Date())).toList();
            return expired.isEmpty() ? f : new ExpiredCrls(f, expired);
        } catch (GeneralSecurityException | IOException e) {
            throw new TlsException("cannot set up revocation checking with crl " + s.crl() + " (" + messages(e) + "); check the CRL and ca files");
        }
    }

    /**
     * Reads the CRLs in {@code f} (PEM or DER) and checks each is signed by one of {@code cas}. An expired CRL (its next
     * update has passed) is a warning: what it lists stays revoked, as its issuer has not published a newer one here.
     */
    private static List<X509CRL> crls(Path f, X509Certificate[] cas) throws TlsException {
        readable(f, "crl", "a CRL (PEM -----BEGIN X509 CRL----- or DER) signed by a CA in ca");
        List<X509CRL> out = new ArrayList<>();
        try (java.io.InputStream in = Files.newInputStream(f)) {
            for (java.security.cert.CRL c : CertificateFactory.getInstance("X.509").generateCRLs(in)) out.add((X509CRL) c);
        } catch (IOException | GeneralSecurityException | RuntimeException e) {
            throw new TlsException("crl " + f + " holds no readable CRL (" + messages(e) + "); give a CRL in PEM (-----BEGIN X509 CRL-----) or DER,"
                    + " e.g. from openssl ca -gencrl");
        }
        if (out.isEmpty()) {
            throw new TlsException("crl " + f + " holds no CRL; give a CRL in PEM (-----BEGIN X509 CRL-----) or DER, e.g. from openssl ca -gencrl");
        }
        for (X509CRL c : out) {
            boolean signed = false;
            for (X509Certificate ca : cas) {
                if (!ca.getSubjectX500Principal().equals(c.getIssuerX500Principal())) continue;
                try {
                    c.verify(ca.getPublicKey());
                    signed = true;
                    break;
                } catch (GeneralSecurityException e) {
                    // another CA of the same name, or a forged CRL: try the next
                }
            }
            if (!signed) {
                throw new TlsException("crl " + f + " (issuer " + c.getIssuerX500Principal().getName() + ") is not signed by a CA in ca; give"
                        + " the CRL of a CA in ca, or add its issuer's certificate to ca");
            }
            if (c.getNextUpdate() != null && c.getNextUpdate().before(new Date())) {
                warnOnce("crl " + f + " (issuer " + c.getIssuerX500Principal().getName() + ") expired at " + c.getNextUpdate().toInstant()
                        + ": the certificates it lists stay refused, but newer revocations are not known; put its issuer's current CRL there"
                        + " (the agent reloads it when the file changes)");
            }
        }
        return out;
    }

    /**
     * PKIX ignores a CRL past its next update; these keep refusing what expired CRLs list (after PKIX's own checks), so a
     * late CRL never lets a revoked certificate back in.
     */
    private static final class ExpiredCrls extends javax.net.ssl.TrustManagerFactory {
        ExpiredCrls(javax.net.ssl.TrustManagerFactory f, List<X509CRL> crls) {
            super(new ExpiredCrlsSpi(f, crls), f.getProvider(), f.getAlgorithm());
        }
    }

    private static final class ExpiredCrlsSpi extends javax.net.ssl.TrustManagerFactorySpi {
        private final javax.net.ssl.TrustManager[] managers;

        ExpiredCrlsSpi(javax.net.ssl.TrustManagerFactory f, List<X509CRL> crls) {
            javax.net.ssl.TrustManager[] ms = f.getTrustManagers().clone();
            for (int i = 0; i < ms.length; i++) {
                if (ms[i] instanceof X509ExtendedTrustManager x) ms[i] = new RevokedCheck(x, crls);
            }
            managers = ms;
        }

        @Override protected void engineInit(KeyStore ks) {}
        @Override protected void engineInit(javax.net.ssl.ManagerFactoryParameters spec) {}
        @Override protected javax.net.ssl.TrustManager[] engineGetTrustManagers() { return managers.clone(); }
    }

    private static final class RevokedCheck extends X509ExtendedTrustManager {
        private final X509ExtendedTrustManager d;
        private final List<X509CRL> crls;

        RevokedCheck(X509ExtendedTrustManager d, List<X509CRL> crls) {
            this.d = d;
            this.crls = crls;
        }

        private void check(X509Certificate[] chain) throws CertificateException {
            for (int i = 0; i < chain.length; i++) {
                for (X509CRL c : crls) {
                    if (c.getIssuerX500Principal().equals(chain[i].getIssuerX500Principal()) && c.isRevoked(chain[i])) {
                        CertificateException e = new CertificateException("Certificate has been revoked (in an expired CRL of "
                                + c.getIssuerX500Principal().getName() + ")");
                        try {
                            e.initCause(new CertPathValidatorException("revoked", null,
                                    CertificateFactory.getInstance("X.509").generateCertPath(Arrays.asList(chain)), i,
                                    CertPathValidatorException.BasicReason.REVOKED));
                        } catch (CertificateException x) {
                            // no path: the message says it
                        }
                        throw e;
                    }
                }
            }
        }

        @Override public void checkClientTrusted(X509Certificate[] c, String a, java.net.Socket s) throws CertificateException { d.checkClientTrusted(c, a, s); check(c); }
        @Override public void checkServerTrusted(X509Certificate[] c, String a, java.net.Socket s) throws CertificateException { d.checkServerTrusted(c, a, s); check(c); }
        @Override public void checkClientTrusted(X509Certificate[] c, String a, SSLEngine e) throws CertificateException { d.checkClientTrusted(c, a, e); check(c); }
        @Override public void checkServerTrusted(X509Certificate[] c, String a, SSLEngine e) throws CertificateException { d.checkServerTrusted(c, a, e); check(c); }
        @Override public void checkClientTrusted(X509Certificate[] c, String a) throws CertificateException { d.checkClientTrusted(c, a); check(c); }
        @Override public void checkServerTrusted(X509Certificate[] c, String a) throws CertificateException { d.checkServerTrusted(c, a); check(c); }
        @Override public X509Certificate[] getAcceptedIssuers() { return d.getAcceptedIssuers(); }
    }

    static javax.net.ssl.TrustManagerFactory trust(Path ca) throws TlsException {
        readable(ca, "ca", "PEM CA certificates peers' certificates must chain to");
        try {
            return Pem.trust(ca.toFile());
        } catch (Exception e) {
            throw new TlsException("ca " + ca + " holds no readable CA certificate (" + messages(e) + "); give CA certificates in PEM"
                    + " (-----BEGIN CERTIFICATE-----)");
        }
    }

    private static void readable(Path f, String key, String expected) throws TlsException {
        if (!Files.isReadable(f)) {
            throw new TlsException(key + " " + f + (Files.exists(f) ? " cannot be read; make it readable by the agent's user"
                    : " does not exist; expected " + expected + " (relative paths start at the config file's folder)"));
        }
    }

    /** The messages of {@code t} and its causes, for one line. */
    static String messages(Throwable t) {
        StringBuilder sb = new StringBuilder();
        for (Throwable c = t; c != null && sb.length() < 300; c = c.getCause()) {
            String m = c.getMessage() != null ? c.getMessage() : c.getClass().getSimpleName();
            if (sb.indexOf(m) >= 0) continue;
            if (!sb.isEmpty()) sb.append(": ");
            sb.append(m);
        }
        return sb.toString();
    }

    /** Netty's PEM readers (they handle encrypted PKCS#8 too), which it offers to subclasses only. */
    private abstract static class Pem extends SslContext {
        static X509Certificate[] certificates(File f) throws Exception {
            return toX509Certificates(f);
        }

        static PrivateKey key(File f, String password) throws Exception {
            return toPrivateKey(f, password);
        }

        static javax.net.ssl.TrustManagerFactory trust(File f) throws Exception {
            return buildTrustManagerFactory(f, null);
        }
    }
}
