package dev.interlayer.bench.reliability;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** bench/soak: reliability figures under faults (docs/reliability.md). */
@Command(name = "soak", mixinStandardHelpOptions = true, sortOptions = false,
        subcommands = {Reliability.ReplaceCommand.class, Reliability.ReloadCommand.class, Reliability.RestartCommand.class,
                Reliability.SlowMixCommand.class},
        description = {"Reliability under faults through agents started as processes on loopback (docs/reliability.md).",
                "Without a command: tag traffic through two agents back to back until --gb is checked by SHA-256."})
public final class Reliability implements Callable<Integer> {

    public static void main(String[] args) {
        System.exit(new CommandLine(new Reliability()).execute(args));
    }

    /** Where the agent and the sample modules are, and where the agents' folders go. */
    static final class Common {
        @Option(names = "--repo", description = "The repository (default: the current folder).")
        Path repo = Path.of("").toAbsolutePath();

        @Option(names = "--keep", description = "Keep the work folder (the agents' configs and logs).")
        boolean keep;

        @Option(names = "--seed", description = "Seed of every random choice (default: the time).")
        long seed = System.nanoTime();

        Path interlayerJar() throws IOException {
            Path jar = repo.resolve("cli/target/interlayer.jar");
            if (!Files.isRegularFile(jar)) {
                throw new IOException(jar + " not found; build it with ./mvnw -q -DskipTests -pl cli -am package");
            }
            return jar;
        }

        Path samples() {
            return repo.resolve("cli/target/sample-modules");
        }

        @Spec
        CommandSpec spec;

        /** Stops with exit 2 and {@code message} unless {@code ok}. */
        void require(boolean ok, String message) {
            if (!ok) {
                throw new ParameterException(spec.commandLine(), message);
            }
        }

        Path work() throws IOException {
            return Files.createTempDirectory(Path.of("/tmp"), "interlayer-soak-");
        }

        /** Prints {@code lines} and {@code command}'s verdict, then {@link #done}; returns the exit code. */
        int finish(String command, List<String> lines, boolean ok, String success, Path work) throws IOException {
            lines.forEach(System.out::println);
            System.out.println(command + ": " + (ok ? success : "FAILED (seed " + seed + ")"));
            done(work);
            return ok ? 0 : 1;
        }

        void done(Path work) throws IOException {
            if (keep) {
                System.out.println("work folder kept: " + work);
                return;
            }
            try (Stream<Path> s = Files.walk(work)) {
                for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }

    @Mixin
    Common common;

    @Option(names = "--gb", description = "Volume to check, in GB (10^9 bytes), both directions (default ${DEFAULT-VALUE}).")
    double gb = 100;

    @Option(names = "--connections", description = "Concurrent connections (default ${DEFAULT-VALUE}).")
    int connections = 64;

    @Option(names = "--max-stream-mib", description = "Longest stream one way, in MiB (default ${DEFAULT-VALUE}).")
    int maxStreamMib = 64;

    @Option(names = "--slow", description = "Share of connections with a slow reader (default ${DEFAULT-VALUE}).")
    double slow = 0.1;

    @Option(names = "--resets", description = "Share of connections reset on purpose (default ${DEFAULT-VALUE}).")
    double resets = 0.1;

    @Option(names = "--minutes", description = "Stop after this many minutes even if --gb is not reached (default: none).")
    double minutes = Double.POSITIVE_INFINITY;

    @Option(names = "--progress", description = "Seconds between progress lines (default ${DEFAULT-VALUE}).")
    int progress = 60;

    @Override
    public Integer call() throws Exception {
        common.require(gb > 0 && connections >= 1 && maxStreamMib >= 1 && minutes > 0 && progress >= 1,
                "--gb, --connections, --max-stream-mib, --minutes and --progress must be positive");
        common.require(slow >= 0 && slow <= 1 && resets >= 0 && resets <= 1, "--slow and --resets are shares between 0 and 1");
        Path work = common.work();
        System.out.printf("soak: seed %d, %.1f GB, %d connections, streams up to %d MiB, slow %.2f, resets %.2f, work %s%n",
                common.seed, gb, connections, maxStreamMib, slow, resets, work);
        Soak.Result r = Soak.run(common.interlayerJar(), common.samples(), work,
                new Traffic.Settings(connections, (long) (gb * 1e9), (long) maxStreamMib << 20, slow, resets,
                        common.seed, 120_000), (long) Math.min(Long.MAX_VALUE, minutes * 60_000), progress * 1000L,
                System.out);
        r.lines().forEach(System.out::println);
        System.out.println(r.ok() ? "soak: every checked byte arrived exactly" : "soak: FAILED (seed " + common.seed + ")");
        common.done(work);
        return r.ok() ? 0 : 1;
    }

    /** The load of the commands that change the agents under it: concurrent connections and what they do, and the pause between changes. */
    static final class Load {
        @Option(names = "--connections", description = "Concurrent connections (default ${DEFAULT-VALUE}).")
        int connections = 32;

        @Option(names = "--max-stream-mib", description = "Longest stream one way, in MiB (default ${DEFAULT-VALUE}).")
        int maxStreamMib = 4;

        @Option(names = "--slow", description = "Share of connections with a slow reader (default ${DEFAULT-VALUE}).")
        double slow = 0.1;

        @Option(names = "--pause", description = "Seconds between two changes (default ${DEFAULT-VALUE}).")
        double pause = 2;

        /** The traffic's settings with {@code resets} of the connections reset on purpose; checks the options first. */
        Traffic.Settings settings(Common common, double resets) {
            common.require(connections >= 1 && maxStreamMib >= 1 && pause >= 0,
                    "--connections and --max-stream-mib must be positive, --pause not negative");
            common.require(slow >= 0 && slow <= 1 && resets >= 0 && resets <= 1, "--slow and --resets are shares between 0 and 1");
            return new Traffic.Settings(connections, Long.MAX_VALUE, (long) maxStreamMib << 20, slow, resets, common.seed, 120_000);
        }

        long pauseMillis() {
            return (long) (pause * 1000);
        }

        String describe(Common common, double resets, Path work) {
            return "seed %d, %d connections, streams up to %d MiB, slow %.2f, resets %.2f, work %s".formatted(common.seed, connections,
                    maxStreamMib, slow, resets, work);
        }
    }

    /** The share of connections reset on purpose, for the commands whose load has resets. */
    static final class Resets {
        @Option(names = "--resets", description = "Share of connections reset on purpose (default ${DEFAULT-VALUE}).")
        double resets = 0.1;
    }

    @Command(name = "replace", mixinStandardHelpOptions = true, sortOptions = false,
            description = "Replaces every sample module on two agents back to back by a higher version, round after "
                    + "round, while connections open and stream; counts failed connections.")
    static final class ReplaceCommand implements Callable<Integer> {
        @Mixin
        Common common;

        @Mixin
        Load load;

        @Option(names = "--rounds", description = "Rounds: each loads a new version of every module (default ${DEFAULT-VALUE}).")
        int rounds = 3;

        @Option(names = "--modules", split = ",", description = "Replace only these modules (default: all of them).")
        List<String> modules = List.of();

        @Override
        public Integer call() throws Exception {
            common.require(rounds >= 1, "--rounds must be positive");
            Traffic.Settings settings = load.settings(common, 0);
            Path work = common.work();
            System.out.printf("replace: %d rounds, %s%n", rounds, load.describe(common, 0, work));
            HotReplace.Result r = HotReplace.run(common.interlayerJar(), common.samples(), work, settings, rounds, load.pauseMillis(),
                    modules, System.out);
            return common.finish("replace", r.lines(), r.ok(), "no connection failed", work);
        }
    }

    @Command(name = "reload", mixinStandardHelpOptions = true, sortOptions = false,
            description = {"Reloads the configs of two agents back to back with `interlayer reload`, round after round, while "
                    + "connections open and stream through an unchanged and a changed listener: module settings changed, a "
                    + "listener added and removed, a listener's options changed; counts failed and refused connections."})
    static final class ReloadCommand implements Callable<Integer> {
        @Mixin
        Common common;

        @Mixin
        Load load;

        @Mixin
        Resets resets;

        @Option(names = "--rounds", description = "Rounds: each changes both agents' configs and reloads them (default ${DEFAULT-VALUE}).")
        int rounds = 20;

        @Override
        public Integer call() throws Exception {
            common.require(rounds >= 1, "--rounds must be positive");
            Traffic.Settings settings = load.settings(common, resets.resets);
            Path work = common.work();
            System.out.printf("reload: %d rounds, %s%n", rounds, load.describe(common, resets.resets, work));
            Reload.Result r = Reload.run(common.interlayerJar(), common.samples(), work, settings, rounds, load.pauseMillis(), System.out);
            return common.finish("reload", r.lines(), r.ok(), "no connection failed or was refused", work);
        }
    }

    @Command(name = "restart", mixinStandardHelpOptions = true, sortOptions = false,
            description = {"Replaces the agents, one after the other, round after round, by a new process started with "
                    + "`interlayer run --takeover`, while connections open and stream; counts failed and refused connections."})
    static final class RestartCommand implements Callable<Integer> {
        @Mixin
        Common common;

        @Mixin
        Load load;

        @Mixin
        Resets resets;

        @Option(names = "--rounds", description = "Takeovers, of the agents named by --agents in turn (default ${DEFAULT-VALUE}).")
        int rounds = 10;

        @Option(names = "--agents", split = ",", description = "The agents to restart: client, server or both (default ${DEFAULT-VALUE}).")
        List<String> agents = List.of("client", "server");

        @Option(names = "--drain", description = "Seconds the old process may drain its connections (default ${DEFAULT-VALUE}).")
        int drain = 120;

        @Override
        public Integer call() throws Exception {
            common.require(rounds >= 1 && drain >= 1, "--rounds and --drain must be positive");
            common.require(!agents.isEmpty() && List.of("client", "server").containsAll(agents), "--agents names client, server or both");
            Traffic.Settings settings = load.settings(common, resets.resets);
            Path work = common.work();
            System.out.printf("restart: %d takeovers of %s, %s%n", rounds, String.join(" and ", agents), load.describe(common, resets.resets, work));
            Restart.Result r = Restart.run(common.interlayerJar(), common.samples(), work, settings, rounds, load.pauseMillis(),
                    drain * 1000L, agents, System.out);
            return common.finish("restart", r.lines(), r.ok(), "no connection failed or was refused", work);
        }
    }

    @Command(name = "slow-mix", mixinStandardHelpOptions = true, sortOptions = false,
            description = "Fast connections through one agent alone, then beside many slow readers.")
    static final class SlowMixCommand implements Callable<Integer> {
        @Mixin
        Common common;

        @Option(names = "--slow", description = "Slow connections (default ${DEFAULT-VALUE}; each is 2 open files here and 2 in the agent).")
        int slow = 9000;

        @Option(names = "--slow-backlog-kib", description = "What a slow connection's server writes at once before 1 KiB a "
                + "second, in KiB, at most 1024 (default ${DEFAULT-VALUE}).")
        int slowBacklogKib = 16;

        @Option(names = "--slow-direct", description = "Open the slow connections straight to the server, not through the agent.")
        boolean slowDirect;

        @Option(names = "--bulk", description = "Fast bulk streams (default ${DEFAULT-VALUE}).")
        int bulk = 4;

        @Option(names = "--echo", description = "Fast 1 KiB request/response connections (default ${DEFAULT-VALUE}).")
        int echo = 4;

        @Option(names = "--seconds", description = "Seconds each phase is measured (default ${DEFAULT-VALUE}).")
        int seconds = 20;

        @Override
        public Integer call() throws Exception {
            common.require(slow >= 0 && bulk >= 1 && echo >= 1 && seconds >= 1,
                    "--slow must not be negative; --bulk, --echo and --seconds must be positive");
            common.require(slowBacklogKib >= 1 && slowBacklogKib <= 1024, "--slow-backlog-kib must be between 1 and 1024");
            Path work = common.work();
            System.out.printf("slow-mix: %,d slow connections, %d bulk, %d echo, %d s per phase, work %s%n", slow, bulk,
                    echo, seconds, work);
            SlowMix.Result r = SlowMix.run(common.interlayerJar(), work, slow, slowBacklogKib << 10, slowDirect, bulk, echo,
                    seconds * 1000L,
                    System.out);
            r.lines().forEach(System.out::println);
            System.out.println(r.ok() ? "slow-mix: every connection stayed open, no fast one stalled"
                    : "slow-mix: FAILED (a connection failed or a fast one stalled: a bulk stream under 1 MiB, a round trip of 5 s or more)");
            common.done(work);
            return r.ok() ? 0 : 1;
        }
    }
}
