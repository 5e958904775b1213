package dev.interlayer.agent;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.logging.Formatter;
import java.util.logging.Level;
import java.util.logging.LogRecord;

/**
 * Formats each {@code java.util.logging} record as one line: local time, level, logger, message (and the
 * stack trace, if any, on the lines after).
 *
 * <pre>{@code
 * 2026-11-23 09:15:57.123 INFO    interlayer.agent: listener web: 127.0.0.1:8080 -> 127.0.0.1:80 (client)
 * }</pre>
 */
public final class OneLineLogFormatter extends Formatter {

    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSS").withZone(ZoneId.systemDefault());

    @Override
    public String format(LogRecord r) {
        StringBuilder sb = new StringBuilder(128);
        sb.append(TIME.format(r.getInstant())).append(' ');
        String level = r.getLevel().getName();
        sb.append(level);
        sb.repeat(" ", Math.max(1, 8 - level.length()));
        sb.append(r.getLoggerName() == null ? "-" : r.getLoggerName()).append(": ");
        sb.append(formatMessage(r)).append(System.lineSeparator());
        if (r.getThrown() != null) {
            StringWriter w = new StringWriter();
            r.getThrown().printStackTrace(new PrintWriter(w));
            sb.append(w);
        }
        return sb.toString();
    }

    /**
     * Routes all logging (including {@link System.Logger}) to standard error, one line per record, at
     * {@code level} and above; replaces the handlers the JDK installed.
     */
    public static void install(Level level) {
        try {
            dev.interlayer.agent.logging.AgentLog.install(dev.interlayer.agent.logging.LogSettings.DEFAULT, level);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e); // standard error: no file to open
        }
    }
}
