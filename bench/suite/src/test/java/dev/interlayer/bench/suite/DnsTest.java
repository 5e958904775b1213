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
 * The dns and dns_flows tests through the real suite: dnsperf against a real dnsmasq, directly, through nginx's UDP
 * proxy and through a real agent's UDP listener, and the per-flow cost of the agent. Every figure must be measured;
 * speed is never asserted.
 */
class DnsTest {

    @Test
    @Timeout(600)   // a fresh machine installs dnsperf, dnsmasq and nginx first
    void dnsperfRunsThroughNginxAndTheAgentOverUdpAndThePerFlowCostIsMeasured(@TempDir Path dir) throws Exception {
        Path md = dir.resolve("dns.md");
        SuiteRun run = SuiteRun.of(md, "--smoke", "--only", "direct,nginx,il-none", "--tests", "dns,dns_flows", "--dns-flows", "300",
                "--dns-flows-targets", "il-none");
        assertThat(run.status()).as("exit status; the suite's log:\n%s", run.log()).isZero();
        String report = Files.readString(md);
        assertThat(report).contains("dns q/s", "dns CPU-µs/q", "dnsperf -T 1 -c 8 -q 100", "## UDP flows (per-flow cost)");

        List<String> csv = Files.readAllLines(dir.resolve("dns.csv"));
        List<String> header = Arrays.asList(csv.getFirst().split(","));
        List<String[]> rows = csv.subList(1, csv.size()).stream().map(l -> l.split(",", -1)).toList();
        assertThat(rows).extracting(r -> r[header.indexOf("target")] + "/" + r[header.indexOf("test")])
                .containsExactlyInAnyOrder("direct/dns", "nginx/dns", "il-none/dns", "il-none/dns_flows");
        for (String[] r : rows) {
            assertThat(r[header.indexOf("ok")]).as(String.join(",", r)).isEqualTo("true");
            if (r[header.indexOf("test")].equals("dns")) {
                assertThat(Double.parseDouble(r[header.indexOf("value")])).as("queries/s").isPositive();
                assertThat(Double.parseDouble(r[header.indexOf("avg_ms")])).as("mean latency").isPositive();
                assertThat(Double.parseDouble(r[header.indexOf("lost_pct")])).as("lost %").isNotNegative();
                if (!r[header.indexOf("target")].equals("direct")) {
                    assertThat(Double.parseDouble(r[header.indexOf("proxy_cpu_s")])).as("the proxy's CPU").isPositive();
                }
            } else {
                // one connected upstream socket per flow, so about one descriptor per flow
                assertThat(r[header.indexOf("errors")]).as("dns_flows").contains("answered 300").contains("fds/flow");
            }
        }
    }
}
