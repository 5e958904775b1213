package dev.interlayer.api;

/** Observe-only connection events delivered to {@link SocketModule#onEvent}. */
public enum ConnectionEvent {
    /** The upstream connection is established; data may flow. */
    CONNECTED,
    /** The local application half-closed (no more SEND data). */
    SEND_SHUTDOWN,
    /** The network peer half-closed (no more RECV data). */
    RECV_SHUTDOWN,
    /** The connection is closing (both directions done, reset, or closed by a module). */
    CLOSING,
    /** The far side of SEND can take more bytes again. */
    SEND_WRITABLE,
    /** The far side of SEND is backed up: pause injecting SEND data. */
    SEND_UNWRITABLE,
    /** The far side of RECV can take more bytes again. */
    RECV_WRITABLE,
    /** The far side of RECV is backed up: pause injecting RECV data. */
    RECV_UNWRITABLE
}
