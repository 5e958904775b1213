package dev.interlayer.engine;

import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.ClientAuth;
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
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import javax.net.ssl.SSLEngine;

/**
 * The TLS contexts of one listener, built from its {@link TlsSettings} when it starts and closed when it stops: the
 * server contexts of its {@code tls:} block (one per certificate, chosen by SNI) and the client context of its
 * upstream's. Every file is read and checked here, so a bad one stops the listener with a message that names the file
 * and the fix; a connection only gets handlers.
 */
public final class TlsContexts implements AutoCloseable {

    private final Mapping<String, SslContext> servers;
    private final SslContext defaultServer;
    private final SslContext client;
    private final TlsSettings terminate;
    private final TlsSettings originate;
    private final String serverName;
    private final int upstreamPort;
    private final List<SslContext> owned;
    /** The {@code tls} modules of the accepted side and of the upstream's (null: none), see {@link TlsModuleBinding}. */
    private volatile TlsModuleBinding acceptedModule;
    private volatile TlsModuleBinding upstreamModule;

    private TlsContexts(Mapping<String, SslContext> servers, SslContext defaultServer, SslContext client, TlsSettings terminate,
                        TlsSettings originate, String serverName, int upstreamPort, List<SslContext> owned) {
        this.servers = servers;
        this.defaultServer = defaultServer;
        this.client = client;
        this.terminate = terminate;
        this.originate = originate;
        this.serverName = serverName;
        this.upstreamPort = upstreamPort;
        this.owned = owned;
    }

    /**
     * Builds the contexts of a listener terminating {@code terminate} and originating {@code originate} to
     * {@code upstream} (either may be null).
     *
     * @throws TlsException naming the file or setting that is wrong and what to do
     */
    public static TlsContexts build(TlsSettings terminate, TlsSettings originate, InetSocketAddress upstream) throws TlsException {
        List<SslContext> owned = new ArrayList<>();
        try {
            Mapping<String, SslContext> servers = null;
            SslContext defaultServer = null;
            if (terminate != null) {
                if (terminate.identities().isEmpty()) throw new TlsException("tls: needs cert and key: the certificate the agent shows clients");
                DomainWildcardMappingBuilder<SslContext> b = null;
                for (TlsSettings.Identity id : terminate.identities()) {
                    SslContext c = server(terminate, id);
                    owned.add(c);
                    if (defaultServer == null && id.names().isEmpty()) defaultServer = c;
                }
                if (defaultServer == null) defaultServer = owned.getFirst();
                b = new DomainWildcardMappingBuilder<>(defaultServer);
                for (int i = 0; i < terminate.identities().size(); i++) {
                    for (String name : terminate.identities().get(i).names()) b.add(name, owned.get(i));
                }
                servers = b.build();
            }
            SslContext client = null;
            String name = null;
            if (originate != null) {
                client = client(originate);
                owned.add(client);
                name = originate.serverName() != null ? originate.serverName() : upstream.getHostString();
            }
            return new TlsContexts(servers, defaultServer, client, terminate, originate, name, upstream == null ? 0 : upstream.getPort(), List.copyOf(owned));
        } catch (TlsException | RuntimeException e) {
            owned.forEach(ReferenceCountUtil::release);
            throw e;
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
        TlsContexts c = TlsModuleBinding.during(in, out, () -> build(terminate, originate, upstream));
        c.acceptedModule = in;
        c.upstreamModule = out;
        return c;
    }

    /** The {@code tls} module binding of the accepted side ({@code accepted}) or the upstream's; null where none is named. */
    TlsModuleBinding module(boolean accepted) {
        return accepted ? acceptedModule : upstreamModule;
    }

    /** A server context for {@code id} built as the listener's own are: for the certificates a {@code tls} module chooses. */
    static SslContext serverContext(TlsSettings s, TlsSettings.Identity id) throws TlsException {
        return server(s, id);
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

    /** The handler that terminates TLS on an accepted socket: picks the certificate by SNI, then becomes an SslHandler. */
    SniHandler serverHandler() {
        TlsModuleBinding m = acceptedModule;
        if (m != null) return m.serverHandler(servers, terminate.handshakeTimeout().toMillis());
        return new SniHandler(servers, terminate.handshakeTimeout().toMillis());
    }

    /** The handler that originates TLS to the upstream: sends the server name as SNI and verifies the certificate against it. */
    SslHandler clientHandler(ByteBufAllocator alloc) {
        SslHandler h = client.newHandler(alloc, serverName, upstreamPort);
        h.setHandshakeTimeoutMillis(originate.handshakeTimeout().toMillis());
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
        return servers != null;
    }

    boolean originates() {
        return client != null;
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

    @Override
    public void close() {
        owned.forEach(ReferenceCountUtil::release);
        if (acceptedModule != null) acceptedModule.close();
        if (upstreamModule != null) upstreamModule.close();
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
        if (s.ca() != null) b.trustManager(trust(s.ca()));
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
            if (s.ca() != null) b.trustManager(trust(s.ca()));
            b.endpointIdentificationAlgorithm("HTTPS");
        }
        return finish(b, s, false);
    }

    /** Sets what both sides share, builds, and checks the cipher list on a first engine (providers refuse unknown names late). */
    private static SslContext finish(SslContextBuilder b, TlsSettings s, boolean server) throws TlsException {
        s = TlsModuleBinding.adjust(s, b, server); // a tls module's protocols, ciphers and peer verification, where one is bound
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
