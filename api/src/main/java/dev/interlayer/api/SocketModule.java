package dev.interlayer.api;

import java.net.InetSocketAddress;

/**
 * The {@code socket} interface: out-of-band operations a module may allow, deny or change before the
 * engine acts, a {@code control} request channel, and observe-only events.
 *
 * <p>Per-connection hooks run on the connection's event loop. {@link #onListen} and {@link #control} are
 * module-wide (no connection) and may run on any thread. Version history: 1.0 all hooks below.
 *
 * @param <S> the per-connection state
 */
public interface SocketModule<S> extends Module<S> {

    /**
     * Decides the engine's connect to the upstream: allow, deny, or redirect to another address.
     *
     * @param target where the engine is about to connect (after earlier modules' redirects)
     */
    @Since(type = InterfaceType.SOCKET, major = 1, minor = 0)
    default SocketDecision onConnect(S state, Attachment attachment, InetSocketAddress target) {
        return SocketDecision.allow();
    }

    /**
     * Decides the local address of the upstream socket: allow, deny, or bind to a chosen address.
     *
     * @param local the address the engine would bind, or null for an ephemeral one
     */
    @Since(type = InterfaceType.SOCKET, major = 1, minor = 0)
    default SocketDecision onBind(S state, Attachment attachment, InetSocketAddress local) {
        return SocketDecision.allow();
    }

    /**
     * Decides whether a listener may start; module-wide, before any connection.
     *
     * <p>A deny stops that listener from starting; the agent reports it with this module's reason.
     */
    @Since(type = InterfaceType.SOCKET, major = 1, minor = 0)
    default SocketDecision onListen(ListenerInfo listener) {
        return SocketDecision.allow();
    }

    /**
     * Decides an option the engine (listener config) or another module is about to set: allow, deny, or
     * change the value.
     *
     * @param side which of the connection's two sockets
     * @param value the requested value, of the option's {@link SocketOption#valueType()}
     */
    @Since(type = InterfaceType.SOCKET, major = 1, minor = 0)
    default OptionDecision onSetOption(S state, Attachment attachment, Side side, SocketOption option, Object value) {
        return OptionDecision.allow();
    }

    /**
     * Sees an option value being read and returns the value to report (usually {@code value}).
     */
    @Since(type = InterfaceType.SOCKET, major = 1, minor = 0)
    default Object onGetOption(S state, Attachment attachment, Side side, SocketOption option, Object value) {
        return value;
    }

    /**
     * Answers a module-specific request from the control plane (the ioctl / kernel-control analog).
     *
     * <p>Module-wide; may run on any thread, concurrently with data hooks. The default answers
     * "unsupported".
     */
    @Since(type = InterfaceType.SOCKET, major = 1, minor = 0)
    default ControlResponse control(ControlRequest request) {
        return ControlResponse.error("module does not answer control requests");
    }

    /** Observes a connection event; cannot change anything. */
    @Since(type = InterfaceType.SOCKET, major = 1, minor = 0)
    default void onEvent(S state, Attachment attachment, ConnectionEvent event) {}
}
