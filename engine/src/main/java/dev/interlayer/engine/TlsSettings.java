package dev.interlayer.engine;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * TLS on one side of a listener's connections: a listener's {@code tls:} block (the agent terminates TLS on the sockets it
 * accepts) or an upstream's (the agent originates TLS to the upstream). Files are read when the listener starts, by
 * {@link TlsContexts}, and again when they change or on {@code interlayer tls reload}.
 *
 * @param provider the TLS implementation: BoringSSL (netty-tcnative) or the JDK's
 * @param identities certificates with their keys; terminating, the first without names is the default and the others are
 *                   chosen by the server name the client sends (SNI); originating, at most one: the client certificate
 * @param ca PEM CA certificates peers must chain to: terminating, client certificates; originating, the upstream's
 *           (null: the JDK's default trust store)
 * @param clientAuth terminating: whether a client certificate is asked for and required
 * @param protocols enabled versions ({@code TLSv1.2}, {@code TLSv1.3}); empty: both
 * @param ciphers enabled cipher suites (names as the provider knows them); empty: the provider's defaults
 * @param alpn application protocols offered (originating) or accepted (terminating), in order of preference; empty: none
 * @param handshakeTimeout a handshake not done in this time fails its connection
 * @param serverName originating: the name sent as SNI and verified against the upstream's certificate
 * @param verify originating: verify the upstream's certificate chain and name ({@code false} only for tests)
 * @param crl CRL files (PEM or DER) the peer's chain is checked against; each signed by a CA in {@code ca}; empty: none
 * @param sessionTickets terminating: whether clients get session tickets to resume with (BoringSSL: keys the agent
 *                       rotates every {@code ticketKeyRotation})
 * @param ticketKeyRotation terminating, BoringSSL: how long one ticket key encrypts new tickets; tickets it encrypted are
 *                          accepted for one more period
 * @param module the name of the {@code tls} module whose steps replace the defaults on this side (see {@link TlsModuleBinding}),
 *               or null for none
 * @param keyLog a file the secrets of this side's handshakes are appended to, in the NSS key log format Wireshark reads
 *               (BoringSSL only), or null for none
 * @param ticketKeys terminating, BoringSSL: files of 48 bytes each (a session ticket key: name, HMAC key, AES key), the
 *                   first encrypts new tickets and all decrypt, shared by agents that should resume each other's sessions;
 *                   empty: the agent makes and rotates its own keys
 */
public record TlsSettings(Provider provider, List<Identity> identities, Path ca, ClientAuth clientAuth, List<String> protocols,
                          List<String> ciphers, List<String> alpn, Duration handshakeTimeout, String serverName, boolean verify,
                          List<Path> crl, boolean sessionTickets, Duration ticketKeyRotation, String module, Path keyLog,
                          List<Path> ticketKeys) {

    /** Versions when none are set. */
    public static final List<String> DEFAULT_PROTOCOLS = List.of("TLSv1.2", "TLSv1.3");
    /** {@code handshake-timeout} when not set. */
    public static final Duration DEFAULT_HANDSHAKE_TIMEOUT = Duration.ofSeconds(10);
    /** {@code ticket-key-rotation} when not set. */
    public static final Duration DEFAULT_TICKET_KEY_ROTATION = Duration.ofHours(1);
    /** The shortest {@code ticket-key-rotation}: shorter periods only make clients do full handshakes. */
    public static final Duration MIN_TICKET_KEY_ROTATION = Duration.ofSeconds(1);

    /** The TLS implementation asked for. */
    public enum Provider {
        /** BoringSSL through netty-tcnative; the JDK's if the native library does not load. */
        OPENSSL,
        /** The JDK's SSLEngine. */
        JDK
    }

    /** Whether a terminating listener asks the client for a certificate. */
    public enum ClientAuth {
        NONE, OPTIONAL, REQUIRED
    }

    /**
     * A certificate chain and its private key.
     *
     * @param cert PEM certificate chain, the leaf first
     * @param key PEM PKCS#8 private key, encrypted if {@code passwordFile} is set
     * @param passwordFile file whose first line is the key's passphrase, or null
     * @param names server names this certificate serves (exact, or {@code *.example.com}); empty: the default
     */
    public record Identity(Path cert, Path key, Path passwordFile, List<String> names) {
        public Identity {
            if (cert == null || key == null) throw new IllegalArgumentException("a TLS identity needs cert and key");
            names = names == null ? List.of() : List.copyOf(names);
        }
    }

    public TlsSettings {
        if (provider == null) provider = Provider.OPENSSL;
        identities = identities == null ? List.of() : List.copyOf(identities);
        if (clientAuth == null) clientAuth = ClientAuth.NONE;
        protocols = protocols == null || protocols.isEmpty() ? DEFAULT_PROTOCOLS : List.copyOf(protocols);
        ciphers = ciphers == null ? List.of() : List.copyOf(ciphers);
        alpn = alpn == null ? List.of() : List.copyOf(alpn);
        if (handshakeTimeout == null) handshakeTimeout = DEFAULT_HANDSHAKE_TIMEOUT;
        if (handshakeTimeout.isNegative() || handshakeTimeout.isZero()) throw new IllegalArgumentException("handshake-timeout must be positive");
        if (module != null && module.isBlank()) module = null;
        crl = crl == null ? List.of() : List.copyOf(crl);
        ticketKeys = ticketKeys == null ? List.of() : List.copyOf(ticketKeys);
        if (ticketKeyRotation == null) ticketKeyRotation = DEFAULT_TICKET_KEY_ROTATION;
        if (ticketKeyRotation.compareTo(MIN_TICKET_KEY_ROTATION) < 0) {
            throw new IllegalArgumentException("ticket-key-rotation must be at least " + MIN_TICKET_KEY_ROTATION.toSeconds() + "s");
        }
    }

    /** Settings without a {@code tls} module. */
    public TlsSettings(Provider provider, List<Identity> identities, Path ca, ClientAuth clientAuth, List<String> protocols,
                       List<String> ciphers, List<String> alpn, Duration handshakeTimeout, String serverName, boolean verify,
                       List<Path> crl, boolean sessionTickets, Duration ticketKeyRotation) {
        this(provider, identities, ca, clientAuth, protocols, ciphers, alpn, handshakeTimeout, serverName, verify, crl, sessionTickets,
                ticketKeyRotation, null, null, null);
    }

    /** Settings without a {@code tls} module or CRLs, with session tickets rotated every {@link #DEFAULT_TICKET_KEY_ROTATION}. */
    public TlsSettings(Provider provider, List<Identity> identities, Path ca, ClientAuth clientAuth, List<String> protocols,
                       List<String> ciphers, List<String> alpn, Duration handshakeTimeout, String serverName, boolean verify) {
        this(provider, identities, ca, clientAuth, protocols, ciphers, alpn, handshakeTimeout, serverName, verify, List.of(), true, null, null, null, null);
    }

    /** Every file these settings name: certificates, keys, passphrase files, CA, CRLs and ticket keys; what a reload re-reads. */
    public List<Path> files() {
        List<Path> out = new java.util.ArrayList<>();
        for (Identity id : identities) {
            out.add(id.cert());
            out.add(id.key());
            if (id.passwordFile() != null) out.add(id.passwordFile());
        }
        if (ca != null) out.add(ca);
        out.addAll(crl);
        out.addAll(ticketKeys);
        return out;
    }
}
