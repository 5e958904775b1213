package dev.interlayer.testkit;

import dev.interlayer.api.Capability;
import dev.interlayer.api.ConnectionInfo;
import dev.interlayer.api.ControlRequest;
import dev.interlayer.api.ControlResponse;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ListenerInfo;
import dev.interlayer.api.Module;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.SocketDecision;
import dev.interlayer.api.SocketModule;
import dev.interlayer.api.Verdict;
import dev.interlayer.engine.ChainTrace;
import dev.interlayer.engine.EmbeddedEngine;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleCallException;
import dev.interlayer.runtime.ModuleConfig;
import dev.interlayer.runtime.ModuleLoadException;
import dev.interlayer.runtime.ModuleVerifier;
import dev.interlayer.runtime.RegistryListener;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Runs a module, or a short chain of modules, against scripted traffic and events without sockets, through the agent's
 * own engine: the module author's test bench.
 *
 * <p>What runs is the agent's code, not a model of it: the modules are loaded into the agent's module registry (its
 * descriptor negotiation, parameter checks and {@code init}) and each connection is the engine's own connection
 * between embedded channels ({@code dev.interlayer.engine.EmbeddedEngine}), so verdicts, NEED_MORE, HOLD and inject,
 * ordering, back-pressure, the end of stream, detach, faults and fault policies, quarantine, timers, socket decisions and
 * datagram flows behave exactly as in the agent. The harness adds what a test needs: virtual time, the bytes that came
 * out, every hook call with its verdict, and a {@link ContractViolation} for every breach of the SDK's contract.
 *
 * <p>Lifecycle: {@link #of} checks each descriptor as the agent does at load (a problem throws
 * {@link ContractViolation} with rule {@code DESCRIPTOR}); {@link #param}, {@link #priority} and the limits are
 * set next; the first {@link #attach} (or {@link #start}) loads the modules (parameters checked, {@code init} run);
 * each attach opens a {@link HarnessConnection}; {@link #close} closes the connections, unloads the modules
 * ({@code fini}) and checks that every successful attach got exactly one detach.
 *
 * <p>The chain is ordered by priority (lower first on SEND; ties keep the order given to {@code of}), SEND
 * passes it in order and RECV in reverse, as in the agent; every module that serves the connection's protocol attaches,
 * whatever its selector and attach mode (test those against a running agent). Time is virtual:
 * {@link dev.interlayer.api.ModuleEnv#nanoTime()} reads the harness clock and timers ({@code Attachment.schedule},
 * {@code ModuleEnv.schedule}) fire only when {@link #advance} moves the clock past them, each at its due time, in due
 * order.
 *
 * <p>Datagram modules run on UDP flows: attach a {@link FakeConnection} with protocol {@code UDP}; each send or
 * recv is then one datagram (see {@link HarnessConnection}).
 *
 * <pre>{@code
 * try (ModuleHarness h = ModuleHarness.of(new TagModule()).param("every", "4").param("tag", "#")) {
 *     HarnessConnection conn = h.attach(new FakeConnection().listener("web"));
 *     conn.send("abcdefgh");
 *     assertEquals("abcd#efgh#", conn.sentText());
 *     conn.recv("wxyz#");
 *     assertEquals("wxyz", conn.receivedText());
 * }
 * }</pre>
 *
 * <p>Failing the test: a breach of the contract is reported by the engine, which then does what the agent does (the
 * module gets an {@link IllegalStateException}, or the call counts as a fault); the harness throws it as a
 * {@link ContractViolation} when the operation returns, even if the module caught the exception. A module that throws
 * is handled by its fault policy exactly as in the agent, and then the exception fails the test at the end of the
 * operation unless {@link #tolerateFaults()} was called.
 *
 * <p>Threading: drive the harness from the thread that made it. Modules may call the "any thread" SDK methods from
 * their own threads; the harness carries those out on its next operation ({@link HarnessConnection#drain()}).
 */
public final class ModuleHarness implements AutoCloseable {

    /** Default per-connection hold limit: the agent's default, 4 MiB. */
    public static final long DEFAULT_HOLD_LIMIT = 4L << 20;
    /**
     * Default held bytes above which a connection stops reading its sources: 1 MiB, the agent's rule for the default
     * hold limit (a quarter of it, at least 64 KiB).
     */
    public static final long DEFAULT_HIGH_WATER_MARK = 1L << 20;

    /** A module given to {@link #of}, with what the test sets before start. */
    private static final class Entry {
        final Module<?> module;
        final ModuleDescriptor descriptor;
        final Map<String, Object> params = new LinkedHashMap<>();
        Integer priority;
        FaultPolicy policy;
        final Set<Capability> allowed = EnumSet.noneOf(Capability.class);

        Entry(Module<?> module, ModuleDescriptor descriptor) {
            this.module = module;
            this.descriptor = descriptor;
        }

        String name() {
            return descriptor.name();
        }

        ModuleConfig config() {
            return new ModuleConfig(name(), null, priority, null, null, policy, null, params, allowed);
        }
    }

    /**
     * An exception a module threw, with where.
     *
     * @param module the module
     * @param where the hook or {@code timer}
     * @param error what it threw
     */
    public record Fault(String module, String where, Throwable error) {}

    /**
     * An event a module published with {@code ModuleEnv.publish}.
     *
     * @param module the module's name
     * @param kind the event's kind
     * @param text the event's text
     */
    public record Published(String module, String kind, String text) {}

    private final List<Entry> entries = new ArrayList<>();
    private final List<RecordingModuleLog.Line> logLines = new ArrayList<>();
    private final List<ContractViolation> violations = Collections.synchronizedList(new ArrayList<>());
    private final List<ContractViolation> unreported = Collections.synchronizedList(new ArrayList<>());
    private final List<Fault> faults = Collections.synchronizedList(new ArrayList<>());
    private final List<Fault> unreportedFaults = Collections.synchronizedList(new ArrayList<>());
    private final List<Published> published = Collections.synchronizedList(new ArrayList<>());
    /** What a breach reported: the fault the engine then counts for it is not reported a second time. */
    private final Map<String, String> breachDetail = new ConcurrentHashMap<>();
    private final List<HarnessConnection> connections = new ArrayList<>();
    private final Map<Long, HarnessConnection> byId = new ConcurrentHashMap<>();
    private final List<String> notes = new ArrayList<>();
    private final Trace trace = new Trace();
    private final Thread owner = Thread.currentThread();
    /** Depth of harness operations running engine code on the owner thread. */
    private int busy;
    private long holdLimit = DEFAULT_HOLD_LIMIT;
    private long highWaterMark;
    private int quarantineAfter = 5;
    private boolean tolerateFaults;
    private volatile EmbeddedEngine engine;
    private long origin;
    private boolean closed;

    private ModuleHarness() {}

    /**
     * Loads {@code modules} (one, or a chain) and checks their descriptors as the agent does.
     *
     * @throws ContractViolation with rule {@code DESCRIPTOR} naming the module and the problem
     * @throws IllegalArgumentException if two modules have the same name
     */
    public static ModuleHarness of(Module<?>... modules) {
        if (modules.length == 0) {
            throw new IllegalArgumentException("give at least one module");
        }
        ModuleHarness h = new ModuleHarness();
        for (Module<?> m : modules) {
            List<String> problems = DescriptorCheck.problems(m);
            if (!problems.isEmpty()) {
                String name = m.getClass().getName();
                try {
                    name = m.descriptor().name();
                } catch (RuntimeException ignored) {
                    // the class name then
                }
                throw h.violation(name, ContractViolation.Rule.DESCRIPTOR, String.join("; ", problems));
            }
            ModuleDescriptor d = m.descriptor();
            for (Entry e : h.entries) {
                if (e.name().equals(d.name())) {
                    throw new IllegalArgumentException("two modules named '" + d.name() + "': names are unique within an agent");
                }
            }
            h.entries.add(new Entry(m, d));
            h.notes.addAll(DescriptorCheck.notes(m).stream().map(n -> d.name() + ": " + n).toList());
        }
        return h;
    }

    /**
     * Sets a parameter of the only module (as a config would): a string in config notation or a typed value.
     *
     * @throws IllegalStateException if the harness has several modules (use {@link #param(String, String, Object)})
     */
    public ModuleHarness param(String name, Object value) {
        if (entries.size() != 1) {
            throw new IllegalStateException("this harness has " + entries.size() + " modules: use param(module, name, value)");
        }
        return param(entries.get(0).name(), name, value);
    }

    /** Sets parameter {@code name} of {@code module}: a string in config notation ({@code "64KiB"}, {@code "250ms"}) or a typed value. */
    public ModuleHarness param(String module, String name, Object value) {
        requireNotStarted();
        entry(module).params.put(name, value);
        return this;
    }

    /** Overrides {@code module}'s priority, as a config may (lower runs first on SEND). */
    public ModuleHarness priority(String module, int priority) {
        requireNotStarted();
        entry(module).priority = priority;
        return this;
    }

    /**
     * Allows the only module {@code capabilities} its descriptor declares, as {@code allow:} in the module's entry of the
     * agent's config does; without it the harness refuses a module that declares or uses one, as the agent does.
     *
     * @throws IllegalStateException if the harness has several modules (use {@link #allow(String, Capability...)})
     */
    public ModuleHarness allow(Capability... capabilities) {
        if (entries.size() != 1) {
            throw new IllegalStateException("this harness has " + entries.size() + " modules: use allow(module, capabilities...)");
        }
        return allow(entries.get(0).name(), capabilities);
    }

    /** Allows {@code module} {@code capabilities}, as {@code allow:} in its entry of the agent's config does. */
    public ModuleHarness allow(String module, Capability... capabilities) {
        requireNotStarted();
        entry(module).allowed.addAll(List.of(capabilities));
        return this;
    }

    /** Overrides {@code module}'s fault policy, as a config may. */
    public ModuleHarness faultPolicy(String module, FaultPolicy policy) {
        requireNotStarted();
        entry(module).policy = policy;
        return this;
    }

    /** Sets the per-connection hold limit in bytes (default {@value #DEFAULT_HOLD_LIMIT}, the agent's {@code agent.hold-limit}). */
    public ModuleHarness holdLimit(long bytes) {
        requireNotStarted();
        if (bytes < 1) {
            throw new IllegalArgumentException("hold limit must be positive");
        }
        this.holdLimit = bytes;
        return this;
    }

    /**
     * Sets the held bytes (HOLD, and bytes on their way between modules) above which a connection stops reading its
     * sources; by default the agent's rule, a quarter of the hold limit and at least 64 KiB
     * ({@value #DEFAULT_HIGH_WATER_MARK} for the default limit).
     */
    public ModuleHarness highWaterMark(long bytes) {
        requireNotStarted();
        this.highWaterMark = bytes;
        return this;
    }

    /** Sets the faults after which a module is quarantined (INACTIVE: it sees no more traffic), as {@code agent.quarantine-after}; default 5. */
    public ModuleHarness quarantineAfter(int faults) {
        requireNotStarted();
        this.quarantineAfter = faults;
        return this;
    }

    /** Lets module exceptions be handled by the fault policy without failing the test; see {@link #faults()}. */
    public ModuleHarness tolerateFaults() {
        this.tolerateFaults = true;
        return this;
    }

    /**
     * Loads every module as the agent does (parameters checked, {@code init} run) in chain order; idempotent.
     *
     * @throws IllegalArgumentException naming a bad parameter
     * @throws IllegalStateException if a module's init throws (the agent would mark it FAILED)
     */
    public synchronized ModuleHarness start() {
        if (engine != null) {
            return this;
        }
        if (closed) {
            throw new IllegalStateException("harness is closed");
        }
        for (Entry e : entries) {
            // what the agent's verifier refuses at load, it refuses here: never-allowed calls, undeclared or unallowed
            // capabilities, SDK calls newer than the declared interface minor (the harness is a host of exactly that version)
            List<ModuleVerifier.Violation> refused = ModuleVerifier.verify(e.module.getClass(), e.descriptor, e.allowed);
            if (!refused.isEmpty()) {
                closed = true;
                boolean capability = refused.stream().anyMatch(v -> v.capability() != null);
                throw violation(e.name(), ContractViolation.Rule.REFUSED_AT_LOAD, refused.stream().map(ModuleVerifier.Violation::message)
                        .collect(java.util.stream.Collectors.joining("; "))
                        + (capability ? " (in the testkit, ModuleHarness.allow(Capability...) stands for the config's allow:)" : ""));
            }
        }
        EmbeddedEngine.Builder b = EmbeddedEngine.builder().loopThread(owner).holdLimit(holdLimit).pauseAt(highWaterMark)
                .quarantineAfter(quarantineAfter).trace(trace).listener(new Listener())
                .logs(id -> new RecordingModuleLog(id.substring(0, id.indexOf('@')), logLines));
        for (Entry e : entries) {
            b.module(e.module, e.config());
        }
        try {
            engine = operation(() -> {
                try {
                    return b.build();
                } catch (ModuleLoadException e) {
                    throw new LoadFailed(e);
                }
            });
        } catch (LoadFailed lf) {
            ModuleLoadException e = lf.getCause();
            closed = true;
            if (e.getCause() != null) {
                throw new IllegalStateException(e.getMessage(), e.getCause());
            }
            throw new IllegalArgumentException(e.getMessage(), e);
        }
        origin = engine.nanoTime();
        rethrowPending();
        return this;
    }

    /** Opens a connection with default {@link FakeConnection} info and attaches every module. */
    public HarnessConnection attach() {
        return attach(new FakeConnection());
    }

    /** Opens a connection (or, for protocol UDP, a flow) described by {@code info} and attaches every module in chain order. */
    public HarnessConnection attach(FakeConnection info) {
        start();
        HarnessConnection c = new HarnessConnection(this, info);
        byId.put(info.id(), c);
        connections.add(c);
        List<LoadedModule> chain = engine.chainFor(info);
        operation(() -> c.open(engine, chain));
        rethrowPending();
        return c;
    }

    /**
     * Moves the virtual clock forward by {@code by}, running every timer that falls due at its due time, in due order,
     * with what each causes (injections, sources resuming) before the next. {@code advance(Duration.ZERO)} runs the
     * timers already due.
     */
    public ModuleHarness advance(Duration by) {
        start();
        operation(() -> engine.advance(by));
        rethrowPending();
        return this;
    }

    /** The virtual clock's reading, as {@code ModuleEnv.nanoTime()} returns it. */
    public long nanoTime() {
        start();
        return engine.nanoTime();
    }

    /** Virtual time elapsed since the modules were loaded. */
    public Duration elapsed() {
        start();
        return Duration.ofNanos(engine.nanoTime() - origin);
    }

    /** Sends a control request with a UTF-8 body to the only socket module and returns its answer. */
    public ControlResponse control(String command, String body) {
        return control(command, body.getBytes(StandardCharsets.UTF_8));
    }

    /** Sends a control request to the only socket module and returns its answer. */
    public ControlResponse control(String command, byte[] body) {
        List<Entry> socket = entries.stream().filter(e -> e.descriptor.interfaces().containsKey(InterfaceType.SOCKET)).toList();
        if (socket.size() != 1) {
            throw new IllegalStateException(socket.size() + " socket modules in this harness: use control(module, command, body)");
        }
        return control(socket.get(0).name(), command, body);
    }

    /**
     * Sends a control request to {@code module}, as the agent's control endpoint does (a module-wide call), and returns
     * its answer. Safe to call from another thread while the test drives connections.
     */
    public ControlResponse control(String module, String command, byte[] body) {
        start();
        Entry e = entry(module);
        if (!(e.module instanceof SocketModule<?> sm)) {
            throw new IllegalArgumentException("module " + module + " does not declare the socket interface, so it gets no control requests");
        }
        LoadedModule lm = engine.registry().find(module).orElseThrow(() -> new IllegalStateException("module " + module + " is not loaded"));
        ControlRequest req = new ControlRequest(command, body.clone(), "testkit");
        ControlResponse r;
        try {
            r = operation(() -> lm.callModuleWide("control", () -> sm.control(req)));
        } catch (ModuleCallException ex) {
            rethrowPending();
            throw ex;
        }
        if (r == null) {
            throw violation(module, ContractViolation.Rule.NULL_VERDICT, "control(" + command + ") returned null");
        }
        return r;
    }

    /** Asks the socket modules whether {@code listener} may start, as the agent does: the first DENY wins. */
    public SocketDecision listen(ListenerInfo listener) {
        start();
        SocketDecision d = operation(() -> engine.listen(listener));
        rethrowPending();
        return d;
    }

    /** Every event the modules published, oldest first. */
    public List<Published> published() {
        return List.copyOf(published);
    }

    /** Every line the modules logged, oldest first. */
    public List<RecordingModuleLog.Line> logs() {
        synchronized (logLines) {
            return List.copyOf(logLines);
        }
    }

    /** Every contract violation seen, including ones already thrown. */
    public List<ContractViolation> violations() {
        return List.copyOf(violations);
    }

    /** Every exception a module threw into the harness, after its fault policy was applied. */
    public List<Fault> faults() {
        return List.copyOf(faults);
    }

    /** Load-time notes, as {@code check-module} prints them (for example a hook newer than the declared minor). */
    public List<String> notes() {
        return List.copyOf(notes);
    }

    /** The module names in chain (SEND) order. */
    public List<String> chain() {
        if (engine != null) {
            return engine.registry().attachOrder().stream().map(LoadedModule::name).toList();
        }
        List<Entry> sorted = new ArrayList<>(entries);
        sorted.sort((a, b) -> Integer.compare(a.priority != null ? a.priority : a.descriptor.priority(),
                b.priority != null ? b.priority : b.descriptor.priority()));
        return sorted.stream().map(Entry::name).toList();
    }

    /**
     * Closes every open connection, unloads the modules ({@code fini}) and checks exactly-one-detach.
     *
     * @throws ContractViolation if some successful attach did not get exactly one detach
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (engine != null) {
            operation(() -> {
                for (HarnessConnection c : connections) {
                    c.closeQuietly();
                }
                engine.close();
            });
        }
        for (HarnessConnection c : connections) {
            for (String m : c.attachedAtStart()) {
                if (c.detachCount(m) != 1) {
                    throw violation(m, ContractViolation.Rule.DETACH_NOT_EXACTLY_ONCE,
                            "detach ran " + c.detachCount(m) + " times for " + c.connection());
                }
            }
        }
        rethrowPending();
    }

    // ---------------------------------------------------------------- internals

    private Entry entry(String module) {
        for (Entry e : entries) {
            if (e.name().equals(module)) {
                return e;
            }
        }
        throw new IllegalArgumentException("no module '" + module + "' in this harness; modules: " + chain());
    }

    boolean hasModule(String module) {
        for (Entry e : entries) {
            if (e.name().equals(module)) return true;
        }
        return false;
    }

    private void requireNotStarted() {
        if (engine != null) {
            throw new IllegalStateException("set parameters, priorities and limits before the first attach");
        }
    }

    /**
     * Records a violation and returns it for the caller to throw. One raised while the harness runs the engine (the
     * engine catches what a module throws) or on a module's own thread is thrown again when the operation returns; one
     * raised straight into the test (a view used by the test after its call) is thrown there only.
     */
    ContractViolation violation(String module, ContractViolation.Rule rule, String detail) {
        ContractViolation v = new ContractViolation(module, rule, detail);
        violations.add(v);
        if (busy > 0 || Thread.currentThread() != owner) {
            unreported.add(v);
        }
        return v;
    }

    /** Runs {@code work} (engine code) as a harness operation: violations raised in it are thrown when it returns. */
    <T> T operation(java.util.function.Supplier<T> work) {
        if (Thread.currentThread() != owner) {
            return work.get(); // what a violation raised here does depends on the thread alone
        }
        busy++;
        try {
            return work.get();
        } finally {
            busy--;
        }
    }

    void operation(Runnable work) {
        operation(() -> {
            work.run();
            return null;
        });
    }

    private void recordFault(String module, String where, Throwable error) {
        Fault f = new Fault(module, where, error);
        faults.add(f);
        if (!tolerateFaults) {
            unreportedFaults.add(f);
        }
    }

    /** Throws the first violation the test has not seen yet, or else the first fault (unless faults are tolerated). */
    void rethrowPending() {
        synchronized (unreported) {
            if (!unreported.isEmpty()) {
                ContractViolation v = unreported.remove(0);
                unreported.clear();
                throw v;
            }
        }
        synchronized (unreportedFaults) {
            if (!unreportedFaults.isEmpty()) {
                Fault f = unreportedFaults.remove(0);
                unreportedFaults.clear();
                throw new AssertionError("module " + f.module() + " threw in " + f.where() + " (its " + policyOf(f.module())
                        + " policy was applied; call tolerateFaults() to test fault handling): " + f.error(), f.error());
            }
        }
    }

    private String policyOf(String module) {
        if (engine != null) {
            for (LoadedModule m : engine.registry().modules()) {
                if (m.name().equals(module)) {
                    return m.faultPolicy().name().toLowerCase().replace('_', '-');
                }
            }
        }
        return "fault";
    }

    EmbeddedEngine engine() {
        return engine;
    }

    /** Routes the engine's chain trace to the connections, and breaches to violations. */
    private final class Trace implements ChainTrace {
        @Override
        public void called(ConnectionInfo conn, String module, String hook, Direction direction, int length, String injectedBy,
                           long tag, Verdict verdict) {
            HarnessConnection c = byId.get(conn.id());
            if (c != null) c.called(module, hook, direction, length, injectedBy, tag, verdict);
        }

        @Override
        public void injected(ConnectionInfo conn, String module, Direction direction, int length, long tag) {
            HarnessConnection c = byId.get(conn.id());
            if (c != null) c.injected(module, direction, length, tag);
        }

        @Override
        public void detached(ConnectionInfo conn, String module, DetachReason reason) {
            HarnessConnection c = byId.get(conn.id());
            if (c != null) c.detached(module, reason);
        }

        /**
         * Records the breach; a use after the call and an inject past the limit also throw it in the module, as the
         * testkit always has: an {@link AssertionError} the module cannot swallow by catching {@code Exception}.
         */
        @Override
        public void breach(ConnectionInfo conn, String module, Breach rule, String detail) {
            breachDetail.put(module, detail);
            ContractViolation v = violation(module, ContractViolation.Rule.valueOf(rule.name()), detail);
            switch (rule) {
                case VIEW_AFTER_CALL, REPLACE_AFTER_CALL, CONTEXT_AFTER_CALL, INJECT_BEYOND_HOLD_LIMIT -> throw v;
                default -> { }
            }
        }
    }

    /** Faults (counted by the agent's registry, after the engine applied the policy) and published events. */
    private final class Listener implements RegistryListener {
        @Override
        public void moduleFault(LoadedModule module, String hook, long connectionId, Object cause) {
            String breach = breachDetail.remove(module.name());
            if (breach != null) {
                String text = cause instanceof Throwable t ? t.getMessage() : String.valueOf(cause);
                if (text != null && (breach.contains(text) || text.contains(breach))) {
                    return; // the breach was reported as a violation already
                }
            }
            Throwable error = cause instanceof Throwable t ? t : new ModuleFault(String.valueOf(cause));
            recordFault(module.name(), hook, error);
        }

        @Override
        public void moduleEvent(String module, String version, String kind, String text) {
            published.add(new Published(module, kind, text));
        }
    }

    /** Carries a load failure out of an operation. */
    private static final class LoadFailed extends RuntimeException {
        LoadFailed(ModuleLoadException e) {
            super(e);
        }

        @Override
        public synchronized ModuleLoadException getCause() {
            return (ModuleLoadException) super.getCause();
        }
    }

    /** A fault the engine found without an exception (a module that overran its budget, an option of the wrong type). */
    static final class ModuleFault extends RuntimeException {
        ModuleFault(String message) {
            super(message, null, false, false);
        }
    }
}
