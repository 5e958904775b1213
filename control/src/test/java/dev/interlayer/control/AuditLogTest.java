package dev.interlayer.control;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.interlayer.control.testing.TempDirs;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class AuditLogTest {

    private static final Caller ALICE = new Caller("uds", 1000, 1000, 77, "alice", "java", "", List.of(), "/usr/bin/java");

    private final Path dir;

    AuditLogTest() throws Exception {
        dir = Files.createTempDirectory("interlayer-audit-");
    }

    @AfterEach
    void cleanUp() {
        TempDirs.delete(dir);
    }

    private static String mode(Path f) throws Exception {
        return PosixFilePermissions.toString(Files.readAttributes(f, PosixFileAttributes.class).permissions());
    }

    private static List<Long> seqs(Path f) throws Exception {
        List<Long> out = new ArrayList<>();
        Pattern seq = Pattern.compile("^\\{\"seq\":(\\d+),");
        for (String line : Files.readAllLines(f)) {
            Matcher m = seq.matcher(line);
            assertThat(m.find()).as(line).isTrue();
            out.add(Long.parseLong(m.group(1)));
        }
        return out;
    }

    @Test
    void theAuditFileIsCreatedReadableByTheAgentsUserOnly() throws Exception {
        Path file = dir.resolve("logs/audit.jsonl");
        try (AuditLog log = new AuditLog(10, file)) {
            log.record(ALICE, "Modules", "List", "request", "granted", "r", "ok");
        }
        assertThat(mode(file)).isEqualTo("rw-------");
        assertThat(Files.readString(file)).contains("\"exe\":\"/usr/bin/java\"");
    }

    @Test
    void anAuditFileReadableByOthersIsNarrowedWhenOpened() throws Exception {
        Path file = dir.resolve("audit.jsonl");
        Files.writeString(file, "");
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-rw-rw-"));
        try (AuditLog log = new AuditLog(10, file)) {
            assertThat(mode(file)).isEqualTo("rw-------");
        }
    }

    @Test
    void aConfiguredGroupMayReadTheAuditFile() throws Exception {
        assumeTrue(Policy.processUid() == 0, "needs root to give the file to another group");
        Path file = dir.resolve("audit.jsonl");
        try (AuditLog log = new AuditLog(10, file, new AuditLog.FileOptions(0, 1, "daemon"))) {
            log.record(ALICE, "Modules", "List", "request", "granted", "r", "ok");
        }
        assertThat(mode(file)).isEqualTo("rw-r-----");
        assertThat(Files.readAttributes(file, PosixFileAttributes.class).group().getName()).isEqualTo("daemon");
    }

    @Test
    void theFileIsRotatedBySizeKeepingTheNewestFilesAndEveryDecisionInOrder() throws Exception {
        Path file = dir.resolve("audit.jsonl");
        long max = 2000;
        try (AuditLog log = new AuditLog(1000, file, new AuditLog.FileOptions(max, 2, null))) {
            for (int i = 0; i < 60; i++) {
                log.record(ALICE, "Modules", "SetState", "request", "denied", "default", "decision " + i);
            }
        }
        Path one = dir.resolve("audit.jsonl.1");
        Path two = dir.resolve("audit.jsonl.2");
        assertThat(dir.resolve("audit.jsonl.3")).doesNotExist();
        for (Path f : List.of(file, one, two)) {
            assertThat(Files.size(f)).as(f.toString()).isPositive().isLessThanOrEqualTo(max);
            assertThat(mode(f)).as(f.toString()).isEqualTo("rw-------");
        }
        // oldest first: .2, .1, then the file in use; consecutive, ending with the newest decision
        List<Long> all = new ArrayList<>(seqs(two));
        all.addAll(seqs(one));
        all.addAll(seqs(file));
        assertThat(all.getLast()).isEqualTo(60);
        for (int i = 1; i < all.size(); i++) {
            assertThat(all.get(i)).isEqualTo(all.get(i - 1) + 1);
        }
        assertThat(all.getFirst()).as("older files were dropped").isGreaterThan(1);
    }

    @Test
    void reopenAfterTheFileWasMovedAwayWritesANewFileAtThePath() throws Exception {
        Path file = dir.resolve("audit.jsonl");
        Path moved = dir.resolve("audit.jsonl.old");
        try (AuditLog log = new AuditLog(10, file, new AuditLog.FileOptions(0, 1, null))) {
            log.record(ALICE, "Modules", "List", "request", "granted", "r", "before the move");
            Files.move(file, moved);
            log.record(ALICE, "Modules", "List", "request", "granted", "r", "after the move, before reopen");
            assertThat(file).doesNotExist(); // the agent still writes the file it has open
            assertThat(log.reopen()).isZero();
            log.record(ALICE, "Modules", "List", "request", "granted", "r", "after reopen");
        }
        assertThat(seqs(moved)).containsExactly(1L, 2L);
        assertThat(seqs(file)).containsExactly(3L);
        assertThat(Files.readString(file)).contains("after reopen");
        assertThat(mode(file)).isEqualTo("rw-------");
    }

    @Test
    void theRingKeepsTheNewestDecisionsAndTheFileKeepsEveryOneAsAJsonLine() throws Exception {
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
    }
}
