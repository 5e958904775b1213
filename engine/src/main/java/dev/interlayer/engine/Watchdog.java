package dev.interlayer.engine;

import dev.interlayer.runtime.ParamValues;
import dev.interlayer.runtime.Preemption;
import java.lang.System.Logger.Level;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Enforces the per-call time budget and allocation limit of module hooks without timing or metering each call on the
 * hot path.
 *
 * <p>Each event-loop thread owns a {@link Slot} whose sequence number is odd while a module call runs.
 * The watchdog samples the slots; a call seen with the same odd sequence for longer than the budget is
 * flagged (the engine counts a fault when the call returns), its thread is interrupted, which ends
 * a module blocked in sleep, wait, park or interruptible I/O, and it is asked to stop
 * ({@link Preemption#request}), which ends a module spinning in its own code at its next loop turn or call.
 *
 * <pre>
 *   call running ──(over budget, the module's doing)──▶ flagged: interrupt + stop request ──(returns)──▶ fault counted
 *                                                             │
 *                                     (still running a budget later: somewhere no check reaches, such as a
 *                                      lock that ignores interrupts, or a long loop inside the JDK)
 *                                                             ▼
 *                                                   stuck: logged, reported ({@link #stuck()}), the engine told;
 *                                                   the request stays ──(returns)──▶ recovered, the engine told
 * </pre>
 *
 * <p>Wall time alone would blame a module for a busy host: a thread that is runnable but not running
 * (other processes on the cores, a GC pause) is not the module's fault. So a call past the budget is flagged
 * when its thread is waiting or blocked (the module is sleeping, waiting or contending for a lock), or when
 * the thread has used the budget in CPU time since the call was first seen, or when it has stayed runnable
 * for {@value #STARVED_FACTOR} budgets (blocking native I/O shows as runnable without using CPU).
 *
 * <p>Allocation. A call that has allocated more than the limit on the heap since the watchdog first saw it is flagged
 * the same way, however short it has run: a module filling the heap would otherwise slow every connection of the agent
 * down with collections long before it met an {@code OutOfMemoryError}. The JVM counts each thread's allocations
 * anyway ({@code ThreadMXBean.getThreadAllocatedBytes}), so the watchdog reads that count for the threads in a call;
 * the event loops never do. A call is first seen up to one sampling period after it began, and is stopped at its
 * next check after the sample that found it over, so a module allocating as fast as the JVM can may get a few hundred
 * megabytes further than the limit, never the heap.
 */
final class Watchdog implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.engine");

    /** Who a module call is for: the module and the connection (or UDP flow), for the watchdog's log line. */
    interface Caller {
        String moduleId();

        long connectionId();
    }

    /** What the engine does when an event loop gets stuck in a module call and when it is free again. */
    interface Events {
        /** {@code slot}'s call did not stop when asked; called on the watchdog's thread. */
        void stuck(Slot slot, StuckCall call);

        /** {@code slot}'s stuck call has returned; called on the watchdog's thread. */
        void recovered(Slot slot, StuckCall call);
    }

    /** The call state of one event-loop thread. */
    static final class Slot {
        final Thread thread;
        final AtomicLong seq = new AtomicLong();
        /**
         * The caller: {@code att}, or {@code chain[index]} when {@code index >= 0} (the data path names a module by
         * its place in the connection's chain: an int store per call instead of a reference store with a GC write
         * barrier). Written before the odd sequence is published; read by the watchdog after reading an odd sequence.
         */
        Caller att;
        Caller[] chain;
        int index = -1;
        String hook;
        volatile long overranSeq = -1;
        /** Why the call {@code overranSeq} was flagged (written before it). */
        volatile String overranWhy;
        long lastSeen = -1;
        long lastSeenAt;
        long cpuAtFirstSight;
        long allocAtFirstSight;
        /**
         * The agent's own work inside module calls on this thread (e.g. the /proc scan behind {@code connection().app()}),
         * in bytes allocated and nanoseconds taken, counted up by that thread only ({@link #agentWork}): a call is not
         * charged for it. Read at first sight and again at each check.
         */
        volatile long agentBytes;
        volatile long agentNanos;
        /** True while the agent's own work runs inside a call: the watchdog does not judge the call meanwhile. */
        volatile boolean inAgentWork;
        long agentBytesAtFirstSight;
        long agentNanosAtFirstSight;
        /** The stop request of the flagged call, when it was flagged, the stuck call (written by the watchdog only). */
        Preemption.Request stop;
        long flaggedAt;
        long stuckSeq = -1;
        volatile StuckCall stuck;

        Slot(Thread thread) {
            this.thread = thread;
        }

        /** Marks a call into {@code a}'s {@code hook} as started; returns the call's sequence. */
        long enter(Caller a, String hook) {
            this.att = a;
            this.index = -1;
            return start(hook);
        }

        /** As {@link #enter}, for the module at {@code i} of {@code chain} (stored only when it changes). */
        long enterAt(Caller[] chain, int i, String hook) {
            if (this.chain != chain) this.chain = chain;
            this.index = i;
            return start(hook);
        }

        /** Publishes the call as started (an odd sequence), after the caller was written. */
        private long start(String hook) {
            if (this.hook != hook) this.hook = hook; // a constant, mostly the same as last time: skip the write barrier
            long s = seq.get() + 1;
            seq.lazySet(s);
            return s;
        }

        /** The caller of the running call, for the watchdog's report; null if not known. */
        Caller caller() {
            int i = index;
            Caller[] c = chain;
            return i < 0 ? att : c != null && i < c.length ? c[i] : null;
        }

        /** Why the call that {@link #exit} just found flagged was flagged, e.g. "ran longer than the hook budget (200 ms)". */
        String why() {
            return overranWhy;
        }

        /** Marks the call as returned; true if the watchdog flagged it as over budget or over the allocation limit. */
        boolean exit(long s) {
            seq.lazySet(s + 1);
            if (overranSeq == s) {
                Thread.interrupted(); // the interrupt was meant for the module's blocking call, not for the event loop
                return true;
            }
            return false;
        }
    }

    /** A runnable call is flagged after this many budgets of wall time even without using CPU. */
    static final int STARVED_FACTOR = 10;

    private final CopyOnWriteArrayList<Slot> slots = new CopyOnWriteArrayList<>();
    private final Events events;
    private final ThreadMXBean threads = ManagementFactory.getThreadMXBean();
    private final boolean cpuTime = threads.isThreadCpuTimeSupported() && threads.isThreadCpuTimeEnabled();
    private final com.sun.management.ThreadMXBean allocations;
    private final long budgetNanos;
    private final long allocLimit;
    private final long periodNanos;
    private final Thread thread;
    private volatile boolean running = true;

    /**
     * @param budget the time budget of one call
     * @param allocLimit the most bytes one call may allocate, 0 for no limit
     */
    Watchdog(Duration budget, long allocLimit, Events events) {
        this.events = events;
        this.budgetNanos = budget.toNanos();
        this.allocations = allocLimit > 0 && threads instanceof com.sun.management.ThreadMXBean t
                && t.isThreadAllocatedMemorySupported() && t.isThreadAllocatedMemoryEnabled() ? t : null;
        this.allocLimit = allocations == null ? 0 : allocLimit;
        if (allocLimit > 0 && allocations == null) {
            LOG.log(Level.WARNING, "this JVM does not count allocations per thread: agent.alloc-limit is not enforced");
        }
        // often enough to stop an allocating call before it gets far past the limit; a sample is a few reads per loop
        long periodMs = Math.clamp(budget.toMillis() / 4, 2, this.allocLimit > 0 ? 10 : Long.MAX_VALUE);
        this.periodNanos = periodMs * 1_000_000;
        this.thread = Thread.ofPlatform().daemon().name("interlayer-watchdog").unstarted(() -> loop(periodMs));
        thread.start();
    }

    Duration budget() {
        return Duration.ofNanos(budgetNanos);
    }

    Slot register(Thread t) {
        Slot s = new Slot(t);
        slots.add(s);
        return s;
    }

    private void loop(long periodMs) {
        while (running) {
            try {
                Thread.sleep(periodMs);
            } catch (InterruptedException e) {
                break;
            }
            long now = System.nanoTime();
            for (Slot s : slots) {
                long seq = s.seq.get();
                settle(s, seq);
                if ((seq & 1) == 0) {
                    continue;
                }
                if (seq != s.lastSeen) {
                    s.lastSeen = seq;
                    s.lastSeenAt = now;
                    s.cpuAtFirstSight = cpuTime ? threads.getThreadCpuTime(s.thread.threadId()) : -1;
                    s.allocAtFirstSight = allocated(s);
                    s.agentBytesAtFirstSight = s.agentBytes;
                    s.agentNanosAtFirstSight = s.agentNanos;
                } else if (s.inAgentWork) {
                    continue; // judged after it, without what it took
                } else if (s.overranSeq != seq && allocLimit > 0
                        && allocated(s) - s.allocAtFirstSight - (s.agentBytes - s.agentBytesAtFirstSight) > allocLimit) {
                    // before the time budget: a call over both is an allocating one, and its fault should say so
                    flag(s, seq, now, "allocated more than " + ParamValues.formatSize(allocLimit) + " in one call (agent.alloc-limit)");
                } else if (now - s.lastSeenAt - (s.agentNanos - s.agentNanosAtFirstSight) > budgetNanos && s.overranSeq != seq
                        && overran(s, now - s.lastSeenAt - (s.agentNanos - s.agentNanosAtFirstSight))) {
                    flag(s, seq, now, "ran longer than the hook budget (" + budgetNanos / 1_000_000 + " ms)");
                } else if (s.overranSeq == seq && s.stuckSeq != seq && now - s.flaggedAt > stuckAfterNanos()) {
                    declareStuck(s, seq, now);
                }
            }
        }
        for (Slot s : slots) {
            Preemption.withdraw(s.stop); // closed: no request may outlive the engine
        }
    }

    /** After a flagged call has returned: withdraws its stop request, and reports a stuck call's return. */
    private void settle(Slot s, long seq) {
        if (s.stop != null && !s.stop.isCurrent()) {
            Preemption.withdraw(s.stop);
            s.stop = null;
        }
        StuckCall c = s.stuck;
        if (c != null && seq != s.stuckSeq) {
            s.stuck = null;
            LOG.log(Level.WARNING, "module {0} returned from {1} on connection {2} after {3} ms; event loop {4} serves again",
                    c.moduleId(), c.hook(), c.connectionId(), Duration.between(c.since(), Instant.now()).toMillis(), c.thread());
            events.recovered(s, c);
        }
    }

    /** The JVM's per-thread allocation counter, or null where it has none. */
    private static final com.sun.management.ThreadMXBean ALLOCATIONS =
            java.lang.management.ManagementFactory.getThreadMXBean() instanceof com.sun.management.ThreadMXBean t
                    && t.isThreadAllocatedMemorySupported() ? t : null;

    /**
     * Runs the agent's own {@code work} on the thread of {@code s} (which may be inside a module call) so that what it
     * allocates and how long it takes are not charged to the module: a module asking for {@code connection().app()} pays
     * neither for the /proc scan behind it.
     */
    static <T> T agentWork(Slot s, java.util.function.Supplier<T> work) {
        if (s == null || Thread.currentThread() != s.thread) return work.get();
        long bytes = ALLOCATIONS == null ? 0 : ALLOCATIONS.getCurrentThreadAllocatedBytes();
        long t0 = System.nanoTime();
        s.inAgentWork = true;
        try {
            return work.get();
        } finally {
            s.agentNanos += System.nanoTime() - t0; // written by this thread only
            if (ALLOCATIONS != null) s.agentBytes += ALLOCATIONS.getCurrentThreadAllocatedBytes() - bytes;
            s.inAgentWork = false;
        }
    }

    /** Bytes the thread of {@code s} has allocated since it started; -1 when not counted. */
    private long allocated(Slot s) {
        return allocations == null ? -1 : allocations.getThreadAllocatedBytes(s.thread.threadId());
    }

    /**
     * Interrupts the call (a blocked module returns) and asks it to stop (a spinning or allocating module throws at its
     * next check).
     *
     * @param why what the call did, e.g. "ran longer than the hook budget (200 ms)"
     */
    private void flag(Slot s, long seq, long now, String why) {
        Caller a = s.caller();
        String module = a == null ? "?" : a.moduleId();
        String hook = s.hook;
        s.overranWhy = why;
        s.overranSeq = seq;
        s.flaggedAt = now;
        LOG.log(Level.WARNING, "module {0} {1} in {2} on connection {3} (thread {4}); stopping it and counting a fault",
                module, why, hook, a == null ? "?" : a.connectionId(), s.thread.getName());
        s.stop = Preemption.request(s.thread, () -> s.seq.get() == seq, "module " + module + "'s hook " + hook + " " + why);
        s.thread.interrupt();
    }

    /** A flagged call still running a budget later: somewhere neither the interrupt nor a check reaches. */
    private void declareStuck(Slot s, long seq, long now) {
        Caller a = s.caller();
        StackTraceElement[] stack = s.thread.getStackTrace();
        StuckCall c = new StuckCall(s.thread.getName(), a == null ? "?" : a.moduleId(), s.hook, a == null ? -1 : a.connectionId(),
                Instant.now().minusNanos(now - s.lastSeenAt), StuckCall.where(stack));
        if (s.seq.get() != seq) {
            return; // it returned while we looked
        }
        s.stuckSeq = seq;
        events.stuck(s, c); // first: by the time the call shows as stuck, new connections already avoid its loop
        s.stuck = c;
        LOG.log(Level.ERROR, "module {0} has not returned from {1} on connection {2} for {3} ms although it was interrupted and asked"
                        + " to stop: it is stuck {4}, where the agent cannot stop it. Event loop {5} serves nothing else until it"
                        + " returns; new connections go to the other event loops. Revoke the module to end its connections on them.",
                c.moduleId(), c.hook(), c.connectionId(), Duration.between(c.since(), Instant.now()).toMillis(), c.at(), c.thread());
    }

    /** How long a flagged call may take to stop before it counts as stuck: a budget, and at least two samples. */
    private long stuckAfterNanos() {
        return Math.max(budgetNanos, 2 * periodNanos);
    }

    /** The calls stuck now, one per stuck event loop. */
    List<StuckCall> stuck() {
        List<StuckCall> out = new ArrayList<>();
        for (Slot s : slots) {
            StuckCall c = s.stuck;
            if (c != null) out.add(c);
        }
        return out;
    }

    /** Whether a call seen running for {@code wall} nanoseconds (more than the budget) is the module's doing. */
    private boolean overran(Slot s, long wall) {
        Thread.State state = s.thread.getState();
        if (state == Thread.State.WAITING || state == Thread.State.TIMED_WAITING || state == Thread.State.BLOCKED) {
            return true;
        }
        if (!cpuTime || s.cpuAtFirstSight < 0 || wall > STARVED_FACTOR * budgetNanos) {
            return true;
        }
        long cpu = threads.getThreadCpuTime(s.thread.threadId());
        // first sight is up to one sampling period after the call began: compare with the budget less that period
        return cpu < 0 || cpu - s.cpuAtFirstSight >= budgetNanos - periodNanos;
    }

    @Override
    public void close() {
        running = false;
        thread.interrupt();
    }
}
