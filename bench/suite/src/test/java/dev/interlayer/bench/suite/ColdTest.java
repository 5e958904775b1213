package dev.interlayer.bench.suite;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The cold test through the real suite: a real agent started anew under wrk's load, once from the build's
 * ahead-of-time cache when there is one and once without. Every figure must be measured; speed is never asserted.
 */
class ColdTest {

    @Test
    @Timeout(600)
    void aColdStartIsTimedFromTheSpawnUntilItServesItsWarmRate(@TempDir Path dir) throws Exception {
        Path md = dir.resolve("cold.md");
        SuiteRun run = SuiteRun.of(md, "--tests", "cold", "--cold-targets", "il-none", "--cold-seconds", "10", "--runs", "1");
        assertThat(run.status()).as("exit status; the suite's log:\n%s", run.log()).isZero();
        boolean aot = run.log().contains("start from the ahead-of-time cache");

        String report = Files.readString(md);
        assertThat(report).contains("## Cold start", "| il-none | 1/1 |");
        assertThat(report.contains("| il-none no-aot | 1/1 |")).isEqualTo(aot);

        List<String> csv = Files.readAllLines(dir.resolve("cold.csv"));
        List<String> header = Arrays.asList(csv.getFirst().split(","));
        List<String[]> rows = csv.subList(1, csv.size()).stream().map(l -> l.split(",", -1)).toList();
        assertThat(rows).hasSize(aot ? 8 : 4);
        for (String[] r : rows) {
            assertThat(r[header.indexOf("ok")]).as(String.join(",", r)).isEqualTo("true");
            assertThat(Double.parseDouble(r[header.indexOf("amount")])).as("warm req/s").isPositive();
        }
        for (String target : aot ? List.of("il-none", "il-none no-aot") : List.of("il-none")) {
            double listening = value(rows, header, target, "cold_listen");
            double t90 = value(rows, header, target, "cold_t90");
            assertThat(listening).as("listening after").isPositive();
            assertThat(t90).as("90 % of warm after, from the spawn").isGreaterThan(listening).isLessThanOrEqualTo(listening + 10);
            // a loaded machine can take longer than 5 s to start the JVM: 0 is a measurement
            assertThat(value(rows, header, target, "cold_first5")).as("first 5 s, % of warm").isBetween(0.0, 1000.0);
        }
    }

    private static double value(List<String[]> rows, List<String> header, String target, String test) {
        return rows.stream().filter(r -> r[header.indexOf("target")].equals(target) && r[header.indexOf("test")].equals(test))
                .mapToDouble(r -> Double.parseDouble(r[header.indexOf("value")])).findFirst().orElseThrow();
    }
}
