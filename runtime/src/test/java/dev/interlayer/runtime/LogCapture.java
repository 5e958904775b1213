package dev.interlayer.runtime;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;

/**
 * Captures what the runtime logs (System.Logger, backed by java.util.logging in tests) as formatted
 * strings, so tests can check warnings; closing it detaches the handler.
 *
 * <p>Only strings are kept: a kept {@link LogRecord} could hold a module's objects as parameters and pin
 * its class loader.
 */
final class LogCapture extends Handler implements AutoCloseable {

    private final Logger logger;
    private final List<String> lines = new CopyOnWriteArrayList<>();
    private final SimpleFormatter formatter = new SimpleFormatter();

    private LogCapture(String name) {
        this.logger = Logger.getLogger(name);
        setLevel(Level.ALL);
        logger.addHandler(this);
    }

    /** Starts capturing the {@code interlayer} loggers. */
    static LogCapture start() {
        return new LogCapture("interlayer");
    }

    @Override
    public void publish(LogRecord r) {
        lines.add(r.getLevel() + " " + formatter.formatMessage(r));
    }

    /** Every line so far, as {@code LEVEL message}. */
    List<String> lines() {
        return List.copyOf(lines);
    }

    /** Lines at {@code level}. */
    List<String> at(Level level) {
        return lines.stream().filter(l -> l.startsWith(level.getName() + " ")).toList();
    }

    @Override
    public void flush() {}

    @Override
    public void close() {
        logger.removeHandler(this);
    }
}
