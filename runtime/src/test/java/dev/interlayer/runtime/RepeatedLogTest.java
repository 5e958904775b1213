package dev.interlayer.runtime;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.System.Logger.Level;
import java.text.MessageFormat;
import java.time.Duration;
import java.util.List;
import java.util.ResourceBundle;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/** A storm of one kind of line logs its first few, then one line that counts the rest; other kinds are not held back. */
class RepeatedLogTest {

    /** Keeps what it is given, formatted. */
    static final class Lines implements System.Logger {
        final List<String> lines = new CopyOnWriteArrayList<>();

        @Override
        public String getName() {
            return "test";
        }

        @Override
        public boolean isLoggable(Level level) {
            return true;
        }

        @Override
        public void log(Level level, ResourceBundle bundle, String msg, Throwable thrown) {
            lines.add(level + " " + msg);
        }

        @Override
        public void log(Level level, ResourceBundle bundle, String format, Object... params) {
            lines.add(level + " " + (params == null || params.length == 0 ? format : MessageFormat.format(format, params)));
        }
    }

    @Test
    void aStormLogsItsBurstThenOneSummaryWithTheCountAndTheLastLine() {
        Lines out = new Lines();
        RepeatedLog log = new RepeatedLog(out, 5, Duration.ofSeconds(30));
        for (int i = 0; i < 10_000; i++) {
            log.log("resets", Level.INFO, "connection {0} reset: {1}", i, "peer reset");
        }
        log.log("other", Level.WARNING, "something else");
        assertThat(out.lines).hasSize(6).contains("WARNING something else").startsWith("INFO connection 0 reset: peer reset");
        log.flush(System.nanoTime() + Duration.ofSeconds(31).toNanos()); // as the flusher does once the window is over
        assertThat(out.lines).hasSize(7);
        assertThat(out.lines.get(6)).isEqualTo("INFO resets: 9995 more in the last 30 s, not logged one by one; the last: connection 9,999 reset: peer reset");
        log.log("resets", Level.INFO, "connection {0} reset: {1}", 10_000, "peer reset");
        assertThat(out.lines).as("after the summary a new window logs again").hasSize(8);
    }
}
