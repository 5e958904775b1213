package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.agent.Agent;
import dev.interlayer.agent.AgentConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/** Starts real agents from YAML configs, with the real sample-module jars the build produced. */
final class Agents {

    private Agents() {}

    /** The folder with the built sample module jars (set by the build; see it/pom.xml). */
    static Path sampleModules() {
        Path p = Path.of(System.getProperty("interlayer.sampleModules", "../cli/target/sample-modules"));
        if (!Files.isDirectory(p)) {
            throw new IllegalStateException("sample module jars not found at " + p.toAbsolutePath() + "; build the cli module first");
        }
        return p;
    }

    /** Copies sample module {@code name} (e.g. "tag") into {@code dir}. */
    static Path deploySample(String name, Path dir) {
        try {
            Files.createDirectories(dir);
            return Files.copy(sampleModules().resolve("module-" + name + ".jar"), dir.resolve(name + ".jar"), StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * The config of an agent (control off, two event loops) with one server-role listener {@code name} on a free port
     * terminating TLS with the flow-style block {@code tls} ({@code {cert: ..., key: ...}}) toward {@code upstreamPort}.
     */
    static String terminating(String name, int upstreamPort, String tls) {
        return """
                agent:
                  control: {enabled: false}
                  io-threads: 2
                listeners:
                  - name: %s
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:%d
                    role: server
                    tls: %s
                """.formatted(name, upstreamPort, tls);
    }

    /** Writes {@code yaml} as {@code dir/agent.yaml} and starts an agent from it. */
    static Agent start(Path dir, String yaml) throws Exception {
        Files.createDirectories(dir);
        Path file = dir.resolve("agent.yaml");
        Files.writeString(file, yaml);
        return Agent.start(AgentConfig.load(file));
    }

    /**
     * Runs {@code interlayer run --config DIR/agent.yaml} from {@code jar} in a process of its own, with Netty's leak
     * detection at paranoid level; its standard output and error go to {@code DIR/agent.log}.
     */
    static Process runProcess(Path jar, Path dir) throws IOException {
        return new ProcessBuilder(ControlCliTest.java(), "--sun-misc-unsafe-memory-access=allow", "--enable-native-access=ALL-UNNAMED",
                "-Dio.netty.leakDetection.level=paranoid", "-jar", jar.toString(), "run", "--config", dir.resolve("agent.yaml").toString())
                .redirectErrorStream(true).redirectOutput(dir.resolve("agent.log").toFile()).start();
    }

    /** Waits up to 30 s until {@code answers} says an agent process from {@link #runProcess} answers; fails if it exits first. */
    static void awaitAnswer(Process agent, Path dir, Check answers) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!answers.ok()) {
            assertThat(agent.isAlive()).as("agent exited: " + Files.readString(dir.resolve("agent.log"))).isTrue();
            assertThat(System.nanoTime()).as("agent did not answer within 30 s").isLessThan(deadline);
            Thread.sleep(200);
        }
    }

    /** A check that may fail with an exception. */
    @FunctionalInterface
    interface Check {
        boolean ok() throws Exception;
    }

    /** Stops an agent process from {@link #runProcess} (SIGTERM; SIGKILL after 15 s) and checks its log reports no leak. */
    static void stopProcess(Process agent, Path dir) throws Exception {
        agent.destroy();
        if (!agent.waitFor(15, TimeUnit.SECONDS)) {
            agent.destroyForcibly();
        }
        assertThat(Files.readString(dir.resolve("agent.log"))).as("the agent's log").doesNotContain("LEAK:");
    }

    static void waitFor(String what, BooleanSupplier cond) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("not within 20 s: " + what);
            Thread.sleep(20);
        }
    }
}
