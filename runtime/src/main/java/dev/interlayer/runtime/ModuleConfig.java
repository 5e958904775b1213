package dev.interlayer.runtime;

import dev.interlayer.api.AttachMode;
import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.Selector;
import java.util.Collections;
import java.util.LinkedHashMap;
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

    /** Copies the parameters; a null value (a YAML key with nothing after it) stays, and means "use the default". */
    public ModuleConfig {
        params = params == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(params));
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
