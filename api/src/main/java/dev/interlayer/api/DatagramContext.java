package dev.interlayer.api;

/**
 * The context of one datagram-hook call: direction, inject mark, and what the module may do with the datagram.
 *
 * <p>Valid only during the call it was passed to; the engine reuses it. All methods run on the flow's
 * event loop.
 */
public interface DatagramContext {

    /** The direction the datagram travels. */
    Direction direction();

    /** This module's handle on the flow: flow info, inject, timers. Valid until detach. */
    Attachment attachment();

    /** True when this datagram was injected by a module earlier in the chain rather than read from a socket. */
    boolean injected();

    /** The name of the module that injected this datagram, or null for original data. */
    String injectedBy();

    /** The tag the injecting module passed with {@link Attachment#inject(Direction, byte[], long)}; 0 if none. */
    long injectTag();

    /**
     * Starts (or returns the already started) replacement for this datagram: with {@link Verdict#PASS}, what is
     * written here is sent instead, as one datagram of exactly that size (an empty replacement sends nothing).
     *
     * <p>The buffer is the engine's and stays the engine's; it is valid during this call only. More than
     * 65,507 bytes is a fault when the verdict is applied.
     */
    Output replace();

    /**
     * Takes the whole datagram out of the flow; its ownership passes to the module.
     *
     * <p>Return {@link Verdict#HOLD} from the same call. Counts against the flow's hold limit; the module
     * injects it later (as one datagram) or releases it. Calling it twice in one call returns the same object.
     *
     * @throws IllegalStateException if holding would exceed the flow's hold limit
     */
    HeldBytes hold();
}
