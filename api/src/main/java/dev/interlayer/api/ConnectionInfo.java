package dev.interlayer.api;

import java.net.InetSocketAddress;
import java.time.Instant;

/**
 * What the engine knows about one proxied connection; fixed at accept time, except for the counters.
 *
 * <p>"Local" and "remote" are from the local application's point of view, so a selector on remote
 * ports means the same thing for client and server listeners.
 */
public interface ConnectionInfo {

    /** Agent-unique id of the connection. */
    long id();

    /** The transport protocol. */
    Protocol protocol();

    /** Name of the listener that accepted the connection. */
    String listener();

    /** The listener's role. */
    Role role();

    /** The local application's end of the connection. */
    InetSocketAddress localAddress();

    /** The remote (network) end of the connection. */
    InetSocketAddress remoteAddress();

    /** The local process behind the connection, found through /proc where possible; null when unknown. */
    AppInfo app();

    /** When the connection was accepted. */
    Instant startedAt();

    /** Bytes read from the local application so far (before modules). */
    long bytesSent();

    /** Bytes read from the network so far (before modules). */
    long bytesReceived();

    /**
     * What TLS negotiated on one of the connection's sockets: {@link Side#REMOTE} is the socket to the network peer,
     * {@link Side#LOCAL} the one to the local application. Null where that socket is plain, or its handshake has not
     * completed yet.
     */
    default TlsInfo tls(Side side) {
        return null;
    }
}
