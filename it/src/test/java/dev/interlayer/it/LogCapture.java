package dev.interlayer.it;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;

/**
 * The agent's log lines, as their formatted messages, for a test to assert on: {@link #start} in a test's setup,
 * {@link #stop} in its teardown. The loggers are held here: JUL keeps loggers only weakly, and one collected before it
 * first logs would come back without the handler.
 */
final class LogCapture extends Handler {

    private final List<String> lines = new CopyOnWriteArrayList<>();
    private final List<Logger> loggers = new ArrayList<>();

    /** The lines captured so far (live: later lines are added to it). */
    List<String> lines() {
        return lines;
    }

    /** Starts capturing what the named loggers ({@code interlayer.engine}, ...) log. */
    void start(String... names) {
        for (String n : names) {
            Logger l = Logger.getLogger(n);
            l.addHandler(this);
            loggers.add(l);
        }
    }

    /** Stops capturing. */
    void stop() {
        loggers.forEach(l -> l.removeHandler(this));
        loggers.clear();
    }

    @Override
    public void publish(LogRecord r) {
        lines.add(new SimpleFormatter().formatMessage(r));
    }

    @Override
    public void flush() {}

    @Override
    public void close() {}
}
