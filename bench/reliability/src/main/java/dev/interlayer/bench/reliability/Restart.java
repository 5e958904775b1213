package dev.interlayer.bench.reliability;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Seamless restart under load: the soak's rig ({@code tag} on two agents back to back) and its checked traffic, while
 * the agents are replaced, one after the other, round after round, by a new process started with
 * {@code interlayer run --takeover}: the new process takes over the listening sockets, the old one drains its open
 * connections and exits 0. No connection may be refused, fail or arrive changed, whether it started before a takeover
 * (it ends in the old process) or after.
 */
public final class Restart {

    /** What a run found. */
    public record Result(Soak.Result load, int takeovers, int takeoverFailures, List<String> lines) {
        public boolean ok() {
            return load.ok() && takeoverFailures == 0;
        }
    }

    private Restart() {}

    /**
     * Runs {@code rounds} takeovers, {@code pauseMillis} apart, of the agents named in {@code agents} ("client",
     * "server") in turn; each old process drains for at most {@code drainMillis}.
     */
    public static Result run(Path interlayerJar, Path samples, Path work, Traffic.Settings settings, int rounds,
                             long pauseMillis, long drainMillis, List<String> agents, PrintStream progress) throws Exception {
        String tag = "modules:\n  - {name: tag, params: {every: 1000}}\n";
        try (Rig rig = Rig.start(interlayerJar, samples, work, settings, List.of("tag"), tag, List.of("tag"), tag);
             MemoryWatch memory = new MemoryWatch(rig.agents(), 5000)) {
            List<AgentProcess> turn = rig.agents().stream().filter(a -> agents.contains(a.name)).toList();
            List<String> lines = new ArrayList<>();
            int failures = 0;
            long t0 = System.nanoTime();
            rig.traffic.start(rig.entryPort());
            Thread.sleep(pauseMillis);
            for (int round = 1; round <= rounds; round++) {
                AgentProcess agent = turn.get((round - 1) % turn.size());
                long open = agent.openConnections();
                long oldPid = agent.pid();
                String what;
                try {
                    AgentProcess.Handover h = agent.takeOver(drainMillis);
                    boolean drained = h.oldLastLine().contains("every connection finished");
                    what = "the old process %d exited %d %,d ms after the new one %d started, %s; %d connection(s) were open in it before"
                            .formatted(oldPid, h.oldExit(), h.millis(), agent.pid(), drained ? "every connection finished" : h.oldLastLine(), open);
                    if (h.oldExit() != 0 || !drained) {
                        failures++;
                        lines.add("round " + round + ", the " + agent.name + " agent: " + what);
                    }
                } catch (java.io.IOException e) {
                    failures++;
                    what = "FAILED: " + e.getMessage();
                    lines.add("round " + round + ", the " + agent.name + " agent: " + what);
                }
                progress.printf("%6.0f s: round %d, the %s agent taken over: %s; %,d connections so far, %d failed%n",
                        (System.nanoTime() - t0) / 1e9, round, agent.name, what, rig.traffic.connectionsDone(),
                        rig.traffic.failures.get() + rig.traffic.mismatches.get());
                Thread.sleep(pauseMillis);
            }
            Soak.Result r = Soak.stop(rig, memory, t0);
            Traffic.PortCounts entry = rig.traffic.counts(rig.entryPort());
            lines.addFirst("%d takeovers (%d failed) of two agents under load: %,d connections, %,d checked, %d failed (%d mismatches), %d connects refused, %.0f s"
                    .formatted(rounds, failures, rig.traffic.connectionsDone(), rig.traffic.checked.get(),
                            rig.traffic.failures.get() + rig.traffic.mismatches.get(), rig.traffic.mismatches.get(),
                            entry.refused(), r.seconds()));
            lines.addAll(r.lines());
            return new Result(r, rounds, failures, lines);
        }
    }
}
