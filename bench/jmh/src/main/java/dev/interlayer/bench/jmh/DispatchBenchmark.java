package dev.interlayer.bench.jmh;

import dev.interlayer.api.ByteView;
import dev.interlayer.api.Direction;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.StreamContext;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.Verdict;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.util.ArrayList;
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
 * Module dispatch per chunk: one 1 KiB chunk read from a socket, through a chain of {@code chain} PASS modules,
 * written to the other socket, on the engine's real per-chunk path ({@link ProxyConnection}: channelRead,
 * the chain walk and each module call with its view, context, class loader switch, watchdog mark and counters,
 * the write, then channelReadComplete's flush and read request). Sockets are replaced by embedded channels.
 *
 * <p>ns per module per chunk = (score at chain N − score at chain 0) / N. Chain 0 is the engine's no-module
 * fast path. With {@code -prof gc}, {@code gc.alloc.rate.norm} is the bytes allocated per chunk.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class DispatchBenchmark {

    /** Chunk size: what one transport read hands the engine here. */
    static final int CHUNK = 1024;

    @Param({"0", "1", "3", "8"})
    public int chain;

    @Param({"SEND", "RECV"})
    public Direction direction;

    private BenchConnection conn;
    private ByteBuf chunk;
    private long ops;

    /** Passes every chunk in both directions: the cost of a module that does nothing. */
    public static final class PassModule implements StreamModule<Void> {
        private final String name;

        public PassModule(String name) {
            this.name = name;
        }

        @Override
        public ModuleDescriptor descriptor() {
            return ModuleDescriptor.builder(name, "1.0.0").implement(InterfaceType.STREAM, 1, 1).build();
        }

        @Override
        public Verdict onSend(Void state, StreamContext ctx, ByteView data) {
            return Verdict.PASS;
        }

        @Override
        public Verdict onRecv(Void state, StreamContext ctx, ByteView data) {
            return Verdict.PASS;
        }
    }

    static List<PassModule> passChain(int n) {
        List<PassModule> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(new PassModule("pass-" + i));
        }
        return out;
    }

    /** A pooled direct chunk, as a transport read gives; see {@link #again} for how one buffer serves every call. */
    static ByteBuf chunk(int size) {
        ByteBuf b = ByteBufAllocator.DEFAULT.directBuffer(size);
        for (int i = 0; i < size; i++) {
            b.writeByte('a' + i % 26);
        }
        return b;
    }

    /**
     * {@code b} rewound and retained once more, to hand to the engine: the engine releases what it is handed (and
     * may read it, as NEED_MORE buffering does), so one buffer serves every call without an allocation.
     */
    static ByteBuf again(ByteBuf b) {
        return b.readerIndex(0).retain();
    }

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        conn = new BenchConnection(passChain(chain));
        chunk = chunk(CHUNK);
        ops = 0;
        settle();
    }

    /**
     * Collects garbage once after setup, so the connection's long-lived objects (attachments, views, contexts) are
     * in the old generation, as they are on an agent that has run a while: G1's write barrier costs more for a
     * reference stored into an old object than into a young one, and the hot path stores a few per module call.
     */
    static void settle() {
        System.gc();
    }

    @Benchmark
    public void chunk() {
        conn.read(direction, again(chunk));
        ops++;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        try {
            if (!conn.isOpen()) {
                throw new IllegalStateException("connection closed during the benchmark: " + conn.closeReason());
            }
            if (conn.delivered(direction) != ops * CHUNK) {
                throw new IllegalStateException("delivered " + conn.delivered(direction) + " bytes " + direction + ", expected "
                        + ops * CHUNK);
            }
        } finally {
            chunk.release();
            conn.close();
        }
    }
}
