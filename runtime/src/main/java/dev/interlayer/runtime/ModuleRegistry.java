package dev.interlayer.runtime;

import dev.interlayer.api.AttachMode;
import dev.interlayer.api.ConnectionInfo;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.InterfaceVersion;
import dev.interlayer.api.Module;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.Params;
import java.lang.System.Logger.Level;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;

/**
 * The modules an agent knows: adds them (version negotiation, hook detection, parameters, init), keeps
 * their lifecycle, and answers the engine's question "which modules attach to this new connection".
 *
 * <p>Thread-safe. Listeners are called on the thread that made the change.
 */
public final class ModuleRegistry implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.runtime");

    private final CopyOnWriteArrayList<LoadedModule> modules = new CopyOnWriteArrayList<>();
    private final CopyOnWriteArrayList<Failure> failures = new CopyOnWriteArrayList<>();
    private final CopyOnWriteArrayList<RegistryListener> listeners = new CopyOnWriteArrayList<>();
    private final ScheduledExecutorService timers;
    private final int quarantineAfter;
    private volatile LoadedModule[] attachOrder = new LoadedModule[0];

    /** A registry that quarantines a module after 5 faults. */
    public ModuleRegistry() {
        this(5);
    }

    /** A registry that quarantines a module after {@code quarantineAfter} faults. */
    public ModuleRegistry(int quarantineAfter) {
        if (quarantineAfter < 1) {
            throw new IllegalArgumentException("quarantine-after must be at least 1");
        }
        this.quarantineAfter = quarantineAfter;
        this.timers = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "interlayer-module-timers");
            t.setDaemon(true);
            return t;
        });
    }

    /** Faults after which a module is quarantined. */
    public int quarantineAfter() {
        return quarantineAfter;
    }

    /** Registers a listener. */
    public void addListener(RegistryListener l) {
        listeners.add(l);
    }

    /** Removes a listener. */
    public void removeListener(RegistryListener l) {
        listeners.remove(l);
    }

    /**
     * Adds one module instance: negotiates its interface versions, detects its hooks, checks its
     * parameters, runs init with its class loader; an instance with the same name that is still running
     * is retired (deprecated, unloaded when its last connection ends).
     *
     * @throws ModuleLoadException saying what is wrong; the failure is also kept in {@link #failures()}
     */
    @SuppressWarnings("unchecked")
    public LoadedModule add(Module<?> module, PackageRef pkg, ModuleConfig config) throws ModuleLoadException {
        ModuleDescriptor d;
        try {
            d = withLoader(pkg.loader(), module::descriptor);
        } catch (RuntimeException | Error e) {
            throw fail(pkg, null, "module class " + module.getClass().getName() + " failed in descriptor(): " + e, e);
        }
        if (d == null) {
            throw fail(pkg, null, "module class " + module.getClass().getName() + " returned no descriptor; return ModuleDescriptor.builder(...).build()", null);
        }
        negotiate(pkg, d, module.getClass());
        Hooks.Detected hooks = Hooks.detect(module.getClass(), d.interfaces());
        Map<String, Object> raw = config == null ? Map.of() : config.params();
        Params params;
        try {
            params = ParamValues.resolve(d, raw);
        } catch (IllegalArgumentException e) {
            throw fail(pkg, d.name(), "module " + d + ": " + e.getMessage(), null);
        }
        ModuleSettings settings = (config == null ? ModuleConfig.defaults(d.name()) : config).settings(d);
        RealModuleEnv env = new RealModuleEnv(d, params, timers, pkg.loader());
        try {
            withLoader(pkg.loader(), () -> {
                try {
                    module.init(env);
                } catch (RuntimeException e) {
                    throw e;
                } catch (Exception e) {
                    throw new InitFailed(e);
                }
                return null;
            });
        } catch (InitFailed e) {
            env.cancelTimers();
            throw fail(pkg, d.name(), "module " + d + ": init failed: " + e.getCause(), e.getCause());
        } catch (RuntimeException | Error e) {
            env.cancelTimers();
            throw fail(pkg, d.name(), "module " + d + ": init failed: " + e, e);
        }
        LoadedModule lm = new LoadedModule(this, (Module<Object>) module, d, pkg, hooks, params, env, settings);
        for (String note : hooks.notes()) {
            LOG.log(Level.INFO, "module {0}: {1}", lm.id(), note);
        }
        List<LoadedModule> previous = new ArrayList<>();
        for (LoadedModule m : modules) {
            if (m.name().equals(d.name()) && !m.state().leaving() && !m.isUnloaded()) {
                previous.add(m);
            }
        }
        modules.add(lm);
        failures.removeIf(f -> d.name().equals(f.module()) && f.source().equals(pkg.location()));
        for (LoadedModule old : previous) {
            LOG.log(Level.INFO, "module {0} replaces {1}: {1} is deprecated and unloads after its last connection", lm.id(), old.id());
            old.retire();
        }
        rebuild();
        LOG.log(Level.INFO, "module {0} loaded from {1}: {2}, priority {3}, selector {4}, hooks {5}", lm.id(), pkg.location(),
                settings.state(), settings.priority(), settings.selector(), Hooks.names(hooks.bits()));
        for (RegistryListener l : listeners) {
            l.moduleAdded(lm);
        }
        return lm;
    }

    private static final class InitFailed extends RuntimeException {
        InitFailed(Exception cause) {
            super(cause);
        }
    }

    private void negotiate(PackageRef pkg, ModuleDescriptor d, Class<?> moduleClass) throws ModuleLoadException {
        for (InterfaceVersion v : d.interfaces().values()) {
            InterfaceType t = v.type();
            if (v.major() != t.hostMajor()) {
                throw fail(pkg, d.name(), "module " + d + " was built against " + t.id() + " " + v.major() + "." + v.minor()
                        + " but this agent offers " + t.id() + " " + t.hostMajor() + "." + t.hostMinor()
                        + ": the major version must match; rebuild the module against interlayer-api with " + t.id() + " " + t.hostMajor() + ".x", null);
            }
            if (!t.javaType().isAssignableFrom(moduleClass)) {
                throw fail(pkg, d.name(), "module " + d + " declares interface " + t.id() + " but " + moduleClass.getName()
                        + " does not implement " + t.javaType().getSimpleName(), null);
            }
        }
        for (InterfaceType t : InterfaceType.values()) {
            if (t.javaType().isAssignableFrom(moduleClass) && !d.interfaces().containsKey(t)) {
                throw fail(pkg, d.name(), "module " + d + ": " + moduleClass.getName() + " implements " + t.javaType().getSimpleName()
                        + " but its descriptor does not declare it; add .implement(InterfaceType." + t.name() + ", "
                        + t.hostMajor() + ", " + t.hostMinor() + ")", null);
            }
        }
    }

    private ModuleLoadException fail(PackageRef pkg, String module, String message, Throwable cause) {
        Failure f = new Failure(pkg.location(), module, message, Instant.now());
        failures.add(f);
        while (failures.size() > 256) {
            failures.remove(0);
        }
        LOG.log(Level.ERROR, "{0}", message);
        return new ModuleLoadException(message, cause);
    }

    /** Records a package-level failure (bad jar) for {@link #failures()}. */
    public void recordFailure(String source, String message) {
        failures.add(new Failure(source, null, message, Instant.now()));
        while (failures.size() > 256) {
            failures.remove(0);
        }
    }

    private static <T> T withLoader(ClassLoader loader, java.util.function.Supplier<T> call) {
        Thread t = Thread.currentThread();
        ClassLoader prev = t.getContextClassLoader();
        t.setContextClassLoader(loader);
        try {
            return call.get();
        } finally {
            t.setContextClassLoader(prev);
        }
    }

    /** Every module instance still loaded (any state but gone), in load order. */
    public List<LoadedModule> modules() {
        return List.copyOf(modules);
    }

    /** Loads and failures that did not recover, oldest first. */
    public List<Failure> failures() {
        return List.copyOf(failures);
    }

    /** The current instance named {@code name}: the newest that is not leaving, else the newest at all. */
    public Optional<LoadedModule> find(String name) {
        LoadedModule best = null;
        for (LoadedModule m : modules) {
            if (!m.name().equals(name)) continue;
            if (best == null || !m.state().leaving() && m.state() != ModuleState.DEPRECATED) {
                best = m;
            }
        }
        return Optional.ofNullable(best);
    }

    /**
     * The modules that attach to a new connection: global mode, ACTIVE or INACTIVE, selector matching,
     * in priority order (ties keep load order).
     */
    public List<LoadedModule> candidates(ConnectionInfo info) {
        LoadedModule[] order = attachOrder;
        List<LoadedModule> out = new ArrayList<>(order.length);
        for (LoadedModule m : order) {
            if (m.attachMode() == AttachMode.GLOBAL && m.state().attachesNew() && SelectorMatcher.matches(m.selector(), info)) {
                out.add(m);
            }
        }
        return out;
    }

    void changed(LoadedModule m) {
        rebuild();
    }

    void stateChanged(LoadedModule m, ModuleState from, ModuleState to) {
        rebuild();
        LOG.log(Level.INFO, "module {0}: {1} -> {2}", m.id(), from, to);
        for (RegistryListener l : listeners) {
            l.stateChanged(m, from, to);
        }
    }

    void removed(LoadedModule m) {
        modules.remove(m);
        rebuild();
        LOG.log(Level.INFO, "module {0} unloaded", m.id());
        for (RegistryListener l : listeners) {
            l.moduleRemoved(m);
        }
    }

    private synchronized void rebuild() {
        attachOrder = modules.stream()
                .filter(m -> m.state().attachesNew())
                .sorted(Comparator.comparingInt(LoadedModule::priority))
                .toArray(LoadedModule[]::new);
    }

    /** Unregisters every module (detaching them) and stops module timers. */
    @Override
    public void close() {
        for (LoadedModule m : modules) {
            if (m.state() != ModuleState.FAILED) {
                m.unregister();
            }
        }
        timers.shutdownNow();
    }
}
