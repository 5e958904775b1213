package dev.interlayer.bench.rewrite;

import dev.interlayer.api.ByteView;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.ModuleEnv;
import dev.interlayer.api.Output;
import dev.interlayer.api.Param;
import dev.interlayer.api.StreamContext;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.Verdict;

/**
 * Rewrites every byte in both directions: each chunk is replaced by a new engine buffer holding {@code in[i] ^ key}.
 *
 * <p>It is the benchmark's "a module that touches every byte": every byte is read out of the engine's view and
 * written into a replacement the engine allocates ({@link StreamContext#replace()}), so the figure includes
 * one read and one write per byte on top of the dispatch. With the default {@code key} 0 the bytes come out
 * unchanged, so unmodified programs (iperf3, HTTP) keep working through a single agent; with another key two
 * agents back to back (or the same key on both ends) undo each other.
 *
 * <p>Threading: hooks run on event-loop threads; the scratch array is one per thread, so nothing is shared and
 * nothing is allocated per chunk by the module itself.
 *
 * <pre>{@code
 * modules:
 *   - name: rewrite
 *     params: {key: 0}
 * }</pre>
 */
public final class RewriteModule implements StreamModule<Void> {

    private static final int SCRATCH_BYTES = 16 * 1024;
    private static final ThreadLocal<byte[]> SCRATCH = ThreadLocal.withInitial(() -> new byte[SCRATCH_BYTES]);

    private byte key;

    @Override
    public ModuleDescriptor descriptor() {
        return ModuleDescriptor.builder("rewrite", "1.0.0")
                .description("replaces every chunk with a new buffer of its bytes XOR key (benchmark: touches every byte)")
                .implement(InterfaceType.STREAM, 1, 1)
                .priority(100)
                .param(Param.ofInt("key", 0, "byte value (0..255) every byte is XORed with; 0 leaves the bytes as they were"))
                .build();
    }

    @Override
    public void init(ModuleEnv env) {
        int k = env.params().getInt("key");
        if (k < 0 || k > 255) {
            throw new IllegalArgumentException("key must be a byte value 0..255, got " + k);
        }
        key = (byte) k;
    }

    @Override
    public Verdict onSend(Void state, StreamContext ctx, ByteView data) {
        return rewrite(ctx, data);
    }

    @Override
    public Verdict onRecv(Void state, StreamContext ctx, ByteView data) {
        return rewrite(ctx, data);
    }

    private Verdict rewrite(StreamContext ctx, ByteView data) {
        Output out = ctx.replace();
        byte[] buf = SCRATCH.get();
        byte k = key;
        int n;
        while ((n = data.read(buf, 0, buf.length)) > 0) {
            for (int i = 0; i < n; i++) {
                buf[i] ^= k;
            }
            out.write(buf, 0, n);
        }
        return Verdict.PASS;
    }
}
