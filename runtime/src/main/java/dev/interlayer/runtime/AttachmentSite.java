package dev.interlayer.runtime;

import dev.interlayer.api.DetachReason;

/**
 * The engine's side of one attachment (a module on one connection), as the runtime sees it.
 *
 * <p>The runtime keeps the live sites of each module so it can detach them all on unregister or revoke
 * and unload the module once the last one is gone.
 */
public interface AttachmentSite {

    /** Id of the connection. */
    long connectionId();

    /**
     * Asks the engine to detach the module from this connection; any thread, returns at once.
     *
     * <p>The engine runs the detach on the connection's event loop and then reports it with
     * {@link LoadedModule#siteDetached(AttachmentSite)}. Idempotent.
     */
    void requestDetach(DetachReason reason);

    /** Adds this attachment's not-yet-flushed counters to {@code into}; any thread, racy reads allowed. */
    void addLiveCounters(ModuleStats.Snapshot.Builder into);
}
