package dev.interlayer.runtime;

import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.text.MessageFormat;
import java.time.Duration;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * A log for events that can come in storms (connections reset by their peers, a jar failing to load while it is still
 * being copied): per kind of event, the first few lines of each window are logged as they come, the rest are counted,
 * and one line at the end of the window says how many were left out and what the last said.
 *
 * <pre>
 *   10,000 resets in a second, burst 5, window 10 s:
 *     5 lines as they come, then, 10 s after the first:
 *     "connection reset: 9,995 more in the last 10 s, not logged one by one; the last: connection 10007 (web) reset: …"
 * </pre>
 *
 * <p>Thread-safe; a logged line costs one map lookup and a few atomic updates more than logging it directly.
 */
public final class RepeatedLog {

    private static final ScheduledExecutorService FLUSHER = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "interlayer-log-summary");
        t.setDaemon(true);
        return t;
    });

    private final Logger logger;
    private final int burst;
    private final long windowNanos;
    private final Map<String, Window> windows = new ConcurrentHashMap<>();

    /** One kind's current window (guarded by itself). */
    private static final class Window {
        long start;
        int logged;
        long suppressed;
        Level level;
        /** The last line left out, formatted only for the summary: a storm costs no formatting per line. */
        String lastFormat;
        Object[] lastArgs;
        volatile boolean forgotten;
    }

    /**
     * @param logger where the lines go
     * @param burst lines of one kind logged in each window before the rest are only counted
     * @param window how long a window lasts; the summary of the lines left out follows its end within one window
     */
    public RepeatedLog(Logger logger, int burst, Duration window) {
        if (burst < 1 || window.isNegative() || window.isZero()) {
            throw new IllegalArgumentException("a repeated log needs a burst of at least 1 and a positive window");
        }
        this.logger = logger;
        this.burst = burst;
        this.windowNanos = window.toNanos();
        long ms = window.toMillis();
        java.lang.ref.WeakReference<RepeatedLog> self = new java.lang.ref.WeakReference<>(this);
        FLUSHER.scheduleWithFixedDelay(new Runnable() {
            @Override
            public void run() {
                RepeatedLog l = self.get();
                if (l == null) {
                    throw new IllegalStateException("gone"); // ends this task: its log was collected
                }
                l.flush(System.nanoTime());
            }
        }, ms, ms, TimeUnit.MILLISECONDS);
    }

    /**
     * Logs a line of kind {@code kind}, or counts it if this window has had its burst of that kind.
     *
     * @param kind what the line is about, e.g. "connection reset" or the jar's path; the summary line starts with it
     * @param format a {@link MessageFormat} pattern, as {@link Logger#log(Level, String, Object...)} takes
     * @return true if the line was logged now
     */
    public boolean log(String kind, Level level, String format, Object... args) {
        if (!logger.isLoggable(level)) {
            return false;
        }
        long now = System.nanoTime();
        String summary = null;
        Level summaryLevel = null;
        boolean log;
        Window w;
        do {
            w = windows.computeIfAbsent(kind, k -> new Window());
            synchronized (w) {
                if (w.forgotten) {
                    log = false;
                    continue; // flushed away meanwhile: count in its successor
                }
                if (w.logged == 0 && w.suppressed == 0 || now - w.start > windowNanos) {
                    if (w.suppressed > 0) {
                        summary = summary(kind, w);
                        summaryLevel = w.level;
                    }
                    w.start = now;
                    w.logged = 0;
                    w.suppressed = 0;
                }
                log = w.logged < burst;
                if (log) {
                    w.logged++;
                } else {
                    w.suppressed++;
                    w.level = level;
                    w.lastFormat = format;
                    w.lastArgs = args;
                }
            }
        } while (w.forgotten);
        if (summary != null) {
            logger.log(summaryLevel, summary);
        }
        if (log) {
            logger.log(level, format, args);
        }
        return log;
    }

    /** Logs the summary of every window that has ended with lines left out, and forgets kinds that went quiet. */
    void flush(long now) {
        for (Iterator<Map.Entry<String, Window>> it = windows.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<String, Window> e = it.next();
            Window w = e.getValue();
            String summary = null;
            Level level = null;
            synchronized (w) {
                if (now - w.start <= windowNanos) {
                    continue;
                }
                if (w.suppressed > 0) {
                    summary = summary(e.getKey(), w);
                    level = w.level;
                    w.suppressed = 0;
                    w.logged = 0;
                    w.start = now; // the summary opens a quiet window: lines that come in it are logged again
                } else {
                    w.forgotten = true;
                    it.remove();
                }
            }
            if (summary != null) {
                logger.log(level, summary);
            }
        }
    }

    private String summary(String kind, Window w) {
        Duration d = Duration.ofNanos(windowNanos);
        return kind + ": " + w.suppressed + " more in the last " + (d.toSeconds() > 0 ? d.toSeconds() + " s" : d.toMillis() + " ms")
                + ", not logged one by one; the last: " + (w.lastArgs.length == 0 ? w.lastFormat : MessageFormat.format(w.lastFormat, w.lastArgs));
    }
}
