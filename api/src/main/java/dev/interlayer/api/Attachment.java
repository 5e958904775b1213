package dev.interlayer.api;

import java.time.Duration;

/**
 * One module's handle on one connection, valid from {@link Module#attach} until {@link Module#detach}.
 *
 * <p>Modules keep it in their per-connection state to act later: inject bytes, set timers, close.
 * Methods marked "any thread" may be called from any thread, including timers and the module's own
 * threads; the engine runs the effect on the connection's event loop, in call order. After detach every
 * method is a no-op returning false or null, never an error, so a late timer cannot break anything.
 *
 * <p>On a UDP flow ({@link DatagramModule}) each inject sends exactly one datagram, {@link #close()} and
 * {@link #abort(String)} end the flow (there is no FIN or RST in UDP), and {@link #isWritable(Direction)} is
 * false while the socket's send queue is over its high-water mark (datagrams are then dropped, as a full
 * kernel buffer would).
 */
public interface Attachment {

    /** What is known about the connection (addresses, listener, application). */
    ConnectionInfo connection();

    /** The name of the module this attachment belongs to. */
    String moduleName();

    /**
     * Sends a copy of {@code bytes} in {@code direction}, entering the chain right after this module. Any thread.
     *
     * <p>Order is kept per direction. Downstream modules see the data with
     * {@link StreamContext#injected()} true and {@link StreamContext#injectedBy()} set to this module.
     *
     * @return false if the connection is closed or this module is detached (nothing sent)
     */
    default boolean inject(Direction direction, byte[] bytes) {
        return inject(direction, bytes, 0L);
    }

    /**
     * Sends a copy of {@code bytes} in {@code direction} with a module-defined tag visible downstream
     * as {@link StreamContext#injectTag()}. Any thread.
     *
     * @return false if the connection is closed or this module is detached (nothing sent)
     */
    boolean inject(Direction direction, byte[] bytes, long tag);

    /**
     * Sends held bytes in {@code direction}; their ownership passes back to the engine. Any thread.
     *
     * @return false if the connection is closed or this module is detached (the bytes are released)
     * @throws IllegalStateException if {@code held} was already injected or released
     */
    boolean inject(Direction direction, HeldBytes held);

    /**
     * Sends the bytes written to {@code output}; its ownership passes back to the engine. Any thread.
     *
     * @return false if the connection is closed or this module is detached (the buffer is released)
     */
    boolean inject(Direction direction, Output output);

    /**
     * Returns a new engine-allocated output whose ownership passes to the module until it is injected or
     * discarded. Any thread.
     *
     * @param sizeHint expected size in bytes; the output grows as needed up to the hold limit
     */
    Output allocate(int sizeHint);

    /**
     * Runs {@code task} on the connection's event loop after {@code delay}, with the same fault handling as a
     * hook. Cancelled automatically at detach. Any thread.
     *
     * @return a handle to cancel the timer
     */
    Cancellable schedule(Duration delay, Runnable task);

    /**
     * True while the far side of {@code direction} accepts more bytes without buffering beyond the
     * engine's high-water mark; a module that injects should pause while it is false. Any thread.
     */
    boolean isWritable(Direction direction);

    /** Bytes currently held or buffered by this module on this connection (counted against the limit). */
    long heldBytes();

    /** Closes the connection gracefully after flushing forwarded data. Any thread. */
    void close();

    /** Resets the connection and records {@code reason} against this module. Any thread. */
    void abort(String reason);

    /** True until the module has been detached from the connection. */
    boolean isAttached();
}
