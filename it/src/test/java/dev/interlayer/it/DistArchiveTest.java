package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.interlayer.it.Commands.Run;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The distribution archive ({@code dist/target/interlayer-VERSION.tar.gz}, made by {@code ./mvnw package}) unpacked into a
 * temporary folder runs the demo from there with nothing but a JDK 25: no Maven, no source tree, no build folders.
 */
class DistArchiveTest {

    @TempDir
    Path dir;

    private static Path archive() {
        return Commands.built("interlayer.distArchive", "the distribution archive", "./mvnw package -pl dist -am -DskipTests");
    }

    /** Runs {@code cmd} in {@code cwd} with only {@code PATH} (system folders) and {@code JAVA_HOME} (this test's JDK) set. */
    private static Run run(Path cwd, List<String> cmd) throws IOException, InterruptedException {
        return run(cwd, cmd, Map.of());
    }

    /** As {@link #run(Path, List)}, with {@code extra} added to the environment. */
    private static Run run(Path cwd, List<String> cmd, Map<String, String> extra) throws IOException, InterruptedException {
        Map<String, String> env = new HashMap<>(extra);
        env.put("PATH", "/usr/bin:/bin");
        env.put("JAVA_HOME", System.getProperty("java.home"));
        return Commands.run(cwd, cmd, env);
    }

    /** Unpacks the archive into the test's folder and returns the folder it made. */
    private Path unpack() throws IOException, InterruptedException {
        Run untar = run(dir, List.of("tar", "xzf", archive().toAbsolutePath().toString()));
        assertThat(untar.code()).as(untar.out()).isZero();
        try (var s = Files.list(dir)) {
            return s.filter(Files::isDirectory).filter(d -> d.getFileName().toString().startsWith("interlayer-")).findFirst().orElseThrow();
        }
    }

    @Test
    void theUnpackedArchiveRunsTheDemoWithOnlyAJdk() throws Exception {
        Path home = unpack();
        assertThat(home.resolve("bin/interlayer")).isExecutable();
        assertThat(home.resolve("etc/agent.yaml")).isRegularFile();
        assertThat(home.resolve("docs/metrics.md")).isRegularFile();

        Run demo = run(home, List.of("bin/interlayer", "demo"));
        assertThat(demo.code()).as(demo.out()).isZero();
        assertThat(demo.out()).contains("OK: all checks passed");

        Run check = run(home, List.of("bin/interlayer", "check-module", "lib/sample-modules/module-tag.jar"));
        assertThat(check.code()).as(check.out()).isZero();
        assertThat(check.out()).contains("tag");
    }

    /**
     * The agent of an unpacked archive starts from the archive's ahead-of-time cache although the cache was made for
     * the jar at its build path: the JVM loads the CLI's classes from it. A build with {@code -Dinterlayer.aot.skip=true}
     * makes no cache, and this test is skipped, saying so.
     */
    @Test
    void theUnpackedAgentStartsFromTheArchivesAotCache() throws Exception {
        Path home = unpack();
        assumeTrue(Files.isRegularFile(home.resolve("lib/interlayer.aot")),
                "the archive has no lib/interlayer.aot: it was built with -Dinterlayer.aot.skip=true");
        Path classes = dir.resolve("classes.log");
        Path config = dir.resolve("agent.yaml");
        Files.writeString(config, "listeners:\n  - {name: echo, role: client, listen: 127.0.0.1:0, upstream: 127.0.0.1:9}\n");
        Map<String, String> log = Map.of("INTERLAYER_JVM_OPTS", "-Xlog:class+load=info:file=" + classes);

        Run check = run(home, List.of("bin/interlayer", "run", "--config", config.toString(), "--check"), log);
        assertThat(check.code()).as(check.out()).isZero();
        assertThat(Files.readString(classes)).contains("dev.interlayer.cli.Main source: shared objects file");

        Path classesWithout = dir.resolve("classes-without.log");
        Run without = run(home, List.of("bin/interlayer", "run", "--config", config.toString(), "--check"),
                Map.of("INTERLAYER_JVM_OPTS", "-Xlog:class+load=info:file=" + classesWithout, "INTERLAYER_AOT", "0"));
        assertThat(without.code()).as(without.out()).isZero();
        assertThat(Files.readString(classesWithout)).contains("dev.interlayer.cli.Main source: file:");
    }

    @Test
    void theSystemdUnitPassesSystemdsOwnCheck() throws Exception {
        if (!Files.isExecutable(Path.of("/usr/bin/systemd-analyze"))) {
            throw new IllegalStateException("systemd-analyze is needed to check the unit: apt-get install systemd");
        }
        Path home = unpack();
        // the unit names /opt/interlayer, where the README installs the archive: point it at this unpacked copy
        Path unit = dir.resolve("interlayer.service");
        Files.writeString(unit, Files.readString(home.resolve("systemd/interlayer.service")).replace("/opt/interlayer", home.toString()));
        Run verify = run(dir, List.of("/usr/bin/systemd-analyze", "verify", unit.toString()));
        assertThat(verify.code()).as(verify.out()).isZero();
        assertThat(Files.readString(unit)).contains("ProtectSystem=strict", "NoNewPrivileges=yes", "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE");
    }
}
