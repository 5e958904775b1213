package dev.interlayer.engine;

import dev.interlayer.api.HeldBytes;
import io.netty.buffer.ByteBuf;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A chunk a module took with {@code ctx.hold()}: a retained reference to the engine buffer, owned by the
 * module until it is injected or released; thread-safe.
 */
final class RealHeldBytes implements HeldBytes {

    private final AtomicReference<ByteBuf> buf;
    private final int length;
    private final RealAttachment owner;

    RealHeldBytes(ByteBuf retained, RealAttachment owner) {
        this.buf = new AtomicReference<>(retained);
        this.length = retained.readableBytes();
        this.owner = owner;
    }

    RealAttachment owner() {
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
