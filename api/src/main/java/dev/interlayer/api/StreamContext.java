package dev.interlayer.api;

import java.lang.foreign.MemorySegment;

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
     * <p>The buffer is the engine's and stays the engine's; it is valid during this call only. To change bytes
     * without changing their number, {@link #rewrite()} is cheaper.
     *
     * @throws IllegalStateException if {@link #rewrite()} was called in this call
     */
    Output replace();

    /**
     * Lends the whole chunk (from position 0) as a writable segment, to change its bytes in place; ownership stays
     * with the engine. With {@link Verdict#PASS} (or {@code DETACH}) what the segment holds when the call returns is
     * forwarded: the same number of bytes, changed where the module wrote.
     *
     * <p>For a module that rewrites bytes without adding or removing any (XOR, masking a field, case folding): the
     * engine copies nothing when it can write the chunk's own buffer, at most once otherwise, and a loop over a
     * segment is one the JIT vectorizes; {@link #replace()} costs a read and a write of every byte through arrays.
     *
     * <ul>
     *   <li>The segment is valid during this call and on this thread only: a later use throws
     *       {@link IllegalStateException}, a use from another thread {@link WrongThreadException}. Do not keep it.
     *   <li>Calling it again in the same call returns the same segment. The {@link ByteView} of the call reads the
     *       same bytes, so it sees what the module has written.
     *   <li>A chunk is either rewritten or replaced: {@code rewrite()} after {@link #replace()}, or the reverse, throws
     *       {@link IllegalStateException}. {@link #hold()} after {@code rewrite()} keeps the rewritten bytes.
     *   <li>The original bytes may be gone once the module writes, so a fault after {@code rewrite()} (a throw, the
     *       hook budget, a null verdict) resets the connection whatever the module's fault policy, and
     *       {@link Verdict#needMore(int)} after {@code rewrite()} is a fault: ask for more bytes first, rewrite them
     *       when they are all there.
     * </ul>
     *
     * <pre>{@code
     * MemorySegment bytes = ctx.rewrite();
     * for (long i = 0; i < bytes.byteSize(); i++) {
     *     bytes.set(ValueLayout.JAVA_BYTE, i, (byte) (bytes.get(ValueLayout.JAVA_BYTE, i) ^ key));
     * }
     * return Verdict.PASS;
     * }</pre>
     *
     * @throws IllegalStateException if {@link #replace()} was called in this call, or the call has returned
     */
    @Since(type = InterfaceType.STREAM, major = 1, minor = 2)
    MemorySegment rewrite();

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
