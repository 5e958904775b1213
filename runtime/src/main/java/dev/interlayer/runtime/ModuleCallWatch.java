package dev.interlayer.runtime;

import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Stops the module calls no event loop makes — {@code init}, {@code fini}, {@code control}, {@code onListen} and
 * module-wide timers — when they run past their budget, as the engine's watchdog stops a hook on a connection.
 *
 * <p>These calls run on threads of their own kind (the autoload folder's, the control endpoint's, the registry's timer
 * thread), rarely, and may do more than a hook (an {@code init} loads its data), so they get a longer budget of wall
 * time and no allocation limit. A call past it is asked to stop ({@link Preemption#request}: a module spinning in its
 * own code throws {@link HookPreempted} at its next check) and interrupted (a module sleeping or waiting returns). The
 * caller counts the fault and says why. A call stuck where neither reaches (a lock that ignores interrupts, native code)
 * still holds its thread: the warning names it.
 *
 * <p>A sampler thread, started at the first call, looks at the running calls a few times per budget; the calls
 * themselves only add and remove an entry in a set.
 */
final class ModuleCallWatch {

    private static final System.Logger LOG = System.getLogger("interlayer.runtime");

    /** The budget when the agent's config does not set {@code agent.module-wide-budget}. */
    static final Duration DEFAULT_BUDGET = Duration.ofSeconds(5);

    private final Set<Call> calls = ConcurrentHashMap.newKeySet();
    private volatile long budgetNanos = DEFAULT_BUDGET.toNanos();
    private Thread sampler; // guarded by this

    /** One running call; {@link #exit} it in a {@code finally}. */
    final class Call {
        private final Thread thread = Thread.currentThread();
        private final String moduleId;
        private final String hook;
        private final long started = System.nanoTime();
        private volatile boolean running = true;
        private volatile String why;
        private Preemption.Request stop; // written and withdrawn by the sampler while running, by exit after

        private Call(String moduleId, String hook) {
            this.moduleId = moduleId;
            this.hook = hook;
        }

        /**
         * Marks the call as returned (or thrown).
         *
         * @return why it was stopped, e.g. "ran longer than the module-wide budget (5000 ms)"; null if it was not
         */
        String exit() {
            running = false;
            calls.remove(this);
            synchronized (this) {
                Preemption.withdraw(stop);
                stop = null;
            }
            if (why != null) {
                Thread.interrupted(); // the interrupt was meant for the module's blocking call, not for this thread's owner
            }
            return why;
        }
    }

    /** Sets the budget of every later call. */
    void budget(Duration d) {
        if (d == null || d.isNegative() || d.isZero()) {
            throw new IllegalArgumentException("the module-wide budget must be positive");
        }
        budgetNanos = d.toNanos();
    }

    Duration budget() {
        return Duration.ofNanos(budgetNanos);
    }

    /** Starts watching a call by {@code moduleId} into {@code hook} on the current thread. */
    Call enter(String moduleId, String hook) {
        Call c = new Call(moduleId, hook);
        calls.add(c);
        startSampler();
        return c;
    }

    private synchronized void startSampler() {
        if (sampler == null) {
            sampler = Thread.ofPlatform().daemon().name("interlayer-module-call-watch").start(this::sample);
        }
    }

    private void sample() {
        while (true) {
            long budget = budgetNanos;
            try {
                Thread.sleep(Math.clamp(budget / 10 / 1_000_000, 5, 100));
            } catch (InterruptedException e) {
                return;
            }
            long now = System.nanoTime();
            for (Call c : calls) {
                if (c.why == null && now - c.started > budget) {
                    stop(c, budget);
                }
            }
        }
    }

    private void stop(Call c, long budget) {
        String why = "ran longer than the module-wide budget (" + budget / 1_000_000 + " ms)";
        synchronized (c) {
            if (!c.running) {
                return;
            }
            c.why = why;
            c.stop = Preemption.request(c.thread, () -> c.running, "module " + c.moduleId + "'s " + c.hook + " " + why);
            // under the lock: once exit has taken it, no interrupt meant for the module can reach the thread's next work
            c.thread.interrupt();
        }
        LOG.log(Level.WARNING, "module {0} {1} in {2} (thread {3}); stopping it and counting a fault", c.moduleId, why, c.hook,
                c.thread.getName());
    }
}
