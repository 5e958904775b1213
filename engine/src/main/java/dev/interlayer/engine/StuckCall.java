package dev.interlayer.engine;

import java.time.Duration;
import java.time.Instant;

/**
 * A module call that ran past its budget, was interrupted and asked to stop, and still has not returned: its event
 * loop serves nothing else until it does. It is stuck somewhere the agent cannot stop it (a lock that ignores
 * interrupts, blocking I/O that does, a long loop inside the JDK) — see docs/data-plane.md, "Threading and time budget".
 *
 * @param thread the event-loop thread
 * @param moduleId the module ({@code name@version})
 * @param hook the hook or call ({@code onSend}, {@code attach}, {@code timer}, ...)
 * @param connectionId the connection or UDP flow the call is for, or -1
 * @param since when the call started (to the watchdog's sampling period)
 * @param at where the thread is: the JDK method it waits or runs in, and the module's frame that called it
 */
public record StuckCall(String thread, String moduleId, String hook, long connectionId, Instant since, String at) {

    /** How long it has been running. */
    public Duration running() {
        return Duration.between(since, Instant.now());
    }

    /** One line for logs and the control plane: "module x@1.0.0 onSend on connection 7 for 12 s (thread ..., in ...)". */
    public String describe() {
        return "module " + moduleId + " " + hook + (connectionId >= 0 ? " on connection " + connectionId : "") + " for "
                + running().toSeconds() + " s (thread " + thread + ", " + at + ")";
    }

    /** "in J called from M (File:line)": the last JDK method on {@code stack} and the module frame that called it. */
    static String where(StackTraceElement[] stack) {
        if (stack.length == 0) {
            return "at an unknown place";
        }
        int caller = 0;
        while (caller < stack.length && jdk(stack[caller].getClassName())) {
            caller++;
        }
        if (caller == 0 || caller == stack.length) {
            return "in " + frame(stack[0]);
        }
        return "in " + frame(stack[caller - 1]) + " called from " + frame(stack[caller]);
    }

    private static boolean jdk(String className) {
        return className.startsWith("java.") || className.startsWith("javax.") || className.startsWith("jdk.")
                || className.startsWith("sun.") || className.startsWith("com.sun.");
    }

    private static String frame(StackTraceElement e) {
        return e.getClassName() + "." + e.getMethodName() + (e.getFileName() != null && e.getLineNumber() > 0
                ? " (" + e.getFileName() + ":" + e.getLineNumber() + ")" : "");
    }
}
