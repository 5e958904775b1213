package dev.interlayer.testkit;

import dev.interlayer.api.HeldBytes;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A chunk a module took with {@code ctx.hold()}: a private copy counted against the connection's hold
 * limit until it is injected or released. Thread-safe, as the SDK allows any thread.
 */
final class FakeHeldBytes implements HeldBytes {

    private final HarnessConnection.Slot owner;
    private final byte[] bytes;
    private final dev.interlayer.api.Direction direction;
    private final AtomicBoolean held = new AtomicBoolean(true);

    FakeHeldBytes(HarnessConnection.Slot owner, byte[] bytes, dev.interlayer.api.Direction direction) {
        this.owner = owner;
        this.bytes = bytes;
        this.direction = direction;
        owner.held.addAndGet(bytes.length);
    }

    /** Takes the bytes for an injection: true once; the hold accounting moves to the inject queue. */
    boolean take() {
        if (held.compareAndSet(true, false)) {
            owner.held.addAndGet(-bytes.length);
            return true;
        }
        return false;
    }

    byte[] bytes() {
        return bytes;
    }

    /** The direction the chunk was held in (a datagram flow's held datagrams too). */
    dev.interlayer.api.Direction direction() {
        return direction;
    }

    @Override
    public int length() {
        return bytes.length;
    }

    @Override
    public byte[] toByteArray() {
        return bytes.clone();
    }

    @Override
    public void release() {
        take();
    }

    @Override
    public boolean isHeld() {
        return held.get();
    }
}
