package dev.interlayer.bench.reliability;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * Hot replacement under load: the rig of the soak with every sample module that applies to plain TCP on the agents,
 * each replaced in turn, round after round, by a rebuilt jar with a higher version
 * ({@code interlayer modules load JAR}) while connections keep opening and streaming. The replaced version is
 * deprecated by the load (open connections keep it) and unloads after its last connection; at the end only the last
 * versions may be loaded.
 */
public final class HotReplace {

    /** The client-role agent's modules and their settings: each does something to every connection. */
    static final List<String> CLIENT_MODULES = List.of("tag", "ratelimit", "tcplog", "hold-release");
    static final String CLIENT_YAML = """
            modules:
              - {name: tag, params: {every: 1000}}
              - {name: ratelimit, params: {rate: 1GiB, burst: 16MiB}}
              - {name: hold-release, params: {delay: 1ms, direction: both}}
            """;
    static final List<String> SERVER_MODULES = List.of("tag", "tcplog");
    static final String SERVER_YAML = """
            modules:
              - {name: tag, params: {every: 1000}}
            """;

    /** What a run found. */
    public record Result(long connections, long checked, long failed, int loads, int loadFailures, boolean oldUnloaded,
                  List<String> lines) {
        public boolean ok() {
            return failed == 0 && loadFailures == 0 && oldUnloaded && checked > 0;
        }
    }

    private HotReplace() {}

    /**
     * Runs {@code rounds} rounds; each loads version {@code 1.0.ROUND} of every module named in {@code modules} (all of
     * the agents' modules when empty) into each agent that runs it, {@code pauseMillis} apart.
     */
    public static Result run(Path interlayerJar, Path samples, Path work, Traffic.Settings settings, int rounds,
                             long pauseMillis, List<String> modules, PrintStream progress) throws Exception {
        Path jars = Files.createDirectories(work.resolve("jars"));
        try (Rig rig = Rig.start(interlayerJar, samples, work, settings, CLIENT_MODULES, CLIENT_YAML, SERVER_MODULES,
                SERVER_YAML);
             MemoryWatch memory = new MemoryWatch(rig.agents(), 5000)) {
            long t0 = System.nanoTime();
            rig.traffic.start(rig.entryPort());
            Thread.sleep(pauseMillis);
            int loads = 0;
            int loadFailures = 0;
            List<String> lines = new ArrayList<>();
            for (int round = 1; round <= rounds; round++) {
                String version = "1.0." + round;
                for (AgentProcess agent : rig.agents()) {
                    for (String module : agent == rig.client ? CLIENT_MODULES : SERVER_MODULES) {
                        if (!modules.isEmpty() && !modules.contains(module)) {
                            continue;
                        }
                        Path jar = VersionBump.write(samples.resolve("module-" + module + ".jar"), version,
                                jars.resolve(agent.name + "-" + module + "-" + version + ".jar"));
                        String out = cli(interlayerJar, work, "modules", "load", jar.toString(), "--socket",
                                agent.controlSocket().toString());
                        loads++;
                        if (!out.startsWith("exit 0")) {
                            loadFailures++;
                            lines.add("load of " + module + "@" + version + " into agent " + agent.name + " failed: " + out);
                        }
                        progress.printf("%6.0f s: %s@%s loaded into the %s agent; %,d connections so far, %d failed%n",
                                (System.nanoTime() - t0) / 1e9, module, version, agent.name,
                                rig.traffic.connectionsDone(), rig.traffic.failures.get() + rig.traffic.mismatches.get());
                        Thread.sleep(pauseMillis);
                    }
                }
            }
            rig.traffic.stop();
            rig.traffic.await();
            List<String> replaced = modules.isEmpty() ? CLIENT_MODULES : modules;
            boolean oldUnloaded = awaitOnlyVersion(interlayerJar, work, rig, replaced, "1.0." + rounds, lines);
            double seconds = (System.nanoTime() - t0) / 1e9;
            memory.close();
            Soak.Result r = Soak.result(rig, memory, seconds);
            Traffic t = rig.traffic;
            lines.addFirst(("%d module loads (%d failed) into two agents under load: %,d connections, %,d checked, "
                    + "%d failed (%d mismatches), %.0f s").formatted(loads, loadFailures, t.connectionsDone(),
                    t.checked.get(), t.failures.get() + t.mismatches.get(), t.mismatches.get(), seconds));
            lines.addAll(r.lines());
            return new Result(t.connectionsDone(), t.checked.get(), t.failures.get() + t.mismatches.get() + r.leaks(),
                    loads, loadFailures, oldUnloaded && r.agentsAlive(), lines);
        }
    }

    /**
     * Waits up to 30 s until each agent's {@code modules list} shows one row per module, none deprecated, and
     * {@code version} for each replaced module (the old versions unloaded after their last connection); adds the lists
     * to lines.
     */
    private static boolean awaitOnlyVersion(Path interlayerJar, Path work, Rig rig, List<String> replaced,
                                            String version, List<String> lines) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            boolean only = true;
            List<String> lists = new ArrayList<>();
            for (AgentProcess a : rig.agents()) {
                String out = cli(interlayerJar, work, "modules", "list", "--socket", a.controlSocket().toString());
                lists.add("modules list of the " + a.name + " agent: " + out.replace('\n', ' ').replaceAll(" +", " "));
                only &= out.startsWith("exit 0") && onlyVersion(out, replaced, version);
            }
            if (only || System.nanoTime() > deadline) {
                lines.addAll(lists);
                return only;
            }
            Thread.sleep(1000);
        }
    }

    /** Whether the rows of a {@code modules list} (NAME VERSION STATE …) show each module once, as described above. */
    private static boolean onlyVersion(String list, List<String> replaced, String version) {
        Set<String> seen = new HashSet<>();
        for (String row : list.lines().skip(1).toList()) {
            String[] f = row.strip().split("\\s+");
            if (f.length < 3 || f[0].equals("NAME")) {
                continue;
            }
            if (!seen.add(f[0]) || f[2].startsWith("DEPRECATED") || replaced.contains(f[0]) && !f[1].equals(version)) {
                return false;
            }
        }
        return true;
    }

    /** Runs {@code interlayer ARGS…} as a process; returns "exit N: OUTPUT". */
    static String cli(Path interlayerJar, Path work, String... args) throws IOException, InterruptedException {
        // a short-lived JVM: the first compiler tier and the serial collector start it sooner
        List<String> cmd = new ArrayList<>(List.of(AgentProcess.javaBin(), "--sun-misc-unsafe-memory-access=allow",
                "--enable-native-access=ALL-UNNAMED", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-jar", interlayerJar.toString()));
        cmd.addAll(List.of(args));
        Path out = Files.createTempFile(work, "cli", ".out");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile()).start();
        if (!p.waitFor(180, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            return "exit timeout: interlayer " + String.join(" ", args) + " did not return within 180 s";
        }
        String text = Files.readString(out, StandardCharsets.UTF_8).strip();
        Files.delete(out);
        return "exit " + p.exitValue() + ": " + text;
    }
}
