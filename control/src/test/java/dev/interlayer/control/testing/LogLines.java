package dev.interlayer.control.testing;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;

/**
 * Captures every log record of the JVM at INFO and above, as an agent run by {@code interlayer run} logs
 * (test JVMs log warnings only), with the lines its stack trace would add; closing it restores the levels.
 */
public final class LogLines extends Handler implements AutoCloseable {

    /** One record: its logger, level, message, and how many lines it prints (1 + its stack trace). */
    public record Line(String logger, Level level, String message, int printedLines) {}

    private static final List<String> LOUD = List.of("", "io.grpc", "io.netty", "interlayer");

    private final List<Line> lines = new CopyOnWriteArrayList<>();
    private final List<Logger> loggers = new ArrayList<>(); // held: java.util.logging keeps loggers weakly
    private final List<Level> saved = new ArrayList<>();
    private final SimpleFormatter formatter = new SimpleFormatter();

    public LogLines() {
        setLevel(Level.ALL);
        for (String name : LOUD) {
            Logger l = Logger.getLogger(name);
            loggers.add(l);
            saved.add(l.getLevel());
            l.setLevel(Level.INFO);
        }
        Logger.getLogger("").addHandler(this);
    }

    @Override
    public void publish(LogRecord r) {
        int printed = 1;
        for (Throwable t = r.getThrown(); t != null; t = t.getCause()) {
            printed += 1 + t.getStackTrace().length;
        }
        lines.add(new Line(r.getLoggerName(), r.getLevel(), formatter.formatMessage(r), printed));
    }

    /** Every record so far. */
    public List<Line> lines() {
        return List.copyOf(lines);
    }

    @Override
    public void flush() {}

    @Override
    public void close() {
        Logger.getLogger("").removeHandler(this);
        for (int i = 0; i < loggers.size(); i++) {
            loggers.get(i).setLevel(saved.get(i));
        }
    }
}
