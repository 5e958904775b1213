package dev.interlayer.testkit;

import dev.interlayer.api.Attachment;
import dev.interlayer.api.Direction;
import dev.interlayer.api.HeldBytes;
import dev.interlayer.api.Output;
import dev.interlayer.api.StreamContext;
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
    private FakeOutput replacement;
    private FakeHeldBytes held;
    private boolean valid = true;

    FakeStreamContext(HarnessConnection conn, HarnessConnection.Slot slot, String hook, Direction direction,
                      HarnessConnection.Mark mark, byte[] chunk, int offset, int length) {
        this.conn = conn;
        this.slot = slot;
        this.hook = hook;
        this.direction = direction;
        this.mark = mark;
        this.chunk = chunk;
        this.offset = offset;
        this.length = length;
    }

    void invalidate() {
        valid = false;
        if (replacement != null) {
            replacement.invalidate();
        }
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
        if (replacement == null) {
            replacement = new FakeOutput(conn.harness(), slot.name(), true, conn.harness().holdLimit(), length);
        }
        return replacement;
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
            held = slot.newHeld(Arrays.copyOfRange(chunk, offset, offset + length));
        }
        return held;
    }
}
