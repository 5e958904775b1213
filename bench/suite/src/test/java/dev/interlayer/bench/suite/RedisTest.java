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
 * The real-client tests through the real suite: redis-benchmark against a real redis-server, directly and through a
 * real agent, SET and GET. Every run must be measured (rate, latency, the agent's CPU); speed is never asserted.
 */
class RedisTest {

    @Test
    @Timeout(600)   // a fresh machine installs redis first
    void redisBenchmarkRunsThroughTheAgentAndEveryFigureIsMeasured(@TempDir Path dir) throws Exception {
        Path md = dir.resolve("redis.md");
        SuiteRun run = SuiteRun.of(md, "--smoke", "--only", "direct,il-none", "--tests", "redis_set,redis_get");
        assertThat(run.status()).as("exit status; the suite's log:\n%s", run.log()).isZero();
        assertThat(Files.readString(md)).contains("redis_set req/s", "redis_get p99 ms", "redis-benchmark -c 50 -P 16 -d 512");

        List<String> csv = Files.readAllLines(dir.resolve("redis.csv"));
        List<String> header = Arrays.asList(csv.getFirst().split(","));
        List<String[]> rows = csv.subList(1, csv.size()).stream().map(l -> l.split(",", -1)).toList();
        assertThat(rows).extracting(r -> r[header.indexOf("target")] + "/" + r[header.indexOf("test")])
                .containsExactlyInAnyOrder("direct/redis_set", "il-none/redis_set", "direct/redis_get", "il-none/redis_get");
        for (String[] r : rows) {
            assertThat(r[header.indexOf("ok")]).as(String.join(",", r)).isEqualTo("true");
            assertThat(Double.parseDouble(r[header.indexOf("value")])).as("req/s").isPositive();
            assertThat(Double.parseDouble(r[header.indexOf("p99_ms")])).as("p99").isPositive();
            if (r[header.indexOf("target")].equals("il-none")) {
                assertThat(Double.parseDouble(r[header.indexOf("proxy_cpu_s")])).as("the agent's CPU").isPositive();
            }
        }
    }

    @Test
    @Timeout(600)
    void pairsStartedFreshAreMeasuredByRedisBenchmarkAtOnce(@TempDir Path dir) throws Exception {
        Path md = dir.resolve("cold.md");
        SuiteRun run = SuiteRun.of(md, "--tests", "redis_cold", "--runs", "1", "--redis-cold-requests", "20000",
                "--redis-cold-targets", "haproxy2,il2p-tag");
        assertThat(run.status()).as("exit status; the suite's log:\n%s", run.log()).isZero();
        assertThat(Files.readString(md)).contains("## Started fresh: redis-benchmark", "SET vs haproxy2");

        List<String> csv = Files.readAllLines(dir.resolve("cold.csv"));
        List<String> header = Arrays.asList(csv.getFirst().split(","));
        List<String[]> rows = csv.subList(1, csv.size()).stream().map(l -> l.split(",", -1)).toList();
        assertThat(rows).extracting(r -> r[header.indexOf("target")] + "/" + r[header.indexOf("test")])
                .containsExactlyInAnyOrder("haproxy2/redis_cold_set", "haproxy2/redis_cold_get", "il2p-tag/redis_cold_set",
                        "il2p-tag/redis_cold_get");
        for (String[] r : rows) {
            assertThat(r[header.indexOf("ok")]).as(String.join(",", r)).isEqualTo("true");
            assertThat(Double.parseDouble(r[header.indexOf("value")])).as("req/s").isPositive();
            assertThat(Double.parseDouble(r[header.indexOf("amount")])).as("seconds until it listened").isPositive();
            assertThat(Double.parseDouble(r[header.indexOf("proxy_cpu_s")])).as("the pair's CPU, both processes").isPositive();
        }
        // both processes of each pair were stopped with it: no haproxy or agent of the run is left
        assertThat(ProcessHandle.current().descendants().filter(ProcessHandle::isAlive).toList()).isEmpty();
    }
}
