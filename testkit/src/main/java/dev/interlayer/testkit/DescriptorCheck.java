package dev.interlayer.testkit;

import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.Module;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.runtime.Hooks;
import dev.interlayer.runtime.ModuleRegistry;
import java.util.List;

/**
 * Checks a module's descriptor the way the agent does at load, without loading a jar: the agent's own checks
 * ({@code ModuleRegistry.negotiationProblems} and its hook detection), called without running {@code init}.
 *
 * <p>Problems (the agent refuses the module): {@code descriptor()} throws or returns null; a declared
 * interface is not implemented by the class; an implemented interface is not declared; a declared major
 * differs from the SDK's {@link InterfaceType#hostMajor()}, or a minor is higher than the SDK's. Notes (the agent
 * loads the module but says so): a hook the class overrides that is newer than the minor version it declares, which
 * is never called. Parameter defaults are already type-checked by {@link dev.interlayer.api.Param}.
 *
 * <pre>{@code
 * assertEquals(List.of(), DescriptorCheck.problems(new TagModule()));
 * }</pre>
 */
public final class DescriptorCheck {

    private DescriptorCheck() {}

    /** Returns what would make the agent refuse {@code module}; empty when it loads. */
    public static List<String> problems(Module<?> module) {
        ModuleDescriptor d;
        try {
            d = module.descriptor();
        } catch (RuntimeException e) {
            return List.of(module.getClass().getName() + ".descriptor() threw " + e);
        }
        if (d == null) {
            return List.of(module.getClass().getName() + ".descriptor() returned null");
        }
        return ModuleRegistry.negotiationProblems(d, module.getClass());
    }

    /** Returns notes on hooks {@code module} overrides that its declared versions exclude (never called). */
    public static List<String> notes(Module<?> module) {
        return Hooks.detect(module.getClass(), module.descriptor().interfaces()).notes();
    }
}
