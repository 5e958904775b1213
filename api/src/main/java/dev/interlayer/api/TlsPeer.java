package dev.interlayer.api;

import java.net.InetSocketAddress;
import java.security.cert.X509Certificate;
import java.util.List;

/**
 * A peer's certificate chain to verify ({@link TlsModule#verifyPeer}).
 *
 * @param listener the listener's name
 * @param terminating true for a client's certificate (the agent terminates TLS), false for the upstream's
 * @param address the peer's address, when known (null otherwise)
 * @param serverName originating: the name the agent sent and verifies (SNI); terminating: null
 * @param chain the peer's chain, its leaf first
 * @param authType the key exchange's authentication type as the TLS implementation names it ({@code RSA}, {@code ECDHE_RSA}, ...)
 */
public record TlsPeer(String listener, boolean terminating, InetSocketAddress address, String serverName, List<X509Certificate> chain,
                      String authType) {

    public TlsPeer {
        chain = List.copyOf(chain);
    }

    /** The leaf certificate. */
    public X509Certificate leaf() {
        return chain.getFirst();
    }
}
