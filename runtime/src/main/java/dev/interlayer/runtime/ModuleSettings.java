package dev.interlayer.runtime;

import dev.interlayer.api.AttachMode;
import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.Selector;

/**
 * Where and how a module instance runs: the descriptor's defaults, overridden by a config entry or a
 * control request.
 *
 * @param state initial state: ACTIVE or INACTIVE
 * @param priority chain position (lower runs first on SEND)
 * @param selector which connections it attaches to
 * @param attachMode global or programmatic
 * @param faultPolicy what a fault does to the connection
 * @param applyNow attach to already-open matching connections when added
 */
public record ModuleSettings(ModuleState state, int priority, Selector selector, AttachMode attachMode, FaultPolicy faultPolicy,
                             boolean applyNow) {

    /** Checks the initial state. */
    public ModuleSettings {
        if (state != ModuleState.ACTIVE && state != ModuleState.INACTIVE) {
            throw new IllegalArgumentException("a module starts ACTIVE or INACTIVE, not " + state);
        }
    }

    /** The descriptor's defaults: ACTIVE, its priority, selector, mode and fault policy, no apply-now. */
    public static ModuleSettings defaults(ModuleDescriptor d) {
        return new ModuleSettings(ModuleState.ACTIVE, d.priority(), d.selector(), d.attachMode(), d.faultPolicy(), false);
    }

    public ModuleSettings withState(ModuleState s) {
        return new ModuleSettings(s, priority, selector, attachMode, faultPolicy, applyNow);
    }

    public ModuleSettings withPriority(int p) {
        return new ModuleSettings(state, p, selector, attachMode, faultPolicy, applyNow);
    }

    public ModuleSettings withSelector(Selector s) {
        return new ModuleSettings(state, priority, s, attachMode, faultPolicy, applyNow);
    }

    public ModuleSettings withAttachMode(AttachMode m) {
        return new ModuleSettings(state, priority, selector, m, faultPolicy, applyNow);
    }

    public ModuleSettings withFaultPolicy(FaultPolicy f) {
        return new ModuleSettings(state, priority, selector, attachMode, f, applyNow);
    }

    public ModuleSettings withApplyNow(boolean a) {
        return new ModuleSettings(state, priority, selector, attachMode, faultPolicy, a);
    }
}
