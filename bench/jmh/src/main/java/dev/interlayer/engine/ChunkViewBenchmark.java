package dev.interlayer.engine;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.CompositeByteBuf;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The operations of the engine's {@link ChunkView} (the {@code ByteView} a module reads a chunk through) over a
 * 1 KiB chunk in a single heap buffer, a single direct buffer, or a composite of four 256-byte direct buffers
 * (what NEED_MORE buffering or a scatter read can give). Each operation includes lending the view to the chunk
 * and invalidating it, as the engine does around every module call.
 *
 * <p>{@code readByte} and {@code peek} walk all 1024 bytes and report ns per byte; the rest are one call each.
 * {@code copyRemaining} allocates a byte[] by design (the API's copy); the others should allocate nothing.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class ChunkViewBenchmark {

    static final int SIZE = 1024;

    @Param({"heap", "direct", "composite"})
    public String buffer;

    private ByteBuf buf;
    private final ChunkView view = new ChunkView("bench");
    private final byte[] header = new byte[16];
    private final byte[] all = new byte[SIZE];

    @Setup(Level.Trial)
    public void setUp() {
        ByteBufAllocator alloc = ByteBufAllocator.DEFAULT;
        buf = switch (buffer) {
            case "heap" -> alloc.heapBuffer(SIZE);
            case "direct" -> alloc.directBuffer(SIZE);
            case "composite" -> {
                CompositeByteBuf c = alloc.compositeDirectBuffer(4);
                for (int i = 0; i < 4; i++) {
                    c.addComponent(true, alloc.directBuffer(SIZE / 4).writeZero(SIZE / 4));
                }
                c.writerIndex(0);
                yield c;
            }
            default -> throw new IllegalArgumentException("buffer must be heap, direct or composite, not " + buffer);
        };
        for (int i = 0; i < SIZE - 1; i++) {
            buf.writeByte('a' + i % 26);
        }
        buf.writeByte('\n');
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        buf.release();
    }

    /** Lend and invalidate only: the view's share of every module call. */
    @Benchmark
    public int lend() {
        view.lend(buf);
        int n = view.remaining();
        view.invalidate();
        return n;
    }

    @Benchmark
    @OperationsPerInvocation(SIZE)
    public int readByte() {
        view.lend(buf);
        int sum = 0;
        for (int i = 0; i < SIZE; i++) {
            sum += view.readByte();
        }
        view.invalidate();
        return sum;
    }

    @Benchmark
    @OperationsPerInvocation(SIZE)
    public int peek() {
        view.lend(buf);
        int sum = 0;
        for (int i = 0; i < SIZE; i++) {
            sum += view.peek(i);
        }
        view.invalidate();
        return sum;
    }

    /** A 16-byte header, as a protocol parser reads it. */
    @Benchmark
    public byte[] readFully16() {
        view.lend(buf);
        if (!view.readFully(header, 0, header.length)) {
            throw new IllegalStateException("short chunk");
        }
        view.invalidate();
        return header;
    }

    @Benchmark
    public byte[] readFullyAll() {
        view.lend(buf);
        if (!view.readFully(all, 0, SIZE)) {
            throw new IllegalStateException("short chunk");
        }
        view.invalidate();
        return all;
    }

    @Benchmark
    public int advanceRevert() {
        view.lend(buf);
        view.advance(600);
        view.revert(300);
        int p = view.position();
        view.invalidate();
        return p;
    }

    /** Finds the last byte: a scan of the whole chunk. */
    @Benchmark
    public int indexOf() {
        view.lend(buf);
        int i = view.indexOf((byte) '\n');
        view.invalidate();
        return i;
    }

    @Benchmark
    public byte[] copyRemaining() {
        view.lend(buf);
        byte[] b = view.copyRemaining();
        view.invalidate();
        return b;
    }
}
