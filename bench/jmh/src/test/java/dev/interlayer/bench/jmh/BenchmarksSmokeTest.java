package dev.interlayer.bench.jmh;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.engine.ChunkViewBenchmark;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.profile.GCProfiler;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

/**
 * Runs every JMH benchmark once, briefly, in this JVM, so the benchmarks cannot rot: each benchmark method and
 * parameter combination must produce a result (and its own end-of-trial checks must pass: bytes delivered, the
 * connection still open). No timing is asserted. The Netty leak check of the test class path applies.
 */
class BenchmarksSmokeTest {

    private static final List<Class<?>> BENCHMARKS =
            List.of(DispatchBenchmark.class, VerdictBenchmark.class, SelectorBenchmark.class, ChunkViewBenchmark.class,
                    TagBenchmark.class, PreemptionBenchmark.class);

    @Test
    void everyBenchmarkRunsAndReportsAResult() throws Exception {
        OptionsBuilder b = new OptionsBuilder();
        for (Class<?> c : BENCHMARKS) {
            b.include("^" + c.getName().replace(".", "\\.") + "\\.");
        }
        Options opts = b.forks(0)
                .warmupIterations(0)
                .measurementIterations(1)
                .measurementTime(TimeValue.milliseconds(100))
                .addProfiler(GCProfiler.class)
                .shouldFailOnError(true)
                .verbosity(org.openjdk.jmh.runner.options.VerboseMode.SILENT)
                .build();
        Collection<RunResult> results = new Runner(opts).run();

        Map<String, Integer> runs = new HashMap<>();
        for (RunResult r : results) {
            assertThat(r.getPrimaryResult().getSampleCount()).as(r.getParams().id()).isPositive();
            assertThat(r.getPrimaryResult().getScore()).as(r.getParams().id()).isFinite().isPositive();
            assertThat(r.getSecondaryResults()).as("gc profiler figures of " + r.getParams().id()).containsKey("gc.alloc.rate.norm");
            runs.merge(r.getParams().getBenchmark(), 1, Integer::sum);
        }
        Map<String, Integer> expected = new HashMap<>();
        for (Class<?> c : BENCHMARKS) {
            int combos = 1;
            for (Field f : c.getFields()) {
                Param p = f.getAnnotation(Param.class);
                if (p != null) combos *= p.value().length;
            }
            for (Method m : c.getMethods()) {
                if (m.isAnnotationPresent(Benchmark.class)) expected.put(c.getName() + "." + m.getName(), combos);
            }
        }
        assertThat(runs).isEqualTo(expected);
    }
}
