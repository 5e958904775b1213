package dev.interlayer.runtime;

/**
 * Thrown inside a module's code to stop a hook that ran longer than its time budget.
 *
 * <p>The engine's watchdog asks for the stop ({@link Preemption#request}); the check the runtime put into every loop
 * and method of the module's classes throws this error at its next pass, on the hook's own thread. It unwinds the
 * module's stack like any other error; the engine catches it at the module boundary and counts a fault, so the
 * module's fault policy applies. Until the hook has returned, every further check throws again: a module that
 * catches it ({@code catch (Throwable t)}) and carries on looping is stopped at its next loop turn or call.
 *
 * <p>An {@link Error} rather than an exception so that a module's {@code catch (Exception e)} does not take it for
 * one of its own failures. Modules cannot name it (it is not part of the SDK) and should never catch it.
 */
public final class HookPreempted extends Error {

    private static final long serialVersionUID = 1L;

    /** Without suppressed exceptions: one instance is thrown again at every check until the hook returns. */
    HookPreempted(String message) {
        super(message, null, false, true);
    }
}
