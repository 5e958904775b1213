package dev.interlayer.cli;

import dev.interlayer.agent.OneLineLogFormatter;
import dev.interlayer.api.Capability;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.InterfaceVersion;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.Param;
import dev.interlayer.api.ParamType;
import dev.interlayer.runtime.Failure;
import dev.interlayer.runtime.Hooks;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleConfig;
import dev.interlayer.runtime.ModuleLoadException;
import dev.interlayer.runtime.ModuleRegistry;
import dev.interlayer.runtime.ModuleVerifier;
import dev.interlayer.runtime.NativePackage;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.logging.Level;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code interlayer check-module FILE}: loads a module jar or C module object ({@code .so}) in an isolated registry (its own temporary cache,
 * no listeners) and reports each module's descriptor, interfaces, capabilities, what the verifier found,
 * hooks, parameters and defaults, and every problem with its fix.
 *
 * <p>There is no agent config here, so every capability a module declares counts as allowed; the report
 * says which ones an agent's config must allow.
 */
@Command(name = "check-module", mixinStandardHelpOptions = true,
        description = {"Load a module jar or C module object (.so) in isolation and report its modules and any problem.",
                "For a C object: the entry points it exports and, per module, the vtable hooks it fills (within the minor it declares).",
                "For each module: name, version, interfaces (the module's version vs the host's), capabilities (and the config line",
                "an agent needs to allow them), what the verifier found in its classes, hooks, parameters, and the default priority,",
                "selector, mode and fault policy; for each problem: what is wrong and how to fix it (the verifier lists every refused",
                "call with its class, method and line).",
                "Exit 0 if every module loaded, 1 otherwise, 2 if FILE is not a file."})
final class CheckModuleCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Parameters(paramLabel = "FILE", description = "the module jar or C module object (.so) to check")
    Path jar;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        if (!Files.isRegularFile(jar)) {
            err.println("interlayer: " + jar + (Files.exists(jar) ? " is not a file" : " does not exist") + "; pass the path of a module jar or C module object,"
                    + " e.g. interlayer check-module cli/target/sample-modules/module-tag.jar");
            return Main.USAGE;
        }
        OneLineLogFormatter.install(Level.OFF); // problems are reported below, with their fix
        List<LoadedModule> loaded = new ArrayList<>();
        List<Failure> failures;
        try (ModuleRegistry registry = new ModuleRegistry(1, null)) {
            try {
                // No agent config here: a declared capability counts as allowed; describe() says what a config must allow.
                Set<Capability> all = EnumSet.allOf(Capability.class);
                loaded.addAll(registry.load(jar, name -> ModuleConfig.defaults(name).withAllow(all)));
            } catch (ModuleLoadException e) {
                // kept in failures(), printed below
            }
            boolean object = ModuleRegistry.isNativeObject(jar);
            out.println((object ? "C module object " : "jar ") + jar.toAbsolutePath().normalize());
            if (!loaded.isEmpty()) {
                out.println("  sha256 " + loaded.get(0).pkg().sha256());
                if (loaded.get(0).pkg() instanceof NativePackage so) {
                    out.println("  exports " + String.join(", ", so.exports()) + ", " + String.join(", ", so.initvts()));
                }
            }
            for (LoadedModule m : loaded) {
                describe(out, m);
            }
            failures = registry.failures();
        }
        for (Failure f : failures) {
            out.println();
            out.println("PROBLEM" + (f.module() == null ? "" : " in module " + f.module()) + ": " + f.error());
        }
        out.println();
        if (failures.isEmpty() && !loaded.isEmpty()) {
            out.println("OK: " + loaded.size() + " module" + (loaded.size() == 1 ? "" : "s") + " loaded");
            return Main.OK;
        }
        out.println("FAILED: " + loaded.size() + " module" + (loaded.size() == 1 ? "" : "s") + " loaded, " + failures.size() + " problem"
                + (failures.size() == 1 ? "" : "s"));
        return Main.FAILURE;
    }

    private static void describe(PrintWriter out, LoadedModule m) {
        ModuleDescriptor d = m.descriptor();
        out.println();
        out.println("module " + d.name() + " " + d.version() + (d.description().isEmpty() ? "" : " - " + d.description()));
        List<String> ifaces = new ArrayList<>();
        for (InterfaceType t : InterfaceType.values()) {
            InterfaceVersion v = d.interfaces().get(t);
            if (v != null) {
                ifaces.add(t.id() + " " + v.major() + "." + v.minor() + " (host offers " + t.hostMajor() + "." + t.hostMinor()
                        + (v.minor() < t.hostMinor() ? "; hooks added after " + v.major() + "." + v.minor() + " are not called" : "") + ")");
            }
        }
        out.println("  interfaces:   " + String.join(", ", ifaces));
        if (d.capabilities().isEmpty()) {
            out.println("  capabilities: none");
        } else {
            String ids = String.join(", ", d.capabilities().stream().map(Capability::id).toList());
            out.println("  capabilities: " + ids + " (an agent loads the module only where its config allows them: allow: [" + ids + "])");
        }
        m.verification().ifPresent(v -> out.println("  verified:     " + verified(v)));
        if (m.pkg() instanceof NativePackage) {
            out.println("  native:       runs in the agent's process: a crash or a stray write in it ends the agent; faults and budgets"
                    + " apply to what its hooks return and how long they take");
        }
        List<String> hooks = Hooks.names(m.hooks());
        out.println("  hooks:        " + (hooks.isEmpty() ? "(none: traffic passes untouched)" : String.join(", ", hooks)));
        for (String note : m.hookNotes()) {
            out.println("  note:         " + note);
        }
        out.println("  defaults:     priority " + d.priority() + ", selector " + d.selector() + ", mode " + lower(d.attachMode().name())
                + ", fault policy " + lower(d.faultPolicy().name()) + (d.warmUp() ? ", runs in the agent's warm-up" : ""));
        if (d.params().isEmpty()) {
            out.println("  parameters:   (none)");
        } else {
            out.println("  parameters:");
            int w = d.params().stream().mapToInt(p -> p.name().length()).max().orElse(0);
            for (Param p : d.params()) {
                out.println("    " + pad(p.name(), w) + "  " + pad(lower(p.type().name()), 8) + "  "
                        + pad(p.required() ? "required" : "default " + show(p.type(), p.defaultValue()), 20) + "  " + p.description());
            }
        }
    }

    private static String verified(ModuleVerifier.Summary v) {
        String uses = v.capabilities().isEmpty() ? "uses no capability"
                : "uses " + String.join(", ", v.capabilities().stream().sorted().map(Capability::id).toList());
        return v.classes() + " class" + (v.classes() == 1 ? "" : "es") + " read before any ran, nothing refused; " + uses;
    }

    private static String lower(String s) {
        return s.toLowerCase(Locale.ROOT).replace('_', '-');
    }

    private static String pad(String s, int w) {
        return s.length() >= w ? s : s + " ".repeat(w - s.length());
    }

    /** A parameter value as a config would write it. */
    static String show(ParamType type, Object v) {
        if (type == ParamType.SIZE && v instanceof Long bytes) {
            return size(bytes);
        }
        if (type == ParamType.DURATION && v instanceof Duration d) {
            return duration(d);
        }
        return String.valueOf(v);
    }

    /** A byte count in the largest binary unit that divides it: 65536 → 64KiB. */
    static String size(long bytes) {
        String[] units = {"GiB", "MiB", "KiB"};
        long[] mult = {1L << 30, 1L << 20, 1L << 10};
        for (int i = 0; i < units.length; i++) {
            if (bytes >= mult[i] && bytes % mult[i] == 0) {
                return bytes / mult[i] + units[i];
            }
        }
        return Long.toString(bytes);
    }

    /** A duration in the largest unit that divides it: 250ms, 5s, 2m. */
    static String duration(Duration d) {
        long ns = d.toNanos();
        if (ns % 3_600_000_000_000L == 0 && ns != 0) return ns / 3_600_000_000_000L + "h";
        if (ns % 60_000_000_000L == 0 && ns != 0) return ns / 60_000_000_000L + "m";
        if (ns % 1_000_000_000L == 0) return ns / 1_000_000_000L + "s";
        if (ns % 1_000_000L == 0) return ns / 1_000_000L + "ms";
        if (ns % 1_000L == 0) return ns / 1_000L + "us";
        return ns + "ns";
    }
}
