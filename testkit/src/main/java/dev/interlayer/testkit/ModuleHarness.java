package dev.interlayer.testkit;

import dev.interlayer.api.ByteView;
import dev.interlayer.api.ControlRequest;
import dev.interlayer.api.ControlResponse;
import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ListenerInfo;
import dev.interlayer.api.Module;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.Params;
import dev.interlayer.api.SocketDecision;
import dev.interlayer.api.SocketModule;
import dev.interlayer.api.StreamContext;
import dev.interlayer.api.StreamModule;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs a module, or a short chain of modules, against scripted traffic and events without sockets, checking
 * the SDK contract at every step: the module author's test bench.
 *
 * <p>Lifecycle: {@link #of} checks each descriptor as the agent does at load (a problem throws
 * {@link ContractViolation} with rule {@code DESCRIPTOR}); {@link #param}, {@link #priority} and the limits are
 * set next; the first {@link #attach} (or {@link #start}) checks the parameters and runs {@code init}; each
 * attach opens a {@link HarnessConnection}; {@link #close} closes the connections, runs {@code fini} and checks
 * that every successful attach got exactly one detach.
 *
 * <p>The chain is ordered by priority (lower first on SEND; ties keep the order given to {@code of}), SEND
 * passes it in order and RECV in reverse, as in the engine. Time is virtual: {@link dev.interlayer.api.ModuleEnv#nanoTime()} reads
 * the harness clock and timers ({@code Attachment.schedule}, {@code ModuleEnv.schedule}) fire only when
 * {@link #advance} moves the clock past them, in due order.
 *
 * <p>Datagram modules run on UDP flows: attach a {@link FakeConnection} with protocol {@code UDP}; each send or
 * recv is then one datagram (see {@link HarnessConnection}).
 *
 * <pre>{@code
 * try (ModuleHarness h = ModuleHarness.of(new DnsTagModule()).param("side", "client")) {
 *     HarnessConnection flow = h.attach(new FakeConnection().protocol(Protocol.UDP));
 *     flow.send(query);
 *     byte[] tagged = flow.sentDatagrams().get(0);
 * }
 * }</pre>
 *
 * <p>Differences from the agent, on purpose: a contract breach the engine reports with an
 * {@link IllegalStateException} (a view used after its call) fails the test with a {@link ContractViolation};
 * a module that throws is handled by its fault policy exactly as in the agent, and then the exception fails the
 * test at the end of the operation unless {@link #tolerateFaults()} was called.
 *
 * <p>Threading: drive the harness from one test thread. Modules may call the "any thread" SDK methods from
 * their own threads; the harness carries those out on its next operation.
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
 */
public final class ModuleHarness implements AutoCloseable {

    /** Default per-connection hold limit: the agent's default, 4 MiB. */
    public static final long DEFAULT_HOLD_LIMIT = 4L << 20;
    /** Default high-water mark above which a connection's sources are not read: 1 MiB. */
    public static final long DEFAULT_HIGH_WATER_MARK = 1L << 20;

    /** A module as loaded into the harness: descriptor, settings, interfaces, environment. */
    static final class Entry {
        private final Module<Object> module;
        private final ModuleDescriptor descriptor;
        private final int order;
        private final Map<String, Object> rawParams = new LinkedHashMap<>();
        private int priority;
        private FaultPolicy policy;
        private FakeModuleEnv env;
        /** The stream hooks the module's class overrides: as in the agent, a hook it does not override is never called. */
        private final boolean onSend;
        private final boolean onRecv;
        private final boolean onEnd;

        @SuppressWarnings("unchecked")
        Entry(Module<?> module, ModuleDescriptor descriptor, int order) {
            this.module = (Module<Object>) module;
            this.descriptor = descriptor;
            this.order = order;
            this.priority = descriptor.priority();
            this.policy = descriptor.faultPolicy();
            this.onSend = overrides(module, "onSend");
            this.onRecv = overrides(module, "onRecv");
            this.onEnd = overrides(module, "onEnd") && streamMinor() >= 1;
        }

        private static boolean overrides(Module<?> module, String hook) {
            if (!(module instanceof StreamModule<?>)) {
                return false;
            }
            try {
                return DescriptorCheck.overrides(module.getClass(),
                        StreamModule.class.getMethod(hook, Object.class, StreamContext.class, ByteView.class));
            } catch (NoSuchMethodException e) {
                throw new AssertionError("the SDK's StreamModule has no " + hook, e);
            }
        }

        String name() { return descriptor.name(); }
        ModuleDescriptor descriptor() { return descriptor; }
        Module<Object> module() { return module; }
        FaultPolicy policy() { return policy; }
        boolean isStream() { return descriptor.interfaces().containsKey(InterfaceType.STREAM); }
        boolean isSocket() { return descriptor.interfaces().containsKey(InterfaceType.SOCKET); }
        boolean isDatagram() { return descriptor.interfaces().containsKey(InterfaceType.DATAGRAM); }
        int streamMinor() { return DescriptorCheck.declaredMinor(descriptor, InterfaceType.STREAM); }
        /** The module has its own data hook for {@code d}. */
        boolean hasDataHook(dev.interlayer.api.Direction d) { return d == dev.interlayer.api.Direction.SEND ? onSend : onRecv; }
        /** The agent calls {@code onEnd} of {@code d}: the module has its own onEnd (stream 1.1 or later) and data hook for it. */
        boolean hasEndHook(dev.interlayer.api.Direction d) { return onEnd && hasDataHook(d); }

        @SuppressWarnings("unchecked")
        StreamModule<Object> stream() { return (StreamModule<Object>) module; }

        @SuppressWarnings("unchecked")
        SocketModule<Object> socket() { return (SocketModule<Object>) module; }

        @SuppressWarnings("unchecked")
        dev.interlayer.api.DatagramModule<Object> datagram() { return (dev.interlayer.api.DatagramModule<Object>) module; }
    }

    /**
     * An exception a module threw, with where.
     *
     * @param module the module
     * @param where the hook or {@code timer}
     * @param error what it threw
     */
    public record Fault(String module, String where, Throwable error) {}

    private final List<Entry> entries = new ArrayList<>();
    private final VirtualClock clock = new VirtualClock();
    private final List<RecordingModuleLog.Line> logLines = new ArrayList<>();
    private final List<ContractViolation> violations = Collections.synchronizedList(new ArrayList<>());
    private final List<ContractViolation> unreported = Collections.synchronizedList(new ArrayList<>());
    private final List<Fault> faults = Collections.synchronizedList(new ArrayList<>());
    private final List<Fault> unreportedFaults = Collections.synchronizedList(new ArrayList<>());
    private final List<HarnessConnection> connections = new ArrayList<>();
    private final List<String> notes = new ArrayList<>();
    private final Thread owner = Thread.currentThread();
    private long holdLimit = DEFAULT_HOLD_LIMIT;
    private long highWaterMark = DEFAULT_HIGH_WATER_MARK;
    private boolean tolerateFaults;
    private boolean started;
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
            String name = problems.isEmpty() ? m.descriptor().name() : m.getClass().getName();
            if (!problems.isEmpty()) {
                throw h.violation(name, ContractViolation.Rule.DESCRIPTOR, String.join("; ", problems));
            }
            for (Entry e : h.entries) {
                if (e.name().equals(name)) {
                    throw new IllegalArgumentException("two modules named '" + name + "': names are unique within an agent");
                }
            }
            h.entries.add(new Entry(m, m.descriptor(), h.entries.size()));
            h.notes.addAll(DescriptorCheck.notes(m).stream().map(n -> name + ": " + n).toList());
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
        entry(module).rawParams.put(name, value);
        return this;
    }

    /** Overrides {@code module}'s priority, as a config may (lower runs first on SEND). */
    public ModuleHarness priority(String module, int priority) {
        requireNotStarted();
        entry(module).priority = priority;
        return this;
    }

    /** Overrides {@code module}'s fault policy, as a config may. */
    public ModuleHarness faultPolicy(String module, FaultPolicy policy) {
        requireNotStarted();
        entry(module).policy = policy;
        return this;
    }

    /** Sets the per-connection hold limit in bytes (default {@value #DEFAULT_HOLD_LIMIT}). */
    public ModuleHarness holdLimit(long bytes) {
        requireNotStarted();
        if (bytes < 1) {
            throw new IllegalArgumentException("hold limit must be positive");
        }
        this.holdLimit = bytes;
        return this;
    }

    /** Sets the high-water mark in bytes above which sources pause (default {@value #DEFAULT_HIGH_WATER_MARK}). */
    public ModuleHarness highWaterMark(long bytes) {
        requireNotStarted();
        this.highWaterMark = bytes;
        return this;
    }

    /** Lets module exceptions be handled by the fault policy without failing the test; see {@link #faults()}. */
    public ModuleHarness tolerateFaults() {
        this.tolerateFaults = true;
        return this;
    }

    /**
     * Checks parameters and runs {@code init} on every module, in chain order; idempotent.
     *
     * @throws IllegalArgumentException naming a bad parameter
     * @throws IllegalStateException if a module's init throws (the agent would mark it FAILED)
     */
    public ModuleHarness start() {
        if (started) {
            return this;
        }
        if (closed) {
            throw new IllegalStateException("harness is closed");
        }
        entries.sort(Comparator.comparingInt((Entry e) -> e.priority).thenComparingInt(e -> e.order));
        for (Entry e : entries) {
            Params p = CheckedParams.resolve(e.descriptor, e.rawParams);
            e.env = new FakeModuleEnv(this, e, p, new RecordingModuleLog(e.name(), logLines));
        }
        started = true;
        for (Entry e : entries) {
            try {
                e.module.init(e.env);
            } catch (Exception ex) {
                throw new IllegalStateException("module " + e.name() + " refused to load: init threw " + ex, ex);
            }
        }
        return this;
    }

    /** Opens a connection with default {@link FakeConnection} info and attaches every module. */
    public HarnessConnection attach() {
        return attach(new FakeConnection());
    }

    /** Opens a connection described by {@code info} and attaches every module in chain order. */
    public HarnessConnection attach(FakeConnection info) {
        start();
        HarnessConnection c = new HarnessConnection(this, info, List.copyOf(entries));
        connections.add(c);
        c.attachAll();
        rethrowPending();
        return c;
    }

    /**
     * Moves the virtual clock forward by {@code by}, running every timer that falls due, in due order, with the
     * clock set to each timer's due time; then everything the timers caused (injections, sources resuming).
     * {@code advance(Duration.ZERO)} runs the timers already due.
     */
    public ModuleHarness advance(Duration by) {
        start();
        long target = clock.nanoTime() + by.toNanos();
        VirtualClock.Timer t;
        while ((t = clock.next(target)) != null) {
            t.task.run();
            runAll();
        }
        clock.moveTo(target);
        runAll();
        rethrowPending();
        return this;
    }

    private void runAll() {
        for (HarnessConnection c : connections) {
            if (c.isOpen()) {
                c.run();
            }
        }
    }

    /** The virtual clock's reading, as {@code ModuleEnv.nanoTime()} returns it. */
    public long nanoTime() {
        return clock.nanoTime();
    }

    /** Virtual time elapsed since the harness was created. */
    public Duration elapsed() {
        return Duration.ofNanos(clock.nanoTime() - VirtualClock.ORIGIN);
    }

    /** Sends a control request with a UTF-8 body to the only socket module and returns its answer. */
    public ControlResponse control(String command, String body) {
        return control(command, body.getBytes(StandardCharsets.UTF_8));
    }

    /** Sends a control request to the only socket module and returns its answer. */
    public ControlResponse control(String command, byte[] body) {
        List<Entry> socket = entries.stream().filter(Entry::isSocket).toList();
        if (socket.size() != 1) {
            throw new IllegalStateException(socket.size() + " socket modules in this harness: use control(module, command, body)");
        }
        return control(socket.get(0).name(), command, body);
    }

    /** Sends a control request to {@code module} and returns its answer. */
    public ControlResponse control(String module, String command, byte[] body) {
        start();
        Entry e = entry(module);
        if (!e.isSocket()) {
            throw new IllegalArgumentException("module " + module + " does not declare the socket interface, so it gets no control requests");
        }
        ControlResponse r = e.socket().control(new ControlRequest(command, body.clone(), "testkit"));
        if (r == null) {
            throw violation(module, ContractViolation.Rule.NULL_VERDICT, "control(" + command + ") returned null");
        }
        return r;
    }

    /** Asks the socket modules whether {@code listener} may start; the first DENY wins. */
    public SocketDecision listen(ListenerInfo listener) {
        start();
        for (Entry e : entries) {
            if (e.isSocket()) {
                SocketDecision d = e.socket().onListen(listener);
                if (d == null) {
                    throw violation(e.name(), ContractViolation.Rule.NULL_VERDICT, "onListen returned null");
                }
                if (d.kind() == SocketDecision.Kind.DENY) {
                    return d;
                }
            }
        }
        return SocketDecision.allow();
    }

    /**
     * An event a module published with {@code ModuleEnv.publish}.
     *
     * @param module the module's name
     * @param kind the event's kind
     * @param text the event's text
     */
    public record Published(String module, String kind, String text) {}

    private final List<Published> published = Collections.synchronizedList(new ArrayList<>());

    void published(String module, String kind, String text) {
        if (kind == null || text == null) {
            throw new IllegalArgumentException("module " + module + ": ModuleEnv.publish needs a kind and a text, got kind " + kind + " and text " + text);
        }
        published.add(new Published(module, kind, text));
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

    /** The module names in chain (SEND) order; final once started. */
    public List<String> chain() {
        return entries.stream().map(Entry::name).toList();
    }

    /**
     * Closes every open connection, runs {@code fini} on each module and checks exactly-one-detach.
     *
     * @throws ContractViolation if some successful attach did not get exactly one detach
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (HarnessConnection c : connections) {
            c.close();
        }
        if (started) {
            for (Entry e : entries) {
                clock.cancelAll(e);
                try {
                    e.module.fini();
                } catch (RuntimeException ex) {
                    recordFault(e.name(), "fini", ex);
                }
            }
        }
        for (HarnessConnection c : connections) {
            for (HarnessConnection.Slot s : c.slots()) {
                if (s.attached && s.detaches != 1) {
                    throw violation(s.name(), ContractViolation.Rule.DETACH_NOT_EXACTLY_ONCE,
                            "detach ran " + s.detaches + " times for " + c.connection());
                }
            }
        }
        rethrowPending();
    }

    // ---------------------------------------------------------------- internals

    VirtualClock clock() {
        return clock;
    }

    long holdLimit() {
        return holdLimit;
    }

    long highWaterMark() {
        return highWaterMark;
    }

    private Entry entry(String module) {
        for (Entry e : entries) {
            if (e.name().equals(module)) {
                return e;
            }
        }
        throw new IllegalArgumentException("no module '" + module + "' in this harness; modules: " + chain());
    }

    private void requireNotStarted() {
        if (started) {
            throw new IllegalStateException("set parameters, priorities and limits before the first attach");
        }
    }

    /** Records a violation and returns it for the caller to throw; one raised off the test thread is rethrown later. */
    ContractViolation violation(String module, ContractViolation.Rule rule, String detail) {
        ContractViolation v = new ContractViolation(module, rule, detail);
        violations.add(v);
        if (Thread.currentThread() != owner) {
            unreported.add(v);
        }
        return v;
    }

    void recordFault(String module, String where, Throwable error) {
        Fault f = new Fault(module, where, error);
        faults.add(f);
        entries.stream().filter(e -> e.name().equals(module)).findFirst()
                .ifPresent(e -> e.env.log().error(-1, "fault in %s: %s", where, error));
        if (!tolerateFaults) {
            unreportedFaults.add(f);
        }
    }

    void runModuleTask(Entry e, Runnable task) {
        try {
            task.run();
        } catch (ContractViolation v) {
            throw v;
        } catch (RuntimeException ex) {
            recordFault(e.name(), "module timer", ex);
        }
    }

    /** Throws the first violation raised on another thread, or the first fault, that the test has not seen yet. */
    void rethrowPending() {
        synchronized (unreported) {
            if (!unreported.isEmpty()) {
                ContractViolation v = unreported.remove(0);
                throw v;
            }
        }
        synchronized (unreportedFaults) {
            if (!unreportedFaults.isEmpty()) {
                Fault f = unreportedFaults.remove(0);
                unreportedFaults.clear();
                throw new AssertionError("module " + f.module() + " threw in " + f.where() + " (its " + entryPolicy(f.module())
                        + " policy was applied; call tolerateFaults() to test fault handling): " + f.error(), f.error());
            }
        }
    }

    private String entryPolicy(String module) {
        for (Entry e : entries) {
            if (e.name().equals(module)) {
                return e.policy.name().toLowerCase().replace('_', '-');
            }
        }
        return "fault";
    }
}
