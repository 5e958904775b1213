package dev.interlayer.bench.jmh;

import dev.interlayer.api.Direction;
import io.netty.buffer.ByteBuf;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
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
 * The cost of a C module's stream hook against a Java module's: one chunk through a connection with one no-op PASS
 * module, written in C (a downcall through the foreign function API, the chunk passed by address) or in Java, on the
 * engine's real per-chunk path (as {@link DispatchBenchmark}). The difference at equal size is the FFM call's overhead;
 * with {@code -prof gc}, {@code gc.alloc.rate.norm} shows that neither allocates per chunk.
 *
 * <p>The C module is compiled at setup with the system gcc from {@code native/include} (found from the working
 * directory upward).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class NativeCallBenchmark {

    @Param({"64", "1024", "16384"})
    public int size;

    @Param({"java", "c"})
    public String module;

    private BenchConnection conn;
    private ByteBuf chunk;
    private Path tmp;
    private long ops;

    static final String C_PASS = """
            #include <interlayer/module.h>
            static int pass(void *m, void *s, il_call *c, const uint8_t *d, size_t n) {
                (void) m; (void) s; (void) c; (void) d; (void) n;
                return IL_PASS;
            }
            int stream_pass_c_initvt(il_ctx *ctx, int major, int minor, void *v) {
                il_stream_vtable *vt = v;
                (void) ctx; (void) minor;
                if (major != IL_STREAM_MAJOR) return IL_ERR_VERSION;
                vt->minor = 1;
                vt->on_send = pass;
                vt->on_recv = pass;
                return IL_OK;
            }
            static const il_module_info modules[] = {{ .size = sizeof(il_module_info), .name = "pass-c", .version = "1.0.0",
                .interfaces = "stream 1.1" }};
            uint32_t interlayer_plugin_get_version(void) { return IL_ABI_VERSION; }
            const il_module_info *interlayer_module_list(uint32_t *count) { *count = 1; return modules; }
            int interlayer_plugin_init(const il_host *h) { (void) h; return IL_OK; }
            void interlayer_plugin_fini(void) {}
            """;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        if (module.equals("c")) {
            tmp = Files.createTempDirectory("bench-native-");
            conn = new BenchConnection(compile(tmp));
        } else {
            conn = new BenchConnection(DispatchBenchmark.passChain(1));
        }
        chunk = DispatchBenchmark.chunk(size);
        ops = 0;
        DispatchBenchmark.settle();
    }

    static Path compile(Path dir) throws IOException, InterruptedException {
        Path include = null;
        for (Path p = Path.of("").toAbsolutePath(); p != null && include == null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("native/include/interlayer/module.h"))) include = p.resolve("native/include");
        }
        if (include == null) {
            throw new IllegalStateException("native/include/interlayer/module.h not found above " + Path.of("").toAbsolutePath()
                    + "; run the benchmark from the repository");
        }
        Path c = Files.writeString(dir.resolve("pass.c"), C_PASS);
        Path so = dir.resolve("pass-c.so");
        Process p = new ProcessBuilder(List.of("gcc", "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-I", include.toString(), "-o",
                so.toString(), c.toString())).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) {
            throw new IllegalStateException("gcc failed: " + out);
        }
        return so;
    }

    @Benchmark
    public void chunk() {
        conn.read(Direction.SEND, DispatchBenchmark.again(chunk));
        ops++;
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        try {
            if (conn.delivered(Direction.SEND) != ops * size) {
                throw new IllegalStateException("delivered " + conn.delivered(Direction.SEND) + " bytes, expected " + ops * size);
            }
        } finally {
            chunk.release();
            conn.close();
            if (tmp != null) {
                try (var files = Files.list(tmp)) {
                    for (Path f : files.toList()) Files.deleteIfExists(f);
                }
                Files.deleteIfExists(tmp);
            }
        }
    }
}
