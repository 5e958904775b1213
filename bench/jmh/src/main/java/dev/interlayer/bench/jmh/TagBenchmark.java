package dev.interlayer.bench.jmh;

import dev.interlayer.api.Direction;
import dev.interlayer.modules.tag.TagModule;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.nio.charset.StandardCharsets;
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
 * The sample {@code tag} module (the one the end-to-end {@code il-tag} target runs) on the engine's real per-chunk
 * path, at bulk chunk sizes: SEND inserts its 32-byte tag after every 1000 payload bytes, RECV checks and removes
 * it. One operation is one chunk of {@code payload} payload bytes (a multiple of 1000, so every chunk starts where
 * the tag pattern does and the connection's state repeats); on RECV the chunk holds the payload with its tags.
 *
 * <p>The score divided by the chunk's size is the module's cost per byte on top of the engine's PASS path
 * ({@link DispatchBenchmark}, chain 1); {@code gc.alloc.rate.norm} is what it allocates per chunk.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class TagBenchmark {

    private static final int EVERY = 1000;

    @Param({"1000", "16000", "64000"})
    public int payload;

    @Param({"SEND", "RECV"})
    public Direction direction;

    private BenchConnection conn;
    private ByteBuf chunk;
    private long ops;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        conn = new BenchConnection(List.of(new TagModule()));
        byte[] tag = TagModule.DEFAULT_TAG.getBytes(StandardCharsets.US_ASCII);
        chunk = ByteBufAllocator.DEFAULT.directBuffer(payload + payload / EVERY * tag.length);
        for (int i = 0; i < payload; i++) {
            chunk.writeByte('a' + i % 26);
            if (direction == Direction.RECV && (i + 1) % EVERY == 0) {
                chunk.writeBytes(tag);
            }
        }
        ops = 0;
        DispatchBenchmark.settle();
    }

    @Benchmark
    public void chunk() {
        conn.read(direction, DispatchBenchmark.again(chunk));
        ops++;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        try {
            if (!conn.isOpen()) {
                throw new IllegalStateException("connection closed during the benchmark: " + conn.closeReason());
            }
            long perChunk = direction == Direction.SEND ? chunk.readableBytes() + payload / EVERY * 32L : payload;
            if (conn.delivered(direction) != ops * perChunk) {
                throw new IllegalStateException("delivered " + conn.delivered(direction) + " bytes " + direction + ", expected "
                        + ops * perChunk);
            }
        } finally {
            chunk.release();
            conn.close();
        }
    }
}
