package dev.interlayer.agent.logging;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code agent.log}: JSON lines with the fields a log shipper needs, and a log file rotated by size keeping a count. */
class AgentLogTest {

    @TempDir
    Path dir;

    private static LogRecord record(Level level, String logger, String message, Object... params) {
        LogRecord r = new LogRecord(level, message);
        r.setLoggerName(logger);
        r.setParameters(params);
        return r;
    }

    @Test
    void aJsonLineCarriesTimeLevelLoggerMessageAndTheConnectionAndModuleItNames() {
        LogRecord r = record(Level.WARNING, "interlayer.engine", "connection {0} ({1}): module {2} faulted in onSend: \"quoted\"\nsecond line",
                42L, "web", "tag@1.2.0");
        String line = new JsonLogFormatter().format(r);
        assertThat(line).endsWith("}\n").doesNotContain("\nsecond");
        JsonObject o = JsonParser.parseString(line).getAsJsonObject();
        assertThat(Instant.parse(o.get("time").getAsString())).isEqualTo(r.getInstant());
        assertThat(o.get("level").getAsString()).isEqualTo("WARNING");
        assertThat(o.get("logger").getAsString()).isEqualTo("interlayer.engine");
        assertThat(o.get("message").getAsString()).isEqualTo("connection 42 (web): module tag@1.2.0 faulted in onSend: \"quoted\"\nsecond line");
        assertThat(o.get("connection").getAsLong()).isEqualTo(42);
        assertThat(o.get("module").getAsString()).isEqualTo("tag@1.2.0");
        assertThat(o.has("thrown")).isFalse();
    }

    @Test
    void aJsonLineWithoutAConnectionHasNoSuchFieldAndCarriesTheStackTrace() {
        LogRecord r = record(Level.SEVERE, "interlayer.agent", "listener {0} did not start", "web");
        r.setThrown(new IllegalStateException("boom"));
        JsonObject o = JsonParser.parseString(new JsonLogFormatter().format(r)).getAsJsonObject();
        assertThat(o.get("message").getAsString()).isEqualTo("listener web did not start");
        assertThat(o.has("connection")).isFalse();
        assertThat(o.has("module")).isFalse();
        assertThat(o.get("thrown").getAsString()).startsWith("java.lang.IllegalStateException: boom").contains("\tat ");
    }

    @Test
    void theLogFileRotatesBySizeAndKeepsTheConfiguredCount() throws Exception {
        Path file = dir.resolve("logs/agent.log");
        LogFileHandler h = new LogFileHandler(file, 1000, 2, new JsonLogFormatter());
        int records = 60;
        for (int i = 0; i < records; i++) {
            h.publish(record(Level.INFO, "interlayer.agent", "record {0}", i));
        }
        h.close();
        assertThat(file.resolveSibling("agent.log.1")).exists();
        assertThat(file.resolveSibling("agent.log.2")).exists();
        assertThat(file.resolveSibling("agent.log.3")).doesNotExist();
        List<Integer> seen = new ArrayList<>();
        for (String name : List.of("agent.log.2", "agent.log.1", "agent.log")) {
            Path f = file.resolveSibling(name);
            if (!name.equals("agent.log")) assertThat(Files.size(f)).as(name).isGreaterThanOrEqualTo(1000).isLessThan(1200);
            for (String line : Files.readAllLines(f)) {
                String m = JsonParser.parseString(line).getAsJsonObject().get("message").getAsString();
                seen.add(Integer.parseInt(m.substring("record ".length())));
            }
        }
        assertThat(seen).as("the newest records, in order, each whole").isSorted().endsWith(records - 1);
        assertThat(seen.getFirst()).isGreaterThan(0); // the oldest file was deleted
        assertThat(seen).hasSize(records - seen.getFirst());
    }

    @Test
    void anExistingFileIsAppendedToAndCountsTowardsItsSize() throws Exception {
        Path file = dir.resolve("agent.log");
        Files.writeString(file, "x".repeat(990) + "\n");
        LogFileHandler h = new LogFileHandler(file, 1000, 1, new JsonLogFormatter());
        h.publish(record(Level.INFO, "interlayer.agent", "after"));
        h.publish(record(Level.INFO, "interlayer.agent", "next"));
        h.close();
        assertThat(Files.readString(file.resolveSibling("agent.log.1"))).startsWith("x".repeat(990) + "\n").contains("\"after\"");
        assertThat(Files.readString(file)).contains("\"next\"").doesNotContain("after");
    }
}
