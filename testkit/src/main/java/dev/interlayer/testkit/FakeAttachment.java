package dev.interlayer.testkit;

import dev.interlayer.api.Attachment;
import dev.interlayer.api.Cancellable;
import dev.interlayer.api.ConnectionInfo;
import dev.interlayer.api.Direction;
import dev.interlayer.api.HeldBytes;
import dev.interlayer.api.Output;
import java.time.Duration;

/**
 * One module's handle on one harness connection.
 *
 * <p>As in the engine, the "any thread" methods only queue their effect; the harness carries effects out
 * in call order on its own thread (during the current operation, or the next one for other threads).
 * After detach every method is a no-op returning false or null.
 */
final class FakeAttachment implements Attachment {

    private final HarnessConnection conn;
    private final HarnessConnection.Slot slot;

    FakeAttachment(HarnessConnection conn, HarnessConnection.Slot slot) {
        this.conn = conn;
        this.slot = slot;
    }

    @Override
    public ConnectionInfo connection() {
        return conn.connection();
    }

    @Override
    public String moduleName() {
        return slot.name();
    }

    @Override
    public boolean inject(Direction direction, byte[] bytes, long tag) {
        if (!usable()) {
            return false;
        }
        return conn.enqueueInject(slot, direction, bytes.clone(), tag, true);
    }

    @Override
    public boolean inject(Direction direction, HeldBytes held) {
        if (!(held instanceof FakeHeldBytes f)) {
            throw new IllegalArgumentException("module " + slot.name() + ": inject a HeldBytes that ctx.hold() returned");
        }
        if (!usable()) {
            // After detach the engine has released the bytes already; a late timer gets false, not an error.
            f.take();
            return false;
        }
        if (!f.take()) {
            throw new IllegalStateException("module " + slot.name() + ": these held bytes were already injected or released");
        }
        // The bytes were already counted as held; moving them to the queue keeps the total the same. Refused (false, the
        // bytes gone) once the end of the direction has passed the module, as a fresh inject is, so that no byte follows
        // an end. The agent checks that for fresh injects only: held bytes injected across directions slip past it.
        return conn.enqueueInject(slot, direction, f.bytes(), 0L, false);
    }

    @Override
    public boolean inject(Direction direction, Output output) {
        if (!(output instanceof FakeOutput f)) {
            throw new IllegalArgumentException("module " + slot.name() + ": inject an Output that attachment.allocate() returned");
        }
        byte[] bytes = f.toByteArray();
        f.invalidate();
        if (!usable()) {
            return false;
        }
        return conn.enqueueInject(slot, direction, bytes, 0L, true);
    }

    @Override
    public Output allocate(int sizeHint) {
        return new FakeOutput(conn.harness(), slot.name(), false, conn.harness().holdLimit(), sizeHint);
    }

    @Override
    public Cancellable schedule(Duration delay, Runnable task) {
        if (!usable()) {
            return () -> false;
        }
        return conn.harness().clock().schedule(this, delay, () -> conn.runTimer(slot, task));
    }

    @Override
    public boolean isWritable(Direction direction) {
        return conn.isWritable(direction);
    }

    @Override
    public long heldBytes() {
        return slot.held.get() + slot.buffered.get();
    }

    @Override
    public void close() {
        if (usable()) {
            conn.enqueueClose(slot);
        }
    }

    @Override
    public void abort(String reason) {
        if (usable()) {
            conn.requestAbort(slot, reason);
        }
    }

    @Override
    public boolean isAttached() {
        return slot.active;
    }

    private boolean usable() {
        return slot.active && conn.isOpen();
    }

    @Override
    public String toString() {
        return "attachment of " + slot.name() + " on " + conn.connection();
    }
}
