package dev.interlayer.runtime;

import dev.interlayer.api.AttachMode;
import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.Selector;
import java.util.Map;

/**
 * What a config entry or control request says about one module, by name; null fields keep the
 * descriptor's defaults.
 *
 * @param name the module's name
 * @param state ACTIVE or INACTIVE, or null
 * @param priority or null
 * @param selector or null
 * @param attachMode or null
 * @param faultPolicy or null
 * @param applyNow or null
 * @param params raw parameter values (strings, numbers, booleans) checked against the descriptor
 */
public record ModuleConfig(String name, ModuleState state, Integer priority, Selector selector, AttachMode attachMode,
                           FaultPolicy faultPolicy, Boolean applyNow, Map<String, Object> params) {

    public ModuleConfig {
        params = params == null ? Map.of() : Map.copyOf(params);
    }

    /** No overrides for {@code name}. */
    public static ModuleConfig defaults(String name) {
        return new ModuleConfig(name, null, null, null, null, null, null, Map.of());
    }

    /** The settings these overrides give on top of {@code d}'s defaults. */
    public ModuleSettings settings(ModuleDescriptor d) {
        ModuleSettings s = ModuleSettings.defaults(d);
        if (state != null) s = s.withState(state);
        if (priority != null) s = s.withPriority(priority);
        if (selector != null) s = s.withSelector(selector);
        if (attachMode != null) s = s.withAttachMode(attachMode);
        if (faultPolicy != null) s = s.withFaultPolicy(faultPolicy);
        if (applyNow != null) s = s.withApplyNow(applyNow);
        return s;
    }
}
