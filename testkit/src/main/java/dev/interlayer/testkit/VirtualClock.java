package dev.interlayer.testkit;

import dev.interlayer.api.Cancellable;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.PriorityQueue;

/**
 * The harness's clock: time moves only when the test advances it, and timers fire in due order as it passes
 * them (ties in scheduling order), so timing tests are exact and instant.
 *
 * <p>Starts at an arbitrary non-zero reading, because {@link System#nanoTime()} has no fixed origin either.
 * Scheduling and cancelling are thread-safe; timers run on the thread that advances the clock.
 */
final class VirtualClock {

    /** A scheduled task; {@link #owner} lets the harness cancel a detached attachment's timers. */
    static final class Timer implements Cancellable {
        final long due;
        final long seq;
        final Object owner;
        final Runnable task;
        volatile boolean cancelled;

        Timer(long due, long seq, Object owner, Runnable task) {
            this.due = due;
            this.seq = seq;
            this.owner = owner;
            this.task = task;
        }

        @Override
        public boolean cancel() {
            boolean was = !cancelled;
            cancelled = true;
            return was;
        }
    }

    static final long ORIGIN = 1_000_000_000_000L;

    private volatile long now = ORIGIN;
    private long seq;
    private final PriorityQueue<Timer> timers = new PriorityQueue<>((a, b) ->
            a.due != b.due ? Long.compare(a.due, b.due) : Long.compare(a.seq, b.seq));

    long nanoTime() {
        return now;
    }

    synchronized Timer schedule(Object owner, Duration delay, Runnable task) {
        long d = delay == null || delay.isNegative() ? 0L : saturatedNanos(delay);
        Timer t = new Timer(now + d, seq++, owner, task);
        timers.add(t);
        return t;
    }

    private static long saturatedNanos(Duration d) {
        try {
            return d.toNanos();
        } catch (ArithmeticException e) {
            return Long.MAX_VALUE / 4;
        }
    }

    /** Removes and returns the next live timer due at or before {@code limit}, moving the clock to its due time. */
    synchronized Timer next(long limit) {
        while (!timers.isEmpty()) {
            Timer t = timers.peek();
            if (t.cancelled) {
                timers.poll();
                continue;
            }
            if (t.due > limit) {
                return null;
            }
            timers.poll();
            if (t.due > now) {
                now = t.due;
            }
            return t;
        }
        return null;
    }

    synchronized void moveTo(long target) {
        if (target > now) {
            now = target;
        }
    }

    synchronized void cancelAll(Object owner) {
        List<Timer> gone = new ArrayList<>();
        for (Timer t : timers) {
            if (t.owner == owner) {
                t.cancelled = true;
                gone.add(t);
            }
        }
        timers.removeAll(gone);
    }

    synchronized int pending(Object owner) {
        int n = 0;
        for (Timer t : timers) {
            if (!t.cancelled && (owner == null || t.owner == owner)) {
                n++;
            }
        }
        return n;
    }
}
