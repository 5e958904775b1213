package dev.interlayer.testkit;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

import dev.interlayer.api.Attachment;
import dev.interlayer.api.Direction;
import dev.interlayer.api.HeldBytes;
import dev.interlayer.api.Output;
import dev.interlayer.api.StreamContext;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * The context of one data-hook call (stream chunk or datagram); any use after the call is a {@link ContractViolation.Rule#CONTEXT_AFTER_CALL}.
 *
 * <p>Remembers what the module did during the call (replacement, hold) so the harness can apply the verdict
 * and check the HOLD rules. Harness thread only.
 */
final class FakeStreamContext implements StreamContext, dev.interlayer.api.DatagramContext {

    private final HarnessConnection conn;
    private final HarnessConnection.Slot slot;
    private final Direction direction;
    private final HarnessConnection.Mark mark;
    private final byte[] chunk;
    private final int offset;
    private final int length;
    private final String hook;
    private final FakeByteView view;
    private FakeOutput replacement;
    private FakeHeldBytes held;
    /** The segment of {@link #rewrite()}: native memory in a confined arena, closed with the call as in the engine. */
    private Arena arena;
    private MemorySegment rewriting;
    private byte[] rewritten;
    private boolean valid = true;

    FakeStreamContext(HarnessConnection conn, HarnessConnection.Slot slot, String hook, Direction direction,
                      HarnessConnection.Mark mark, byte[] chunk, int offset, int length, FakeByteView view) {
        this.conn = conn;
        this.slot = slot;
        this.hook = hook;
        this.direction = direction;
        this.mark = mark;
        this.chunk = chunk;
        this.offset = offset;
        this.length = length;
        this.view = view;
    }

    void invalidate() {
        valid = false;
        if (replacement != null) {
            replacement.invalidate();
        }
        if (arena != null) {
            rewritten = rewriting.toArray(JAVA_BYTE);
            arena.close(); // a later use of the segment throws IllegalStateException, as in the engine
            arena = null;
            rewriting = null;
        }
    }

    /** The chunk as {@link #rewrite()} left it when the call returned, or null if the module did not call it. */
    byte[] rewrittenOrNull() {
        return rewritten;
    }

    /** The module called {@link #rewrite()} in this call. */
    boolean rewrote() {
        return rewriting != null || rewritten != null;
    }

    FakeOutput replacementOrNull() {
        return replacement;
    }

    FakeHeldBytes heldOrNull() {
        return held;
    }

    private void check(String what) {
        if (!valid) {
            throw conn.harness().violation(slot.name(), ContractViolation.Rule.CONTEXT_AFTER_CALL,
                    "called ctx." + what + " after its " + hook + " call returned");
        }
    }

    @Override
    public Direction direction() {
        check("direction()");
        return direction;
    }

    @Override
    public Attachment attachment() {
        check("attachment()");
        return slot.attachment;
    }

    @Override
    public boolean injected() {
        check("injected()");
        return mark != null;
    }

    @Override
    public String injectedBy() {
        check("injectedBy()");
        return mark == null ? null : mark.by();
    }

    @Override
    public long injectTag() {
        check("injectTag()");
        return mark == null ? 0L : mark.tag();
    }

    @Override
    public Output replace() {
        check("replace()");
        if (rewriting != null) {
            throw new IllegalStateException("module " + slot.name() + " called ctx.replace() after ctx.rewrite() in the same call;"
                    + " a chunk is either rewritten (same length) or replaced, not both");
        }
        if (replacement == null) {
            replacement = new FakeOutput(conn.harness(), slot.name(), true, conn.harness().holdLimit(), length);
        }
        return replacement;
    }

    @Override
    public MemorySegment rewrite() {
        check("rewrite()");
        if (rewriting == null) {
            if (replacement != null) {
                throw new IllegalStateException("module " + slot.name() + " called ctx.rewrite() after ctx.replace() in the same"
                        + " call; a chunk is either rewritten (same length) or replaced, not both");
            }
            if (held != null) {
                throw new IllegalStateException("module " + slot.name() + " called ctx.rewrite() after ctx.hold() in the same"
                        + " call; rewrite first, then hold (the held chunk keeps the rewritten bytes)");
            }
            Arena a = Arena.ofConfined();
            MemorySegment seg = a.allocate(length);
            MemorySegment.copy(chunk, offset, seg, JAVA_BYTE, 0, length);
            arena = a;
            rewriting = seg;
            view.repoint(seg);
        }
        return rewriting;
    }

    @Override
    public HeldBytes hold() {
        check("hold()");
        if (held == null) {
            long after = conn.outstanding() + length;
            if (after > conn.harness().holdLimit()) {
                throw new IllegalStateException("module " + slot.name() + ": holding " + length + " more bytes would make "
                        + after + ", over the connection's hold limit of " + conn.harness().holdLimit());
            }
            held = slot.newHeld(rewriting != null ? rewriting.toArray(JAVA_BYTE) : Arrays.copyOfRange(chunk, offset, offset + length),
                    direction);
        }
        return held;
    }
}
