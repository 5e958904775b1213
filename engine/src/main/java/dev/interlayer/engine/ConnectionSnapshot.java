package dev.interlayer.engine;

import java.net.InetSocketAddress;
import java.time.Instant;
import java.util.List;

/**
 * A point-in-time view of one open connection, for the control plane and the CLI.
 *
 * @param id connection id
 * @param listener listener name
 * @param local the local application's end
 * @param remote the network end
 * @param app local process name, or null
 * @param startedAt accept time
 * @param bytesSent bytes read from the local application
 * @param bytesReceived bytes read from the network
 * @param modules ids ({@code name@version}) of the modules attached, in chain order
 * @param protocol tcp for a connection, udp for a flow of datagrams (a flow's bytes count datagram payloads)
 * @param tls what TLS negotiated: {@code in:} the accepted socket's, {@code out:} the upstream's (protocol, cipher, SNI,
 *            ALPN), or null for a connection without TLS
 */
public record ConnectionSnapshot(long id, String listener, InetSocketAddress local, InetSocketAddress remote, String app,
                                 Instant startedAt, long bytesSent, long bytesReceived, List<String> modules,
                                 dev.interlayer.api.Protocol protocol, String tls) {}
