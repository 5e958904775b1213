package dev.interlayer.api;

/** A scheduled task that can be cancelled. */
public interface Cancellable {
    /**
     * Cancels the task if it has not started.
     *
     * @return true if it will not run
     */
    boolean cancel();
}
