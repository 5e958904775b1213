package dev.interlayer.api;

import java.nio.file.Path;
import java.util.List;

/**
 * The agent's own implementation of every {@link TlsModule} step, handed to the module's overrides so that they can
 * delegate, plus the certificate handles a module chooses among. One instance per listener side; thread-safe.
 */
public interface TlsFunctions {

    /** The default certificate choice: the listener's configured certificate for the server name, else its default one. */
    TlsCertificate selectCertificate(ClientHello hello);

    /**
     * A certificate from files, loaded and checked as the listener's own are (PEM chain, PEM PKCS#8 key, optional
     * passphrase file). Handles are cached per file: asking again for unchanged files is a map lookup, and files changed
     * since are loaded again. Call it outside the handshake path where you can (in {@code init}, or once per new file).
     *
     * @param passwordFile a file whose first line is the key's passphrase, or null
     * @throws IllegalArgumentException naming the file that is wrong and what to do
     */
    TlsCertificate certificate(Path cert, Path key, Path passwordFile);

    /** The listener's configured certificate for {@code serverName} (exact or wildcard names), else its default one. */
    TlsCertificate configured(String serverName);

    /** The default peer verification, as configured: the chain against {@code ca} and, originating, the upstream's name. */
    TlsVerdict verifyPeer(TlsPeer peer);

    /** The default ALPN choice: the first of the listener's {@code alpn} list that {@code offered} has, or null. */
    String selectAlpn(ClientHello hello, List<String> offered);

    /** The configured protocols and ciphers, unchanged. */
    TlsParameters configure(TlsParameters configured);

    /** The default: no identity (null). */
    String handshakeCompleted(TlsHandshake handshake);

    /** The default: nothing (the agent has logged the failure). */
    void handshakeFailed(TlsHandshake handshake, String reason);

    /**
     * The default ticket keys: the {@code ticket-keys} files' when set (read again when they change), else a new random key
     * followed by the newest of {@code current}. (Added in tls 1.1 with a body, so that a test's own {@code TlsFunctions}
     * written for 1.0 still compiles; the agent's reads the files.)
     */
    default List<TlsTicketKey> sessionTicketKeys(List<TlsTicketKey> current) {
        return current.isEmpty() ? List.of(TlsTicketKey.random()) : List.of(TlsTicketKey.random(), current.getFirst());
    }

    /** The default: appends {@code line} to the side's {@code key-log} file when one is set; otherwise nothing. */
    default void keyLog(TlsHandshake handshake, String line) {}
}
