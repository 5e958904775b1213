package dev.interlayer.agent.logging;

import dev.interlayer.agent.OneLineLogFormatter;
import java.io.IOException;
import java.util.logging.ConsoleHandler;
import java.util.logging.Formatter;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogManager;
import java.util.logging.Logger;

/** Routes all logging (including {@link System.Logger}) as {@code agent.log} says. */
public final class AgentLog {

    private AgentLog() {}

    /**
     * Replaces the handlers the JDK installed with one that writes {@code s}'s format to its file (or standard error), at
     * {@code level} and above.
     *
     * @throws IOException if the file cannot be opened for appending (then nothing was changed)
     */
    public static void install(LogSettings s, Level level) throws IOException {
        Formatter format = s.json() ? new JsonLogFormatter() : new OneLineLogFormatter();
        Handler h;
        if (s.file() != null) {
            h = new LogFileHandler(s.file(), s.maxSize(), s.keep(), format);
        } else {
            h = new ConsoleHandler();
            h.setFormatter(format);
        }
        h.setLevel(level);
        LogManager.getLogManager().reset();
        Logger root = Logger.getLogger("");
        root.addHandler(h);
        root.setLevel(level);
    }
}
