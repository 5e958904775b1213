package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonParser;
import dev.interlayer.control.testing.TempDirs;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The {@code interlayer} launcher at the repository's root, as a user runs it: the agent keeps its JVM flags; a short
 * call runs with the start-up flags and makes, then uses, the class-data archive under the build folder, and nothing of
 * that reaches its standard output.
 */
class LauncherTest {

    static final Path ROOT = Path.of("..").toAbsolutePath().normalize();
    static final Path CDS = ROOT.resolve("cli/target/cds");

    Path dir;
    Process agent;

    @BeforeEach
    void setUp() throws Exception {
        dir = Files.createTempDirectory("interlayer-launcher-");
        Files.writeString(dir.resolve("agent.yaml"), """
                agent:
                  control: {socket: control.sock}
                listeners:
                  - name: app
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:9
                    role: client
                """);
    }

    @AfterEach
    void tearDown() throws Exception {
        if (agent != null) {
            agent.destroy();
            if (!agent.waitFor(15, TimeUnit.SECONDS)) {
                agent.destroyForcibly();
            }
        }
        TempDirs.delete(dir);
    }

    static ProcessBuilder launcher(String... args) {
        List<String> cmd = new ArrayList<>(List.of(ROOT.resolve("interlayer").toString()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        // the build just made the jar; the launcher must not start another
        pb.environment().put("INTERLAYER_NO_BUILD", "1");
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        pb.environment().remove("INTERLAYER_JVM_OPTS");
        return pb;
    }

    static ControlCliTest.Run run(String... args) throws Exception {
        Process p = launcher(args).start();
        byte[] out = p.getInputStream().readAllBytes();
        byte[] err = p.getErrorStream().readAllBytes();
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        return new ControlCliTest.Run(p.exitValue(), new String(out, StandardCharsets.UTF_8), new String(err, StandardCharsets.UTF_8));
    }

    /** The JVM arguments of a running process (the launcher execs java, so the process is the JVM). */
    static List<String> jvmArgs(Process p) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (true) {
            List<String> args = p.info().arguments().map(List::of).orElse(List.of());
            if (p.info().command().orElse("").endsWith(File.separator + "java") && args.contains("-jar")) {
                return args.subList(0, args.indexOf("-jar"));
            }
            assertThat(System.nanoTime()).as("the launcher started java: " + p.info()).isLessThan(deadline);
            Thread.sleep(50);
        }
    }

    /** The files in the archive folder. */
    static List<Path> cdsFiles() throws Exception {
        if (!Files.isDirectory(CDS)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(CDS)) {
            return s.toList();
        }
    }

    @Test
    void theAgentKeepsItsFlagsAndAShortCallStartsFromAnArchiveItMadeItself() throws Exception {
        agent = launcher("run", "--config", dir.resolve("agent.yaml").toString()).redirectErrorStream(true)
                .redirectOutput(dir.resolve("agent.log").toFile()).start();
        List<String> agentArgs = jvmArgs(agent);
        assertThat(agentArgs).contains("--sun-misc-unsafe-memory-access=allow", "--enable-native-access=ALL-UNNAMED")
                .noneMatch(a -> a.startsWith("-XX:TieredStopAtLevel") || a.startsWith("-XX:SharedArchiveFile") || a.contains("SerialGC"));
        // the build's training run made the agent's ahead-of-time cache for this jar (skipped only with -Dinterlayer.aot.skip)
        Path aot = ROOT.resolve("cli/target/interlayer.aot");
        Path jar = ROOT.resolve("cli/target/interlayer.jar");
        if (Files.exists(aot) && Files.getLastModifiedTime(aot).compareTo(Files.getLastModifiedTime(jar)) >= 0) {
            assertThat(agentArgs).contains("-XX:AOTCache=" + aot);
        } else {
            assertThat(agentArgs).noneMatch(a -> a.startsWith("-XX:AOTCache"));
        }
        String socket = dir.resolve("control.sock").toString();
        Agents.waitFor("the agent answers", () -> Files.exists(Path.of(socket)));

        // no archive (or one older than the jar): the call makes it, and its output is only its own
        for (Path old : cdsFiles()) {
            Files.delete(old);
        }
        ControlCliTest.Run first = run("status", "--json", "--socket", socket);
        assertThat(first.code()).as(first.err()).isZero();
        assertThat(JsonParser.parseString(first.out()).getAsJsonObject().get("status").getAsString()).isEqualTo("serving");
        assertThat(cdsFiles()).as("the archive made by the first call, and no temporary file left").singleElement()
                .satisfies(f -> assertThat(f.getFileName().toString()).startsWith("interlayer-cli-").endsWith(".jsa"));

        ControlCliTest.Run second = run("status", "--json", "--socket", socket);
        assertThat(second.code()).as(second.err()).isZero();
        assertThat(JsonParser.parseString(second.out()).getAsJsonObject().get("status").getAsString()).isEqualTo("serving");
        assertThat(second.err()).isEmpty();

        // a long call shows the flags a short call gets: C1 only, serial collector, the archive
        Process tail = launcher("log", "tail", "--socket", socket).start();
        try {
            assertThat(jvmArgs(tail)).contains("--sun-misc-unsafe-memory-access=allow", "--enable-native-access=ALL-UNNAMED",
                    "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-XX:SharedArchiveFile=" + cdsFiles().get(0));
        } finally {
            tail.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }
}
