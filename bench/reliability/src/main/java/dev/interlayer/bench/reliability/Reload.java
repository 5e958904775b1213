package dev.interlayer.bench.reliability;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Config reload under load: the rig of the soak, with {@code tag}, {@code ratelimit} and {@code tcplog} on the client
 * agent and {@code tag} and {@code tcplog} on the server agent, and a second entry listener on the client agent. The
 * load goes through both entry listeners (half the workers each) while, round after round, each agent's config file is
 * rewritten and applied with {@code interlayer reload}: the module settings beside {@code tag} change, a listener is
 * added (odd rounds) or removed (even rounds) on each agent, and the client agent's second entry listener is changed
 * (its socket options) under its load. The first listener of each agent never changes: its connections must neither
 * be refused nor fail; neither may the changed listener's.
 */
public final class Reload {

    static final List<String> CLIENT_MODULES = List.of("tag", "ratelimit", "tcplog");
    static final List<String> SERVER_MODULES = List.of("tag", "tcplog");
    /** The client agent's listener that each round changes. */
    static final String CHANGED = "changed";
    /** The listener each odd round adds and each even round removes, on both agents. */
    static final String ADDED = "added";

    /** What a run found; the connections and refused connects through each entry listener. */
    public record Result(Soak.Result load, int reloads, int reloadFailures, Traffic.PortCounts unchanged, Traffic.PortCounts changed,
                         List<String> lines) {
        public boolean ok() {
            return load.ok() && reloadFailures == 0;
        }
    }

    private Reload() {}

    /** The {@code modules:} section of the client agent in round {@code round} (0 at the start). */
    static String clientModules(int round) {
        return """
                modules:
                  - {name: tag, params: {every: 1000}}
                  - {name: ratelimit, params: {rate: 1GiB, burst: %dMiB}}
                  - {name: tcplog, params: {capacity: %d}}
                """.formatted(16 << (round % 2), 1024 + round);
    }

    /** The {@code modules:} section of the server agent in round {@code round}. */
    static String serverModules(int round) {
        return """
                modules:
                  - {name: tag, params: {every: 1000}}
                  - {name: tcplog, params: {capacity: %d}}
                """.formatted(1024 + round);
    }

    /**
     * Runs {@code rounds} rounds, {@code pauseMillis} apart: each rewrites both agents' configs and reloads the client
     * agent, then the server agent, with the CLI.
     */
    public static Result run(Path interlayerJar, Path samples, Path work, Traffic.Settings settings, int rounds,
                             long pauseMillis, PrintStream progress) throws Exception {
        try (Rig rig = Rig.start(interlayerJar, samples, work, settings, CLIENT_MODULES, clientModules(0), SERVER_MODULES,
                serverModules(0));
             MemoryWatch memory = new MemoryWatch(rig.agents(), 5000)) {
            int changedPort = AgentProcess.freePort();
            int clientAdded = AgentProcess.freePort();
            int serverAdded = AgentProcess.freePort();
            List<String> lines = new ArrayList<>();
            int reloads = 0;
            int failures = 0;
            long t0 = System.nanoTime();
            for (int round = 0; round <= rounds; round++) {
                if (round == 1) {
                    rig.traffic.start(rig.entryPort(), changedPort);
                    Thread.sleep(pauseMillis);
                }
                String changed = "  - {name: %s, listen: 127.0.0.1:%d, upstream: 127.0.0.1:%d, role: client, options: {tcp-nodelay: %b}}\n"
                        .formatted(CHANGED, changedPort, rig.server.port, round % 2 == 0);
                rig.client.writeConfig(changed + added(round, clientAdded, rig.server.port, "client"), clientModules(round));
                rig.server.writeConfig(added(round, serverAdded, rig.traffic.serverPort(), "server"), serverModules(round));
                for (AgentProcess agent : rig.agents()) {
                    String out = HotReplace.cli(interlayerJar, work, "reload", "--socket", agent.controlSocket().toString());
                    reloads++;
                    if (!out.startsWith("exit 0") || round > 0 && agent == rig.client && !out.contains("listener " + CHANGED + ": changed")) {
                        failures++;
                        lines.add("round " + round + ": reload of the " + agent.name + " agent failed: " + out);
                    } else if (round <= 1) {
                        progress.println("round " + round + ", the " + agent.name + " agent: " + out.replace("\n", "\n    "));
                    }
                }
                Traffic.PortCounts c = rig.traffic.counts(changedPort);
                progress.printf("%6.0f s: round %d applied to both agents; %,d connections so far, %d failed, %d connects refused%n",
                        (System.nanoTime() - t0) / 1e9, round, rig.traffic.connectionsDone(),
                        rig.traffic.failures.get() + rig.traffic.mismatches.get(),
                        c == null ? 0 : c.refused() + rig.traffic.counts(rig.entryPort()).refused());
                Thread.sleep(pauseMillis);
            }
            Soak.Result r = Soak.stop(rig, memory, t0);
            Traffic.PortCounts unchanged = rig.traffic.counts(rig.entryPort());
            Traffic.PortCounts changed = rig.traffic.counts(changedPort);
            lines.addFirst("through the changed listener %s: %s".formatted(CHANGED, describe(changed)));
            lines.addFirst("through the unchanged listener %s: %s".formatted(rig.client.name, describe(unchanged)));
            lines.addFirst("%d reloads (%d failed) of two agents under load, %d rounds: %,d connections, %,d checked, %d failed (%d mismatches), %.0f s"
                    .formatted(reloads, failures, rounds, rig.traffic.connectionsDone(), rig.traffic.checked.get(),
                            rig.traffic.failures.get() + rig.traffic.mismatches.get(), rig.traffic.mismatches.get(), r.seconds()));
            lines.addAll(r.lines());
            return new Result(r, reloads, failures, unchanged, changed, lines);
        }
    }

    /** The listener of round {@code round} that odd rounds add and even rounds remove. */
    private static String added(int round, int port, int upstream, String role) {
        return round % 2 == 0 ? "" : "  - {name: %s, listen: 127.0.0.1:%d, upstream: 127.0.0.1:%d, role: %s}\n"
                .formatted(ADDED, port, upstream, role);
    }

    private static String describe(Traffic.PortCounts c) {
        double ms = c.longestRefusalMillis();
        return "%,d connections, %d failed, %d connects refused%s".formatted(c.done(), c.failed(), c.refused(),
                ms < 0 ? "" : " (the longest moment of refusal: %.1f ms from the first refused connect to the last)".formatted(ms));
    }
}
