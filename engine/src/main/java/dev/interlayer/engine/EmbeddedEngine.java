package dev.interlayer.engine;

import dev.interlayer.api.ConnectionInfo;
import dev.interlayer.api.ListenerInfo;
import dev.interlayer.api.Module;
import dev.interlayer.api.ModuleLog;
import dev.interlayer.api.Protocol;
import dev.interlayer.api.SocketDecision;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleConfig;
import dev.interlayer.runtime.ModuleHost;
import dev.interlayer.runtime.ModuleLoadException;
import dev.interlayer.runtime.ModuleRegistry;
import dev.interlayer.runtime.PackageRef;
import dev.interlayer.runtime.RegistryListener;
import io.netty.util.concurrent.MockTicker;
import io.netty.util.concurrent.Ticker;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * The agent's engine without sockets and without threads of its own: modules loaded into a real {@link ModuleRegistry},
 * connections ({@link EmbeddedConnection}) and UDP flows ({@link EmbeddedFlow}) that run the engine's own
 * {@link ProxyConnection} and {@link DatagramFlow} between Netty embedded channels, on one loop driven by the thread that
 * built it, with virtual time. The testkit's {@code ModuleHarness} is built on it, so a module's tests run the very
 * chain code the agent runs.
 *
 * <pre>{@code
 * try (EmbeddedEngine e = EmbeddedEngine.builder().module(new TagModule(), ModuleConfig.defaults("tag")).build()) {
 *     EmbeddedConnection c = e.connect(info);
 *     c.read(Direction.SEND, "hello".getBytes());
 *     e.runUntilIdle();
 *     byte[] out = c.delivered(Direction.SEND);
 * }
 * }</pre>
 *
 * <p>Time: the modules' clock ({@code ModuleEnv.nanoTime()}), the connections' timers and module-wide timers all read one
 * {@link MockTicker}, which moves only in {@link #advance}; each timer then runs at its due time, in due order, with
 * everything it causes run before the next one.
 *
 * <p>Threading: drive it from its loop thread (the one that made the builder, unless {@link Builder#loopThread} says otherwise). Modules may call the SDK's "any thread" methods from threads of
 * their own; what those cause runs on the next {@link #runUntilIdle()}.
 */
public final class EmbeddedEngine implements AutoCloseable {

    /** How many rounds of queued tasks {@link #runUntilIdle} runs before it calls the loop a livelock. */
    private static final int MAX_ROUNDS = 100_000;

    private final MockTicker ticker = Ticker.newMockTicker();
    private final EmbeddedLoop loop;
    private final String loopThreadName;
    private final ModuleRegistry registry;
    private final Engine engine;
    private final EngineOptions options;
    /** The connections' hold limit; unlike agent.hold-limit it may be tiny, so a test reaches it with a few bytes. */
    private final long holdLimit;
    private final boolean discardOutput;
    private final Watchdog.Slot slot;
    private final List<EmbeddedConnection> connections = new ArrayList<>();
    private final List<EmbeddedFlow> flows = new ArrayList<>();
    private long ids;
    private boolean closed;

    private EmbeddedEngine(Builder b) {
        this.loop = new EmbeddedLoop(b.loopThread, ticker);
        this.loopThreadName = b.loopThread.getName();
        this.registry = new ModuleRegistry(b.quarantineAfter, null, new ModuleHost(loop, ticker::nanoTime, b.logs));
        for (RegistryListener l : b.listeners) {
            registry.addListener(l);
        }
        this.options = EngineOptions.defaults().withIoThreads(1).withSplice(false);
        this.holdLimit = b.holdLimit;
        this.discardOutput = b.discardOutput;
        this.engine = new Engine(registry, options);
        engine.trace = b.trace;
        engine.pauseAt = b.pauseAt;
        this.slot = new Watchdog.Slot(b.loopThread);
    }

    /** A builder: modules with their configs, limits, and who watches. */
    public static Builder builder() {
        return new Builder();
    }

    /** Builds an {@link EmbeddedEngine}. */
    public static final class Builder {
        private final List<Module<?>> modules = new ArrayList<>();
        private final List<ModuleConfig> configs = new ArrayList<>();
        private final List<ClassLoader> loaders = new ArrayList<>();
        private boolean discardOutput;
        private final List<RegistryListener> listeners = new ArrayList<>();
        private long holdLimit = EngineOptions.defaults().holdLimit();
        private long pauseAt;
        private int quarantineAfter = 5;
        private ChainTrace trace;
        private Function<String, ModuleLog> logs = ModuleHost.real().logs();
        private Thread loopThread = Thread.currentThread();

        private Builder() {}

        /** The thread that drives the engine (its loop thread); by default the one that makes the builder. */
        public Builder loopThread(Thread thread) {
            this.loopThread = thread;
            return this;
        }

        /** Adds a module with its config (parameters, priority, fault policy; null for the descriptor's defaults). */
        public Builder module(Module<?> module, ModuleConfig config) {
            return module(module, config, module.getClass().getClassLoader());
        }

        /**
         * Adds a module whose class loader is {@code loader}: the engine makes it the thread's context class loader during
         * each call into the module, as for a module loaded from a jar.
         */
        public Builder module(Module<?> module, ModuleConfig config, ClassLoader loader) {
            modules.add(module);
            configs.add(config);
            loaders.add(loader);
            return this;
        }

        /**
         * Counts what the connections send instead of keeping it ({@link EmbeddedConnection#deliveredBytes}): for
         * benchmarks, where copying every byte out would be most of what is measured.
         */
        public Builder discardOutput() {
            this.discardOutput = true;
            return this;
        }

        /** The per-connection hold limit in bytes (the agent's {@code agent.hold-limit}). */
        public Builder holdLimit(long bytes) {
            this.holdLimit = bytes;
            return this;
        }

        /** Held bytes at which a connection stops reading its sources; 0 (the default) for the agent's rule. */
        public Builder pauseAt(long bytes) {
            this.pauseAt = bytes;
            return this;
        }

        /** Faults after which a module is quarantined (the agent's {@code agent.quarantine-after}). */
        public Builder quarantineAfter(int faults) {
            this.quarantineAfter = faults;
            return this;
        }

        /** Sees every step of every chain. */
        public Builder trace(ChainTrace trace) {
            this.trace = trace;
            return this;
        }

        /** Told of modules' faults, state changes and published events. */
        public Builder listener(RegistryListener listener) {
            listeners.add(listener);
            return this;
        }

        /** Where each module's log lines go, by module id; default the agent's loggers. */
        public Builder logs(Function<String, ModuleLog> logs) {
            this.logs = logs;
            return this;
        }

        /**
         * Loads every module, in the order given (ties in priority keep it), running each one's {@code init}.
         *
         * @throws ModuleLoadException saying what is wrong with a module, as the agent would at load; nothing stays open
         */
        public EmbeddedEngine build() throws ModuleLoadException {
            EmbeddedEngine e = new EmbeddedEngine(this);
            try {
                for (int i = 0; i < modules.size(); i++) {
                    Module<?> m = modules.get(i);
                    e.registry.add(m, PackageRef.builtin(m.getClass().getSimpleName(), loaders.get(i)), configs.get(i));
                }
                if (e.loop.inEventLoop()) {
                    e.runUntilIdle(); // else what init queued runs on the loop thread's first step
                }
            } catch (ModuleLoadException | RuntimeException | Error ex) {
                e.close();
                throw ex;
            }
            return e;
        }
    }

    /** The registry the modules are loaded in. */
    public ModuleRegistry registry() {
        return registry;
    }

    /** The modules that would attach to a connection like {@code info}, in chain order: every loaded module that serves its protocol. */
    public List<LoadedModule> chainFor(ConnectionInfo info) {
        List<LoadedModule> out = new ArrayList<>();
        for (LoadedModule m : registry.attachOrder()) {
            if (m.serves(info.protocol())) out.add(m);
        }
        return out;
    }

    /**
     * Opens a TCP connection described by {@code info} (listener, role, addresses, application, start, id) and attaches
     * {@code modules} to it, as the agent does once the upstream is connected.
     */
    public EmbeddedConnection connect(ConnectionInfo info, List<LoadedModule> modules) {
        requireOpen();
        if (info.protocol() != Protocol.TCP) {
            throw new IllegalArgumentException("connect() opens TCP connections; use flow() for " + info.protocol());
        }
        EmbeddedConnection c = new EmbeddedConnection(this, info, modules);
        connections.add(c);
        return c;
    }

    /** Opens a UDP flow described by {@code info} and attaches {@code modules} to it. */
    public EmbeddedFlow flow(ConnectionInfo info, List<LoadedModule> modules) {
        requireOpen();
        if (info.protocol() != Protocol.UDP) {
            throw new IllegalArgumentException("flow() opens UDP flows; use connect() for " + info.protocol());
        }
        EmbeddedFlow f = new EmbeddedFlow(this, info, modules);
        flows.add(f);
        return f;
    }

    /** What the modules' {@code onListen} decide for a listener: the first DENY, else ALLOW, as when the agent starts one. */
    public SocketDecision listen(ListenerInfo listener) {
        requireOpen();
        Engine.Denial d = engine.listenDecision(listener);
        runUntilIdle();
        return d == null ? SocketDecision.allow() : d.decision();
    }

    /**
     * Runs what is queued on the loop, the timers due now and what the channels can deliver, until nothing is left.
     *
     * @throws IllegalStateException if the loop never runs dry (a task that keeps queuing itself)
     */
    public void runUntilIdle() {
        if (!loop.inEventLoop()) {
            throw new IllegalStateException("drive the embedded engine from its loop thread (" + loopThreadName + "), not from "
                    + Thread.currentThread().getName());
        }
        for (int round = 0; round < MAX_ROUNDS; round++) {
            boolean busy = loop.runTasks();
            for (EmbeddedConnection c : List.copyOf(connections)) {
                busy |= c.pump();
            }
            for (EmbeddedFlow f : List.copyOf(flows)) {
                busy |= f.pump();
            }
            if (!busy && !loop.hasTasks()) {
                sweep();
                return;
            }
        }
        throw new IllegalStateException("the event loop still had work after " + MAX_ROUNDS + " rounds");
    }

    /** Lets go of connections and flows that have closed: their channels are released, what they delivered stays readable. */
    private void sweep() {
        connections.removeIf(c -> {
            if (c.isOpen()) return false;
            c.releaseAll();
            return true;
        });
        flows.removeIf(f -> {
            if (f.isOpen()) return false;
            f.releaseAll();
            return true;
        });
    }

    /**
     * Moves the clock forward by {@code by}: each timer that falls due runs at its due time, in due order, and everything
     * it causes runs before the next one.
     */
    public void advance(Duration by) {
        long left = by.toNanos();
        runUntilIdle();
        while (true) {
            long next = loop.nextTimer();
            if (next < 0 || next > left) {
                ticker.advance(left, TimeUnit.NANOSECONDS);
                runUntilIdle();
                return;
            }
            ticker.advance(next, TimeUnit.NANOSECONDS);
            left -= next;
            runUntilIdle();
        }
    }

    /** The virtual clock, as the modules read it. */
    public long nanoTime() {
        return ticker.nanoTime();
    }

    /** Closes every connection and flow, unloads the modules (their {@code fini}) and stops the engine. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        try {
            for (EmbeddedConnection c : connections) c.closeQuietly();
            for (EmbeddedFlow f : flows) f.closeQuietly();
            runUntilIdle();
            registry.close();
            runUntilIdle();
        } finally {
            for (EmbeddedConnection c : connections) c.releaseAll();
            for (EmbeddedFlow f : flows) f.releaseAll();
            loop.cancelTimers();
            engine.close();
        }
    }

    // ---- for the connections and flows --------------------------------------------------------------

    EmbeddedLoop loop() {
        return loop;
    }

    MockTicker ticker() {
        return ticker;
    }

    Engine engine() {
        return engine;
    }

    long holdLimit() {
        return holdLimit;
    }

    boolean discardOutput() {
        return discardOutput;
    }

    Watchdog.Slot slot() {
        return slot;
    }

    long nextId(ConnectionInfo info) {
        return info.id() > 0 ? info.id() : ++ids;
    }

    private void requireOpen() {
        if (closed) throw new IllegalStateException("the embedded engine is closed");
    }
}
