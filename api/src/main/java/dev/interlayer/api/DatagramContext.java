package dev.interlayer.api;

import java.lang.foreign.MemorySegment;

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
     * 65,507 bytes is a fault when the verdict is applied. To change bytes without changing their number,
     * {@link #rewrite()} is cheaper.
     *
     * @throws IllegalStateException if {@link #rewrite()} was called in this call
     */
    Output replace();

    /**
     * Lends the whole datagram as a writable segment, to change its bytes in place; ownership stays with the
     * engine. With {@link Verdict#PASS} (or {@code DETACH}) what the segment holds when the call returns is sent,
     * as one datagram of the same size.
     *
     * <p>The rules are those of {@link StreamContext#rewrite()}: valid during this call and on this thread only;
     * the same segment if called again; the view reads the rewritten bytes; exclusive with {@link #replace()};
     * {@link #hold()} after it keeps the rewritten bytes; a fault after it drops the datagram whatever the module's
     * fault policy (the original bytes may be gone).
     *
     * @throws IllegalStateException if {@link #replace()} was called in this call, or the call has returned
     */
    @Since(type = InterfaceType.DATAGRAM, major = 1, minor = 1)
    MemorySegment rewrite();

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
