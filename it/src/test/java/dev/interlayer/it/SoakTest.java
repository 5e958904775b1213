package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.bench.reliability.HotReplace;
import dev.interlayer.bench.reliability.Reload;
import dev.interlayer.bench.reliability.Soak;
import dev.interlayer.bench.reliability.Traffic;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The short version of {@code bench/soak} (docs/reliability.md): the same driver, with both agents as processes of the
 * built distribution on loopback, at a small volume.
 */
class SoakTest {

    private static final Path JAR = Path.of(System.getProperty("interlayer.distJar", "../cli/target/interlayer.jar"));

    @TempDir
    Path tmp;

    /** 200 MB of tag traffic with slow readers and resets: every stream not reset arrives exactly, both ways. */
    @Test
    void tagTrafficWithSlowReadersAndResetsArrivesExactly() throws Exception {
        long seed = System.nanoTime();
        Soak.Result r = Soak.run(JAR, Agents.sampleModules(), tmp,
                new Traffic.Settings(16, 200_000_000L, 8L << 20, 0.2, 0.2, seed, 60_000), 300_000, 10_000, System.out);
        r.lines().forEach(System.out::println);

        assertThat(r.mismatches()).as("seed %d: %s", seed, r.lines()).isZero();
        assertThat(r.failures()).as("seed %d: %s", seed, r.lines()).isZero();
        assertThat(r.checkedBytes()).isGreaterThanOrEqualTo(200_000_000L - r.resetBytes());
        assertThat(r.slow()).as("connections with a slow reader were checked").isPositive();
        assertThat(r.resets()).as("connections were reset on purpose").isPositive();
        assertThat(r.leaks()).isZero();
        assertThat(r.agentsAlive()).isTrue();
    }

    /** tag replaced on both agents by a rebuilt 1.0.1 while connections open and stream: none fails, 1.0.0 unloads. */
    @Test
    void replacingTagOnBothAgentsUnderLoadFailsNoConnection() throws Exception {
        long seed = System.nanoTime();
        HotReplace.Result r = HotReplace.run(JAR, Agents.sampleModules(), tmp,
                new Traffic.Settings(8, Long.MAX_VALUE, 1L << 20, 0.1, 0, seed, 60_000), 1, 1000, List.of("tag"),
                System.out);
        r.lines().forEach(System.out::println);

        assertThat(r.loads()).isEqualTo(2);
        assertThat(r.loadFailures()).as("%s", r.lines()).isZero();
        assertThat(r.failed()).as("seed %d: %s", seed, r.lines()).isZero();
        assertThat(r.checked()).isPositive();
        assertThat(r.oldUnloaded()).as("only tag 1.0.1 left on each agent: %s", r.lines()).isTrue();
    }

    /**
     * A round of {@code interlayer reload} on both agents under tag traffic with slow readers and resets: module settings
     * changed, a listener added, the second entry listener changed under its load (ConfigReloadTest removes listeners). No
     * connection fails or is refused, on the unchanged listener or the changed one.
     */
    @Test
    void reloadingBothAgentsUnderLoadFailsAndRefusesNoConnection() throws Exception {
        long seed = System.nanoTime();
        Reload.Result r = Reload.run(JAR, Agents.sampleModules(), tmp,
                new Traffic.Settings(8, Long.MAX_VALUE, 1L << 20, 0.1, 0.1, seed, 60_000), 1, 500, System.out);
        r.lines().forEach(System.out::println);

        assertThat(r.reloads()).isEqualTo(4);
        assertThat(r.reloadFailures()).as("%s", r.lines()).isZero();
        assertThat(r.unchanged().refused()).as("refused by the unchanged listener").isZero();
        assertThat(r.changed().refused()).as("refused by the listener the reloads changed").isZero();
        assertThat(r.changed().done()).as("connections through the changed listener").isPositive();
        assertThat(r.load().mismatches()).as("seed %d: %s", seed, r.lines()).isZero();
        assertThat(r.load().failures()).as("seed %d: %s", seed, r.lines()).isZero();
        assertThat(r.load().leaks()).isZero();
        assertThat(r.load().agentsAlive()).isTrue();
    }
}
