package dev.interlayer.api;

import java.net.InetSocketAddress;
import java.util.List;

/**
 * What a client asked for in its TLS ClientHello, as a {@code tls} module sees it when it chooses a certificate or an
 * application protocol.
 *
 * @param listener the name of the listener that accepted the connection
 * @param remoteAddress the client's address
 * @param serverName the server name the client asked for (SNI), or null when it sent none
 * @param alpn the application protocols the client offered, in its order; empty when it offered none
 * @param cipherSuites the cipher suites the client offered, as TLS code points ({@code 0x1301} is TLS_AES_128_GCM_SHA256)
 * @param versions the protocol versions the client offered ({@code TLSv1.3}, {@code TLSv1.2}, ...): from its
 *                 supported_versions extension, else its legacy version
 */
public record ClientHello(String listener, InetSocketAddress remoteAddress, String serverName, List<String> alpn,
                          List<Integer> cipherSuites, List<String> versions) {

    public ClientHello {
        alpn = alpn == null ? List.of() : List.copyOf(alpn);
        cipherSuites = cipherSuites == null ? List.of() : List.copyOf(cipherSuites);
        versions = versions == null ? List.of() : List.copyOf(versions);
    }
}
