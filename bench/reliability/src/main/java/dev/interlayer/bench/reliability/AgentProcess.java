package dev.interlayer.bench.reliability;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * An agent running as its own process ({@code java -jar interlayer.jar run --config DIR/agent.yaml}) with its control
 * socket and metrics endpoint in its folder, started from a YAML config and stopped by its PID.
 */
final class AgentProcess implements AutoCloseable {

    /** How the agents' JVMs run: the heap and direct memory caps of bench/run, leak detection on (sampled). */
    static final List<String> JVM_OPTS = List.of("-Xms256m", "-Xmx256m", "-XX:+AlwaysPreTouch", "-XX:MaxDirectMemorySize=512m",
            "-Dio.netty.leakDetection.level=simple");

    private static final Pattern LISTENING = Pattern.compile("listener .* -> ");
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    final String name;
    final Path dir;
    final int port;
    private final String role;
    private final int upstreamPort;
    private final int metricsPort;
    private final Path interlayerJar;
    private volatile Process process;
    /** The process a takeover started, until it serves: stopped with this agent if the run ends before. */
    private volatile Process next;
    /** Processes started in its folder so far: the first logs to agent.log, the n-th (a takeover) to agent-n.log. */
    private int processes = 1;

    /** One memory sample: resident set, heap in use, and the connections' direct memory, in bytes. */
    record Memory(long rss, long heap, long direct) {}

    /** A takeover: the old process's exit code, and how long from the new process's start to the old one's exit. */
    record Handover(int oldExit, long millis, String oldLastLine) {}

    private AgentProcess(String name, Path dir, String role, int upstreamPort, Path interlayerJar) throws IOException {
        this.name = name;
        this.dir = dir;
        this.role = role;
        this.upstreamPort = upstreamPort;
        this.interlayerJar = interlayerJar;
        this.port = freePort();
        this.metricsPort = freePort();
    }

    /**
     * Starts agent {@code name} in {@code dir} with one listener of {@code role} on a free port toward
     * {@code upstreamPort}, the given sample module jars in its modules folder and the {@code modules:} section
     * {@code modulesYaml} (may be empty); waits until it listens.
     */
    static AgentProcess start(Path interlayerJar, Path dir, String name, String role, int upstreamPort,
                              List<Path> moduleJars, String modulesYaml) throws IOException, InterruptedException {
        Files.createDirectories(dir.resolve("modules"));
        for (Path jar : moduleJars) {
            Files.copy(jar, dir.resolve("modules").resolve(jar.getFileName()), StandardCopyOption.REPLACE_EXISTING);
        }
        AgentProcess agent = new AgentProcess(name, dir, role, upstreamPort, interlayerJar);
        agent.writeConfig("", modulesYaml);
        agent.process = agent.launch("agent.log");
        agent.awaitListening("agent.log", agent.process);
        return agent;
    }

    /**
     * Writes its config file: the agent's settings, its listener, the listeners {@code moreListeners} (YAML list items,
     * may be empty) and the {@code modules:} section {@code modulesYaml}. A running agent reads it on a reload.
     */
    void writeConfig(String moreListeners, String modulesYaml) throws IOException {
        Files.writeString(dir.resolve("agent.yaml"), """
                agent:
                  modules-dir: modules
                  control: {socket: control.sock}
                  metrics: {listen: 127.0.0.1:%d}
                listeners:
                  - {name: %s, listen: 127.0.0.1:%d, upstream: 127.0.0.1:%d, role: %s}
                %s%s""".formatted(metricsPort, name, port, upstreamPort, role, moreListeners, modulesYaml));
    }

    /** {@code run --config DIR/agent.yaml ARGS…} as a process logging to {@code DIR/LOG}. */
    private Process launch(String log, String... args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(javaBin(), "--sun-misc-unsafe-memory-access=allow",
                "--enable-native-access=ALL-UNNAMED"));
        cmd.addAll(JVM_OPTS);
        cmd.addAll(List.of("-jar", interlayerJar.toString(), "run", "--config", dir.resolve("agent.yaml").toString()));
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve(log).toFile())
                .redirectInput(new File("/dev/null")).start();
    }

    /** Waits until process {@code p}, logging to {@code log}, listens and its metrics endpoint answers; stops it on failure. */
    private void awaitListening(String log, Process p) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
        while (!LISTENING.matcher(read(log)).find() || !metricsUp()) {
            if (!p.isAlive() || System.nanoTime() > deadline) {
                stop(p);
                throw new IOException("agent " + name + " did not start (" + (p.isAlive() ? "not listening, or no metrics, after 180 s"
                        : "exit " + p.exitValue()) + "); its log " + dir.resolve(log) + ":\n" + read(log));
            }
            Thread.sleep(100);
        }
    }

    /**
     * Replaces the running process by a new one, {@code run --takeover --drain DRAIN} with the same config, as an
     * upgrade does: the new process takes over the listening sockets, the old one drains its connections and exits.
     * Returns once the new one serves (listeners and metrics) and the old one exited, at most the drain plus 180 s.
     */
    Handover takeOver(long drainMillis) throws IOException, InterruptedException {
        Process old = process;
        String log = "agent-" + (++processes) + ".log";
        long t0 = System.nanoTime();
        Process next = launch(log, "--takeover", "--drain", drainMillis + "ms");
        this.next = next;
        long deadline = t0 + TimeUnit.MILLISECONDS.toNanos(drainMillis) + TimeUnit.SECONDS.toNanos(180);
        while (!old.waitFor(100, TimeUnit.MILLISECONDS)) {
            if (!next.isAlive() || System.nanoTime() > deadline) {
                stop(next);
                this.next = null;
                throw new IOException("the takeover of agent " + name + " failed: " + (next.isAlive() ? "the old process (pid " + old.pid()
                        + ") did not exit within the drain and 180 s" : "the new process exited " + next.exitValue())
                        + "; the new one's log " + dir.resolve(log) + ":\n" + read(log));
            }
        }
        long millis = (System.nanoTime() - t0) / 1_000_000;
        process = next;
        this.next = null;
        awaitListening(log, next);
        String oldLog = read(processes == 2 ? "agent.log" : "agent-" + (processes - 1) + ".log");
        String last = oldLog.lines().filter(l -> l.contains("took over the listeners")).reduce((a, b) -> b).orElse("(no handover line in its log)");
        return new Handover(old.exitValue(), millis, last);
    }
    static String javaBin() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    long pid() {
        return process.pid();
    }

    boolean alive() {
        return process.isAlive();
    }

    Path controlSocket() {
        return dir.resolve("control.sock");
    }

    /** Every process's log in its folder, the first first. */
    String log() {
        StringBuilder out = new StringBuilder(read("agent.log"));
        for (int i = 2; i <= processes; i++) {
            out.append(read("agent-" + i + ".log"));
        }
        return out.toString();
    }

    private String read(String log) {
        try {
            return Files.readString(dir.resolve(log), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Lines of its log where a module ended a connection with an error (e.g. tag's mismatch) or faulted (threw, or ran
     * past the hook budget: the cause of a mismatch the peer's tag then reports), at most {@code n}.
     */
    List<String> moduleErrors(int n) {
        return log().lines().filter(l -> l.contains(" returned ERROR(") || l.contains(" faulted in ")).limit(n).toList();
    }

    /**
     * Its metrics' series of module ERROR verdicts and module faults that are not zero: counted even where the log
     * left lines out. Empty if the endpoint does not answer.
     */
    List<String> moduleErrorCounts() throws InterruptedException {
        try {
            return metrics().lines().filter(l -> (l.startsWith("interlayer_module_verdicts_total{") && l.contains("verdict=\"error\""))
                    || l.startsWith("interlayer_module_faults_total{")).filter(l -> !l.endsWith(" 0.0") && !l.endsWith(" 0")).toList();
        } catch (IOException e) {
            return List.of();
        }
    }

    /** Lines of its log that report a leaked buffer (Netty's leak detector, sampled). */
    long leakReports() {
        return log().lines().filter(l -> l.contains("LEAK:")).count();
    }

    /** Its memory now: RSS from /proc, heap and direct memory from its metrics endpoint. */
    Memory memory() throws IOException, InterruptedException {
        long rss = 0;
        for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid()), "status"))) {
            if (line.startsWith("VmRSS:")) {
                rss = Long.parseLong(line.replaceAll("\\D", "")) * 1024;
            }
        }
        String metrics = metrics();
        return new Memory(rss, gauge(metrics, "jvm_memory_used_bytes{area=\"heap\"}"),
                gauge(metrics, "interlayer_direct_memory_bytes"));
    }

    private boolean metricsUp() throws InterruptedException {
        try {
            metrics();
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** CPU time (user and system) it used so far, in seconds (/proc/PID/stat, in clock ticks of 1/100 s). */
    double cpuSeconds() throws IOException {
        String stat = Files.readString(Path.of("/proc", Long.toString(pid()), "stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return (Long.parseLong(f[11]) + Long.parseLong(f[12])) / 100.0;
    }

    /** Connections open now, from its metrics endpoint. */
    long openConnections() throws IOException, InterruptedException {
        return gauge(metrics(), "interlayer_connections_open");
    }

    private String metrics() throws IOException, InterruptedException {
        return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + metricsPort + "/metrics"))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString()).body();
    }

    /** The value of the series {@code series} (name and labels as the endpoint writes them). */
    private static long gauge(String metrics, String series) {
        return metrics.lines().filter(l -> l.startsWith(series + " "))
                .mapToLong(l -> (long) Double.parseDouble(l.substring(series.length() + 1).strip()))
                .findFirst().orElseThrow(() -> new IllegalStateException("the agent's metrics have no " + series));
    }

    /** SIGTERM, then SIGKILL after 10 s. */
    @Override
    public void close() {
        Process pending = next;
        if (pending != null) {
            stop(pending);
        }
        stop(process);
    }

    private static void stop(Process p) {
        p.destroy();
        try {
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
