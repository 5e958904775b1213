package dev.interlayer.testkit;

import dev.interlayer.api.ModuleLog;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A {@link ModuleLog} that keeps every line, so a test can assert on what a module logged. Thread-safe.
 *
 * <p>Lines are formatted with {@link String#format} exactly as the agent's logger formats them; a format
 * error is itself recorded rather than thrown, as the agent would not let a bad log call break traffic.
 */
public final class RecordingModuleLog implements ModuleLog {

    /** Severity of a recorded line. */
    public enum Level { DEBUG, INFO, ERROR }

    /**
     * One recorded line.
     *
     * @param module the module that logged it
     * @param level its severity (error with code 0 is recorded as INFO, as the agent logs it)
     * @param code the module's error code (0 for info and debug)
     * @param message the formatted message
     */
    public record Line(String module, Level level, int code, String message) {
        @Override
        public String toString() {
            return level + (code != 0 ? "(" + code + ")" : "") + " " + module + ": " + message;
        }
    }

    private final String module;
    private final List<Line> lines;

    RecordingModuleLog(String module, List<Line> sink) {
        this.module = module;
        this.lines = sink;
    }

    /** Creates a log for {@code module} that keeps its own lines. */
    public RecordingModuleLog(String module) {
        this(module, new ArrayList<>());
    }

    @Override
    public void info(String format, Object... args) {
        add(Level.INFO, 0, format, args);
    }

    @Override
    public void error(int code, String format, Object... args) {
        add(code == 0 ? Level.INFO : Level.ERROR, code, format, args);
    }

    @Override
    public void debug(String format, Object... args) {
        add(Level.DEBUG, 0, format, args);
    }

    private void add(Level level, int code, String format, Object... args) {
        String text;
        try {
            text = args == null || args.length == 0 ? format : String.format(Locale.ROOT, format, args);
        } catch (RuntimeException e) {
            text = "bad log format '" + format + "': " + e;
        }
        synchronized (lines) {
            lines.add(new Line(module, level, code, text));
        }
    }

    /** A copy of the lines recorded so far, oldest first. */
    public List<Line> lines() {
        synchronized (lines) {
            return List.copyOf(lines);
        }
    }
}
