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
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Rewrites every byte in both directions: {@code in[i] ^ key}, in place through {@link StreamContext#rewrite()}.
 *
 * <p>It is the benchmark's "a module that touches every byte": every byte is read and written by the module on top
 * of the dispatch. With {@code via: rewrite} (the default) the module XORs the segment the engine lends it, the
 * chunk's own memory, in a loop the JIT vectorizes; with {@code via: replace} it does what a stream 1.1 module had to:
 * read the bytes out of the view into an array, XOR them there and write them into a replacement
 * ({@link StreamContext#replace()}), two copies per byte (the bench target {@code il-rewrite-copy}). With the default
 * {@code key} 0 the bytes come out unchanged, so unmodified programs (iperf3, HTTP) keep working through a single
 * agent; with another key two agents back to back (or the same key on both ends) undo each other.
 *
 * <p>Threading: hooks run on event-loop threads; the scratch array of {@code via: replace} is one per thread, so
 * nothing is shared and nothing is allocated per chunk by the module itself.
 *
 * <pre>{@code
 * modules:
 *   - name: rewrite
 *     params: {key: 0, via: rewrite}
 * }</pre>
 */
public final class RewriteModule implements StreamModule<Void> {

    private static final int SCRATCH_BYTES = 16 * 1024;
    private static final ThreadLocal<byte[]> SCRATCH = ThreadLocal.withInitial(() -> new byte[SCRATCH_BYTES]);

    private byte key;
    private boolean inPlace;

    @Override
    public ModuleDescriptor descriptor() {
        return ModuleDescriptor.builder("rewrite", "1.1.0")
                .description("XORs every byte with key, in place or through a replacement (benchmark: touches every byte)")
                .implement(InterfaceType.STREAM, 1, 2)
                .priority(100)
                .param(Param.ofInt("key", 0, "byte value (0..255) every byte is XORed with; 0 leaves the bytes as they were"))
                .param(Param.ofString("via", "rewrite", "rewrite: in place (ctx.rewrite()); replace: copied out and into a"
                        + " replacement (ctx.replace())"))
                .build();
    }

    @Override
    public void init(ModuleEnv env) {
        int k = env.params().getInt("key");
        if (k < 0 || k > 255) {
            throw new IllegalArgumentException("key must be a byte value 0..255, got " + k);
        }
        key = (byte) k;
        String via = env.params().getString("via");
        if (!via.equals("rewrite") && !via.equals("replace")) {
            throw new IllegalArgumentException("via must be rewrite or replace, got '" + via + "'");
        }
        inPlace = via.equals("rewrite");
    }

    @Override
    public Verdict onSend(Void state, StreamContext ctx, ByteView data) {
        return inPlace ? xorInPlace(ctx) : xorIntoReplacement(ctx, data);
    }

    @Override
    public Verdict onRecv(Void state, StreamContext ctx, ByteView data) {
        return inPlace ? xorInPlace(ctx) : xorIntoReplacement(ctx, data);
    }

    private Verdict xorInPlace(StreamContext ctx) {
        MemorySegment bytes = ctx.rewrite();
        byte k = key;
        long n = bytes.byteSize();
        for (long i = 0; i < n; i++) {
            bytes.set(ValueLayout.JAVA_BYTE, i, (byte) (bytes.get(ValueLayout.JAVA_BYTE, i) ^ k));
        }
        return Verdict.PASS;
    }

    private Verdict xorIntoReplacement(StreamContext ctx, ByteView data) {
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
