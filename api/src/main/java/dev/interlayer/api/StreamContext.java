package dev.interlayer.api;

/**
 * The context of one data-hook call: direction, inject mark, and what the module may do with the chunk.
 *
 * <p>Valid only during the call it was passed to; the engine reuses it. All methods run on the
 * connection's event loop.
 */
public interface StreamContext {

    /** The direction the chunk travels. */
    Direction direction();

    /** This module's handle on the connection: connection info, inject, timers. Valid until detach. */
    Attachment attachment();

    /**
     * True when this chunk was injected by a module earlier in the chain rather than read from a socket
     * (the NKE mbuf tag analog).
     */
    boolean injected();

    /** The name of the module that injected this chunk, or null for original data. */
    String injectedBy();

    /** The tag the injecting module passed with {@link Attachment#inject(Direction, byte[], long)}; 0 if none. */
    long injectTag();

    /**
     * Starts (or returns the already started) replacement for this chunk: with {@link Verdict#PASS}, what
     * is written here is forwarded instead of the chunk; an empty replacement forwards nothing.
     *
     * <p>The buffer is the engine's and stays the engine's; it is valid during this call only.
     */
    Output replace();

    /**
     * Takes the whole chunk (from position 0) out of the stream; its ownership passes to the module.
     *
     * <p>Return {@link Verdict#HOLD} from the same call. Counts against the hold limit; the module
     * injects it later or releases it. Calling it twice in one call returns the same object.
     *
     * @throws IllegalStateException if holding would exceed the connection's hold limit
     */
    HeldBytes hold();
}
