package dev.interlayer.runtime;

import dev.interlayer.api.AttachMode;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.Module;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.Params;
import dev.interlayer.api.Protocol;
import dev.interlayer.api.Selector;
import java.lang.System.Logger.Level;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * One module instance known to the registry: its code, descriptor, detected hooks, live settings
 * (state, priority, selector, mode, fault policy) and the connections it is attached to.
 *
 * <p>Threading: settings are volatile and may change from any thread; the engine reads them when it
 * builds a chain and, for the state, per chunk. Unload follows one coded order: state leaves, every
 * attachment is asked to detach, the last detach (and the last module-wide call) triggers {@code fini}
 * exactly once, then the package is released.
 */
public final class LoadedModule {

    private static final System.Logger LOG = System.getLogger("interlayer.runtime");

    private final Module<Object> module;
    private final ModuleDescriptor descriptor;
    private final PackageRef pkg;
    private final int hooks;
    private final List<String> hookNotes;
    private final Params params;
    private final RealModuleEnv env;
    private final ModuleRegistry registry;
    private final Instant loadedAt = Instant.now();

    private volatile ModuleState state;
    private volatile int priority;
    private volatile Selector selector;
    private volatile AttachMode attachMode;
    private final FaultPolicy faultPolicy;
    private final boolean applyNow;
    private volatile boolean unloadWhenIdle;
    private volatile String lastFault;

    private final Set<AttachmentSite> sites = ConcurrentHashMap.newKeySet();
    private final AtomicInteger moduleWideCalls = new AtomicInteger();
    private final AtomicInteger faultCount = new AtomicInteger();
    /** Set by the one thread that unloads (the guard); {@link #unloaded} is set when it is done. */
    private final AtomicBoolean finished = new AtomicBoolean();
    private volatile boolean unloaded;
    private final ModuleStats stats = new ModuleStats();
    private final ModuleVerifier.Summary verification;

    LoadedModule(ModuleRegistry registry, Module<Object> module, ModuleDescriptor descriptor, PackageRef pkg, Hooks.Detected hooks,
                 Params params, RealModuleEnv env, ModuleSettings settings, ModuleVerifier.Summary verification) {
        this.verification = verification;
        this.registry = registry;
        this.module = module;
        this.descriptor = descriptor;
        this.pkg = pkg;
        this.hooks = hooks.bits();
        this.hookNotes = hooks.notes();
        this.params = params;
        this.env = env;
        env.owner(this);
        this.state = settings.state();
        this.priority = settings.priority();
        this.selector = settings.selector();
        this.attachMode = settings.attachMode();
        this.faultPolicy = settings.faultPolicy();
        this.applyNow = settings.applyNow();
    }

    /** What the verifier found in the module's jar; empty for a module added in process rather than from a jar (not verified). */
    public java.util.Optional<ModuleVerifier.Summary> verification() {
        return java.util.Optional.ofNullable(verification);
    }

    /** The module's code. */
    public Module<Object> module() {
        return module;
    }

    /** The module's descriptor. */
    public ModuleDescriptor descriptor() {
        return descriptor;
    }

    /** The module's name. */
    public String name() {
        return descriptor.name();
    }

    /** The module's version. */
    public String version() {
        return descriptor.version();
    }

    /** {@code name@version}, unique in a registry. */
    public String id() {
        return descriptor.name() + "@" + descriptor.version();
    }

    /** Where it was loaded from. */
    public PackageRef pkg() {
        return pkg;
    }

    /** The module's class loader (context loader for every call into it). */
    public ClassLoader loader() {
        return pkg.loader();
    }

    /** Bit set of the hooks it implements, see {@link Hooks}. */
    public int hooks() {
        return hooks;
    }

    /** True if it implements {@code hook} (a {@link Hooks} bit). */
    public boolean has(int hook) {
        return (hooks & hook) != 0;
    }

    /**
     * True if the module takes part in connections of {@code protocol}: a module declaring {@code stream} but not
     * {@code datagram} never attaches to UDP flows, one declaring {@code datagram} but not {@code stream} never to
     * TCP connections; a {@code socket}-only module attaches to both. A module that declares only {@code tls} attaches
     * to none: its steps run in the handshakes of the listeners that name it.
     */
    public boolean serves(Protocol protocol) {
        if (descriptor.interfaces().size() == 1 && descriptor.interfaces().containsKey(InterfaceType.TLS)) return false;
        boolean stream = descriptor.interfaces().containsKey(InterfaceType.STREAM);
        boolean datagram = descriptor.interfaces().containsKey(InterfaceType.DATAGRAM);
        return protocol == Protocol.UDP ? datagram || !stream : stream || !datagram;
    }

    /** Notes from hook detection (hooks left out and why). */
    public List<String> hookNotes() {
        return hookNotes;
    }

    /** The checked parameters it was initialized with. */
    public Params params() {
        return params;
    }

    /** When it was loaded. */
    public Instant loadedAt() {
        return loadedAt;
    }

    /** Current state. */
    public ModuleState state() {
        return state;
    }

    /** Chain position: lower runs first on SEND. */
    public int priority() {
        return priority;
    }

    /** Which connections it attaches to. */
    public Selector selector() {
        return selector;
    }

    /** Global or programmatic. */
    public AttachMode attachMode() {
        return attachMode;
    }

    /** What a fault does to the connection. */
    public FaultPolicy faultPolicy() {
        return faultPolicy;
    }

    /** Whether it attaches to already-open connections when loaded. */
    public boolean applyNow() {
        return applyNow;
    }

    /** The last fault's description, or null. */
    public String lastFault() {
        return lastFault;
    }

    /** Faults counted so far. */
    public int faults() {
        return faultCount.get();
    }

    /** Number of connections it is attached to now. */
    public int liveAttachments() {
        return sites.size();
    }

    /** The live attachments (a snapshot). */
    public List<AttachmentSite> sites() {
        return List.copyOf(sites);
    }

    /** Changes the priority; new connections use it (open chains keep their order, so stacked transforms stay paired). */
    public void setPriority(int priority) {
        this.priority = priority;
        registry.changed(this);
    }

    /** Changes the selector for new connections. */
    public void setSelector(Selector selector) {
        this.selector = selector == null ? Selector.ANY : selector;
    }

    /** Changes the attach mode for new connections. */
    public void setAttachMode(AttachMode mode) {
        this.attachMode = mode;
    }

    // ---- lifecycle -------------------------------------------------------------------------------

    /**
     * Moves between ACTIVE, INACTIVE and DEPRECATED; leaving states go through {@link #unregister()} and
     * {@link #revoke()}.
     *
     * @throws IllegalStateException if the module is leaving or failed
     */
    public synchronized void setState(ModuleState next) {
        ModuleState from = state;
        if (from.leaving() || from == ModuleState.FAILED) {
            throw new IllegalStateException("module " + id() + " is " + from + "; its state can no longer change");
        }
        switch (next) {
            case ACTIVE, INACTIVE, DEPRECATED -> {
                if (from == next) {
                    return;
                }
                state = next;
                if (next != ModuleState.INACTIVE) {
                    faultCount.set(0); // re-activating clears the quarantine count
                }
                registry.stateChanged(this, from, next);
            }
            case UNREGISTERING -> unregister();
            case REVOKED -> revoke();
            case FAILED -> throw new IllegalArgumentException("FAILED is set by the runtime only");
        }
    }

    /**
     * Deprecates the module and unloads it once its last connection has ended (a replaced or removed jar).
     */
    public void retire() {
        synchronized (this) {
            if (state.leaving()) {
                return;
            }
            unloadWhenIdle = true;
            if (state != ModuleState.DEPRECATED) {
                ModuleState from = state;
                state = ModuleState.DEPRECATED;
                registry.stateChanged(this, from, ModuleState.DEPRECATED);
            }
        }
        maybeFinish();
    }

    /** Stops attaching, detaches from every connection, then runs fini and unloads. Idempotent. */
    public void unregister() {
        leave(ModuleState.UNREGISTERING, DetachReason.UNREGISTERED);
    }

    /** Detaches everywhere at once, then unloads. Idempotent. */
    public void revoke() {
        leave(ModuleState.REVOKED, DetachReason.REVOKED);
    }

    private void leave(ModuleState target, DetachReason reason) {
        ModuleState from;
        synchronized (this) {
            from = state;
            if (from == target || from == ModuleState.REVOKED || from == ModuleState.FAILED) {
                return;
            }
            state = target;
        }
        registry.stateChanged(this, from, target);
        for (AttachmentSite site : sites) {
            site.requestDetach(reason);
        }
        maybeFinish();
    }

    /**
     * Reserves an attachment on a connection (new, or open for apply-now and programmatic attach); false
     * if the module no longer attaches (the caller must then not call attach).
     */
    public boolean registerSite(AttachmentSite site) {
        sites.add(site);
        if (!state.attachesNew()) {
            sites.remove(site);
            maybeFinish();
            return false;
        }
        return true;
    }

    /** Counts a successful attach. */
    public void attached() {
        stats.attaches.increment();
    }

    /** The module declined: forgets the reserved site without a detach. */
    public void declined(AttachmentSite site) {
        stats.declines.increment();
        sites.remove(site);
        maybeFinish();
    }

    /** Reports that the engine has run detach for {@code site} (exactly once per successful attach). */
    public void siteDetached(AttachmentSite site) {
        if (sites.remove(site)) {
            stats.detaches.increment();
        }
        maybeFinish();
    }

    /** The totals of finished attachments; the engine adds each attachment's counters when it ends. */
    public ModuleStats totals() {
        return stats;
    }

    /** Current counters: finished attachments plus live ones. */
    public ModuleStats.Snapshot stats() {
        ModuleStats.Snapshot.Builder b = stats.totals();
        for (AttachmentSite s : sites) {
            s.addLiveCounters(b);
        }
        return b.build();
    }

    /**
     * Runs a module-wide call (control, onListen) with the module's context loader, counted so that
     * fini waits for it.
     *
     * @throws ModuleCallException naming the module and hook if the module threw
     * @throws IllegalStateException if the module is already unloaded
     */
    public <T> T callModuleWide(String hook, Supplier<T> call) {
        moduleWideCalls.incrementAndGet();
        try {
            if (finished.get()) {
                throw new IllegalStateException("module " + id() + " is unloaded");
            }
            Thread t = Thread.currentThread();
            ClassLoader prev = t.getContextClassLoader();
            t.setContextClassLoader(pkg.loader());
            ModuleCallWatch.Call watched = registry.calls().enter(id(), hook);
            T result;
            try {
                result = call.get();
            } catch (RuntimeException | Error e) {
                watched.exit();
                recordFault(hook, -1, e);
                throw new ModuleCallException("module " + id() + " failed in " + hook + ": " + e, e);
            } finally {
                t.setContextClassLoader(prev);
            }
            String stopped = watched.exit();
            if (stopped != null) { // it returned after it was interrupted: its answer came too late to count
                recordFault(hook, -1, stopped);
                throw new ModuleCallException("module " + id() + " failed in " + hook + ": it " + stopped, null);
            }
            return result;
        } finally {
            moduleWideCalls.decrementAndGet();
            maybeFinish();
        }
    }

    /**
     * Counts a call the engine makes outside any attachment and outside {@link #callModuleWide} (a {@code tls} step during
     * a handshake, on the connection's event loop under the engine's watchdog), so that fini waits for it; pair it with
     * {@link #exitCall()} in a {@code finally}.
     *
     * @return false if the module is already unloaded: do not call it (and do not call exitCall)
     */
    public boolean enterCall() {
        moduleWideCalls.incrementAndGet();
        if (finished.get()) {
            moduleWideCalls.decrementAndGet();
            return false;
        }
        return true;
    }

    /** Ends a call {@link #enterCall()} counted. */
    public void exitCall() {
        moduleWideCalls.decrementAndGet();
        maybeFinish();
    }

    /**
     * Counts a fault against the module (logged with its name), quarantining it (INACTIVE) when the
     * registry's limit is reached.
     *
     * @param hook where it happened
     * @param connectionId the connection, or -1 for module-wide calls
     * @param cause the exception or a description
     * @return the policy to apply to the connection
     */
    public FaultPolicy recordFault(String hook, long connectionId, Object cause) {
        stats.faults.increment();
        int n = faultCount.incrementAndGet();
        String where = connectionId >= 0 ? " on connection " + connectionId : "";
        String what = cause instanceof Throwable th ? th.toString() : String.valueOf(cause);
        lastFault = hook + where + ": " + what;
        LOG.log(Level.WARNING, "module {0} faulted in {1}{2}: {3} (fault {4} of {5}, policy {6})", id(), hook, where, what, n,
                registry.quarantineAfter(), faultPolicy);
        registry.faulted(this, hook, connectionId, cause);
        if (n >= registry.quarantineAfter()) {
            boolean quarantined = false;
            synchronized (this) {
                if (state == ModuleState.ACTIVE) {
                    state = ModuleState.INACTIVE;
                    quarantined = true;
                }
            }
            if (quarantined) {
                LOG.log(Level.ERROR, "module {0} quarantined after {1} faults: INACTIVE (traffic passes untouched); last: {2}."
                        + " Fix the module and set it active again.", id(), n, lastFault);
                registry.stateChanged(this, ModuleState.ACTIVE, ModuleState.INACTIVE);
            }
        }
        return faultPolicy;
    }

    private void maybeFinish() {
        ModuleState s = state;
        boolean leaving = s.leaving() || (s == ModuleState.DEPRECATED && unloadWhenIdle);
        if (!leaving || !sites.isEmpty() || moduleWideCalls.get() != 0) {
            return;
        }
        if (!finished.compareAndSet(false, true)) {
            return;
        }
        env.cancelTimers();
        Thread t = Thread.currentThread();
        ClassLoader prev = t.getContextClassLoader();
        t.setContextClassLoader(pkg.loader());
        ModuleCallWatch.Call watched = registry.calls().enter(id(), "fini");
        try {
            module.fini();
        } catch (RuntimeException | Error e) {
            LOG.log(Level.WARNING, "module {0}: fini failed: {1}", id(), e.toString());
        } finally {
            t.setContextClassLoader(prev);
            String stopped = watched.exit();
            if (stopped != null) {
                LOG.log(Level.WARNING, "module {0}: fini {1}; the module is unloaded all the same", id(), stopped);
            }
        }
        pkg.release();
        registry.removed(this);
        unloaded = true;
    }

    /** True once fini ran, the package was released and the registry forgot the module. */
    public boolean isUnloaded() {
        return unloaded;
    }

    @Override
    public String toString() {
        return id() + " [" + state + ", prio " + priority + "]";
    }
}
