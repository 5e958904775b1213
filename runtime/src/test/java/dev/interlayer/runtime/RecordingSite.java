package dev.interlayer.runtime;

import dev.interlayer.api.DetachReason;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A fake engine attachment that records the detach requests the runtime makes; the test plays the
 * engine by calling {@link LoadedModule#siteDetached} itself.
 */
final class RecordingSite implements AttachmentSite {

    private final long connectionId;
    private final List<DetachReason> requests = new CopyOnWriteArrayList<>();

    RecordingSite(long connectionId) {
        this.connectionId = connectionId;
    }

    @Override
    public long connectionId() {
        return connectionId;
    }

    @Override
    public void requestDetach(DetachReason reason) {
        requests.add(reason);
    }

    @Override
    public void addLiveCounters(ModuleStats.Snapshot.Builder into) {
        into.addLive(new long[2], new long[2], new long[2], new long[dev.interlayer.api.Verdict.Kind.values().length], 0);
    }

    /** The detach requests received, in order. */
    List<DetachReason> requests() {
        return List.copyOf(requests);
    }
}
