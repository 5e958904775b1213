package dev.interlayer.runtime;

import dev.interlayer.api.Cancellable;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.InterfaceVersion;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.ModuleEnv;
import dev.interlayer.api.ModuleLog;
import dev.interlayer.api.Params;
import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/** The {@link ModuleEnv} the runtime hands a module at init: parameters, logger, module-wide timers. */
final class RealModuleEnv implements ModuleEnv {

    private final ModuleDescriptor descriptor;
    private final Params params;
    private final ScheduledExecutorService timers;
    private final java.util.function.LongSupplier clock;
    private final ClassLoader loader;
    private final ModuleLog log;
    private final Set<ScheduledFuture<?>> pending = ConcurrentHashMap.newKeySet();
    private volatile boolean cancelled;
    private final ModuleRegistry registry;
    /** The module this env is for, once loaded: a module-wide timer that throws counts a fault against it. */
    private LoadedModule owner; // guarded by this
    private Object earlyFault; // guarded by this

    /** Module-wide timers a module may have pending: a module that forgets to cancel its timers meets it. */
    static final int TIMER_LIMIT = 4096;

    RealModuleEnv(ModuleDescriptor descriptor, Params params, ScheduledExecutorService timers, ModuleHost host, ClassLoader loader,
                  ModuleRegistry registry) {
        this.registry = registry;
        this.descriptor = descriptor;
        this.params = params;
        this.timers = timers;
        this.clock = host.clock();
        this.loader = loader;
        this.log = host.logs().apply(descriptor.name() + "@" + descriptor.version());
    }

    @Override
    public String name() {
        return descriptor.name();
    }

    @Override
    public String version() {
        return descriptor.version();
    }

    @Override
    public Params params() {
        return params;
    }

    @Override
    public ModuleLog log() {
        return log;
    }

    @Override
    public void publish(String kind, String text) {
        if (!cancelled && registry != null) {
            registry.published(descriptor.name(), descriptor.version(), kind, text);
        }
    }

    @Override
    public InterfaceVersion hostVersion(InterfaceType type) {
        return new InterfaceVersion(type, type.hostMajor(), type.hostMinor());
    }

    @Override
    public Cancellable schedule(Duration delay, Runnable task) {
        if (cancelled) {
            return () -> false;
        }
        if (pending.size() >= TIMER_LIMIT) {
            throw new IllegalStateException("module " + descriptor.name() + "@" + descriptor.version() + " has " + TIMER_LIMIT
                    + " module-wide timers pending, the most a module may have: cancel the timers it no longer needs"
                    + " (Cancellable.cancel), or keep one timer and a queue of what is due");
        }
        ScheduledFuture<?>[] self = new ScheduledFuture<?>[1];
        Runnable wrapped = () -> {
            Thread t = Thread.currentThread();
            ClassLoader prev = t.getContextClassLoader();
            t.setContextClassLoader(loader);
            ModuleCallWatch.Call watched = registry == null ? null : registry.calls().enter(descriptor.name() + "@" + descriptor.version(), "timer");
            Object fault = null;
            try {
                task.run();
            } catch (RuntimeException | Error e) {
                fault = e;
            } finally {
                String stopped = watched == null ? null : watched.exit();
                if (fault == null) fault = stopped;
                if (fault != null) {
                    fault(fault);
                }
                t.setContextClassLoader(prev);
                if (self[0] != null) {
                    pending.remove(self[0]);
                }
            }
        };
        ScheduledFuture<?> f = timers.schedule(wrapped, Math.max(0, delay.toNanos()), TimeUnit.NANOSECONDS);
        self[0] = f;
        pending.add(f);
        if (f.isDone()) {
            pending.remove(f);
        }
        return () -> {
            pending.remove(f);
            return f.cancel(false);
        };
    }

    @Override
    public long nanoTime() {
        return clock.getAsLong();
    }

    /** Binds this env to the module it was made for (once, when the module is loaded). */
    void owner(LoadedModule m) {
        Object early;
        synchronized (this) {
            this.owner = m;
            early = earlyFault;
            earlyFault = null;
        }
        if (early != null) {
            m.recordFault("timer", -1, early);
        }
    }

    /** Counts a module-wide timer's fault against the module; one that failed while init still ran counts once it is loaded. */
    private void fault(Object fault) {
        LoadedModule m;
        synchronized (this) {
            m = owner;
            if (m == null && earlyFault == null) {
                earlyFault = fault;
            }
        }
        if (m != null) {
            m.recordFault("timer", -1, fault);
        } else {
            log.error(1, "module-wide timer failed during init: %s", fault);
        }
    }

    /** Cancels every pending timer; later schedules do nothing. */
    void cancelTimers() {
        cancelled = true;
        for (ScheduledFuture<?> f : pending) {
            f.cancel(false);
        }
        pending.clear();
    }

    /** The module logger: krb5 com_err style (code 0 = info, else error with the code). */
    static final class RealModuleLog implements ModuleLog {
        private final System.Logger logger;
        private final String id;

        RealModuleLog(String id) {
            this.id = id;
            this.logger = System.getLogger("interlayer.module." + id.substring(0, id.indexOf('@')));
        }

        @Override
        public void info(String format, Object... args) {
            if (logger.isLoggable(Level.INFO)) {
                logger.log(Level.INFO, "[" + id + "] " + safeFormat(format, args));
            }
        }

        @Override
        public void error(int code, String format, Object... args) {
            if (code == 0) {
                info(format, args);
            } else if (logger.isLoggable(Level.ERROR)) {
                logger.log(Level.ERROR, "[" + id + "] error " + code + ": " + safeFormat(format, args));
            }
        }

        @Override
        public void debug(String format, Object... args) {
            if (logger.isLoggable(Level.DEBUG)) {
                logger.log(Level.DEBUG, "[" + id + "] " + safeFormat(format, args));
            }
        }

        private static String safeFormat(String format, Object... args) {
            try {
                return args == null || args.length == 0 ? format : String.format(format, args);
            } catch (RuntimeException e) {
                return format + " (bad log format: " + e.getMessage() + ")";
            }
        }
    }
}
