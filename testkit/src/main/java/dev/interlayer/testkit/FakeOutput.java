package dev.interlayer.testkit;

import dev.interlayer.api.ByteView;
import dev.interlayer.api.Output;
import java.util.Arrays;

/**
 * An {@link Output} backed by a growable array, bounded by the connection's hold limit.
 *
 * <p>Two kinds, as in the engine: a chunk's replacement ({@code ctx.replace()}), lent for one call, whose
 * use after the call is a {@link ContractViolation.Rule#REPLACE_AFTER_CALL}; and an output from
 * {@code attachment.allocate()}, owned by the module until injected or discarded, after which writes throw
 * {@link IllegalStateException} as the engine's do.
 */
final class FakeOutput implements Output {

    private final ModuleHarness harness;
    private final String module;
    private final boolean replacement;
    private final long limit;
    private byte[] buf;
    private int size;
    private volatile boolean valid = true;

    FakeOutput(ModuleHarness harness, String module, boolean replacement, long limit, int sizeHint) {
        this.harness = harness;
        this.module = module;
        this.replacement = replacement;
        this.limit = limit;
        this.buf = new byte[Math.max(16, Math.min(sizeHint, (int) Math.min(limit, 1 << 20)))];
    }

    /** Ends the output's life: a replacement after its call, an allocated output once injected. */
    void invalidate() {
        valid = false;
    }

    /** A copy of what was written. */
    byte[] toByteArray() {
        return Arrays.copyOf(buf, size);
    }

    private void ensure(int more) {
        if (!valid) {
            if (replacement) {
                throw harness.violation(module, ContractViolation.Rule.REPLACE_AFTER_CALL,
                        "wrote to the output of ctx.replace() after its call returned");
            }
            throw new IllegalStateException("module " + module + ": this output was already injected or discarded");
        }
        long need = (long) size + more;
        if (need > limit) {
            throw new IllegalStateException("module " + module + ": output of " + need + " bytes exceeds the connection's hold limit of " + limit);
        }
        if (need > buf.length) {
            buf = Arrays.copyOf(buf, (int) Math.min(limit, Math.max(need, (long) buf.length * 2)));
        }
    }

    @Override
    public Output writeByte(int b) {
        ensure(1);
        buf[size++] = (byte) b;
        return this;
    }

    @Override
    public Output write(byte[] src, int off, int len) {
        ensure(len);
        System.arraycopy(src, off, buf, size, len);
        size += len;
        return this;
    }

    @Override
    public Output write(ByteView view) {
        return write(view, view.remaining());
    }

    @Override
    public Output write(ByteView view, int len) {
        ensure(len);
        if (view instanceof FakeByteView f) {
            f.copyTo(buf, size, len);
        } else if (!view.readFully(buf, size, len)) {
            throw new IndexOutOfBoundsException("write(view, " + len + ") with " + view.remaining() + " remaining");
        }
        size += len;
        return this;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public void discard() {
        valid = false;
    }
}
