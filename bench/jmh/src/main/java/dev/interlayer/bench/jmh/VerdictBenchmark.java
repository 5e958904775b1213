package dev.interlayer.bench.jmh;

import dev.interlayer.api.Attach;
import dev.interlayer.api.Attachment;
import dev.interlayer.api.ByteView;
import dev.interlayer.api.Direction;
import dev.interlayer.api.HeldBytes;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.StreamContext;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.Verdict;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The cost of each verdict, SEND, one module, on the engine's real per-chunk path (see {@link DispatchBenchmark}).
 * One operation is one 1 KiB chunk from the socket read to the bytes written out (or dropped):
 *
 * <ul>
 *   <li>{@code PASS}: the baseline, equal to {@code DispatchBenchmark} chain 1.
 *   <li>{@code PASS_REPLACE}: the module copies the chunk into {@code ctx.replace()} (the engine's allocator)
 *       and returns PASS; the replacement goes on.
 *   <li>{@code REWRITE_OWN}: the module XORs every byte through {@code ctx.rewrite()} on a chunk only the engine
 *       holds (a pooled buffer filled per operation, as a socket read fills one), so it is rewritten in place.
 *       The fill is part of the operation.
 *   <li>{@code REWRITE_SHARED}: the same on the benchmark's shared chunk (a second reference), so the engine
 *       rewrites a copy.
 *   <li>{@code REPLACE_XOR}: what a module had to do before {@code rewrite()}: read the view into an array, XOR
 *       there, write the array into {@code ctx.replace()}.
 *   <li>{@code DROP}: the chunk is freed, nothing is written.
 *   <li>{@code NEED_MORE}: two 512-byte reads; the first returns NEED_MORE(1024) (the engine buffers it), the
 *       second completes it and the module passes all 1024 bytes on.
 *   <li>{@code HOLD_RELEASE}: the module takes the chunk with {@code ctx.hold()} and returns HOLD; it then
 *       releases the held bytes (as a timer or a later call would) and the engine runs its queued accounting.
 *   <li>{@code HOLD_INJECT}: as HOLD_RELEASE, but the held bytes are injected SEND after the module and the
 *       engine's queued inject runs and writes them out.
 * </ul>
 *
 * <p>ERROR, CLOSE and DETACH end the connection or the attachment, so they have no steady state to measure.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class VerdictBenchmark {

    public enum Kind { PASS, PASS_REPLACE, DROP, NEED_MORE, HOLD_RELEASE, HOLD_INJECT, REWRITE_OWN, REWRITE_SHARED, REPLACE_XOR }

    @Param({"PASS", "PASS_REPLACE", "DROP", "NEED_MORE", "HOLD_RELEASE", "HOLD_INJECT", "REWRITE_OWN", "REWRITE_SHARED",
            "REPLACE_XOR"})
    public Kind verdict;

    /** Returns the verdict under test; keeps the held bytes and its attachment for the benchmark to finish the HOLD. */
    public static final class VerdictModule implements StreamModule<Void> {
        private static final Verdict NEED_ALL = Verdict.needMore(DispatchBenchmark.CHUNK);
        private final Kind kind;
        private final byte[] scratch = new byte[DispatchBenchmark.CHUNK];
        Attachment attachment;
        HeldBytes held;

        public VerdictModule(Kind kind) {
            this.kind = kind;
        }

        @Override
        public ModuleDescriptor descriptor() {
            return ModuleDescriptor.builder("verdict", "1.0.0").implement(InterfaceType.STREAM, 1, 2).build();
        }

        @Override
        public Attach<Void> attach(Attachment a) {
            this.attachment = a;
            return Attach.stateless();
        }

        @Override
        public Verdict onSend(Void state, StreamContext ctx, ByteView data) {
            return switch (kind) {
                case PASS -> Verdict.PASS;
                case PASS_REPLACE -> {
                    ctx.replace().write(data);
                    yield Verdict.PASS;
                }
                case DROP -> Verdict.DROP;
                case NEED_MORE -> data.length() < DispatchBenchmark.CHUNK ? NEED_ALL : Verdict.PASS;
                case HOLD_RELEASE, HOLD_INJECT -> {
                    held = ctx.hold();
                    yield Verdict.HOLD;
                }
                case REWRITE_OWN, REWRITE_SHARED -> {
                    MemorySegment b = ctx.rewrite();
                    for (long i = 0; i < b.byteSize(); i++) {
                        b.set(ValueLayout.JAVA_BYTE, i, (byte) (b.get(ValueLayout.JAVA_BYTE, i) ^ 0x20));
                    }
                    yield Verdict.PASS;
                }
                case REPLACE_XOR -> {
                    int n = data.read(scratch, 0, scratch.length);
                    for (int i = 0; i < n; i++) {
                        scratch[i] ^= 0x20;
                    }
                    ctx.replace().write(scratch, 0, n);
                    yield Verdict.PASS;
                }
            };
        }
    }

    private VerdictModule module;
    private BenchConnection conn;
    private ByteBuf chunk;
    private ByteBuf half1;
    private ByteBuf half2;
    private long ops;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        module = new VerdictModule(verdict);
        conn = new BenchConnection(List.of(module));
        if (module.attachment == null) {
            throw new IllegalStateException("the verdict module did not attach");
        }
        chunk = DispatchBenchmark.chunk(DispatchBenchmark.CHUNK);
        half1 = DispatchBenchmark.chunk(DispatchBenchmark.CHUNK / 2);
        half2 = DispatchBenchmark.chunk(DispatchBenchmark.CHUNK / 2);
        ops = 0;
        DispatchBenchmark.settle();
    }

    @Benchmark
    public void chunk() {
        switch (verdict) {
            case NEED_MORE -> {
                conn.read(Direction.SEND, DispatchBenchmark.again(half1));
                conn.read(Direction.SEND, DispatchBenchmark.again(half2));
                conn.runPendingTasks(); // the hold accounting queued when the buffered bytes left
            }
            case HOLD_RELEASE -> {
                conn.read(Direction.SEND, DispatchBenchmark.again(chunk));
                module.held.release();
                conn.runPendingTasks();
            }
            case HOLD_INJECT -> {
                conn.read(Direction.SEND, DispatchBenchmark.again(chunk));
                module.attachment.inject(Direction.SEND, module.held);
                conn.runPendingTasks();
            }
            case REWRITE_OWN -> {
                ByteBuf own = ByteBufAllocator.DEFAULT.directBuffer(DispatchBenchmark.CHUNK);
                own.writeBytes(chunk, 0, DispatchBenchmark.CHUNK);
                conn.read(Direction.SEND, own);
            }
            default -> conn.read(Direction.SEND, DispatchBenchmark.again(chunk));
        }
        ops++;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        try {
            if (!conn.isOpen()) {
                throw new IllegalStateException("connection closed during the benchmark: " + conn.closeReason());
            }
            long want = switch (verdict) {
                case DROP, HOLD_RELEASE -> 0;
                default -> ops * DispatchBenchmark.CHUNK;
            };
            if (conn.delivered(Direction.SEND) != want) {
                throw new IllegalStateException(verdict + ": delivered " + conn.delivered(Direction.SEND) + " bytes, expected " + want);
            }
        } finally {
            chunk.release();
            half1.release();
            half2.release();
            conn.close();
        }
    }
}
