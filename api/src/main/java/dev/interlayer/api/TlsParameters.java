package dev.interlayer.api;

import java.util.List;

/**
 * The protocol versions and cipher suites of one side's TLS ({@link TlsModule#configure}).
 *
 * @param terminating true for a listener's {@code tls:} block, false for its upstream's
 * @param protocols enabled versions ({@code TLSv1.2}, {@code TLSv1.3})
 * @param ciphers enabled cipher suites by standard name; empty: the TLS implementation's defaults
 */
public record TlsParameters(boolean terminating, List<String> protocols, List<String> ciphers) {

    public TlsParameters {
        protocols = List.copyOf(protocols);
        ciphers = ciphers == null ? List.of() : List.copyOf(ciphers);
        if (protocols.isEmpty()) throw new IllegalArgumentException("at least one protocol version is needed (TLSv1.2, TLSv1.3)");
    }
}
