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
    static final List<String> JVM_OPTS = List.of("-Xms256m", "-Xmx256m", "-XX:MaxDirectMemorySize=512m",
            "-Dio.netty.leakDetection.level=simple");

    private static final Pattern LISTENING = Pattern.compile("listener .* -> ");
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    final String name;
    final Path dir;
    final int port;
    private final int metricsPort;
    private final Process process;

    /** One memory sample: resident set, heap in use, and the connections' direct memory, in bytes. */
    record Memory(long rss, long heap, long direct) {}

    private AgentProcess(String name, Path dir, int port, int metricsPort, Process process) {
        this.name = name;
        this.dir = dir;
        this.port = port;
        this.metricsPort = metricsPort;
        this.process = process;
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
        int port = freePort();
        int metricsPort = freePort();
        Path config = dir.resolve("agent.yaml");
        Files.writeString(config, """
                agent:
                  modules-dir: modules
                  control: {socket: control.sock}
                  metrics: {listen: 127.0.0.1:%d}
                listeners:
                  - {name: %s, listen: 127.0.0.1:%d, upstream: 127.0.0.1:%d, role: %s}
                %s""".formatted(metricsPort, name, port, upstreamPort, role, modulesYaml));
        List<String> cmd = new ArrayList<>(List.of(javaBin(), "--sun-misc-unsafe-memory-access=allow",
                "--enable-native-access=ALL-UNNAMED"));
        cmd.addAll(JVM_OPTS);
        cmd.addAll(List.of("-jar", interlayerJar.toString(), "run", "--config", config.toString()));
        Path log = dir.resolve("agent.log");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile())
                .redirectInput(new File("/dev/null")).start();
        AgentProcess agent = new AgentProcess(name, dir, port, metricsPort, p);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
        while (!LISTENING.matcher(agent.log()).find() || !agent.metricsUp()) {
            if (!p.isAlive() || System.nanoTime() > deadline) {
                agent.close();
                throw new IOException("agent " + name + " did not start (" + (p.isAlive() ? "not listening, or no metrics, after 180 s"
                        : "exit " + p.exitValue()) + "); its log " + log + ":\n" + agent.log());
            }
            Thread.sleep(100);
        }
        return agent;
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

    String log() {
        try {
            return Files.readString(dir.resolve("agent.log"), StandardCharsets.UTF_8);
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
        process.destroy();
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
