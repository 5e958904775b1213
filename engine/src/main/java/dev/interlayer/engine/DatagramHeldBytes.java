package dev.interlayer.engine;

import dev.interlayer.api.HeldBytes;
import io.netty.buffer.ByteBuf;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A datagram a module took with {@code ctx.hold()}: an exact-size engine buffer owned by the module until it is
 * injected (as one datagram) or released; thread-safe.
 */
final class DatagramHeldBytes implements HeldBytes {

    private final AtomicReference<ByteBuf> buf;
    private final int length;
    private final DatagramAttachment owner;

    DatagramHeldBytes(ByteBuf owned, DatagramAttachment owner) {
        this.buf = new AtomicReference<>(owned);
        this.length = owned.readableBytes();
        this.owner = owner;
    }

    DatagramAttachment owner() {
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
            throw new IllegalStateException("held datagram of module " + owner.moduleName() + " was already injected or released");
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
