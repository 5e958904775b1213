package dev.interlayer.agent;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.logging.Level;
import java.util.logging.LogRecord;
import org.junit.jupiter.api.Test;

class OneLineLogFormatterTest {

    @Test
    void aRecordBecomesOneLineWithTimeLevelLoggerAndTheFormattedMessage() {
        LogRecord r = new LogRecord(Level.WARNING, "module {0} faulted in {1}");
        r.setParameters(new Object[] {"tag@1.0.0", "onSend"});
        r.setLoggerName("interlayer.runtime");
        String line = new OneLineLogFormatter().format(r);
        assertThat(line).matches("\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}\\.\\d{3} WARNING interlayer\\.runtime: module tag@1\\.0\\.0 faulted in onSend\\R");
    }

    @Test
    void aThrowableFollowsOnTheNextLines() {
        LogRecord r = new LogRecord(Level.SEVERE, "boom");
        r.setLoggerName("interlayer.agent");
        r.setThrown(new IllegalStateException("why"));
        String text = new OneLineLogFormatter().format(r);
        assertThat(text.lines().findFirst()).hasValueSatisfying(l -> assertThat(l).endsWith("SEVERE  interlayer.agent: boom"));
        assertThat(text).contains("java.lang.IllegalStateException: why");
    }
}
