package dev.interlayer.engine;

import io.netty.buffer.ByteBuf;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The writable segment {@code ctx.rewrite()} lends a module for one call (one per context, reused).
 *
 * <p>The segment is the chunk's own memory when the engine may write it (a direct buffer only the engine holds:
 * no other reference, not read-only, not a view of another buffer), else a copy the context's replacement holds.
 * It lives in a confined arena that is closed when the call returns, so a later use throws
 * {@link IllegalStateException} and a use from another thread {@link WrongThreadException}: a module can never
 * write into a buffer the engine has already forwarded, freed or reused.
 */
final class Rewrite {

    private Arena arena;
    private MemorySegment segment;
    private ByteBuf target;

    boolean isOpen() {
        return arena != null;
    }

    MemorySegment segment() {
        return segment;
    }

    /** The buffer the segment writes: the chunk itself, or the copy in the replacement. */
    ByteBuf target() {
        return target;
    }

    /**
     * {@code ctx.rewrite()} for {@code module}'s call on a {@code what} ("chunk", "datagram"): the open segment, or a
     * new one over {@code len} bytes of {@code chunk} from {@code index} (see {@link #open}) once the call's
     * rules allow it: not after {@code ctx.replace()} ({@code replacement} open) nor after {@code ctx.hold()}.
     */
    MemorySegment lend(String module, String what, boolean held, ByteBuf chunk, int index, int len, RealOutput replacement) {
        if (isOpen()) {
            return segment;
        }
        if (replacement.isOpen()) {
            throw new IllegalStateException("module " + module + " called ctx.rewrite() after ctx.replace() in the same call;"
                    + " a " + what + " is either rewritten (same length) or replaced, not both");
        }
        if (held) {
            throw new IllegalStateException("module " + module + " called ctx.rewrite() after ctx.hold() in the same call;"
                    + " rewrite first, then hold (the held " + what + " keeps the rewritten bytes)");
        }
        return open(chunk, index, len, replacement);
    }

    /** What {@code ctx.replace()} throws once the call has rewritten its {@code what}. */
    static IllegalStateException replaceAfterRewrite(String module, String what) {
        return new IllegalStateException("module " + module + " called ctx.replace() after ctx.rewrite() in the same call;"
                + " a " + what + " is either rewritten (same length) or replaced, not both");
    }

    /**
     * Lends {@code len} bytes of {@code chunk} from {@code index}: in place when the engine may write them, else a
     * copy opened in {@code replacement} (which then holds the bytes to forward).
     */
    MemorySegment open(ByteBuf chunk, int index, int len, RealOutput replacement) {
        ByteBuf t = chunk;
        int at = index;
        if (len > 0 && !writableInPlace(chunk)) {
            t = replacement.openCopy(chunk, index, len);
            at = t.readerIndex();
        }
        Arena a = Arena.ofConfined();
        MemorySegment base = len == 0 ? MemorySegment.NULL
                : t.hasMemoryAddress() ? MemorySegment.ofAddress(t.memoryAddress() + at)
                : MemorySegment.ofBuffer(t.nioBuffer(at, len));
        segment = base.reinterpret(len, a, null);
        arena = a;
        target = t;
        return segment;
    }

    /** Ends the loan; idempotent. The buffer itself is the caller's to forward or release. */
    void close() {
        if (arena != null) {
            arena.close();
            arena = null;
            segment = null;
            target = null;
        }
    }

    /**
     * True when writing {@code b} changes no bytes anybody else can see: direct (the segment needs an address), not
     * read-only, one reference (the engine's), and not a slice or duplicate of another buffer. Netty's leak detector
     * wraps a buffer without changing what it shows (same memory, capacity and indices): such a wrapper is looked
     * through; any other buffer with an inner one is a view whose bytes another view may show.
     */
    static boolean writableInPlace(ByteBuf b) {
        if (!b.isDirect() || b.isReadOnly() || b.refCnt() != 1 || b.nioBufferCount() != 1) {
            return false;
        }
        ByteBuf inner = b.unwrap();
        return inner == null || inner.unwrap() == null && sameView(b, inner);
    }

    private static boolean sameView(ByteBuf a, ByteBuf b) {
        return a.capacity() == b.capacity() && a.readerIndex() == b.readerIndex() && a.writerIndex() == b.writerIndex()
                && a.hasMemoryAddress() == b.hasMemoryAddress() && (!a.hasMemoryAddress() || a.memoryAddress() == b.memoryAddress());
    }
}
