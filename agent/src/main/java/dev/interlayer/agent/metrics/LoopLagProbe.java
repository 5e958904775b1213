package dev.interlayer.agent.metrics;

import io.netty.channel.EventLoop;
import io.netty.util.concurrent.ScheduledFuture;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * How late each event loop runs a task scheduled on it: every {@link #PERIOD_MS} ms a task is due on each loop, and the
 * time between when it was due and when it ran is that loop's lag (a loop busy with connections, or stuck in a module
 * call, runs it late). One small task per loop and period; nothing on the data path.
 */
final class LoopLagProbe implements AutoCloseable {

    static final long PERIOD_MS = 1000;

    private final List<Probe> probes = new ArrayList<>();

    private static final class Probe implements Runnable {
        final EventLoop loop;
        volatile long lastLagNanos;
        volatile long maxLagNanos;
        volatile boolean stopped;
        long due;
        volatile ScheduledFuture<?> next;

        Probe(EventLoop loop) {
            this.loop = loop;
        }

        @Override
        public void run() {
            long lag = Math.max(0, System.nanoTime() - due);
            lastLagNanos = lag;
            if (lag > maxLagNanos) maxLagNanos = lag;
            schedule();
        }

        void schedule() {
            if (stopped || loop.isShuttingDown()) return;
            due = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(PERIOD_MS);
            next = loop.schedule(this, PERIOD_MS, TimeUnit.MILLISECONDS);
        }
    }

    LoopLagProbe(List<EventLoop> loops) {
        for (EventLoop l : loops) {
            Probe p = new Probe(l);
            probes.add(p);
            l.execute(p::schedule); // due is the loop's own field: set there
        }
    }

    /** Per loop (in the engine's order), the last probe's lag in seconds. */
    double[] lastLagSeconds() {
        double[] out = new double[probes.size()];
        for (int i = 0; i < out.length; i++) out[i] = probes.get(i).lastLagNanos / 1e9;
        return out;
    }

    /** Per loop, the largest lag since the agent started, in seconds. */
    double[] maxLagSeconds() {
        double[] out = new double[probes.size()];
        for (int i = 0; i < out.length; i++) out[i] = probes.get(i).maxLagNanos / 1e9;
        return out;
    }

    @Override
    public void close() {
        for (Probe p : probes) {
            p.stopped = true;
            ScheduledFuture<?> f = p.next;
            if (f != null) f.cancel(false);
        }
    }
}
