package dev.interlayer.bench.reliability;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The soak: {@code tag} on a client-role agent and on a server-role agent back to back, the load of {@link Traffic}
 * through them until the volume is checked, the agents' memory sampled all along. Fails on any mismatch, any
 * connection that did not end as planned, an agent that exited, or a leak the agents' leak detector reported.
 */
public final class Soak {

    /** What a run found. */
    public record Result(long checkedBytes, long checked, long slow, long resets, long resetBytes, long mismatches,
                  long failures, long leaks, boolean agentsAlive, double seconds, List<String> lines) {
        public boolean ok() {
            return mismatches == 0 && failures == 0 && leaks == 0 && agentsAlive && checked > 0;
        }
    }

    private Soak() {}

    /**
     * Runs the load until its volume is checked or {@code maxMillis} passed (then every connection open ends first),
     * printing a progress line every {@code progressMillis}.
     */
    public static Result run(Path interlayerJar, Path samples, Path work, Traffic.Settings settings, long maxMillis,
                             long progressMillis, PrintStream progress) throws Exception {
        String tag = "  - {name: tag, params: {every: 1000}}\n";
        try (Rig rig = Rig.start(interlayerJar, samples, work, settings, List.of("tag"), "modules:\n" + tag,
                List.of("tag"), "modules:\n" + tag);
             MemoryWatch memory = new MemoryWatch(rig.agents(), 5000)) {
            long t0 = System.nanoTime();
            rig.traffic.start(rig.entryPort());
            Thread reporter = Thread.ofPlatform().daemon().start(() -> report(rig, memory, t0, progressMillis, progress));
            Thread timer = Thread.ofPlatform().daemon().start(() -> {
                try {
                    Thread.sleep(maxMillis);
                    progress.println("time is up: stopping after the connections open now");
                    rig.traffic.stop();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            rig.traffic.await();
            timer.interrupt();
            reporter.interrupt();
            double seconds = (System.nanoTime() - t0) / 1e9;
            memory.close();
            return result(rig, memory, seconds);
        }
    }

    /** Asks the workers to stop, waits for their last connections and the last memory sample: the result since {@code t0}. */
    static Result stop(Rig rig, MemoryWatch memory, long t0) throws InterruptedException {
        rig.traffic.stop();
        rig.traffic.await();
        double seconds = (System.nanoTime() - t0) / 1e9;
        memory.close();
        return result(rig, memory, seconds);
    }

    static Result result(Rig rig, MemoryWatch memory, double seconds) throws InterruptedException {
        Traffic t = rig.traffic;
        List<String> lines = new ArrayList<>();
        lines.add(("%s checked in %,d connections (%,d with a slow reader), %,d reset on purpose (%s before the reset), "
                + "%d mismatches, %d failures, %.0f s, %.1f MB/s checked").formatted(gb(t.checkedBytes.get()),
                t.checked.get(), t.slow.get(), t.resets.get(), gb(t.resetBytes.get()), t.mismatches.get(),
                t.failures.get(), seconds, t.checkedBytes.get() / seconds / 1e6));
        lines.addAll(memory.report());
        long leaks = 0;
        boolean alive = true;
        for (AgentProcess a : rig.agents()) {
            leaks += a.leakReports();
            alive &= a.alive();
            a.moduleErrors(5).forEach(l -> lines.add("agent " + a.name + ": " + l));
            if (a.alive()) {
                a.moduleErrorCounts().forEach(l -> lines.add("agent " + a.name + " metrics: " + l));
            }
            if (!a.alive()) {
                lines.add("agent " + a.name + " exited; its log: " + a.dir.resolve("agent.log"));
            }
        }
        lines.add("leak reports in the agents' logs: " + leaks);
        t.problems().forEach(p -> lines.add("problem: " + p));
        return new Result(t.checkedBytes.get(), t.checked.get(), t.slow.get(), t.resets.get(), t.resetBytes.get(),
                t.mismatches.get(), t.failures.get(), leaks, alive, seconds, lines);
    }

    /** Prints a progress line every {@code periodMillis} until interrupted. */
    static void report(Rig rig, MemoryWatch memory, long t0, long periodMillis, PrintStream out) {
        int problemsShown = 0;
        try {
            while (true) {
                Thread.sleep(periodMillis);
                List<String> problems = rig.traffic.problems();
                for (String p : problems.subList(problemsShown, problems.size())) {
                    out.println("problem: " + p);
                }
                problemsShown = problems.size();
                Traffic t = rig.traffic;
                AgentProcess.Memory c = memory.range(rig.client).last;
                AgentProcess.Memory sv = memory.range(rig.server).last;
                double s = (System.nanoTime() - t0) / 1e9;
                out.printf("%6.0f s: %s checked (%.1f MB/s), %,d connections, %,d reset, %d mismatches, %d failures; "
                                + "client agent RSS %s direct %s, server agent RSS %s direct %s%n", s,
                        gb(t.checkedBytes.get()), t.checkedBytes.get() / s / 1e6, t.connectionsDone(), t.resets.get(),
                        t.mismatches.get(), t.failures.get(),
                        MemoryWatch.mib(c.rss()), MemoryWatch.mib(c.direct()), MemoryWatch.mib(sv.rss()),
                        MemoryWatch.mib(sv.direct()));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static String gb(long bytes) {
        return "%.2f GB".formatted(bytes / 1e9);
    }
}
