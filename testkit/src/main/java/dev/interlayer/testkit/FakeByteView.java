package dev.interlayer.testkit;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

import dev.interlayer.api.ByteView;
import java.lang.foreign.MemorySegment;

/**
 * A {@link ByteView} over a slice of an array, lent to one hook call; any use after the call is a
 * {@link ContractViolation.Rule#VIEW_AFTER_CALL} naming the module.
 *
 * <p>Threading: used on the harness thread only (as the engine's view is used on the event loop).
 */
final class FakeByteView implements ByteView {

    private final ModuleHarness harness;
    private final String module;
    private final String hook;
    /** The bytes: a slice of the chunk's array, or the segment of a {@code ctx.rewrite()} once there is one. */
    private MemorySegment data;
    private final int length;
    private int position;
    private boolean valid = true;

    FakeByteView(ModuleHarness harness, String module, String hook, byte[] bytes, int offset, int length) {
        this.harness = harness;
        this.module = module;
        this.hook = hook;
        this.data = MemorySegment.ofArray(bytes).asSlice(offset, length);
        this.length = length;
    }

    /** Reads {@code rewritten} (the chunk's bytes as the module changes them) from now on, at the same position. */
    void repoint(MemorySegment rewritten) {
        data = rewritten;
    }

    /** Ends the loan: every later use is a violation. */
    void invalidate() {
        valid = false;
    }

    private void check() {
        if (!valid) {
            throw harness.violation(module, ContractViolation.Rule.VIEW_AFTER_CALL,
                    "used the ByteView of its " + hook + " call after that call returned; copy the bytes (copyRemaining, readFully) or ctx.hold() the chunk");
        }
    }

    /** Copies {@code len} bytes from the position into {@code dst} and moves past them; for {@link FakeOutput}. */
    void copyTo(byte[] dst, int dstOff, int len) {
        check();
        if (len < 0 || len > length - position) {
            throw new IndexOutOfBoundsException("asked for " + len + " bytes, " + (length - position) + " remain");
        }
        MemorySegment.copy(data, JAVA_BYTE, position, dst, dstOff, len);
        position += len;
    }

    @Override
    public int length() {
        check();
        return length;
    }

    @Override
    public int position() {
        check();
        return position;
    }

    @Override
    public int remaining() {
        check();
        return length - position;
    }

    @Override
    public byte readByte() {
        check();
        if (position >= length) {
            throw new IndexOutOfBoundsException("readByte at position " + position + " of " + length);
        }
        return data.get(JAVA_BYTE, position++);
    }

    @Override
    public byte peek(int at) {
        check();
        if (at < 0 || at >= length - position) {
            throw new IndexOutOfBoundsException("peek(" + at + ") with " + (length - position) + " remaining");
        }
        return data.get(JAVA_BYTE, position + at);
    }

    @Override
    public boolean readFully(byte[] dst, int off, int len) {
        check();
        if (len > length - position) {
            return false;
        }
        MemorySegment.copy(data, JAVA_BYTE, position, dst, off, len);
        position += len;
        return true;
    }

    @Override
    public int read(byte[] dst, int off, int len) {
        check();
        int n = Math.min(len, length - position);
        MemorySegment.copy(data, JAVA_BYTE, position, dst, off, n);
        position += n;
        return n;
    }

    @Override
    public void advance(int n) {
        check();
        if (n < 0 || n > length - position) {
            throw new IndexOutOfBoundsException("advance(" + n + ") with " + (length - position) + " remaining");
        }
        position += n;
    }

    @Override
    public void revert(int n) {
        check();
        if (n < 0 || n > position) {
            throw new IndexOutOfBoundsException("revert(" + n + ") at position " + position);
        }
        position -= n;
    }

    @Override
    public int indexOf(byte b) {
        check();
        for (int i = position; i < length; i++) {
            if (data.get(JAVA_BYTE, i) == b) {
                return i - position;
            }
        }
        return -1;
    }

    @Override
    public byte[] copyRemaining() {
        check();
        byte[] out = new byte[length - position];
        MemorySegment.copy(data, JAVA_BYTE, position, out, 0, out.length);
        return out;
    }
}
