package dev.interlayer.runtime;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.invoke.MutableCallSite;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;

/**
 * Stops a module's hook that ran past its time budget, at the next check the runtime put into the module's code.
 *
 * <p>Every class a module jar defines is loaded with a call to {@link #check()} at the entry of each method, before
 * each backward branch (every loop turn) and at handlers that exceptions reach backwards ({@link PreemptionPoints}).
 * The engine's watchdog {@linkplain #request asks} for a thread's running hook to stop; that thread's next check throws
 * {@link HookPreempted}, and so does every later one until the engine {@linkplain #withdraw withdraws} the request
 * when the hook has returned.
 *
 * <pre>
 *   no request:        check() ─▶ (nothing; the compiled code has no trace of it)
 *   request(T, call):  check() on T, call still running ─▶ throw HookPreempted   (message names the module, hook and place)
 *                      check() on any other thread       ─▶ one compare with T, nothing else
 *   withdraw:          back to no request
 * </pre>
 *
 * <p>Cost. {@link #check()} invokes a {@link MutableCallSite} whose target is a no-op while nothing is requested: the
 * JIT inlines the constant target, so the module's compiled loops are the same as without checks (and still
 * vectorize). A request changes the target, which makes the JVM deoptimize the compiled code that inlined it; the
 * thread then runs the new target at its next check (within a few milliseconds: deoptimization waits for a safepoint
 * poll, which compiled loops have). With requests pending, a check on another thread costs a compare with each
 * requested thread, never a memory read, so an event loop stuck for good somewhere a check cannot reach does not slow
 * every module down. A withdraw deoptimizes once more. Both are rare: once per hook that overran.
 *
 * <p>Reachability: instrumented module code calls {@link #check()}, so module class loaders delegate this class to the
 * host ({@link ModuleClassLoader}); a jar cannot shadow it. Only the engine calls {@link #request} and {@link #withdraw}.
 *
 * <p>Thread-safe.
 */
public final class Preemption {

    /** The binary name module class loaders delegate to the host, so instrumented code reaches this very class. */
    public static final String CLASS_NAME = "dev.interlayer.runtime.Preemption";

    private static final MethodHandle NOOP;
    private static final MethodHandle IS_CURRENT;
    private static final MethodHandle STOP;
    private static final MutableCallSite SITE;
    private static final MethodHandle CHECK;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            NOOP = MethodHandles.empty(MethodType.methodType(void.class));
            IS_CURRENT = l.findStatic(Preemption.class, "isCurrent", MethodType.methodType(boolean.class, Thread.class));
            STOP = l.findStatic(Preemption.class, "stop", MethodType.methodType(void.class, Request[].class));
            SITE = new MutableCallSite(NOOP);
            CHECK = SITE.dynamicInvoker();
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private static final Object LOCK = new Object();
    /** Pending requests (guarded by LOCK; the call site's target is rebuilt from it on every change). */
    private static Request[] pending = new Request[0];

    private Preemption() {}

    /**
     * The check instrumented module code runs: throws {@link HookPreempted} if the engine asked the current thread's
     * hook to stop, else returns at once. Calling it from anywhere else is harmless.
     */
    public static void check() {
        try {
            CHECK.invokeExact();
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t); // the targets throw nothing checked
        }
    }

    /** A pending request to stop one hook call on one thread. */
    public static final class Request {
        private final Thread thread;
        private final BooleanSupplier running;
        private final String message;
        /** Made at the first stop and thrown again at every later check (only the requested thread touches it). */
        private HookPreempted error;

        private Request(Thread thread, BooleanSupplier running, String message) {
            this.thread = thread;
            this.running = running;
            this.message = message;
        }

        /** True while the call this request is for has not returned. */
        public boolean isCurrent() {
            return running.getAsBoolean();
        }

        @Override
        public String toString() {
            return "stop request for " + thread.getName() + ": " + message;
        }
    }

    /**
     * Asks the hook call running on {@code thread} to stop at its next check.
     *
     * @param thread the thread running the call
     * @param running true while that call is still the one running (the request must not stop the next call on the
     *                thread if this one returned meanwhile); read on {@code thread} at a check, so it must be cheap
     *                and thread-safe
     * @param message what happened, e.g. "module x@1.0.0's hook onSend ran longer than its budget of 200 ms"; the
     *                error adds where the module was stopped
     * @return the request, to {@linkplain #withdraw withdraw} once the call has returned
     */
    public static Request request(Thread thread, BooleanSupplier running, String message) {
        Request r = new Request(thread, running, message);
        synchronized (LOCK) {
            Request[] n = Arrays.copyOf(pending, pending.length + 1);
            n[pending.length] = r;
            publish(n);
        }
        return r;
    }

    /** Withdraws {@code r} (the call returned, or will never be stopped); idempotent. */
    public static void withdraw(Request r) {
        if (r == null) {
            return;
        }
        synchronized (LOCK) {
            int i = Arrays.asList(pending).indexOf(r);
            if (i < 0) {
                return;
            }
            Request[] n = new Request[pending.length - 1];
            System.arraycopy(pending, 0, n, 0, i);
            System.arraycopy(pending, i + 1, n, i, n.length - i);
            publish(n);
        }
    }

    /** Requests not yet withdrawn (tests check that none outlives its hook). */
    static int pendingRequests() {
        synchronized (LOCK) {
            return pending.length;
        }
    }

    /**
     * Makes the call site's target check {@code requests}: per thread with a request, a compare with that thread
     * (guarded by LOCK).
     */
    private static void publish(Request[] requests) {
        pending = requests;
        MethodHandle target = NOOP;
        Map<Thread, List<Request>> byThread = new LinkedHashMap<>();
        for (Request r : requests) {
            byThread.computeIfAbsent(r.thread, t -> new ArrayList<>()).add(r);
        }
        for (Map.Entry<Thread, List<Request>> e : byThread.entrySet()) {
            MethodHandle stop = STOP.bindTo(e.getValue().toArray(Request[]::new));
            target = MethodHandles.guardWithTest(IS_CURRENT.bindTo(e.getKey()), stop, target);
        }
        SITE.setTarget(target);
        MutableCallSite.syncAll(new MutableCallSite[] {SITE});
    }

    private static boolean isCurrent(Thread t) {
        return Thread.currentThread() == t;
    }

    /** On a thread with requests: throws for the first whose call is still running (an older one may be stale). */
    private static void stop(Request[] requests) {
        for (Request r : requests) {
            if (r.running.getAsBoolean()) {
                // one error per request: a module that catches it in deep recursion meets it again at every level on the
                // way out, and filling in a stack trace thousands of frames deep each time would keep the loop busy
                if (r.error == null) {
                    r.error = new HookPreempted(r.message + "; it was stopped at " + where());
                }
                throw r.error;
            }
        }
    }

    /** The module's frame that ran the check: the first below this class and the method handle machinery. */
    private static String where() {
        return StackWalker.getInstance().walk(frames -> frames
                .filter(f -> !f.getClassName().equals(CLASS_NAME) && !f.getClassName().startsWith("java.lang.invoke."))
                .findFirst()
                .map(f -> f.getClassName() + "." + f.getMethodName() + (f.getLineNumber() > 0 ? " (" + f.getFileName() + ":" + f.getLineNumber() + ")" : ""))
                .orElse("an unknown place"));
    }
}
