package dev.interlayer.engine;

import dev.interlayer.api.ByteView;
import dev.interlayer.api.Output;
import dev.interlayer.runtime.NativeOutput;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;

/**
 * An engine buffer a module writes into: a chunk's replacement (reused per attachment, valid during one
 * call) or an allocated output for injection (owned by the module until injected or discarded).
 *
 * <p>Writes are capped at the connection's hold limit so a runaway module cannot grow memory without bound.
 */
final class RealOutput implements Output, NativeOutput {

    private final ByteBufAllocator alloc;
    private final String owner;
    private final ChainLink link;
    private final long limit;
    private ByteBuf buf;
    private boolean open;
    /** The capacity the first write allocates at least: what the module is expected to write. */
    private int sizeHint;

    RealOutput(ByteBufAllocator alloc, String owner, long limit) {
        this(alloc, owner, limit, null);
    }

    /** An output of {@code link}'s module, which reports a write after it stopped being valid as a breach. */
    RealOutput(ByteBufAllocator alloc, String owner, long limit, ChainLink link) {
        this.alloc = alloc;
        this.owner = owner;
        this.limit = limit;
        this.link = link;
    }

    /**
     * Opens the output for a new use; the buffer is allocated on the first write, with room for at least
     * {@code sizeHint} bytes: a replacement is sized for the chunk it replaces, so writing it out piece by piece
     * does not grow (and copy) the buffer again and again.
     */
    void open(int sizeHint) {
        open = true;
        this.sizeHint = (int) Math.min(Math.max(sizeHint, 0), Math.min(limit, Integer.MAX_VALUE));
    }

    /**
     * Opens the output holding a copy of {@code len} bytes of {@code src} from {@code index}, in direct memory of
     * exactly that size (for {@link Rewrite}: a segment needs an address, and the copy never grows or moves).
     * Ownership stays with the output.
     */
    ByteBuf openCopy(ByteBuf src, int index, int len) {
        if (len > limit) {
            throw new IllegalStateException("module " + owner + " rewrote a chunk of " + len + " bytes, over the connection's"
                    + " hold limit (" + limit + " bytes)");
        }
        open(len);
        buf = alloc.directBuffer(len, len);
        buf.writeBytes(src, index, len);
        return buf;
    }

    boolean isOpen() {
        return open;
    }

    /** Takes the written bytes out (ownership to the caller) and closes the output. */
    ByteBuf take() {
        ByteBuf b = buf == null ? alloc.buffer(0) : buf;
        buf = null;
        open = false;
        return b;
    }

    /** Closes the output, releasing what was written. */
    void closeAndRelease() {
        if (buf != null) {
            buf.release();
            buf = null;
        }
        open = false;
    }

    private ByteBuf target(int more) {
        if (!open) {
            String why = "module " + owner + " wrote to an Output that is no longer valid"
                    + " (replacements live for one call; allocated outputs until injected or discarded)";
            if (link != null) link.breach(ChainTrace.Breach.REPLACE_AFTER_CALL, why);
            throw new IllegalStateException(why);
        }
        int have = buf == null ? 0 : buf.writerIndex();
        if ((long) have + more > limit) {
            throw new IllegalStateException("module " + owner + " wrote more than the connection's hold limit (" + limit
                    + " bytes) into one Output");
        }
        if (buf == null) {
            buf = alloc.buffer(Math.max(more, Math.max(sizeHint, 256)));
        }
        return buf;
    }

    @Override
    public Output writeByte(int b) {
        target(1).writeByte(b);
        return this;
    }

    @Override
    public Output write(byte[] src, int off, int len) {
        target(len).writeBytes(src, off, len);
        return this;
    }

    @Override
    public Output write(ByteView view) {
        return write(view, view.remaining());
    }

    @Override
    public Output write(ByteView view, int len) {
        if (len < 0 || len > view.remaining()) {
            throw new IndexOutOfBoundsException("write(view, " + len + ") with " + view.remaining() + " bytes remaining");
        }
        ByteBuf t = target(len);
        if (view instanceof ChunkView cv) {
            t.writeBytes(cv.buffer(), cv.absolute(), len);
            cv.advance(len);
        } else {
            byte[] tmp = new byte[Math.min(len, 8192)];
            int left = len;
            while (left > 0) {
                int n = view.read(tmp, 0, Math.min(left, tmp.length));
                t.writeBytes(tmp, 0, n);
                left -= n;
            }
        }
        return this;
    }

    @Override
    public int size() {
        return buf == null ? 0 : buf.readableBytes();
    }

    @Override
    public void discard() {
        closeAndRelease();
    }

    /** Grows the buffer by {@code len} bytes for a C module to write; the buffer moves to direct memory if it is not there. */
    @Override
    public long reserve(int len) {
        ByteBuf t = target(len);
        if (!t.isDirect()) {
            ByteBuf d = alloc.directBuffer(Math.max(t.capacity(), t.writerIndex() + len));
            d.writeBytes(t, t.readerIndex(), t.readableBytes());
            t.release();
            buf = t = d;
        }
        t.ensureWritable(len);
        int at = t.writerIndex();
        t.writerIndex(at + len);
        return t.hasMemoryAddress() ? t.memoryAddress() + at
                : java.lang.foreign.MemorySegment.ofBuffer(t.internalNioBuffer(at, len)).address();
    }
}
