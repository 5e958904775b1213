package dev.interlayer.api;

import java.security.cert.X509Certificate;
import java.util.List;

/**
 * What the TLS handshake on one socket of a connection negotiated: the socket where the agent terminates TLS (a
 * listener's {@code tls:} block) or the one where it originates TLS (an upstream's {@code tls:} block). Read it with
 * {@link ConnectionInfo#tls(Side)}; it exists once that socket's handshake has completed.
 *
 * <p>On a terminating listener, modules attach after the accepted socket's handshake, so {@code attach} and every
 * later hook see it; the upstream's handshake may still be running when they attach.
 */
public interface TlsInfo {

    /** The negotiated protocol version: {@code TLSv1.2} or {@code TLSv1.3}. */
    String protocol();

    /** The negotiated cipher suite, by its standard name ({@code TLS_AES_128_GCM_SHA256}). */
    String cipherSuite();

    /**
     * The server name of the handshake: the one the client asked for (SNI) where the agent terminates, the one the agent
     * sent and verified where it originates; null when there was none.
     */
    String serverName();

    /** The application protocol agreed by ALPN ({@code h2}, {@code http/1.1}), or null when none was. */
    String alpn();

    /** True if the session was resumed (a ticket or session id) rather than made by a full handshake. */
    boolean resumed();

    /** The peer's certificate chain, its leaf first; empty when the peer sent none (a client without client-auth). */
    List<X509Certificate> peerCertificates();

    /** The subject of the peer's leaf certificate in RFC 2253 form ({@code CN=alice,O=Example}), or null when it sent none. */
    default String peerSubject() {
        List<X509Certificate> chain = peerCertificates();
        return chain.isEmpty() ? null : chain.getFirst().getSubjectX500Principal().getName();
    }

    /**
     * The identity a {@code tls} module gave the peer when the handshake completed (for example a user name mapped from
     * the client certificate), or null when none did. Selectors match it with {@code tls-identity}.
     */
    String identity();
}
