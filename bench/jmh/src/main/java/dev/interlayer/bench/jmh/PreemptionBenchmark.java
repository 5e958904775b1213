package dev.interlayer.bench.jmh;

import dev.interlayer.api.Direction;
import dev.interlayer.api.Module;
import dev.interlayer.bench.rewrite.RewriteModule;
import dev.interlayer.modules.tag.TagModule;
import dev.interlayer.runtime.ModuleClassLoader;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.jar.JarOutputStream;
import java.util.stream.Stream;
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
 * What the pre-emption checks cost a module that touches every byte: the sample {@code tag} module and the benchmark
 * suite's {@code rewrite} module on the engine's real per-chunk path, with their classes as the host's class loader
 * defines them ({@code PLAIN}: no checks, as a built-in module runs) and as a module jar's {@link ModuleClassLoader}
 * defines them ({@code INSTRUMENTED}: a check at every method entry and loop turn, as every module from a jar runs).
 * The ratio INSTRUMENTED ÷ PLAIN of the same module and payload is the cost of the checks.
 *
 * <p>On a machine shared with other work JMH's forks of PLAIN and INSTRUMENTED run tens of seconds apart, and the load
 * moves in between by more than the few percent to be measured. {@link #main} measures the same operations paired
 * instead: both set up in one JVM, warmed up, then measured in alternating short slices (ABBA), each pair of slices
 * giving one ratio; it prints the median ratio and its quartiles per work and payload:
 * {@code java -cp bench/jmh/target/benchmarks.jar dev.interlayer.engine.PreemptionBenchmark [SECONDS]}.
 *
 * <ul>
 *   <li>{@code TAG_SEND}: one chunk of {@code payload} bytes; the module inserts its 32-byte tag after every 1000 (into a
 *       replacement), as {@link TagBenchmark} SEND.
 *   <li>{@code TAG_RECV}: the same chunk with its tags; the module checks and removes them, as {@link TagBenchmark} RECV.
 *   <li>{@code REWRITE}: the module XORs every byte in place through {@code ctx.rewrite()} (a pooled buffer filled per
 *       operation, as a socket read fills one, so the engine lends the chunk's own memory; the fill is part of the
 *       operation), the loop the JIT vectorizes.
 * </ul>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class PreemptionBenchmark {

    private static final int EVERY = 1000;

    public enum Work { TAG_SEND, TAG_RECV, REWRITE }

    public enum Classes { PLAIN, INSTRUMENTED }

    @Param({"TAG_SEND", "TAG_RECV", "REWRITE"})
    public Work work;

    @Param({"PLAIN", "INSTRUMENTED"})
    public Classes classes;

    @Param({"1000", "16000", "64000"})
    public int payload;

    private Path jar;
    private ModuleClassLoader loader;
    private BenchConnection conn;
    private ByteBuf chunk;
    private Direction direction;
    private long ops;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        Class<?> type = work == Work.REWRITE ? RewriteModule.class : TagModule.class;
        Module<?> module;
        if (classes == Classes.PLAIN) {
            module = (Module<?>) type.getConstructor().newInstance();
        } else {
            jar = jarOfPackage(type);
            loader = new ModuleClassLoader(jar.toString(), jar.toUri().toURL(), PreemptionBenchmark.class.getClassLoader());
            module = (Module<?>) loader.loadClass(type.getName()).getConstructor().newInstance();
            if (module.getClass().getClassLoader() != loader) {
                throw new IllegalStateException(type.getName() + " was not defined from the module jar");
            }
        }
        conn = new BenchConnection(List.of(module));
        direction = work == Work.TAG_RECV ? Direction.RECV : Direction.SEND;
        byte[] tag = TagModule.DEFAULT_TAG.getBytes(StandardCharsets.US_ASCII);
        chunk = ByteBufAllocator.DEFAULT.directBuffer(payload + payload / EVERY * tag.length);
        for (int i = 0; i < payload; i++) {
            chunk.writeByte('a' + i % 26);
            if (work == Work.TAG_RECV && (i + 1) % EVERY == 0) {
                chunk.writeBytes(tag);
            }
        }
        ops = 0;
        DispatchBenchmark.settle();
    }

    @Benchmark
    public void chunk() {
        if (work == Work.REWRITE) {
            ByteBuf own = ByteBufAllocator.DEFAULT.directBuffer(payload);
            own.writeBytes(chunk, 0, payload);
            conn.read(Direction.SEND, own);
        } else {
            conn.read(direction, DispatchBenchmark.again(chunk));
        }
        ops++;
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        try {
            if (!conn.isOpen()) {
                throw new IllegalStateException("connection closed during the benchmark: " + conn.closeReason());
            }
            long perChunk = switch (work) {
                case TAG_SEND -> payload + payload / EVERY * 32L;
                case TAG_RECV, REWRITE -> payload;
            };
            if (conn.delivered(direction) != ops * perChunk) {
                throw new IllegalStateException("delivered " + conn.delivered(direction) + " bytes " + direction + ", expected " + ops * perChunk);
            }
        } finally {
            chunk.release();
            conn.close();
            if (loader != null) {
                loader.close();
            }
            if (jar != null) {
                Files.deleteIfExists(jar);
            }
        }
    }

    private static final java.util.logging.Logger QUIET = java.util.logging.Logger.getLogger("interlayer");

    /** The paired measurement (see the class comment): {@code args[0]} seconds of measuring per work and payload (20). */
    public static void main(String[] args) throws Exception {
        long seconds = args.length > 0 ? Long.parseLong(args[0]) : 20;
        QUIET.setLevel(java.util.logging.Level.WARNING); // not a line per module load and unload between the results
        System.out.printf("%-9s %7s %12s %12s %8s %17s%n", "work", "payload", "plain ns/op", "instr ns/op", "ratio", "quartiles");
        for (Work w : Work.values()) {
            for (int p : new int[] {1000, 16000, 64000}) {
                PreemptionBenchmark a = state(w, Classes.PLAIN, p);
                PreemptionBenchmark b = state(w, Classes.INSTRUMENTED, p);
                try {
                    long ops = 1;
                    for (long t0 = System.nanoTime(); System.nanoTime() - t0 < 5_000_000_000L; ) { // warm-up, and ops per slice
                        long s0 = System.nanoTime();
                        run(a, ops);
                        run(b, ops);
                        if (System.nanoTime() - s0 < 20_000_000) ops *= 2;
                    }
                    List<double[]> pairs = new ArrayList<>();
                    for (long t0 = System.nanoTime(); System.nanoTime() - t0 < seconds * 1_000_000_000L; ) {
                        boolean aFirst = pairs.size() % 2 == 0;
                        double first = run(aFirst ? a : b, ops);
                        double second = run(aFirst ? b : a, ops);
                        pairs.add(aFirst ? new double[] {first, second} : new double[] {second, first});
                    }
                    double[] ratios = pairs.stream().mapToDouble(x -> x[1] / x[0]).sorted().toArray();
                    double[] plain = pairs.stream().mapToDouble(x -> x[0]).sorted().toArray();
                    double[] instr = pairs.stream().mapToDouble(x -> x[1]).sorted().toArray();
                    System.out.printf("%-9s %7d %12.0f %12.0f %8.3f %8.3f..%.3f  (%d pairs)%n", w, p, plain[plain.length / 2],
                            instr[instr.length / 2], ratios[ratios.length / 2], ratios[ratios.length / 4], ratios[ratios.length * 3 / 4], ratios.length);
                } finally {
                    a.tearDown();
                    b.tearDown();
                }
            }
        }
    }

    private static PreemptionBenchmark state(Work w, Classes c, int payload) throws Exception {
        PreemptionBenchmark s = new PreemptionBenchmark();
        s.work = w;
        s.classes = c;
        s.payload = payload;
        s.setUp();
        return s;
    }

    /** Runs {@code ops} operations of {@code s}; returns ns per operation. */
    private static double run(PreemptionBenchmark s, long ops) {
        long t0 = System.nanoTime();
        for (long i = 0; i < ops; i++) {
            s.chunk();
        }
        return (System.nanoTime() - t0) / (double) ops;
    }

    /** A module jar of the class files of {@code type}'s package, taken from where the benchmark's class path has them. */
    static Path jarOfPackage(Class<?> type) throws IOException {
        String dir = type.getPackageName().replace('.', '/') + "/";
        Path source;
        try {
            source = Path.of(type.getProtectionDomain().getCodeSource().getLocation().toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
        Path out = Files.createTempFile("preemption-bench-", ".jar");
        try (JarOutputStream jar = new JarOutputStream(Files.newOutputStream(out))) {
            if (Files.isDirectory(source)) { // the test class path: target/classes
                List<Path> files;
                try (Stream<Path> s = Files.list(source.resolve(dir))) {
                    files = s.filter(p -> p.toString().endsWith(".class")).toList();
                }
                for (Path f : files) {
                    copy(jar, dir + f.getFileName(), Files.newInputStream(f));
                }
            } else { // the benchmarks jar
                try (JarFile from = new JarFile(source.toFile())) {
                    List<JarEntry> entries = new ArrayList<>();
                    for (Enumeration<JarEntry> e = from.entries(); e.hasMoreElements(); ) {
                        JarEntry x = e.nextElement();
                        if (x.getName().startsWith(dir) && x.getName().endsWith(".class") && x.getName().indexOf('/', dir.length()) < 0) {
                            entries.add(x);
                        }
                    }
                    for (JarEntry x : entries) {
                        copy(jar, x.getName(), from.getInputStream(x));
                    }
                }
            }
        }
        return out;
    }

    private static void copy(JarOutputStream jar, String name, InputStream in) throws IOException {
        try (in) {
            jar.putNextEntry(new JarEntry(name));
            in.transferTo(jar);
            jar.closeEntry();
        } catch (IOException e) {
            throw new UncheckedIOException("copying " + name, e);
        }
    }
}
