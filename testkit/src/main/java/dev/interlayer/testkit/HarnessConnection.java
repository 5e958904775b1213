package dev.interlayer.testkit;

import dev.interlayer.api.Attach;
import dev.interlayer.api.ConnectionEvent;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.OptionDecision;
import dev.interlayer.api.Side;
import dev.interlayer.api.SocketDecision;
import dev.interlayer.api.SocketModule;
import dev.interlayer.api.SocketOption;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.Verdict;
import java.io.ByteArrayOutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One connection running through a {@link ModuleHarness}'s chain, with no sockets: the test plays both the
 * local application and the network, and reads what came out of each end.
 *
 * <p>The chain behaves as the engine's:
 * <pre>
 *   send(bytes)  --SEND-->  [ module 0 ] --> [ module 1 ] --> [ module 2 ]  -->  sent()
 *   received()  <--RECV--   [ module 0 ] <-- [ module 1 ] <-- [ module 2 ]  <--  recv(bytes)
 * </pre>
 * Each call to {@link #send} or {@link #recv} is one chunk read from that side's socket; each module sees
 * the previous module's output; verdicts, NEED_MORE buffering, HOLD and inject, DETACH, ERROR and CLOSE
 * follow the SDK's rules exactly, and every breach of the contract throws {@link ContractViolation}.
 *
 * <p>Back-pressure is modelled too: while the bytes held, buffered (NEED_MORE) or queued for injection on
 * the connection exceed the harness's high-water mark, or while a direction is made unwritable with
 * {@link #writable(Direction, boolean)}, chunks given to {@code send}/{@code recv} wait in the source
 * (see {@link #pendingSource(Direction)}) instead of entering the chain, exactly as the engine stops
 * reading a socket. A module's output keeps the order in which the module produced it: bytes it injects
 * during a call come out before the chunk the call passes, and what it passes while its injections wait goes
 * after them. A direction's end ({@link #end(Direction)}) reaches a module after the data before it (its
 * {@code onEnd} runs then; it may hold the rest) and leaves it only once the module holds nothing more in that
 * direction, so held data is never overtaken by the end; after that the module's injects in that direction are
 * refused. As in the agent, a module is called only for the hooks its class overrides, and {@code onEnd} only for a
 * direction it has a data hook for. A detach of an open connection passes on what the module still held
 * and its NEED_MORE buffer, as if the module had passed them.
 *
 * <p>A connection whose {@link FakeConnection#protocol(dev.interlayer.api.Protocol)} is {@code UDP} is a datagram
 * flow: the chain is the harness's {@link dev.interlayer.api.DatagramModule}s, each {@code send}/{@code recv} is one
 * datagram (one call per module), what comes out is listed per datagram by {@link #sentDatagrams()} and
 * {@link #receivedDatagrams()}, {@code needMore} and {@code CLOSE} are faults, a replacement over 65,507 bytes is a
 * fault, an empty replacement forwards nothing, and {@code end} does not exist (close the flow instead), as in the agent.
 *
 * <p>Threading: drive it from the test thread. Modules may inject, close and abort from any thread;
 * those effects run in call order during the next harness operation ({@link #drain()} runs them
 * explicitly).
 *
 * <pre>{@code
 * HarnessConnection conn = ModuleHarness.of(new TagModule()).param("every", 4).attach();
 * conn.send("abcdefgh");
 * assertEquals("abcd" + TAG + "efgh" + TAG, conn.sentText());
 * conn.close();
 * }</pre>
 */
public final class HarnessConnection implements AutoCloseable {

    /** The mark injected data carries: who injected it and with what tag. */
    record Mark(String by, long tag) {}

    /**
     * One call of a data hook and its verdict.
     *
     * @param module the module called
     * @param hook {@code onSend}, {@code onRecv} or {@code onEnd}
     * @param direction the direction of the chunk
     * @param length bytes in the view the module was given
     * @param injected whether the chunk was injected by an earlier module
     * @param injectedBy that module's name, or null
     * @param injectTag the injector's tag, or 0
     * @param verdict what the module returned (null if it threw)
     */
    public record Call(String module, String hook, Direction direction, int length, boolean injected, String injectedBy,
                       long injectTag, Verdict verdict) {}

    /**
     * One injection a module made.
     *
     * @param module the injecting module
     * @param direction where the bytes went
     * @param length how many bytes
     * @param tag the tag given (0 for none or for held bytes)
     */
    public record Injection(String module, Direction direction, int length, long tag) {}

    /** Where the connection is in its life. */
    public enum State {
        /** Data flows. */
        OPEN,
        /** Closed gracefully: by the test, a CLOSE verdict, {@code attachment.close()} or the end of both directions. */
        CLOSED,
        /** Reset: an ERROR verdict, {@code attachment.abort()}, a hold-limit overflow or a fail-closed fault. */
        RESET
    }

    /** A module's place in this connection's chain with its per-connection state. */
    static final class Slot {
        final ModuleHarness.Entry entry;
        final int index;
        Object state;
        FakeAttachment attachment;
        volatile boolean active;
        boolean attached;
        int detaches;
        DetachReason detachReason;
        final AtomicLong held = new AtomicLong();
        final AtomicLong buffered = new AtomicLong();
        final ConcurrentLinkedDeque<FakeHeldBytes> holds = new ConcurrentLinkedDeque<>();
        final byte[][] buf = new byte[2][];
        final int[] bufLen = new int[2];
        final int[] wanted = new int[2];
        /** Per direction: its end has passed this module, which can inject nothing more there. */
        final boolean[] endPassed = new boolean[2];

        Slot(ModuleHarness.Entry entry, int index) {
            this.entry = entry;
            this.index = index;
        }

        String name() {
            return entry.name();
        }

        FakeHeldBytes newHeld(byte[] bytes, Direction direction) {
            while (!holds.isEmpty() && !holds.peekFirst().isHeld()) {
                holds.pollFirst();
            }
            FakeHeldBytes h = new FakeHeldBytes(this, bytes, direction);
            holds.add(h);
            return h;
        }
    }

    private sealed interface Action permits InjectAction, PassAction, CloseAction, AbortAction {}

    /**
     * Bytes a module passed (or that go on for it at detach) while its injections still wait: they go on after them,
     * as in the agent, where a module's output keeps the order in which the module produced it.
     */
    private record PassAction(Slot from, Direction direction, byte[] bytes, Mark mark) implements Action {}

    private record InjectAction(Slot from, Direction direction, byte[] bytes, long tag) implements Action {}

    private record CloseAction(Slot by) implements Action {}

    private record AbortAction(Slot by, String reason) implements Action {}

    private static final int NOT_STARTED = Integer.MIN_VALUE;

    private final ModuleHarness harness;
    private final FakeConnection info;
    private final List<Slot> chain;
    private volatile State state = State.OPEN;
    private String endReason;
    private final ConcurrentLinkedDeque<Action> actions = new ConcurrentLinkedDeque<>();
    private final AtomicLong queuedInjectBytes = new AtomicLong();
    private final List<ArrayDeque<byte[]>> source = List.of(new ArrayDeque<>(), new ArrayDeque<>());
    private final long[] sourceBytes = new long[2];
    private final boolean[] endRequested = new boolean[2];
    private final boolean[] endDone = new boolean[2];
    private final int[] endAt = {NOT_STARTED, NOT_STARTED};
    /** Per direction: the module the end is at has had its onEnd (it waits there for what the module holds). */
    private final boolean[] endCalled = new boolean[2];
    private final boolean[] writable = {true, true};
    private final ByteArrayOutputStream[] out = {new ByteArrayOutputStream(), new ByteArrayOutputStream()};
    /** A UDP flow ({@code info.protocol() == UDP}): datagram modules, one call per datagram, boundaries kept. */
    private final boolean datagram;
    private final List<List<byte[]>> datagramsOut = List.of(new ArrayList<>(), new ArrayList<>());
    /** Largest UDP payload over IPv4, as in the agent. */
    static final int MAX_DATAGRAM = 65_507;
    private final List<Call> calls = new ArrayList<>();
    private final List<Injection> injections = Collections.synchronizedList(new ArrayList<>());
    private boolean running;
    private Slot callSlot;
    private Thread callThread;
    private String abortInCall;

    HarnessConnection(ModuleHarness harness, FakeConnection info, List<ModuleHarness.Entry> entries) {
        this.harness = harness;
        this.info = info;
        List<Slot> slots = new ArrayList<>();
        for (ModuleHarness.Entry e : entries) {
            slots.add(new Slot(e, slots.size()));
        }
        this.chain = List.copyOf(slots);
        this.datagram = info.protocol() == dev.interlayer.api.Protocol.UDP;
    }

    /** Attaches every module in chain order, as the engine does before any data flows. */
    void attachAll() {
        for (Slot s : chain) {
            if (state != State.OPEN) {
                return;
            }
            s.attachment = new FakeAttachment(this, s);
            Attach<Object> a;
            try {
                a = s.entry.module().attach(s.attachment);
            } catch (RuntimeException e) {
                harness.recordFault(s.name(), "attach", e);
                if (s.entry.policy() == FaultPolicy.FAIL_CLOSED) {
                    reset("module " + s.name() + " faulted in attach: " + e);
                }
                continue;
            }
            if (a == null) {
                throw harness.violation(s.name(), ContractViolation.Rule.NULL_VERDICT,
                        "attach returned null; return Attach.with(state), Attach.stateless() or Attach.decline()");
            }
            if (a.attached()) {
                s.state = a.state();
                s.attached = true;
                s.active = true;
            }
        }
        if (state == State.OPEN) {
            socketEvent(ConnectionEvent.CONNECTED); // as the agent does once the upstream is connected, before any data
        }
        run();
    }

    ModuleHarness harness() {
        return harness;
    }

    /** The connection's info, whose byte counters the harness keeps up to date. */
    public FakeConnection connection() {
        return info;
    }

    // ---------------------------------------------------------------- driving

    /** Reads {@code bytes} as one chunk from the local application (SEND). The array is copied. */
    public HarnessConnection send(byte[] bytes) {
        return offer(Direction.SEND, bytes, 0, bytes.length);
    }

    /** Reads {@code len} bytes of {@code bytes} from {@code off} as one SEND chunk. */
    public HarnessConnection send(byte[] bytes, int off, int len) {
        return offer(Direction.SEND, bytes, off, len);
    }

    /** Reads {@code text} (UTF-8) as one SEND chunk. */
    public HarnessConnection send(String text) {
        return send(text.getBytes(StandardCharsets.UTF_8));
    }

    /** Reads {@code bytes} as one chunk from the network (RECV). The array is copied. */
    public HarnessConnection recv(byte[] bytes) {
        return offer(Direction.RECV, bytes, 0, bytes.length);
    }

    /** Reads {@code len} bytes of {@code bytes} from {@code off} as one RECV chunk. */
    public HarnessConnection recv(byte[] bytes, int off, int len) {
        return offer(Direction.RECV, bytes, off, len);
    }

    /** Reads {@code text} (UTF-8) as one RECV chunk. */
    public HarnessConnection recv(String text) {
        return recv(text.getBytes(StandardCharsets.UTF_8));
    }

    private HarnessConnection offer(Direction d, byte[] bytes, int off, int len) {
        requireOpen();
        if (endRequested[d.ordinal()]) {
            throw new IllegalStateException(d + " has already ended on " + info);
        }
        if (len > 0) {
            source.get(d.ordinal()).add(Arrays.copyOfRange(bytes, off, off + len));
            sourceBytes[d.ordinal()] += len;
        }
        run();
        harness.rethrowPending();
        return this;
    }

    /**
     * Ends {@code direction}: its sender half-closed. Modules see {@code onEnd} (stream 1.1 and later) in chain
     * order, each after the data before it; {@link #ended(Direction)} tells when the end came out of the chain, and
     * socket modules get {@code SEND_SHUTDOWN} or {@code RECV_SHUTDOWN} then. Once both directions have ended the
     * connection closes ({@link State#CLOSED}, every module detached with {@code CLOSED}), as the agent closes it.
     */
    public HarnessConnection end(Direction direction) {
        requireOpen();
        if (datagram) {
            throw new IllegalStateException(info + " is a UDP flow: datagrams have no end of stream; close() ends the flow");
        }
        endRequested[direction.ordinal()] = true;
        run();
        harness.rethrowPending();
        return this;
    }

    /** Moves the harness's virtual clock forward, firing every timer that falls due (see {@link ModuleHarness#advance}). */
    public HarnessConnection advance(java.time.Duration by) {
        harness.advance(by);
        return this;
    }

    /** Carries out what modules asked for from other threads (injections, close, abort). */
    public HarnessConnection drain() {
        run();
        harness.rethrowPending();
        return this;
    }

    /** Closes the connection from outside (both ends closed): every attached module is detached with CLOSED. */
    @Override
    public void close() {
        if (state == State.OPEN) {
            run();
        }
        if (state == State.OPEN) {
            finish(State.CLOSED, "closed by the test");
        }
        harness.rethrowPending();
    }

    /**
     * Detaches {@code module} from this connection as the control plane does (reason {@code REQUESTED}); the rest of the
     * chain goes on, and what the module still held goes on as at any detach of an open connection. Does nothing if the
     * module is not attached (any more).
     *
     * @throws IllegalArgumentException if there is no such module in the harness
     */
    public HarnessConnection detach(String module) {
        requireOpen();
        Slot s = slot(module);
        if (s.active) {
            detach(s, DetachReason.REQUESTED);
        }
        run();
        harness.rethrowPending();
        return this;
    }

    /** Delivers an observe-only event to every attached socket module. */
    public HarnessConnection event(ConnectionEvent event) {
        requireOpen();
        socketEvent(event);
        run();
        harness.rethrowPending();
        return this;
    }

    /**
     * Makes the far side of {@code direction} stop or resume reading: while unwritable, injections into that
     * direction wait in the queue (counting against the hold limit) and its source is not read. Socket modules
     * get the matching {@link ConnectionEvent}.
     */
    public HarnessConnection writable(Direction direction, boolean value) {
        if (writable[direction.ordinal()] != value) {
            writable[direction.ordinal()] = value;
            if (state == State.OPEN) {
                socketEvent(direction == Direction.SEND
                        ? (value ? ConnectionEvent.SEND_WRITABLE : ConnectionEvent.SEND_UNWRITABLE)
                        : (value ? ConnectionEvent.RECV_WRITABLE : ConnectionEvent.RECV_UNWRITABLE));
            }
        }
        run();
        harness.rethrowPending();
        return this;
    }

    /** Runs the connect decision through the socket modules in chain order and returns the outcome. */
    public SocketDecision connect(InetSocketAddress target) {
        return decide(target, true);
    }

    /** Runs the bind decision (null = ephemeral) through the socket modules in chain order and returns the outcome. */
    public SocketDecision bind(InetSocketAddress local) {
        return decide(local, false);
    }

    private SocketDecision decide(InetSocketAddress address, boolean connect) {
        requireOpen();
        boolean redirected = false;
        for (Slot s : chain) {
            if (!s.active || !s.entry.isSocket()) {
                continue;
            }
            SocketModule<Object> m = s.entry.socket();
            SocketDecision d = connect ? m.onConnect(s.state, s.attachment, address) : m.onBind(s.state, s.attachment, address);
            if (d == null) {
                throw harness.violation(s.name(), ContractViolation.Rule.NULL_VERDICT, (connect ? "onConnect" : "onBind") + " returned null");
            }
            switch (d.kind()) {
                case DENY -> {
                    return d;
                }
                case REDIRECT -> {
                    address = d.address();
                    redirected = true;
                }
                case ALLOW -> { }
            }
        }
        return redirected ? SocketDecision.redirect(address) : SocketDecision.allow();
    }

    /** Runs a set-option decision through the socket modules; returns ALLOW, DENY, or MODIFY with the final value. */
    public OptionDecision setOption(Side side, SocketOption option, Object value) {
        requireOpen();
        boolean modified = false;
        for (Slot s : chain) {
            if (!s.active || !s.entry.isSocket()) {
                continue;
            }
            OptionDecision d = s.entry.socket().onSetOption(s.state, s.attachment, side, option, value);
            if (d == null) {
                throw harness.violation(s.name(), ContractViolation.Rule.NULL_VERDICT, "onSetOption returned null");
            }
            if (d.kind() == OptionDecision.Kind.DENY) {
                return d;
            }
            if (d.kind() == OptionDecision.Kind.MODIFY) {
                value = d.value();
                modified = true;
            }
        }
        return modified ? OptionDecision.modify(value) : OptionDecision.allow();
    }

    /** Runs an option read through the socket modules and returns the value they report. */
    public Object getOption(Side side, SocketOption option, Object value) {
        requireOpen();
        for (Slot s : chain) {
            if (s.active && s.entry.isSocket()) {
                value = s.entry.socket().onGetOption(s.state, s.attachment, side, option, value);
            }
        }
        return value;
    }

    // ---------------------------------------------------------------- results

    /** Bytes that came out of the chain on the network side (a copy). */
    public byte[] sent() {
        return out[0].toByteArray();
    }

    /** Bytes that came out of the chain on the application side (a copy). */
    public byte[] received() {
        return out[1].toByteArray();
    }

    /** The datagrams that came out of the chain on the network side, in order (copies); UDP flows only. */
    public List<byte[]> sentDatagrams() {
        return datagrams(Direction.SEND);
    }

    /** The datagrams that came out of the chain on the application side, in order (copies); UDP flows only. */
    public List<byte[]> receivedDatagrams() {
        return datagrams(Direction.RECV);
    }

    private List<byte[]> datagrams(Direction d) {
        if (!datagram) {
            throw new IllegalStateException(info + " is a TCP connection: bytes have no boundaries; use sent() and received()");
        }
        return datagramsOut.get(d.ordinal()).stream().map(byte[]::clone).toList();
    }

    /** {@link #sent()} decoded as UTF-8. */
    public String sentText() {
        return out[0].toString(StandardCharsets.UTF_8);
    }

    /** {@link #received()} decoded as UTF-8. */
    public String receivedText() {
        return out[1].toString(StandardCharsets.UTF_8);
    }

    /** Number of bytes that came out of the chain in {@code direction}. */
    public long delivered(Direction direction) {
        return out[direction.ordinal()].size();
    }

    /** Takes the bytes that came out in {@code direction} so far and forgets them (for long-running tests). */
    public byte[] take(Direction direction) {
        byte[] b = out[direction.ordinal()].toByteArray();
        out[direction.ordinal()].reset();
        return b;
    }

    /** True once the end of {@code direction} has come out of the chain. */
    public boolean ended(Direction direction) {
        return endDone[direction.ordinal()];
    }

    /** Every data-hook call so far, in order. */
    public List<Call> calls() {
        return List.copyOf(calls);
    }

    /** The verdicts {@code module} returned, in order. */
    public List<Verdict> verdicts(String module) {
        List<Verdict> v = new ArrayList<>();
        for (Call c : calls) {
            if (c.module().equals(module)) {
                v.add(c.verdict());
            }
        }
        return v;
    }

    /** Every injection accepted so far, in call order. */
    public List<Injection> injections() {
        synchronized (injections) {
            return List.copyOf(injections);
        }
    }

    /** Bytes held (HOLD), buffered (NEED_MORE) and queued for injection on this connection: what the hold limit bounds. */
    public long heldBytes() {
        return outstanding();
    }

    /** Bytes {@code module} holds or has buffered on this connection. */
    public long heldBytes(String module) {
        Slot s = slot(module);
        return s.held.get() + s.buffered.get();
    }

    /** Bytes given to send/recv that wait in the source because the connection is paused. */
    public long pendingSource(Direction direction) {
        return sourceBytes[direction.ordinal()];
    }

    /** True while the engine would not read {@code direction}'s socket (back-pressure). */
    public boolean isPaused(Direction direction) {
        return !writable[direction.ordinal()] || outstanding() > harness.highWaterMark();
    }

    /** True while far side of {@code direction} takes bytes (see {@link #writable(Direction, boolean)}). */
    public boolean isWritable(Direction direction) {
        return writable[direction.ordinal()];
    }

    /** The connection's state. */
    public State state() {
        return state;
    }

    /** True while the connection is open. */
    public boolean isOpen() {
        return state == State.OPEN;
    }

    /** True once reset. */
    public boolean isReset() {
        return state == State.RESET;
    }

    /** Why the connection closed or was reset (names the module), or null while open. */
    public String closeReason() {
        return endReason;
    }

    /** True while {@code module} is attached to this connection. */
    public boolean isAttached(String module) {
        return slot(module).active;
    }

    /** Why {@code module} was detached, or null if it is still attached or never was. */
    public DetachReason detachReason(String module) {
        return slot(module).detachReason;
    }

    /** How many times {@code module}'s detach ran for this connection (the contract says exactly once per attach). */
    public int detachCount(String module) {
        return slot(module).detaches;
    }

    /** Timers {@code module} has pending on this connection. */
    public int pendingTimers(String module) {
        return harness.clock().pending(slot(module).attachment);
    }

    private Slot slot(String module) {
        for (Slot s : chain) {
            if (s.name().equals(module)) {
                return s;
            }
        }
        throw new IllegalArgumentException("no module '" + module + "' in this harness");
    }

    List<Slot> slots() {
        return chain;
    }

    @Override
    public String toString() {
        return "harness " + info + " [" + state + "]";
    }

    // ---------------------------------------------------------------- the chain

    private void requireOpen() {
        if (state != State.OPEN) {
            throw new IllegalStateException(info + " is " + state + ": " + endReason);
        }
    }

    long outstanding() {
        long n = queuedInjectBytes.get();
        for (Slot s : chain) {
            n += s.held.get() + s.buffered.get();
        }
        return n;
    }

    /** Does everything that can be done now: queued actions, source chunks, ends; until nothing moves. */
    void run() {
        if (running) {
            return;
        }
        running = true;
        try {
            boolean progress = true;
            while (progress && state == State.OPEN) {
                progress = drainActions();
                if (state != State.OPEN) {
                    break;
                }
                for (Direction d : Direction.values()) {
                    ArrayDeque<byte[]> q = source.get(d.ordinal());
                    if (!q.isEmpty() && !isPaused(d)) {
                        byte[] chunk = q.poll();
                        sourceBytes[d.ordinal()] -= chunk.length;
                        if (d == Direction.SEND) {
                            info.addBytesSent(chunk.length);
                        } else {
                            info.addBytesReceived(chunk.length);
                        }
                        feed(first(d), d, chunk, 0, chunk.length, null);
                        progress = true;
                        break;
                    }
                }
                if (progress) {
                    continue;
                }
                for (Direction d : Direction.values()) {
                    int di = d.ordinal();
                    if (endRequested[di] && !endDone[di] && source.get(di).isEmpty()) {
                        progress |= advanceEnd(d);
                    }
                }
            }
        } finally {
            running = false;
        }
    }

    private boolean drainActions() {
        boolean progress = false;
        Action a;
        while (state == State.OPEN && (a = actions.peek()) != null) {
            if (a instanceof InjectAction ia && !writable[ia.direction().ordinal()]) {
                break; // the far side does not read: the injection waits, and what was asked after it too
            }
            actions.poll();
            progress = true;
            switch (a) {
                case InjectAction ia -> {
                    queuedInjectBytes.addAndGet(-ia.bytes().length);
                    feed(ia.from().index + step(ia.direction()), ia.direction(), ia.bytes(), 0, ia.bytes().length,
                            new Mark(ia.from().name(), ia.tag()));
                }
                case PassAction pa -> feed(pa.from().index + step(pa.direction()), pa.direction(), pa.bytes(), 0,
                        pa.bytes().length, pa.mark());
                case CloseAction ca -> finish(State.CLOSED, "closed by module " + ca.by().name());
                case AbortAction aa -> reset("aborted by module " + aa.by().name() + ": " + aa.reason());
            }
        }
        return progress;
    }

    private static int step(Direction d) {
        return d == Direction.SEND ? 1 : -1;
    }

    private int first(Direction d) {
        return d == Direction.SEND ? 0 : chain.size() - 1;
    }

    private boolean inChain(int i) {
        return i >= 0 && i < chain.size();
    }

    /**
     * Hands a chunk to the first active module at or after {@code i} in {@code d} that has a data hook for it, or out of
     * the chain; as in the agent, it queues behind the output still waiting of a module it passes.
     */
    private void feed(int i, Direction d, byte[] b, int off, int len, Mark mark) {
        if (state != State.OPEN || len == 0) {
            return;
        }
        while (inChain(i) && !takes(chain.get(i), d)) {
            Slot skipped = chain.get(i);
            if (!datagram && hasQueuedInjections(skipped, d)) {
                actions.add(new PassAction(skipped, d, Arrays.copyOfRange(b, off, off + len), mark));
                return;
            }
            i += step(d);
        }
        if (!inChain(i)) {
            out[d.ordinal()].write(b, off, len);
            if (datagram) {
                datagramsOut.get(d.ordinal()).add(Arrays.copyOfRange(b, off, off + len));
            }
            return;
        }
        Slot s = chain.get(i);
        int di = d.ordinal();
        if (s.wanted[di] > 0) {
            append(s, di, b, off, len);
            if (outstanding() > harness.holdLimit()) {
                reset("module " + s.name() + " waits for NEED_MORE(" + s.wanted[di] + ") with " + s.bufLen[di]
                        + " bytes buffered: the connection's held and buffered bytes exceed the hold limit of " + harness.holdLimit());
                return;
            }
            if (s.bufLen[di] < s.wanted[di]) {
                return;
            }
            // as in the agent, the whole view carries the mark of the chunk that completed it
            byte[] all = takeBuffer(s, di);
            b = all;
            off = 0;
            len = all.length;
        }
        callData(s, d, b, off, len, mark);
    }

    /** {@code s} is called for a chunk of {@code d}. */
    private boolean takes(Slot s, Direction d) {
        return s.active && (datagram ? s.entry.isDatagram() : s.entry.isStream() && s.entry.hasDataHook(d));
    }

    private void append(Slot s, int di, byte[] b, int off, int len) {
        byte[] buf = s.buf[di];
        if (buf == null || buf.length - s.bufLen[di] < len) {
            buf = Arrays.copyOf(buf == null ? new byte[0] : buf, Math.max(s.bufLen[di] + len, (buf == null ? 0 : buf.length) * 2));
            s.buf[di] = buf;
        }
        System.arraycopy(b, off, buf, s.bufLen[di], len);
        s.bufLen[di] += len;
        s.buffered.addAndGet(len);
    }

    private byte[] takeBuffer(Slot s, int di) {
        byte[] all = s.buf[di] == null ? new byte[0] : Arrays.copyOf(s.buf[di], s.bufLen[di]);
        s.buffered.addAndGet(-s.bufLen[di]);
        s.buf[di] = null;
        s.bufLen[di] = 0;
        s.wanted[di] = 0;
        return all;
    }

    private void callData(Slot s, Direction d, byte[] b, int off, int len, Mark mark) {
        String hook = d == Direction.SEND ? "onSend" : "onRecv";
        FakeByteView view = new FakeByteView(harness, s.name(), hook, b, off, len);
        FakeStreamContext ctx = new FakeStreamContext(this, s, hook, d, mark, b, off, len, view);
        Verdict v = null;
        Exception thrown = null;
        beginCall(s);
        try {
            if (datagram) {
                dev.interlayer.api.DatagramModule<Object> m = s.entry.datagram();
                v = d == Direction.SEND ? m.onSend(s.state, ctx, view) : m.onRecv(s.state, ctx, view);
            } else {
                StreamModule<Object> m = s.entry.stream();
                v = d == Direction.SEND ? m.onSend(s.state, ctx, view) : m.onRecv(s.state, ctx, view);
            }
        } catch (Exception e) {
            thrown = e;
        } finally {
            endCall(view, ctx);
        }
        calls.add(new Call(s.name(), hook, d, len, mark != null, mark == null ? null : mark.by(), mark == null ? 0 : mark.tag(), v));
        if (thrown != null) {
            releaseStray(ctx);
            fault(s, hook, thrown, ctx, () -> emit(s, s.index + step(d), d, b, off, len, mark));
            return;
        }
        apply(s, d, hook, v, ctx, b, off, len, mark);
    }

    private void beginCall(Slot s) {
        callSlot = s;
        callThread = Thread.currentThread();
        abortInCall = null;
    }

    private void endCall(FakeByteView view, FakeStreamContext ctx) {
        callSlot = null;
        callThread = null;
        view.invalidate();
        ctx.invalidate();
    }

    private static void releaseStray(FakeStreamContext ctx) {
        if (ctx.heldOrNull() != null) {
            ctx.heldOrNull().release();
        }
    }

    /** Carries out verdict {@code v} of {@code s} on a chunk (also for onEnd, where {@code b} is the rest). */
    private void apply(Slot s, Direction d, String hook, Verdict v, FakeStreamContext ctx, byte[] b, int off, int len, Mark mark) {
        FakeHeldBytes held = ctx.heldOrNull();
        byte[] replacement = ctx.replacementOrNull() != null ? ctx.replacementOrNull().toByteArray() : ctx.rewrittenOrNull();
        boolean end = hook.equals("onEnd");
        if (v == null) {
            releaseStray(ctx);
            throw harness.violation(s.name(), ContractViolation.Rule.NULL_VERDICT, hook + " returned null");
        }
        if (abortInCall != null) {
            String why = abortInCall;
            abortInCall = null;
            releaseStray(ctx);
            reset("aborted by module " + s.name() + ": " + why);
            Verdict.Kind k = v.kind();
            if (k != Verdict.Kind.DROP && k != Verdict.Kind.ERROR && k != Verdict.Kind.CLOSE) {
                throw harness.violation(s.name(), ContractViolation.Rule.VERDICT_AFTER_CLOSE,
                        "called attachment.abort() in " + hook + " and then returned " + v + " for a connection that is reset");
            }
            return;
        }
        if (held != null && v.kind() != Verdict.Kind.HOLD) {
            held.release();
            throw harness.violation(s.name(), ContractViolation.Rule.HOLD_CALL_WITHOUT_HOLD,
                    "called ctx.hold() in " + hook + " but returned " + v + "; the " + len + " held bytes would leak until detach");
        }
        if (end && v.kind() == Verdict.Kind.NEED_MORE) {
            releaseStray(ctx);
            throw harness.violation(s.name(), ContractViolation.Rule.END_VERDICT, "onEnd returned " + v + " after " + d + " ended");
        }
        int next = s.index + step(d);
        if (datagram && (v.kind() == Verdict.Kind.NEED_MORE || v.kind() == Verdict.Kind.CLOSE)) {
            releaseStray(ctx);
            fault(s, hook, new IllegalStateException("returned " + v + ", which has no meaning for a datagram; return PASS, DROP, HOLD,"
                    + " DETACH or ERROR" + (v.kind() == Verdict.Kind.CLOSE ? " (attachment.close() ends the flow)" : "")),
                    ctx, () -> feed(next, d, b, off, len, mark));
            return;
        }
        if (ctx.rewrote() && v.kind() == Verdict.Kind.NEED_MORE) {
            fault(s, hook, new IllegalStateException("called ctx.rewrite() and returned " + v + "; ask for more bytes first,"
                    + " rewrite them when they are all there"), ctx, () -> { });
            return;
        }
        if (datagram && replacement != null && replacement.length > MAX_DATAGRAM
                && (v.kind() == Verdict.Kind.PASS || v.kind() == Verdict.Kind.DETACH)) {
            fault(s, hook, new IllegalStateException("produced a " + replacement.length + "-byte datagram, over the UDP limit of "
                    + MAX_DATAGRAM + " bytes (the engine never truncates)"), () -> feed(next, d, b, off, len, mark));
            return;
        }
        switch (v.kind()) {
            case PASS -> forward(next, d, replacement, b, off, len, mark);
            case DROP -> { }
            case HOLD -> {
                if (held == null) {
                    throw harness.violation(s.name(), ContractViolation.Rule.HOLD_WITHOUT_HOLD_CALL,
                            hook + " returned HOLD without calling ctx.hold(): the " + len + " bytes of the chunk would be lost");
                }
            }
            case NEED_MORE -> {
                if (v.value() <= len) {
                    throw harness.violation(s.name(), ContractViolation.Rule.NEED_MORE_TOO_SMALL,
                            hook + " returned " + v + " but was given " + len + " bytes already");
                }
                int di = d.ordinal();
                append(s, di, b, off, len);
                s.wanted[di] = v.value();
                if (outstanding() > harness.holdLimit()) {
                    reset("module " + s.name() + " waits for " + v + " with " + s.bufLen[di]
                            + " bytes buffered: the connection's held and buffered bytes exceed the hold limit of " + harness.holdLimit());
                }
            }
            case DETACH -> {
                // as in the agent: what the module still held goes on first, then this chunk
                s.active = false;
                detach(s, DetachReason.VERDICT);
                forward(next, d, replacement, b, off, len, mark);
            }
            case ERROR -> reset("module " + s.name() + " returned " + v);
            case CLOSE -> finish(State.CLOSED, "module " + s.name() + " returned CLOSE");
        }
    }

    private void forward(int next, Direction d, byte[] replacement, byte[] b, int off, int len, Mark mark) {
        Slot from = inChain(next - step(d)) ? chain.get(next - step(d)) : null;
        if (replacement != null) {
            emit(from, next, d, replacement, 0, replacement.length, mark);
        } else {
            emit(from, next, d, b, off, len, mark);
        }
    }

    /** What {@code from} outputs goes on to {@code next} now, or behind its injections that still wait. */
    private void emit(Slot from, int next, Direction d, byte[] b, int off, int len, Mark mark) {
        if (from != null && hasQueuedInjections(from, d)) {
            actions.add(new PassAction(from, d, Arrays.copyOfRange(b, off, off + len), mark));
        } else {
            feed(next, d, b, off, len, mark);
        }
    }

    /** Moves the end of {@code d} through the chain as far as it may go now; true if it moved. */
    private boolean advanceEnd(Direction d) {
        int di = d.ordinal();
        boolean progress = false;
        if (endAt[di] == NOT_STARTED) {
            endAt[di] = first(d);
            progress = true;
        }
        while (state == State.OPEN) {
            int i = endAt[di];
            if (!inChain(i)) {
                // as in the agent: the SHUTDOWN event once the end has passed every module, and the close once both have
                endDone[di] = true;
                socketEvent(d == Direction.SEND ? ConnectionEvent.SEND_SHUTDOWN : ConnectionEvent.RECV_SHUTDOWN);
                if (endDone[0] && endDone[1]) {
                    finish(State.CLOSED, "both directions ended");
                }
                return true;
            }
            Slot s = chain.get(i);
            if (s.active && s.entry.isStream()) {
                // As in the agent: onEnd when the end reaches the module (after its last chunk); the end leaves it
                // once it holds nothing more in this direction and its queued output has gone on.
                if (!endCalled[di]) {
                    endCalled[di] = true;
                    progress = true;
                    // As in the agent, the rest is the module's own: unmarked in onEnd, and so is what goes on from it.
                    byte[] rest = takeBuffer(s, di);
                    if (s.entry.hasEndHook(d)) {
                        callEnd(s, d, rest);
                    } else if (rest.length > 0) {
                        // No onEnd for this direction (stream 1.0, not overridden, or no data hook for it): the NEED_MORE
                        // rest goes on unchanged rather than being lost, as the SDK's default onEnd would pass it.
                        emit(s, i + step(d), d, rest, 0, rest.length, null);
                    }
                    if (state != State.OPEN) {
                        return progress;
                    }
                }
                if (heldIn(s, d) > 0 || hasQueuedInjections(s, d)) {
                    return progress; // held or queued data of this module goes before the end
                }
            }
            endCalled[di] = false;
            s.endPassed[di] = true;
            endAt[di] = i + step(d);
            progress = true;
        }
        return progress;
    }

    /** Bytes {@code s} holds (HOLD) in direction {@code d}. */
    private static long heldIn(Slot s, Direction d) {
        long n = 0;
        for (FakeHeldBytes h : s.holds) {
            if (h.direction() == d && h.isHeld()) n += h.length();
        }
        return n;
    }

    private boolean hasQueuedInjections(Slot s, Direction d) {
        for (Action a : actions) {
            if (a instanceof InjectAction ia && ia.from() == s && ia.direction() == d
                    || a instanceof PassAction pa && pa.from() == s && pa.direction() == d) {
                return true;
            }
        }
        return false;
    }

    private void callEnd(Slot s, Direction d, byte[] rest) {
        FakeByteView view = new FakeByteView(harness, s.name(), "onEnd", rest, 0, rest.length);
        FakeStreamContext ctx = new FakeStreamContext(this, s, "onEnd", d, null, rest, 0, rest.length, view);
        Verdict v = null;
        Exception thrown = null;
        beginCall(s);
        try {
            v = s.entry.stream().onEnd(s.state, ctx, view);
        } catch (Exception e) {
            thrown = e;
        } finally {
            endCall(view, ctx);
        }
        calls.add(new Call(s.name(), "onEnd", d, rest.length, false, null, 0, v));
        if (thrown != null) {
            releaseStray(ctx);
            fault(s, "onEnd", thrown, ctx, () -> emit(s, s.index + step(d), d, rest, 0, rest.length, null));
            return;
        }
        apply(s, d, "onEnd", v, ctx, rest, 0, rest.length, null);
    }

    // ---------------------------------------------------------------- module requests

    /**
     * Queues bytes {@code from} injects; false (nothing sent) once the connection is closed, the module detached, or the
     * end of {@code d} has passed the module, as in the agent. {@code fresh}: new bytes, not held ones, which count
     * against the hold limit (held ones were counted while held).
     */
    boolean enqueueInject(Slot from, Direction d, byte[] bytes, long tag, boolean fresh) {
        if (state != State.OPEN || !from.active || from.endPassed[d.ordinal()]) {
            return false;
        }
        if (fresh) {
            long after = outstanding() + bytes.length;
            if (after > harness.holdLimit()) {
                throw harness.violation(from.name(), ContractViolation.Rule.INJECT_BEYOND_HOLD_LIMIT,
                        "injecting " + bytes.length + " bytes " + d + " would make " + after + " bytes held, buffered or queued on "
                                + info + ", over the hold limit of " + harness.holdLimit() + "; inject while attachment.isWritable(" + d + ")");
            }
        }
        queuedInjectBytes.addAndGet(bytes.length);
        injections.add(new Injection(from.name(), d, bytes.length, tag));
        actions.add(new InjectAction(from, d, bytes, tag));
        return true;
    }

    void enqueueClose(Slot by) {
        actions.add(new CloseAction(by));
    }

    void requestAbort(Slot by, String reason) {
        if (callSlot == by && callThread == Thread.currentThread()) {
            abortInCall = reason == null ? "" : reason; // carried out as soon as the hook returns
        } else {
            actions.add(new AbortAction(by, reason));
        }
    }

    void runTimer(Slot s, Runnable task) {
        if (!s.active || state != State.OPEN) {
            return;
        }
        try {
            task.run();
        } catch (ContractViolation v) {
            throw v;
        } catch (RuntimeException e) {
            fault(s, "timer", e, () -> { });
        }
        run();
    }

    // ---------------------------------------------------------------- faults, close, detach

    /**
     * A fault in a data call: after {@code ctx.rewrite()} the bytes may be half rewritten, so, as in the engine, a
     * stream is reset whatever the policy and a fail-open datagram flow loses the datagram.
     */
    private void fault(Slot s, String where, Exception e, FakeStreamContext ctx, Runnable failOpen) {
        if (!ctx.rewrote()) {
            fault(s, where, e, failOpen);
        } else if (datagram) {
            fault(s, where, e, () -> { });
        } else {
            harness.recordFault(s.name(), where, e);
            reset("module " + s.name() + " faulted in " + where + " after ctx.rewrite() (the chunk may be half rewritten, so it"
                    + " cannot be passed on unchanged): " + e);
        }
    }

    private void fault(Slot s, String where, Exception e, Runnable failOpen) {
        harness.recordFault(s.name(), where, e);
        if (s.entry.policy() == FaultPolicy.FAIL_OPEN) {
            detach(s, DetachReason.FAULT);
            failOpen.run();
        } else {
            reset("module " + s.name() + " faulted in " + where + " (fail-closed): " + e);
        }
    }

    /**
     * Sends on what a module leaving an open connection still held (oldest first) and then what it had buffered for
     * NEED_MORE, as if it had passed them, behind its queued injections: as in the agent, a detach loses nothing. They go
     * on unmarked, as the agent passes them.
     */
    private void passOnWhatItKept(Slot s) {
        s.active = false;
        for (Direction d : Direction.values()) {
            for (FakeHeldBytes h : s.holds) {
                if (h.direction() == d && h.take()) {
                    actions.add(new PassAction(s, d, h.bytes(), null));
                }
            }
            if (s.bufLen[d.ordinal()] > 0) {
                actions.add(new PassAction(s, d, takeBuffer(s, d.ordinal()), null));
            }
        }
    }

    private void detach(Slot s, DetachReason reason) {
        if (!s.attached) {
            return;
        }
        if (s.detaches > 0) {
            s.detaches++;
            throw harness.violation(s.name(), ContractViolation.Rule.DETACH_NOT_EXACTLY_ONCE,
                    "detach would run a second time on " + info + " (first " + s.detachReason + ", now " + reason + ")");
        }
        if (reason != DetachReason.CLOSED && state == State.OPEN && !datagram) {
            passOnWhatItKept(s); // a held datagram is the module's own, as in the agent: released below
        }
        s.active = false;
        s.detaches = 1;
        s.detachReason = reason;
        harness.clock().cancelAll(s.attachment);
        for (FakeHeldBytes h : s.holds) {
            h.release();
        }
        s.holds.clear();
        for (int di = 0; di < 2; di++) {
            takeBuffer(s, di);
        }
        try {
            s.entry.module().detach(s.state, reason);
        } catch (RuntimeException e) {
            harness.recordFault(s.name(), "detach", e);
        }
    }

    private void socketEvent(ConnectionEvent event) {
        for (Slot s : chain) {
            if (s.active && s.entry.isSocket()) {
                try {
                    s.entry.socket().onEvent(s.state, s.attachment, event);
                } catch (RuntimeException e) {
                    fault(s, "onEvent(" + event + ")", e, () -> { });
                }
            }
        }
    }

    private void reset(String reason) {
        finish(State.RESET, reason);
    }

    private void finish(State to, String reason) {
        if (state != State.OPEN) {
            return;
        }
        state = to;
        endReason = reason;
        for (ArrayDeque<byte[]> q : source) {
            q.clear();
        }
        sourceBytes[0] = 0;
        sourceBytes[1] = 0;
        actions.clear();
        queuedInjectBytes.set(0);
        for (Slot s : chain) {
            if (s.active && s.entry.isSocket()) {
                try {
                    s.entry.socket().onEvent(s.state, s.attachment, ConnectionEvent.CLOSING);
                } catch (RuntimeException e) {
                    harness.recordFault(s.name(), "onEvent(CLOSING)", e);
                }
            }
        }
        for (Slot s : chain) {
            if (s.active) {
                detach(s, DetachReason.CLOSED);
            }
        }
    }
}
