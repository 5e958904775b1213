package dev.interlayer.engine;

import dev.interlayer.api.ByteView;
import dev.interlayer.runtime.NativeChunk;
import io.netty.buffer.ByteBuf;
import java.nio.ByteBuffer;

/**
 * The {@link ByteView} lent to one module for one call, over an engine-owned {@link ByteBuf}.
 *
 * <p>One instance per attachment, re-pointed at each call and invalidated when the call returns, so
 * the hot path allocates nothing and a use after the call fails with the module's name.
 *
 * <p>The buffer reference is only stored when it changes and is not cleared after the call (a {@code lent}
 * flag says whether the view may be used): a reference store into this long-lived object costs a GC write
 * barrier, a boolean does not. The stale reference is never read once the call has returned.
 */
final class ChunkView implements ByteView, NativeChunk {

    private final String owner;
    private final ChainLink link;
    /** The hook the view was last lent to, for the message of a use after the call. */
    private String hook = "its hook";
    private ByteBuf buf;
    private boolean lent;
    private int base;
    private int length;
    private int pos;

    ChunkView(String owner) {
        this(owner, null);
    }

    /** A view lent by {@code link}'s calls, which reports a use after a call as a breach. */
    ChunkView(String owner, ChainLink link) {
        this.owner = owner;
        this.link = link;
    }

    /** As {@link #lend(ByteBuf)}, for a call of {@code hook} (named if the view is used after it returned). */
    void lend(ByteBuf b, String hook) {
        if (this.hook != hook) this.hook = hook; // a constant, mostly the same as last time: skip the write barrier
        lend(b);
    }

    void lend(ByteBuf b) {
        if (buf != b) buf = b;
        lent = true;
        base = b.readerIndex();
        length = b.readableBytes();
        pos = 0;
    }

    /** Points the view at {@code b} (the same bytes, copied for a rewrite), keeping its position. */
    void repoint(ByteBuf b) {
        buf = b;
        base = b.readerIndex();
    }

    /** Index in the buffer of the view's first byte. */
    int base() {
        return base;
    }

    void invalidate() {
        lent = false;
    }

    ByteBuf buffer() {
        check();
        return buf;
    }

    int absolute() {
        return base + pos;
    }

    private void check() {
        if (!lent) {
            String why = "module " + owner + " used a ByteView after its call returned (it was last lent to " + hook + ");"
                    + " copy the bytes (readFully, copyRemaining) or keep the chunk with ctx.hold()";
            if (link != null) link.breach(ChainTrace.Breach.VIEW_AFTER_CALL, why);
            throw new IllegalStateException(why);
        }
    }

    @Override
    public int length() {
        check();
        return length;
    }

    @Override
    public int position() {
        check();
        return pos;
    }

    @Override
    public int remaining() {
        check();
        return length - pos;
    }

    @Override
    public byte readByte() {
        check();
        if (pos >= length) {
            throw new IndexOutOfBoundsException("readByte at the end of the view (length " + length + ")");
        }
        return buf.getByte(base + pos++);
    }

    @Override
    public byte peek(int offset) {
        check();
        if (offset < 0 || offset >= length - pos) {
            throw new IndexOutOfBoundsException("peek(" + offset + ") with " + (length - pos) + " bytes remaining");
        }
        return buf.getByte(base + pos + offset);
    }

    @Override
    public boolean readFully(byte[] dst, int off, int len) {
        check();
        if (len < 0 || off < 0 || off + len > dst.length) {
            throw new IndexOutOfBoundsException("readFully(dst[" + dst.length + "], " + off + ", " + len + ")");
        }
        if (len > length - pos) {
            return false;
        }
        buf.getBytes(base + pos, dst, off, len);
        pos += len;
        return true;
    }

    @Override
    public int read(byte[] dst, int off, int len) {
        check();
        if (len < 0 || off < 0 || off + len > dst.length) {
            throw new IndexOutOfBoundsException("read(dst[" + dst.length + "], " + off + ", " + len + ")");
        }
        int n = Math.min(len, length - pos);
        buf.getBytes(base + pos, dst, off, n);
        pos += n;
        return n;
    }

    @Override
    public void advance(int n) {
        check();
        if (n < 0 || n > length - pos) {
            throw new IndexOutOfBoundsException("advance(" + n + ") with " + (length - pos) + " bytes remaining");
        }
        pos += n;
    }

    @Override
    public void revert(int n) {
        check();
        if (n < 0 || n > pos) {
            throw new IndexOutOfBoundsException("revert(" + n + ") at position " + pos);
        }
        pos -= n;
    }

    @Override
    public int indexOf(byte b) {
        check();
        int i = buf.indexOf(base + pos, base + length, b);
        return i < 0 ? -1 : i - base - pos;
    }

    @Override
    public byte[] copyRemaining() {
        check();
        byte[] out = new byte[length - pos];
        buf.getBytes(base + pos, out);
        return out;
    }

    @Override
    public long address() {
        check();
        return length == 0 || !buf.hasMemoryAddress() ? 0 : buf.memoryAddress() + base;
    }

    @Override
    public void copyTo(ByteBuffer dst) {
        check();
        dst.clear().limit(length);
        buf.getBytes(base, dst);
    }
}
