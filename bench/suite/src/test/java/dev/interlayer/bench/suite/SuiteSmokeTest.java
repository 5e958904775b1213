package dev.interlayer.bench.suite;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs the real suite in smoke mode — real iperf3, wrk, nginx and Interlayer agent processes on loopback — so the
 * harness cannot rot: it must exit 0, its results table must parse with a positive figure in every cell, and the
 * CSV must hold one row per run, in the interleaved order (round by round over the targets). Speed is never asserted.
 */
class SuiteSmokeTest {

    private static final List<String> TARGETS = List.of("direct", "il-none", "il-pass");
    private static final List<String> TESTS = List.of("bulk1", "bulk4", "ka", "close");
    private static final int RUNS = 2;

    @Test
    @Timeout(600)   // generous: a fresh CI machine installs iperf3, wrk and nginx first
    void smokeModeMeasuresEveryFigureAndWritesAParsableTableAndOneCsvRowPerRun(@TempDir Path dir) throws Exception {
        Path md = dir.resolve("smoke.md");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int base = 24_000 + 500 * ThreadLocalRandom.current().nextInt(16);   // two builds on one machine rarely collide
        int status;
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
             PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            status = Suite.execute(o, e, "--smoke", "--runs", Integer.toString(RUNS), "--out", md.toString(), "--base-port", Integer.toString(base));
        }
        String log = err.toString(StandardCharsets.UTF_8);
        assertThat(status).as("exit status; the suite's log:\n%s", log).isZero();

        String report = Files.readString(md);
        assertThat(out.toString(StandardCharsets.UTF_8)).isEqualTo(report);
        Map<String, Map<String, String>> table = resultsTable(report);
        assertThat(table.keySet()).containsExactlyElementsOf(TARGETS);
        for (Map.Entry<String, Map<String, String>> row : table.entrySet()) {
            for (Map.Entry<String, String> cell : row.getValue().entrySet()) {
                boolean cpuOfDirect = row.getKey().equals("direct") && cell.getKey().contains("CPU");
                if (cpuOfDirect) {
                    assertThat(cell.getValue()).as("direct has no proxy CPU").isEqualTo("–");
                } else {
                    assertThat(Double.parseDouble(cell.getValue()))
                            .as("%s %s", row.getKey(), cell.getKey()).isPositive();
                }
            }
        }
        assertThat(table.get("direct").keySet()).contains("bulk1 Gbit/s", "bulk4 Gbit/s", "ka req/s", "ka p50 ms",
                "ka p99 ms", "close conn/s", "close CPU-µs/conn");
        assertThat(report).contains("## Machine", "## Method", "## Ratios", "| il-pass | il-none |");

        List<String> csv = Files.readAllLines(dir.resolve("smoke.csv"));
        assertThat(csv.getFirst()).isEqualTo(Loads.Run.CSV_HEADER);
        List<String> header = Arrays.asList(csv.getFirst().split(","));
        int target = header.indexOf("target");
        int test = header.indexOf("test");
        int value = header.indexOf("value");
        int ok = header.indexOf("ok");
        int run = header.indexOf("run");
        List<String> seen = new ArrayList<>();
        for (String line : csv.subList(1, csv.size())) {
            String[] f = line.split(",", -1);
            assertThat(f).hasSameSizeAs(header.toArray());
            assertThat(f[ok]).as(line).isEqualTo("true");
            assertThat(Double.parseDouble(f[value])).as(line).isPositive();
            seen.add(f[test] + "/" + f[run] + "/" + f[target]);
        }
        List<String> expected = new ArrayList<>();   // the order the runs happened in: round by round over the targets
        for (String x : TESTS) {
            for (int r = 1; r <= RUNS; r++) {
                for (String t : TARGETS) {
                    expected.add(x + "/" + r + "/" + t);
                }
            }
        }
        assertThat(seen).containsExactlyElementsOf(expected);
    }

    /** The "## Results" table: target → (column header → cell text). */
    private static Map<String, Map<String, String>> resultsTable(String report) {
        List<String> lines = report.lines().toList();
        int start = lines.indexOf("## Results");
        assertThat(start).as("a '## Results' section").isNotNegative();
        int h = start + 1;
        while (!lines.get(h).startsWith("| target |")) {
            h++;
        }
        String[] header = cells(lines.get(h));
        assertThat(lines.get(h + 1)).startsWith("|---|");
        Map<String, Map<String, String>> rows = new LinkedHashMap<>();
        for (int i = h + 2; i < lines.size() && lines.get(i).startsWith("|"); i++) {
            String[] c = cells(lines.get(i));
            assertThat(c).hasSameSizeAs(header);
            Map<String, String> row = new LinkedHashMap<>();
            for (int j = 1; j < c.length; j++) {
                row.put(header[j], c[j]);
            }
            rows.put(c[0], row);
        }
        return rows;
    }

    private static String[] cells(String line) {
        String t = line.strip();
        return Arrays.stream(t.substring(1, t.length() - 1).split("\\|")).map(String::strip).toArray(String[]::new);
    }
}
