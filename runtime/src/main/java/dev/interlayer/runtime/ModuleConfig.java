package dev.interlayer.runtime;

import dev.interlayer.api.AttachMode;
import dev.interlayer.api.Capability;
import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.Selector;
import java.util.Collections;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

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
 * @param allow the capabilities the module may use (config {@code allow:}); a module that declares one not
 *              in this set is refused at load
 */
public record ModuleConfig(String name, ModuleState state, Integer priority, Selector selector, AttachMode attachMode,
                           FaultPolicy faultPolicy, Boolean applyNow, Map<String, Object> params, Set<Capability> allow) {

    /**
     * Copies the parameters and the allowed capabilities; a null parameter value (a YAML key with nothing after
     * it) stays, and means "use the default".
     */
    public ModuleConfig {
        params = params == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(params));
        allow = allow == null || allow.isEmpty() ? Set.of() : Collections.unmodifiableSet(EnumSet.copyOf(allow));
    }

    /** Overrides that allow no capability. */
    public ModuleConfig(String name, ModuleState state, Integer priority, Selector selector, AttachMode attachMode,
                        FaultPolicy faultPolicy, Boolean applyNow, Map<String, Object> params) {
        this(name, state, priority, selector, attachMode, faultPolicy, applyNow, params, Set.of());
    }

    /** No overrides for {@code name}, and no capability allowed. */
    public static ModuleConfig defaults(String name) {
        return new ModuleConfig(name, null, null, null, null, null, null, Map.of(), Set.of());
    }

    /** These overrides with {@code allow} as the allowed capabilities. */
    public ModuleConfig withAllow(Set<Capability> allow) {
        return new ModuleConfig(name, state, priority, selector, attachMode, faultPolicy, applyNow, params, allow);
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
