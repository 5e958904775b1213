package dev.interlayer.control;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.control.testing.TempDirs;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

class AuditLogTest {

    @Test
    void theRingKeepsTheNewestDecisionsAndTheFileKeepsEveryOneAsAJsonLine() throws Exception {
        Path dir = Files.createTempDirectory("interlayer-audit-");
        try {
            Path file = dir.resolve("logs/audit.jsonl");
            Caller alice = new Caller("uds", 1000, 1000, 77, "alice", "java", "", List.of());
            try (AuditLog log = new AuditLog(3, file)) {
                for (int i = 0; i < 5; i++) {
                    log.record(alice, "Modules", "SetState", "request", i % 2 == 0 ? "denied" : "granted", "r" + i, "because \"" + i + "\"\n");
                }
                assertThat(log.query(10, null, null, 0)).extracting(AuditLog.Entry::seq).containsExactly(3L, 4L, 5L);
                assertThat(log.query(10, "denied", null, 0)).extracting(AuditLog.Entry::rule).containsExactly("r2", "r4");
                assertThat(log.query(1, null, null, 0)).extracting(AuditLog.Entry::seq).containsExactly(5L);
                assertThat(log.query(10, null, null, 4)).extracting(AuditLog.Entry::seq).containsExactly(5L);
                assertThat(log.dropped()).isEqualTo(2);
            }
            List<String> lines = Files.readAllLines(file);
            assertThat(lines).hasSize(5);
            assertThat(lines.get(0)).startsWith("{\"seq\":1,\"time\":\"").contains("\"transport\":\"uds\",\"uid\":1000,\"gid\":1000,\"pid\":77,"
                    + "\"user\":\"alice\",\"command\":\"java\",\"endpoint\":\"Modules\",\"method\":\"SetState\",\"kind\":\"request\","
                    + "\"decision\":\"denied\",\"rule\":\"r0\",\"reason\":\"because \\\"0\\\"\\n\"}");
            // append-only: a second log on the same file adds to it
            try (AuditLog again = new AuditLog(3, file)) {
                again.record(alice, "Health", "Check", "request", "granted", "x", "y");
            }
            assertThat(Files.readAllLines(file)).hasSize(6);
        } finally {
            TempDirs.delete(dir);
        }
    }
}
