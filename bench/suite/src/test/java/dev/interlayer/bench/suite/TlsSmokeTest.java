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
 * Runs the suite's TLS tests in smoke mode against {@code il-tls} — a real agent terminating TLS with the certificate
 * the suite makes with openssl, wrk over https pinned to TLS 1.3 AES-128-GCM, the nginx backend — so the TLS harness
 * cannot rot: exit 0 and a positive figure in every cell of its row. Speed is never asserted.
 */
class TlsSmokeTest {

    @Test
    @Timeout(600)   // a fresh CI machine installs wrk and nginx first
    void tlsTestsMeasureEveryFigureOfATlsTarget(@TempDir Path dir) throws Exception {
        Path md = dir.resolve("tls-smoke.md");
        SuiteRun run = SuiteRun.of(md, "--smoke", "--only", "il-tls", "--tests", "tls_ka,tls_close,tls_bulk", "--duration", "2");
        assertThat(run.status()).as("exit status; the suite's log:\n%s", run.log()).isZero();
        String report = Files.readString(md);
        List<String> header = cells(report.lines().filter(l -> l.startsWith("| target | tls_ka req/s")).findFirst().orElseThrow());
        List<String> row = cells(report.lines().filter(l -> l.startsWith("| il-tls |")).findFirst().orElseThrow());
        assertThat(header).contains("tls_close handshakes/s", "tls_close CPU-µs/handshake", "tls_bulk Gbit/s", "tls_bulk CPU-s/GB");
        assertThat(row).hasSameSizeAs(header);
        for (int i = 1; i < row.size(); i++) {
            assertThat(Double.parseDouble(row.get(i))).as("%s", header.get(i)).isPositive();
        }
    }

    private static List<String> cells(String line) {
        return Arrays.stream(line.split("\\|")).map(String::strip).filter(c -> !c.isEmpty()).toList();
    }
}
