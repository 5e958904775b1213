package dev.interlayer.api;

import java.util.List;

/**
 * The {@code tls} interface: the steps of the TLS handshakes the agent terminates (a listener's {@code tls:} block) or
 * originates (an upstream's {@code tls:} block), each with a default. A listener names one {@code tls} module per block
 * ({@code module: NAME}); the module overrides any subset of the steps below and is handed the agent's own implementation
 * of every step ({@link TlsFunctions}) so that an override can delegate: {@code return defaults.selectCertificate(hello)}.
 * A step the module does not override costs nothing: the agent runs its default directly.
 *
 * <p>Every step is module-wide (no per-connection state) and runs on the connection's event loop during the handshake,
 * under the hook budget: it must be quick and must not block; cache what it loads (a certificate handle, a parsed
 * folder). A step that throws, or runs past the budget, fails that one handshake and counts as the module's fault.
 * A module that implements only {@code tls} never attaches to connections as a stream or socket module.
 *
 * <pre>{@code
 * public final class Pinning implements TlsModule<Void> {
 *   public ModuleDescriptor descriptor() {
 *     return ModuleDescriptor.builder("pin", "1.0.0").implement(InterfaceType.TLS, 1, 0).build();
 *   }
 *   public TlsVerdict verifyPeer(TlsPeer peer, TlsFunctions defaults) {
 *     TlsVerdict chain = defaults.verifyPeer(peer);
 *     return chain.accepted() && pinned(peer.chain().getFirst()) ? chain : TlsVerdict.refuse("key not pinned");
 *   }
 * }
 * }</pre>
 *
 * <p>Version history: 1.0 selectCertificate, verifyPeer, selectAlpn, configure, handshakeCompleted, handshakeFailed;
 * 1.1 adds sessionTicketKeys and keyLog. A module built for 1.0 loads on a 1.1 agent and is offered the 1.0 steps only.
 *
 * <p>sessionTicketKeys and keyLog see secrets that decrypt the listener's traffic. Treat what they receive as such: keep it
 * off logs and out of reach of anyone who must not read the traffic.
 *
 * @param <S> the per-connection state (unused by the tls steps, which are module-wide)
 */
public interface TlsModule<S> extends Module<S> {

    /**
     * Chooses the certificate shown to a client, from its ClientHello (terminating side only). The default chooses among
     * the listener's configured certificates by the server name the client sent, as without a module.
     *
     * @return a handle from {@link TlsFunctions#certificate}, {@link TlsFunctions#configured} or {@code defaults.selectCertificate(hello)}
     */
    @Since(type = InterfaceType.TLS, major = 1, minor = 0)
    default TlsCertificate selectCertificate(ClientHello hello, TlsFunctions defaults) {
        return defaults.selectCertificate(hello);
    }

    /**
     * Decides whether the peer's certificate chain is accepted: client certificates where the agent terminates (when the
     * listener asks for them), the upstream's where it originates. The default verifies as configured: the chain against
     * {@code ca} (or the JDK's trust store) and, originating, the upstream's name.
     */
    @Since(type = InterfaceType.TLS, major = 1, minor = 0)
    default TlsVerdict verifyPeer(TlsPeer peer, TlsFunctions defaults) {
        return defaults.verifyPeer(peer);
    }

    /**
     * Chooses the application protocol (ALPN) among those the client offered (terminating side only; called only when
     * the client offered some). The default picks the first of the listener's {@code alpn} list the client offered.
     *
     * @return one of {@code offered}, or null to agree on none
     */
    @Since(type = InterfaceType.TLS, major = 1, minor = 0)
    default String selectAlpn(ClientHello hello, List<String> offered, TlsFunctions defaults) {
        return defaults.selectAlpn(hello, offered);
    }

    /**
     * Sets the protocol versions and cipher suites of a side's TLS, once, when the listener's TLS contexts are built (it
     * starts). The default returns the configured ones.
     */
    @Since(type = InterfaceType.TLS, major = 1, minor = 0)
    default TlsParameters configure(TlsParameters configured, TlsFunctions defaults) {
        return defaults.configure(configured);
    }

    /**
     * Sees a completed handshake, before any module attaches to its connection, and may give the peer an identity
     * (readable as {@link TlsInfo#identity()}, matched by the {@code tls-identity} selector). The default gives none.
     *
     * @return the peer's identity, or null for none
     */
    @Since(type = InterfaceType.TLS, major = 1, minor = 0)
    default String handshakeCompleted(TlsHandshake handshake, TlsFunctions defaults) {
        return defaults.handshakeCompleted(handshake);
    }

    /**
     * Sees a failed handshake (the agent has logged it and resets the connection). The default does nothing.
     *
     * @param reason the agent's one-line description of what failed
     */
    @Since(type = InterfaceType.TLS, major = 1, minor = 0)
    default void handshakeFailed(TlsHandshake handshake, String reason, TlsFunctions defaults) {
        defaults.handshakeFailed(handshake, reason);
    }

    /**
     * Chooses the session ticket keys of a terminating listener (provider {@code openssl}, {@code session-tickets} on): the
     * first key encrypts new tickets, every key listed decrypts tickets clients bring back. Called on the agent's TLS timer
     * thread when the listener starts, every {@code ticket-key-rotation} (at multiples of it on the wall clock, so agents
     * rotate together), and on each reload. The default reads the {@code ticket-keys} files when they are set (the first
     * file encrypts), and otherwise makes a new random key and keeps the newest of {@code current} to decrypt for one more
     * period. Return the same keys from several agents (derive them from a shared secret and the time, or read a shared
     * file) and a client resumes on any of them.
     *
     * @param current the keys in use, newest first; empty when the listener starts
     * @return one to eight keys, the one to encrypt with first
     */
    @Since(type = InterfaceType.TLS, major = 1, minor = 1)
    default List<TlsTicketKey> sessionTicketKeys(List<TlsTicketKey> current, TlsFunctions defaults) {
        return defaults.sessionTicketKeys(current);
    }

    /**
     * Sees each secret a handshake derives, as one line of the NSS key log format that Wireshark reads
     * ({@code CLIENT_RANDOM ...} for TLS 1.2; {@code CLIENT_HANDSHAKE_TRAFFIC_SECRET}, {@code SERVER_TRAFFIC_SECRET_0} and
     * the others for TLS 1.3), without a line end. Provider {@code openssl} only; runs on the connection's event loop during
     * the handshake (the handshake's {@code tls} is null). The default appends the line to the side's {@code key-log} file
     * when one is set, and otherwise does nothing.
     */
    @Since(type = InterfaceType.TLS, major = 1, minor = 1)
    default void keyLog(TlsHandshake handshake, String line, TlsFunctions defaults) {
        defaults.keyLog(handshake, line);
    }
}
