package dev.interlayer.engine;

import dev.interlayer.api.ClientHello;
import dev.interlayer.api.TlsCertificate;
import dev.interlayer.api.TlsFunctions;
import dev.interlayer.api.TlsHandshake;
import dev.interlayer.api.TlsModule;
import dev.interlayer.api.TlsParameters;
import dev.interlayer.api.TlsPeer;
import dev.interlayer.api.TlsTicketKey;
import dev.interlayer.api.TlsVerdict;
import dev.interlayer.runtime.Hooks;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleState;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.ssl.SniHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import io.netty.util.DomainWildcardMappingBuilder;
import io.netty.util.Mapping;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;
import javax.net.ssl.X509TrustManager;

/**
 * The {@code tls} module of one side of a listener ({@code module:} in its {@code tls:} block or its upstream's): finds the
 * module by name at each handshake (so an unloaded, replaced or quarantined module falls back to the defaults, or the new
 * version serves, without restarting the listener), calls the steps it overrides and runs the agent's own for the others.
 *
 * <p>Calls run on the connection's event loop, under the engine's watchdog like any hook there (same budget, same
 * preemption), with the module's class loader; a call that throws or overruns counts as the module's fault and fails only
 * its handshake, with one line naming the module, the step and what to do. A step the module does not override (its
 * {@link Hooks} bit is unset) is never called: the agent's default runs directly. Certificates a module chooses are
 * {@link Cert} handles: each keeps the SslContexts built for it (one per ALPN choice), so a handshake never builds one
 * after the first.
 */
final class TlsModuleBinding implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.engine");

    /** What a binding needs of the engine. */
    interface Host {
        /** The current instance of the module named {@code name}. */
        Optional<LoadedModule> find(String name);

        /** The watchdog slot of the event loop running this call; null on a thread the engine does not watch. */
        Watchdog.Slot slot();
    }

    private final Host host;
    private final String listener;
    private final boolean terminating;
    private final TlsSettings settings;
    private final String name;
    private final Defaults defaults = new Defaults();
    private final ConcurrentHashMap<String, Cert> files = new ConcurrentHashMap<>();
    private final List<Cert> all = new java.util.concurrent.CopyOnWriteArrayList<>();
    /** The last module found usable (fast path: one volatile read and a state check per step). */
    private volatile LoadedModule current;
    /** What the last lookup found, for one log line when it changes. */
    private volatile String status = "";
    private volatile Mapping<String, Cert> configured;
    private volatile TlsParameters parameters;
    private volatile boolean closed;
    /** The listener's contexts, which own this binding: the ticket keys' and key log's defaults. */
    private volatile TlsContexts owner;
    /** The module whose keyLog fault was last logged: one line per module version, not one per secret. */
    private volatile String keyLogFaulted;
    /** The default check of the chain being verified on this thread (it knows the SSLEngine, for the upstream's name). */
    private static final ThreadLocal<PendingCheck> CHECK = new ThreadLocal<>();

    TlsModuleBinding(Host host, String listener, TlsSettings settings, boolean terminating) {
        this.host = host;
        this.listener = listener;
        this.settings = settings;
        this.terminating = terminating;
        this.name = settings.module();
    }

    /** The module's configured name. */
    String name() {
        return name;
    }

    /** Binds the listener's contexts, before any step can run. */
    void own(TlsContexts contexts) {
        owner = contexts;
    }

    // ---- building the listener's contexts ------------------------------------------------------------------

    /** The bindings of the contexts being built on this thread, and the ALPN list of a module's certificate variant. */
    private record Build(TlsModuleBinding terminate, TlsModuleBinding originate, List<String> alpn) {}

    private static final ThreadLocal<Build> BUILD = new ThreadLocal<>();

    interface Builder<T> {
        T build() throws TlsException;
    }

    /** Runs {@code b} (which builds contexts through {@link TlsContexts}) with these bindings, for {@link #adjust}. */
    static <T> T during(TlsModuleBinding terminate, TlsModuleBinding originate, Builder<T> b) throws TlsException {
        if (terminate == null && originate == null) return b.build();
        Build prev = BUILD.get();
        BUILD.set(new Build(terminate, originate, null));
        try {
            return b.build();
        } finally {
            BUILD.set(prev);
        }
    }

    /**
     * What a context being built on this thread takes from the side's tls module: its protocols and ciphers
     * ({@code configure}, asked once per listener side), the ALPN list of a certificate variant, and a trust manager that
     * lets {@code verifyPeer} decide. {@code s} unchanged where no module is bound.
     */
    static TlsSettings adjust(TlsSettings s, io.netty.handler.ssl.SslContextBuilder b, boolean server) throws TlsException {
        Build build = BUILD.get();
        TlsModuleBinding m = build == null ? null : server ? build.terminate : build.originate;
        if (m == null) return s;
        TlsParameters p = m.parameters();
        b.trustManager(m.new Trust(m.defaultTrust()));
        return new TlsSettings(s.provider(), s.identities(), s.ca(), s.clientAuth(), p.protocols(), p.ciphers(),
                build.alpn != null ? build.alpn : s.alpn(), s.handshakeTimeout(), s.serverName(), s.verify(), s.crl(), s.sessionTickets(),
                s.ticketKeyRotation(), s.module(), s.keyLog(), s.ticketKeys());
    }

    /** The protocols and ciphers of this side: the module's {@code configure}, asked once (the configured ones without it). */
    private TlsParameters parameters() throws TlsException {
        TlsParameters p = parameters;
        if (p != null) return p;
        TlsParameters configured = new TlsParameters(terminating, settings.protocols(), settings.ciphers());
        p = configured;
        LoadedModule m = module();
        if (m != null && m.has(Hooks.TLS_CONFIGURE)) {
            TlsParameters got;
            try {
                got = call(m, "configure", -1, () -> tls(m).configure(configured, defaults));
            } catch (TlsModuleException e) {
                throw new TlsException(e.getMessage());
            }
            if (got == null) throw new TlsException(fault(m, "configure", -1, "returned null; return defaults.configure(configured)"));
            p = got;
        }
        return parameters = p;
    }

    private X509ExtendedTrustManager defaultTrust() throws TlsException {
        try {
            TrustManagerFactory f;
            if (!terminating && !settings.verify()) {
                f = InsecureTrustManagerFactory.INSTANCE;
            } else if (settings.ca() != null) {
                f = TlsContexts.trust(settings); // with its CRLs, as the agent's own verification
            } else {
                f = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
                f.init((KeyStore) null);
            }
            for (TrustManager t : f.getTrustManagers()) {
                if (t instanceof X509ExtendedTrustManager x) return x;
                if (t instanceof X509TrustManager x) return new Plain(x);
            }
            throw new TlsException("no X.509 trust manager for " + (settings.ca() == null ? "the JDK's trust store" : "ca " + settings.ca()));
        } catch (java.security.GeneralSecurityException e) {
            throw new TlsException("cannot read the JDK's trust store (" + TlsContexts.messages(e) + "); set ca to the CA certificates to trust");
        }
    }

    // ---- finding the module --------------------------------------------------------------------------------

    /** The module to call, or null: none is loaded under the name, or it is not active (the defaults serve). */
    LoadedModule module() {
        LoadedModule m = current;
        if (m != null && m.state() == ModuleState.ACTIVE) return m;
        Optional<LoadedModule> found = host.find(name);
        String now;
        LoadedModule use = null;
        if (found.isEmpty()) {
            now = "is not loaded";
        } else if (!(found.get().module() instanceof TlsModule<?>) || !found.get().descriptor().interfaces().containsKey(dev.interlayer.api.InterfaceType.TLS)) {
            now = "(" + found.get().id() + ") does not implement the tls interface";
        } else if (found.get().state() != ModuleState.ACTIVE) {
            now = "(" + found.get().id() + ") is " + found.get().state();
        } else {
            use = found.get();
            now = "ok " + use.id();
        }
        current = use;
        if (!now.equals(status)) {
            String was = status;
            status = now;
            if (use != null) {
                if (!was.isEmpty()) LOG.log(Level.INFO, "listener {0}: new {1} handshakes use tls module {2}", listener, side(), use.id());
            } else {
                LOG.log(Level.WARNING, "listener {0}: tls module {1} {2}; new {3} handshakes use the agent''s own TLS steps until it is"
                        + " loaded and active again", listener, name, now, side());
            }
        }
        return use;
    }

    private String side() {
        return terminating ? "client" : "upstream";
    }

    @SuppressWarnings("unchecked")
    private static TlsModule<Object> tls(LoadedModule m) {
        return (TlsModule<Object>) m.module();
    }

    /** Who a call is for, for the watchdog's report. */
    private record Caller(String moduleId, long connectionId) implements Watchdog.Caller {}

    /**
     * Calls {@code step} of {@code m} on this thread under the watchdog, with the module's class loader.
     *
     * @throws TlsModuleException if it threw or overran: the fault is counted, the line says what to do
     */
    private <T> T call(LoadedModule m, String step, long connectionId, Supplier<T> call) throws TlsModuleException {
        return call(m, step, connectionId, ONLY_HANDSHAKE, call);
    }

    /** What a step's fault costs, for its log line. */
    private static final String ONLY_HANDSHAKE = "only this handshake fails";

    /** {@link #call(LoadedModule, String, long, Supplier)}, with what the fault costs said in its line. */
    private <T> T call(LoadedModule m, String step, long connectionId, String consequence, Supplier<T> call) throws TlsModuleException {
        if (!m.enterCall()) throw new TlsModuleException("tls module " + m.id() + " was unloaded during the handshake; the next one uses the"
                + " agent's own TLS steps");
        Watchdog.Slot slot = host.slot();
        long s = slot == null ? 0 : slot.enter(new Caller(m.id(), connectionId), step);
        Thread t = Thread.currentThread();
        ClassLoader prev = t.getContextClassLoader();
        t.setContextClassLoader(m.loader());
        T r = null;
        Object fault = null;
        try {
            r = call.get();
        } catch (Throwable e) {
            fault = e;
        } finally {
            t.setContextClassLoader(prev);
            if (slot != null && slot.exit(s) && fault == null) fault = slot.why();
            m.exitCall();
        }
        if (fault != null) throw new TlsModuleException(fault(m, step, connectionId, fault, consequence));
        return r;
    }

    /** Counts a fault and returns the one line for the log. */
    private String fault(LoadedModule m, String step, long connectionId, Object cause) {
        return fault(m, step, connectionId, cause, ONLY_HANDSHAKE);
    }

    private String fault(LoadedModule m, String step, long connectionId, Object cause, String consequence) {
        m.recordFault("tls " + step, connectionId, cause);
        String what = cause instanceof Throwable th ? th.toString() : String.valueOf(cause);
        return "tls module " + m.id() + " failed in " + step + " (" + what + "); " + consequence + ". Fix the module, or remove"
                + " module: " + name + " from listener " + listener + "'s " + (terminating ? "tls:" : "upstream tls:") + " block to use the"
                + " agent's own TLS steps";
    }

    // ---- terminating: certificate and ALPN ---------------------------------------------------------------

    /**
     * The handler that terminates TLS on an accepted socket with this module choosing certificate and ALPN.
     *
     * @param keys whether the handshake's secrets are logged: its engine is registered for {@link TlsKeyLog}
     */
    SniHandler serverHandler(Mapping<String, SslContext> servers, long handshakeTimeoutMillis, boolean keys, long connectionId,
                             InetSocketAddress peer) {
        return new Sni(servers, handshakeTimeoutMillis, keys, connectionId, peer);
    }

    /** An SniHandler that hands the whole ClientHello to the module; without a module (or its steps), exactly the SniHandler. */
    private final class Sni extends SniHandler {
        private ByteBuf hello;
        /** The module's failure for this connection: the decoder may ask again before the socket closes, the module once. */
        private Future<SslContext> failed;
        private final boolean keys;
        private final long connectionId;
        private final InetSocketAddress peer;

        Sni(Mapping<String, SslContext> servers, long timeoutMillis, boolean keys, long connectionId, InetSocketAddress peer) {
            super(servers, timeoutMillis);
            this.keys = keys;
            this.connectionId = connectionId;
            this.peer = peer;
        }

        @Override
        protected SslHandler newSslHandler(SslContext context, ByteBufAllocator allocator) {
            SslHandler h = super.newSslHandler(context, allocator);
            if (keys) TlsKeyLog.register(h, connectionId, peer);
            return h;
        }

        @Override
        protected Future<SslContext> lookup(ChannelHandlerContext ctx, ByteBuf clientHello) throws Exception {
            hello = clientHello;
            try {
                return super.lookup(ctx, clientHello); // reads the server name, then calls lookup(ctx, hostname) below
            } finally {
                hello = null;
            }
        }

        @Override
        protected Future<SslContext> lookup(ChannelHandlerContext ctx, String hostname) throws Exception {
            LoadedModule m = module();
            if (m == null || !m.has(Hooks.TLS_SELECT_CERTIFICATE | Hooks.TLS_SELECT_ALPN)) {
                return super.lookup(ctx, hostname);
            }
            if (failed != null) return failed;
            try {
                return ctx.executor().newSucceededFuture(select(m, ctx.channel(), hostname, hello));
            } catch (TlsModuleException e) {
                return failed = ctx.executor().newFailedFuture(e);
            }
        }
    }

    private SslContext select(LoadedModule m, Channel ch, String hostname, ByteBuf raw) throws TlsModuleException {
        ClientHello hello = Hello.parse(listener, (InetSocketAddress) ch.remoteAddress(), hostname, raw);
        Cert cert;
        if (m.has(Hooks.TLS_SELECT_CERTIFICATE)) {
            TlsCertificate c = call(m, "selectCertificate", -1, () -> tls(m).selectCertificate(hello, defaults));
            if (!(c instanceof Cert ours)) {
                throw new TlsModuleException(fault(m, "selectCertificate", -1, c == null ? "returned null; return defaults.selectCertificate(hello)"
                        : "returned a certificate the agent did not make; return one from defaults.certificate(...) or defaults.configured(...)"));
            }
            cert = ours;
        } else {
            try {
                cert = (Cert) defaults.selectCertificate(hello);
            } catch (RuntimeException e) {
                throw new TlsModuleException("cannot set up the listener's own certificates for tls module " + m.id() + ": " + TlsContexts.messages(e)
                        + "; check the listener's cert and key");
            }
        }
        List<String> alpn = settings.alpn();
        if (m.has(Hooks.TLS_SELECT_ALPN) && !hello.alpn().isEmpty()) {
            String chosen = call(m, "selectAlpn", -1, () -> tls(m).selectAlpn(hello, hello.alpn(), defaults));
            if (chosen != null && !hello.alpn().contains(chosen)) {
                throw new TlsModuleException(fault(m, "selectAlpn", -1, "chose '" + chosen + "', which the client did not offer "
                        + hello.alpn() + "; return one of the offered protocols, or null for none"));
            }
            alpn = chosen == null ? List.of() : List.of(chosen);
        }
        try {
            return cert.context(alpn);
        } catch (RuntimeException e) {
            throw new TlsModuleException("cannot set up TLS with the certificate tls module " + m.id() + " chose (" + cert.subject() + "): "
                    + TlsContexts.messages(e) + "; check the certificate files and the listener's protocols and ciphers");
        }
    }

    /** A certificate a module may choose: loaded and checked once; its SslContexts built once per ALPN list. */
    final class Cert implements TlsCertificate {
        private final TlsSettings.Identity id;
        private final X509Certificate leaf;
        private final long certModified;
        private final long keyModified;
        private final ConcurrentHashMap<List<String>, SslContext> contexts = new ConcurrentHashMap<>();

        Cert(TlsSettings.Identity id, SslContext first, X509Certificate leaf) {
            this.id = id;
            this.leaf = leaf;
            this.certModified = modified(id.cert());
            this.keyModified = modified(id.key());
            contexts.put(settings.alpn(), first);
        }

        @Override
        public X509Certificate leaf() {
            return leaf;
        }

        SslContext context(List<String> alpn) {
            SslContext c = contexts.get(alpn);
            if (c != null) return c;
            return contexts.computeIfAbsent(alpn, a -> {
                try {
                    return build(id, a);
                } catch (TlsException e) {
                    throw new IllegalStateException(e.getMessage(), e);
                }
            });
        }

        boolean current() {
            return modified(id.cert()) == certModified && modified(id.key()) == keyModified;
        }

        void release() {
            contexts.values().forEach(ReferenceCountUtil::release);
        }

        @Override
        public String toString() {
            return subject() + " (" + id.cert() + ")";
        }
    }

    private static long modified(Path p) {
        try {
            return Files.getLastModifiedTime(p).toMillis();
        } catch (java.io.IOException e) {
            return -1;
        }
    }

    /** Builds a server context for {@code id} exactly as the listener's own (and through this binding: configure, verifyPeer). */
    private SslContext build(TlsSettings.Identity id, List<String> alpn) throws TlsException {
        Build prev = BUILD.get();
        BUILD.set(new Build(this, null, alpn));
        try {
            return owner.serverContext(settings, id);
        } finally {
            BUILD.set(prev);
        }
    }

    private Cert cert(TlsSettings.Identity id) throws TlsException {
        SslContext c = build(id, settings.alpn());
        X509Certificate leaf;
        try {
            leaf = TlsContexts.leaf(id);
        } catch (TlsException | RuntimeException e) {
            ReferenceCountUtil.release(c);
            throw e;
        }
        Cert cert = new Cert(id, c, leaf);
        all.add(cert);
        if (closed) cert.release();
        return cert;
    }

    /** The agent's own steps, handed to the module. */
    private final class Defaults implements TlsFunctions {

        @Override
        public TlsCertificate selectCertificate(ClientHello hello) {
            return configured(hello.serverName());
        }

        @Override
        public TlsCertificate certificate(Path cert, Path key, Path passwordFile) {
            if (!terminating) throw new IllegalStateException("certificates are chosen where the agent terminates TLS, not for the upstream");
            String k = cert.toAbsolutePath() + "\n" + key.toAbsolutePath() + "\n" + (passwordFile == null ? "" : passwordFile.toAbsolutePath());
            Cert c = files.get(k);
            if (c != null && c.current()) return c;
            try {
                Cert made = cert(new TlsSettings.Identity(cert, key, passwordFile, List.of()));
                files.put(k, made); // a replaced handle keeps its contexts until the listener stops: a module may still hold it
                return made;
            } catch (TlsException e) {
                throw new IllegalArgumentException(e.getMessage(), e);
            }
        }

        @Override
        public TlsCertificate configured(String serverName) {
            if (!terminating) throw new IllegalStateException("certificates are chosen where the agent terminates TLS, not for the upstream");
            Mapping<String, Cert> map = configured;
            if (map == null) {
                synchronized (TlsModuleBinding.this) {
                    map = configured;
                    if (map == null) {
                        try {
                            List<Cert> certs = new ArrayList<>();
                            Cert dflt = null;
                            for (TlsSettings.Identity id : settings.identities()) {
                                Cert c = cert(id);
                                certs.add(c);
                                if (dflt == null && id.names().isEmpty()) dflt = c;
                            }
                            DomainWildcardMappingBuilder<Cert> b = new DomainWildcardMappingBuilder<>(dflt != null ? dflt : certs.getFirst());
                            for (int i = 0; i < certs.size(); i++) {
                                for (String n : settings.identities().get(i).names()) b.add(n, certs.get(i));
                            }
                            configured = map = b.build();
                        } catch (TlsException e) {
                            throw new IllegalStateException(e.getMessage(), e);
                        }
                    }
                }
            }
            return map.map(serverName);
        }

        @Override
        public TlsVerdict verifyPeer(TlsPeer peer) {
            PendingCheck p = CHECK.get();
            try {
                if (p != null && p.chain == peer.chain()) {
                    p.run();
                } else {
                    X509ExtendedTrustManager t = defaultTrust();
                    X509Certificate[] chain = peer.chain().toArray(X509Certificate[]::new);
                    if (peer.terminating()) t.checkClientTrusted(chain, peer.authType());
                    else t.checkServerTrusted(chain, peer.authType());
                }
                return TlsVerdict.accept();
            } catch (CertificateException | TlsException e) {
                return TlsVerdict.refuse(TlsContexts.messages(e));
            }
        }

        @Override
        public String selectAlpn(ClientHello hello, List<String> offered) {
            for (String p : settings.alpn()) {
                if (offered.contains(p)) return p;
            }
            return null;
        }

        @Override
        public TlsParameters configure(TlsParameters configured) {
            return configured;
        }

        @Override
        public String handshakeCompleted(TlsHandshake handshake) {
            return null;
        }

        @Override
        public void handshakeFailed(TlsHandshake handshake, String reason) {}

        @Override
        public List<TlsTicketKey> sessionTicketKeys(List<TlsTicketKey> current) {
            if (!terminating) throw new IllegalStateException("session ticket keys belong to the side that terminates TLS, not the upstream's");
            try {
                return owner.defaultTicketKeys(current);
            } catch (TlsException e) {
                throw new IllegalArgumentException(e.getMessage(), e);
            }
        }

        @Override
        public void keyLog(TlsHandshake handshake, String line) {
            owner.appendKeyLog(terminating, line);
        }
    }

    // ---- session ticket keys and key log (tls 1.1) ---------------------------------------------------------

    /** Whether this side's module is loaded and overrides keyLog. */
    boolean logsKeys() {
        LoadedModule m = module();
        return m != null && m.has(Hooks.TLS_KEY_LOG);
    }

    /** Whether this side's module is loaded and overrides sessionTicketKeys. */
    boolean choosesTicketKeys() {
        LoadedModule m = module();
        return m != null && m.has(Hooks.TLS_TICKET_KEYS);
    }

    /** Hands one key log line to the module's keyLog; a fault is counted and logged once per module version. */
    void keyLog(TlsHandshake hs, String line) {
        LoadedModule m = module();
        if (m == null || !m.has(Hooks.TLS_KEY_LOG)) {
            owner.appendKeyLog(terminating, line);
            return;
        }
        try {
            call(m, "keyLog", hs.connectionId(), "the handshake goes on without its line", () -> {
                tls(m).keyLog(hs, line, defaults);
                return null;
            });
        } catch (TlsModuleException e) {
            if (!m.id().equals(keyLogFaulted)) {
                keyLogFaulted = m.id();
                LOG.log(Level.WARNING, "listener {0}: tls module {1} failed in keyLog: {2}; handshakes go on, and its further keyLog faults are"
                        + " counted, not logged", listener, m.id(), e.getMessage());
            }
        }
    }

    /**
     * The module's session ticket keys, given the ones in use (newest first).
     *
     * @throws TlsModuleException if it threw, overran or returned no usable keys: the fault is counted, the line says what to do
     */
    List<TlsTicketKey> ticketKeys(List<TlsTicketKey> current) throws TlsModuleException {
        LoadedModule m = module();
        if (m == null || !m.has(Hooks.TLS_TICKET_KEYS)) throw new IllegalStateException("no module chooses the ticket keys");
        String keep = current.isEmpty() ? "the listener uses keys of its own" : "the keys in use stay";
        List<TlsTicketKey> got = call(m, "sessionTicketKeys", -1, keep, () -> tls(m).sessionTicketKeys(current, defaults));
        boolean nulls = got != null && got.stream().anyMatch(java.util.Objects::isNull);
        if (got == null || got.isEmpty() || got.size() > 8 || nulls) {
            throw new TlsModuleException(fault(m, "sessionTicketKeys", -1, (got == null ? "returned null" : "returned " + got.size()
                    + " keys" + (nulls ? " with a null among them" : "")) + "; return one to eight keys, the one to encrypt with first, or"
                    + " defaults.sessionTicketKeys(current)", keep));
        }
        return List.copyOf(got);
    }

    // ---- verifying the peer --------------------------------------------------------------------------------

    /** The configured check of one chain, bound to its SSLEngine (which knows the name to verify). */
    private record PendingCheck(List<X509Certificate> chain, CheckRun check) {
        void run() throws CertificateException {
            check.run();
        }
    }

    private interface CheckRun {
        void run() throws CertificateException;
    }

    /** Lets the module's verifyPeer decide; its default is the configured trust manager. */
    private final class Trust extends X509ExtendedTrustManager {
        private final X509ExtendedTrustManager dflt;

        Trust(X509ExtendedTrustManager dflt) {
            this.dflt = dflt;
        }

        private void verify(X509Certificate[] chain, String authType, SSLEngine engine, CheckRun check) throws CertificateException {
            LoadedModule m = module();
            if (m == null || !m.has(Hooks.TLS_VERIFY_PEER)) {
                check.run();
                return;
            }
            InetSocketAddress addr = engine == null || engine.getPeerHost() == null ? null
                    : InetSocketAddress.createUnresolved(engine.getPeerHost(), Math.max(0, engine.getPeerPort()));
            String sni = terminating ? null : engine != null && engine.getPeerHost() != null ? engine.getPeerHost() : settings.serverName();
            TlsPeer peer = new TlsPeer(listener, terminating, addr, sni, List.of(chain), authType);
            PendingCheck prev = CHECK.get();
            CHECK.set(new PendingCheck(peer.chain(), check));
            TlsVerdict v;
            try {
                v = call(m, "verifyPeer", -1, () -> tls(m).verifyPeer(peer, defaults));
                if (v == null) throw new TlsModuleException(fault(m, "verifyPeer", -1, "returned null; return defaults.verifyPeer(peer)"));
            } catch (TlsModuleException e) {
                throw new CertificateException(e.getMessage(), e);
            } finally {
                CHECK.set(prev);
            }
            if (!v.accepted()) {
                String msg = "tls module " + m.id() + " refused the " + side() + "'s certificate (" + peer.leaf().getSubjectX500Principal().getName()
                        + "): " + v.reason();
                throw new CertificateException(msg, new TlsModuleException(msg));
            }
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
            verify(chain, authType, engine, () -> dflt.checkClientTrusted(chain, authType, engine));
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
            verify(chain, authType, engine, () -> dflt.checkServerTrusted(chain, authType, engine));
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
            verify(chain, authType, null, () -> dflt.checkClientTrusted(chain, authType, socket));
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
            verify(chain, authType, null, () -> dflt.checkServerTrusted(chain, authType, socket));
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            verify(chain, authType, null, () -> dflt.checkClientTrusted(chain, authType));
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            verify(chain, authType, null, () -> dflt.checkServerTrusted(chain, authType));
        }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return dflt.getAcceptedIssuers();
        }
    }

    /** A plain X509TrustManager (the insecure one) as an extended one. */
    private static final class Plain extends X509ExtendedTrustManager {
        private final X509TrustManager t;

        Plain(X509TrustManager t) {
            this.t = t;
        }

        @Override public void checkClientTrusted(X509Certificate[] c, String a, Socket s) throws CertificateException { t.checkClientTrusted(c, a); }
        @Override public void checkServerTrusted(X509Certificate[] c, String a, Socket s) throws CertificateException { t.checkServerTrusted(c, a); }
        @Override public void checkClientTrusted(X509Certificate[] c, String a, SSLEngine e) throws CertificateException { t.checkClientTrusted(c, a); }
        @Override public void checkServerTrusted(X509Certificate[] c, String a, SSLEngine e) throws CertificateException { t.checkServerTrusted(c, a); }
        @Override public void checkClientTrusted(X509Certificate[] c, String a) throws CertificateException { t.checkClientTrusted(c, a); }
        @Override public void checkServerTrusted(X509Certificate[] c, String a) throws CertificateException { t.checkServerTrusted(c, a); }
        @Override public X509Certificate[] getAcceptedIssuers() { return t.getAcceptedIssuers(); }
    }

    // ---- completed and failed handshakes -------------------------------------------------------------------

    /**
     * Runs the module's handshakeCompleted on a completed handshake and gives the peer the identity it returns.
     *
     * @throws TlsModuleException if the module failed: the handshake's connection must fail
     */
    void completed(long connectionId, InetSocketAddress peer, NegotiatedTls tls) throws TlsModuleException {
        LoadedModule m = module();
        if (m == null || !m.has(Hooks.TLS_HANDSHAKE_COMPLETED)) return;
        TlsHandshake hs = new TlsHandshake(listener, terminating, connectionId, peer, tls);
        String identity = call(m, "handshakeCompleted", connectionId, () -> tls(m).handshakeCompleted(hs, defaults));
        if (identity != null && !identity.isBlank()) tls.identity(identity);
    }

    /** Tells the module a handshake failed; a fault here is counted and changes nothing (the connection is failing). */
    void failed(long connectionId, InetSocketAddress peer, String reason) {
        LoadedModule m = module();
        if (m == null || !m.has(Hooks.TLS_HANDSHAKE_FAILED)) return;
        TlsHandshake hs = new TlsHandshake(listener, terminating, connectionId, peer, null);
        try {
            call(m, "handshakeFailed", connectionId, () -> {
                tls(m).handshakeFailed(hs, reason, defaults);
                return null;
            });
        } catch (TlsModuleException e) {
            // counted and logged by the fault
        }
    }

    /**
     * The listener's files are being read again: certificates the module asks for from now on are loaded anew (with the
     * settings and key log of the new contexts), even from unchanged files. Handles made before stay valid (a module may
     * hold them) until the listener stops.
     */
    void reloaded() {
        files.clear();
        configured = null;
    }

    /** For the listener's log line: {@code tls module sni-cert}. */
    String describe() {
        return "tls module " + name;
    }

    @Override
    public void close() {
        closed = true;
        all.forEach(Cert::release);
    }

    // ---- reading the ClientHello ---------------------------------------------------------------------------

    /** Reads what a module may want from the ClientHello body Netty hands the SniHandler (from client_version on). */
    static final class Hello {
        private Hello() {}

        static ClientHello parse(String listener, InetSocketAddress remote, String serverName, ByteBuf in) {
            List<String> alpn = new ArrayList<>();
            List<Integer> ciphers = new ArrayList<>();
            List<String> versions = new ArrayList<>();
            if (in != null) {
                try {
                    read(in, alpn, ciphers, versions);
                } catch (IndexOutOfBoundsException e) {
                    // a truncated hello: what was read so far (the TLS implementation rejects it anyway)
                }
            }
            return new ClientHello(listener, remote, serverName, alpn, ciphers, versions);
        }

        private static void read(ByteBuf in, List<String> alpn, List<Integer> ciphers, List<String> versions) {
            int off = in.readerIndex();
            int end = in.writerIndex();
            int legacy = in.getUnsignedShort(off);
            off += 34; // client_version, random
            off += 1 + in.getUnsignedByte(off); // session id
            int cs = in.getUnsignedShort(off);
            off += 2;
            for (int i = 0; i + 1 < cs; i += 2) {
                int c = in.getUnsignedShort(off + i);
                if (!grease(c)) ciphers.add(c);
            }
            off += cs;
            off += 1 + in.getUnsignedByte(off); // compression methods
            if (off + 2 > end) {
                versions.add(version(legacy));
                return;
            }
            int extEnd = Math.min(end, off + 2 + in.getUnsignedShort(off));
            off += 2;
            while (off + 4 <= extEnd) {
                int type = in.getUnsignedShort(off);
                int len = in.getUnsignedShort(off + 2);
                int data = off + 4;
                if (type == 16) { // application_layer_protocol_negotiation
                    int p = data + 2;
                    int listEnd = Math.min(data + len, data + 2 + in.getUnsignedShort(data));
                    while (p < listEnd) {
                        int l = in.getUnsignedByte(p);
                        alpn.add(in.toString(p + 1, l, StandardCharsets.US_ASCII));
                        p += 1 + l;
                    }
                } else if (type == 43) { // supported_versions
                    int l = in.getUnsignedByte(data);
                    for (int i = 0; i + 1 < l; i += 2) {
                        int v = in.getUnsignedShort(data + 1 + i);
                        if (!grease(v)) versions.add(version(v));
                    }
                }
                off = data + len;
            }
            if (versions.isEmpty()) versions.add(version(legacy));
        }

        private static boolean grease(int v) {
            return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
        }

        private static String version(int v) {
            return switch (v) {
                case 0x0304 -> "TLSv1.3";
                case 0x0303 -> "TLSv1.2";
                case 0x0302 -> "TLSv1.1";
                case 0x0301 -> "TLSv1";
                default -> String.format("0x%04x", v);
            };
        }
    }
}
