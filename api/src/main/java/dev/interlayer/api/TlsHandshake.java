package dev.interlayer.api;

import java.net.InetSocketAddress;

/**
 * A handshake that completed or failed ({@link TlsModule#handshakeCompleted}, {@link TlsModule#handshakeFailed}).
 *
 * @param listener the listener's name
 * @param terminating true where the agent terminates TLS (the peer is a client), false where it originates it
 * @param connectionId the connection's id, as the connection listing shows it
 * @param peerAddress the peer's address
 * @param tls what the handshake negotiated; null for a failed handshake
 */
public record TlsHandshake(String listener, boolean terminating, long connectionId, InetSocketAddress peerAddress, TlsInfo tls) {}
