package dev.interlayer.testkit;

import dev.interlayer.api.Cancellable;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.InterfaceVersion;
import dev.interlayer.api.ModuleEnv;
import dev.interlayer.api.ModuleLog;
import dev.interlayer.api.Params;
import java.time.Duration;

/**
 * The {@link ModuleEnv} a module gets from the harness: checked parameters, a recording log, the SDK's own
 * interface versions, and the harness's virtual clock for {@link #nanoTime()} and {@link #schedule}.
 */
final class FakeModuleEnv implements ModuleEnv {

    private final ModuleHarness harness;
    private final ModuleHarness.Entry entry;
    private final Params params;
    private final RecordingModuleLog log;

    FakeModuleEnv(ModuleHarness harness, ModuleHarness.Entry entry, Params params, RecordingModuleLog log) {
        this.harness = harness;
        this.entry = entry;
        this.params = params;
        this.log = log;
    }

    @Override public String name() { return entry.name(); }
    @Override public String version() { return entry.descriptor().version(); }
    @Override public Params params() { return params; }
    @Override public ModuleLog log() { return log; }

    @Override
    public InterfaceVersion hostVersion(InterfaceType type) {
        return new InterfaceVersion(type, type.hostMajor(), type.hostMinor());
    }

    @Override
    public Cancellable schedule(Duration delay, Runnable task) {
        return harness.clock().schedule(entry, delay, () -> harness.runModuleTask(entry, task));
    }

    @Override
    public long nanoTime() {
        return harness.clock().nanoTime();
    }

    @Override
    public void publish(String kind, String text) {
        harness.published(entry.name(), kind, text);
    }
}
