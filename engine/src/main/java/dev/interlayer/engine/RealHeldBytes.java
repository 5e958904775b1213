package dev.interlayer.engine;

import dev.interlayer.api.HeldBytes;
import io.netty.buffer.ByteBuf;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Bytes a module took with {@code ctx.hold()}: an engine buffer (a retained chunk on a stream, an exact-size copy of a
 * datagram), owned by the module until it is injected or released; thread-safe.
 *
 * @param <O> the attachment that holds it (stream or datagram)
 */
final class RealHeldBytes<O extends RealHeldBytes.Owner<O>> implements HeldBytes {

    /** The attachment side of a hold: names the module and hears when the bytes leave. */
    interface Owner<O extends Owner<O>> {
        String moduleName();

        void heldGone(RealHeldBytes<O> h, int len);
    }

    private final AtomicReference<ByteBuf> buf;
    private final int length;
    private final O owner;

    RealHeldBytes(ByteBuf buf, O owner) {
        this.buf = new AtomicReference<>(buf);
        this.length = buf.readableBytes();
        this.owner = owner;
    }

    O owner() {
        return owner;
    }

    @Override
    public int length() {
        return length;
    }

    @Override
    public byte[] toByteArray() {
        ByteBuf b = buf.get();
        if (b == null) {
            throw new IllegalStateException("held bytes of module " + owner.moduleName() + " were already injected or released");
        }
        byte[] out = new byte[length];
        b.getBytes(b.readerIndex(), out);
        return out;
    }

    /** Takes the buffer (ownership to the caller), or null if already taken or released. */
    ByteBuf take() {
        ByteBuf b = buf.getAndSet(null);
        if (b != null) {
            owner.heldGone(this, length);
        }
        return b;
    }

    @Override
    public void release() {
        ByteBuf b = take();
        if (b != null) {
            b.release();
        }
    }

    @Override
    public boolean isHeld() {
        return buf.get() != null;
    }
}
