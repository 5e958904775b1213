package dev.interlayer.testkit;

import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.InterfaceVersion;
import dev.interlayer.api.Module;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.Since;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.List;

/**
 * Checks a module's descriptor the way the agent does at load, without loading a jar.
 *
 * <p>Problems (the agent refuses the module): {@code descriptor()} throws or returns null; a declared
 * interface is not implemented by the class; an implemented interface is not declared; a declared major
 * differs from the SDK's {@link InterfaceType#hostMajor()}. Notes (the agent loads the module but says so):
 * a hook the class overrides that is newer than the minor version it declares, which is never called.
 * Parameter defaults are already type-checked by {@link dev.interlayer.api.Param}.
 *
 * <pre>{@code
 * assertEquals(List.of(), DescriptorCheck.problems(new TagModule()));
 * }</pre>
 */
public final class DescriptorCheck {

    private DescriptorCheck() {}

    /** Returns what would make the agent refuse {@code module}; empty when it loads. */
    public static List<String> problems(Module<?> module) {
        List<String> out = new ArrayList<>();
        ModuleDescriptor d;
        try {
            d = module.descriptor();
        } catch (RuntimeException e) {
            out.add(module.getClass().getName() + ".descriptor() threw " + e);
            return out;
        }
        if (d == null) {
            out.add(module.getClass().getName() + ".descriptor() returned null");
            return out;
        }
        Class<?> cls = module.getClass();
        for (InterfaceVersion v : d.interfaces().values()) {
            InterfaceType t = v.type();
            if (v.major() != t.hostMajor()) {
                out.add("module " + d + " was built against " + t.id() + " " + v.major() + "." + v.minor() + " but this SDK offers "
                        + t.id() + " " + t.hostMajor() + "." + t.hostMinor() + ": the major version must match");
            }
            if (v.minor() > t.hostMinor()) {
                out.add("module " + d + " was built against " + t.id() + " " + v.major() + "." + v.minor() + " but this SDK offers "
                        + t.id() + " " + t.hostMajor() + "." + t.hostMinor() + ": a higher minor than the agent's is refused at load");
            }
            if (!t.javaType().isAssignableFrom(cls)) {
                out.add("module " + d + " declares interface " + t.id() + " but " + cls.getName() + " does not implement "
                        + t.javaType().getSimpleName());
            }
        }
        for (InterfaceType t : InterfaceType.values()) {
            if (t.javaType().isAssignableFrom(cls) && !d.interfaces().containsKey(t)) {
                out.add("module " + d + ": " + cls.getName() + " implements " + t.javaType().getSimpleName()
                        + " but its descriptor does not declare it; add .implement(InterfaceType." + t.name() + ", "
                        + t.hostMajor() + ", " + t.hostMinor() + ")");
            }
        }
        return out;
    }

    /** Returns notes on hooks {@code module} overrides that its declared versions exclude (never called). */
    public static List<String> notes(Module<?> module) {
        List<String> out = new ArrayList<>();
        ModuleDescriptor d = module.descriptor();
        for (InterfaceVersion v : d.interfaces().values()) {
            Class<?> api = v.type().javaType();
            if (!api.isInstance(module)) {
                continue;
            }
            for (Method hook : api.getDeclaredMethods()) {
                Since since = hook.getAnnotation(Since.class);
                if (since == null || (since.major() == v.major() && since.minor() <= v.minor())) {
                    continue;
                }
                if (overrides(module.getClass(), hook)) {
                    out.add(hook.getName() + " needs " + v.type().id() + " " + since.major() + "." + since.minor()
                            + " but the module declares " + v.major() + "." + v.minor() + ": it will not be called");
                }
            }
        }
        return out;
    }

    /** True when {@code moduleClass} has its own implementation of {@code hook} (not the SDK's default). */
    static boolean overrides(Class<?> moduleClass, Method hook) {
        try {
            Method found = moduleClass.getMethod(hook.getName(), hook.getParameterTypes());
            return !found.getDeclaringClass().getName().startsWith("dev.interlayer.api.");
        } catch (NoSuchMethodException e) {
            return false;
        }
    }

    /** Returns the minor version {@code module} declares for {@code type}, or -1 if it does not declare it. */
    static int declaredMinor(ModuleDescriptor d, InterfaceType type) {
        InterfaceVersion v = d.interfaces().get(type);
        return v == null ? -1 : v.minor();
    }
}
