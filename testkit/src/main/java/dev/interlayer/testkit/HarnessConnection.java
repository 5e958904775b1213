package dev.interlayer.testkit;

import dev.interlayer.api.ConnectionEvent;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.OptionDecision;
import dev.interlayer.api.Protocol;
import dev.interlayer.api.Side;
import dev.interlayer.api.SocketDecision;
import dev.interlayer.api.SocketOption;
import dev.interlayer.api.Verdict;
import dev.interlayer.engine.EmbeddedConnection;
import dev.interlayer.engine.EmbeddedEngine;
import dev.interlayer.engine.EmbeddedFlow;
import dev.interlayer.runtime.LoadedModule;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One connection running through a {@link ModuleHarness}'s chain, with no sockets: the test plays both the
 * local application and the network, and reads what came out of each end.
 *
 * <pre>
 *   send(bytes)  --SEND-->  [ module 0 ] --> [ module 1 ] --> [ module 2 ]  -->  sent()
 *   received()  <--RECV--   [ module 0 ] <-- [ module 1 ] <-- [ module 2 ]  <--  recv(bytes)
 * </pre>
 *
 * <p>It is the agent's own connection (the engine's, between embedded channels instead of sockets), so everything the
 * modules see and do follows the agent exactly. Each call to {@link #send} or {@link #recv} is one chunk read from
 * that side's socket; each module sees the previous module's output. While the connection's modules hold more than
 * the harness's high-water mark, or while a direction is made unwritable with {@link #writable(Direction, boolean)},
 * the engine stops reading that source and chunks given to {@code send}/{@code recv} wait there
 * ({@link #pendingSource(Direction)}). A direction's end ({@link #end(Direction)}) reaches each module after the data
 * before it ({@code onEnd}), and once both ends have come out the connection closes, as in the agent.
 *
 * <p>A connection whose {@link FakeConnection#protocol(dev.interlayer.api.Protocol)} is {@code UDP} is a datagram
 * flow: the chain is the harness's {@link dev.interlayer.api.DatagramModule}s (and socket modules), each
 * {@code send}/{@code recv} is one datagram, what comes out is listed per datagram by {@link #sentDatagrams()} and
 * {@link #receivedDatagrams()}, and {@code end} does not exist (close the flow instead), as in the agent.
 *
 * <p>Threading: drive it from the test thread. Modules may inject, close and abort from any thread; those effects run
 * during the next harness operation ({@link #drain()} runs them explicitly).
 *
 * <pre>{@code
 * HarnessConnection conn = ModuleHarness.of(new TagModule()).param("every", 4).attach();
 * conn.send("abcdefgh");
 * assertEquals("abcd" + TAG + "efgh" + TAG, conn.sentText());
 * conn.close();
 * }</pre>
 */
public final class HarnessConnection implements AutoCloseable {

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
     * @param verdict what the module returned (null if it threw or returned null)
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

    private final ModuleHarness harness;
    private final FakeConnection info;
    private final boolean datagram;
    private EmbeddedEngine engine;
    private EmbeddedConnection conn;
    private EmbeddedFlow flow;
    private final List<Call> calls = Collections.synchronizedList(new ArrayList<>());
    private final List<Injection> injections = Collections.synchronizedList(new ArrayList<>());
    private final Map<String, Integer> detaches = new HashMap<>();
    private final Map<String, DetachReason> detachReasons = new HashMap<>();
    private final Set<String> attachedAtStart = new LinkedHashSet<>();
    private final boolean[] endRequested = new boolean[2];
    private final boolean[] writable = {true, true};
    /** Per direction, how much of what came out {@link #take} has handed over already. */
    private final int[] taken = new int[2];

    HarnessConnection(ModuleHarness harness, FakeConnection info) {
        this.harness = harness;
        this.info = info;
        this.datagram = info.protocol() == Protocol.UDP;
    }

    /** Opens the engine's connection or flow and attaches {@code chain}, as the agent does before any data flows. */
    void open(EmbeddedEngine engine, List<LoadedModule> chain) {
        this.engine = engine;
        if (datagram) {
            flow = engine.flow(info, chain);
        } else {
            conn = engine.connect(info, chain);
        }
        for (LoadedModule m : chain) {
            if (isAttached(m.name()) || detachCount(m.name()) > 0) {
                attachedAtStart.add(m.name());
            }
        }
    }

    /** The connection's description, whose byte counters the harness keeps as the agent counts its own. */
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
        byte[] copy = Arrays.copyOfRange(bytes, off, off + len);
        harness.operation(() -> {
            if (datagram) {
                flow.read(d, copy);
            } else if (len > 0) {
                conn.read(d, copy);
            }
        });
        return run();
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
        if (!endRequested[direction.ordinal()]) {
            endRequested[direction.ordinal()] = true;
            harness.operation(() -> conn.endInput(direction));
        }
        return run();
    }

    /** Moves the harness's virtual clock forward, firing every timer that falls due (see {@link ModuleHarness#advance}). */
    public HarnessConnection advance(java.time.Duration by) {
        harness.advance(by);
        return this;
    }

    /** Carries out what modules asked for from other threads (injections, close, abort). */
    public HarnessConnection drain() {
        return run();
    }

    private HarnessConnection run() {
        harness.operation(engine::runUntilIdle);
        countBytes();
        harness.rethrowPending();
        return this;
    }

    /** Brings the description's byte counters to the engine's: bytes read from each side, as the agent counts them. */
    private void countBytes() {
        var live = datagram ? flow.info() : conn.info();
        info.addBytesSent(live.bytesSent() - info.bytesSent());
        info.addBytesReceived(live.bytesReceived() - info.bytesReceived());
    }

    /** Closes the connection from outside (both ends closed): every attached module is detached with CLOSED. */
    @Override
    public void close() {
        closeQuietly();
        harness.rethrowPending();
    }

    void closeQuietly() {
        if (engine == null) return;
        harness.operation(() -> {
            engine.runUntilIdle();
            if (datagram) flow.close(); else conn.close();
        });
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
        requireModule(module);
        harness.operation(() -> {
            if (datagram) flow.detach(module); else conn.detach(module);
        });
        return run();
    }

    /** Delivers an observe-only event to every attached module with an event hook. */
    public HarnessConnection event(ConnectionEvent event) {
        requireOpen();
        harness.operation(() -> {
            if (datagram) flow.fire(event); else conn.fire(event);
        });
        return run();
    }

    /**
     * Makes the far side of {@code direction} stop or resume reading, as a peer with a full receive window: the engine
     * stops reading the source of {@code direction} once its output there backs up, modules see
     * {@code attachment.isWritable(direction)} false, and socket modules get the matching {@link ConnectionEvent}.
     */
    public HarnessConnection writable(Direction direction, boolean value) {
        requireStream("writable");
        writable[direction.ordinal()] = value;
        harness.operation(() -> conn.writable(direction, value));
        return run();
    }

    /** Runs the connect decision through the socket modules in chain order and returns the outcome. */
    public SocketDecision connect(InetSocketAddress target) {
        requireOpen();
        requireStream("connect");
        SocketDecision d = harness.operation(() -> conn.connect(target));
        run();
        return d;
    }

    /** Runs the bind decision (null = ephemeral) through the socket modules in chain order and returns the outcome. */
    public SocketDecision bind(InetSocketAddress local) {
        requireOpen();
        requireStream("bind");
        SocketDecision d = harness.operation(() -> conn.bind(local));
        run();
        return d;
    }

    /** Runs a set-option decision through the socket modules; returns ALLOW, DENY, or MODIFY with the final value. */
    public OptionDecision setOption(Side side, SocketOption option, Object value) {
        requireOpen();
        requireStream("setOption");
        OptionDecision d = harness.operation(() -> conn.setOption(side, option, value));
        run();
        return d;
    }

    /**
     * Reads {@code option} on {@code side} through the socket modules' {@code onGetOption} and returns the value they
     * report; {@code value} stands for what the socket says (an embedded channel has no real socket options).
     */
    public Object getOption(Side side, SocketOption option, Object value) {
        requireOpen();
        requireStream("getOption");
        Object v = harness.operation(() -> conn.getOption(side, option, value));
        run();
        return v;
    }

    // ---------------------------------------------------------------- results

    /** Bytes that came out of the chain on the network side (a copy). */
    public byte[] sent() {
        return out(Direction.SEND);
    }

    /** Bytes that came out of the chain on the application side (a copy). */
    public byte[] received() {
        return out(Direction.RECV);
    }

    private byte[] out(Direction d) {
        if (datagram) {
            return concat(flow.delivered(d));
        }
        byte[] all = conn.delivered(d);
        return Arrays.copyOfRange(all, taken[d.ordinal()], all.length);
    }

    private static byte[] concat(List<byte[]> datagrams) {
        int n = 0;
        for (byte[] b : datagrams) n += b.length;
        byte[] out = new byte[n];
        int at = 0;
        for (byte[] b : datagrams) {
            System.arraycopy(b, 0, out, at, b.length);
            at += b.length;
        }
        return out;
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
        return flow.delivered(d);
    }

    /** {@link #sent()} decoded as UTF-8. */
    public String sentText() {
        return new String(sent(), StandardCharsets.UTF_8);
    }

    /** {@link #received()} decoded as UTF-8. */
    public String receivedText() {
        return new String(received(), StandardCharsets.UTF_8);
    }

    /** Number of bytes that came out of the chain in {@code direction} (taken ones included). */
    public long delivered(Direction direction) {
        return datagram ? concat(flow.delivered(direction)).length : conn.delivered(direction).length;
    }

    /** Takes the bytes that came out in {@code direction} so far and forgets them (for long-running tests). */
    public byte[] take(Direction direction) {
        requireStream("take");
        byte[] b = out(direction);
        taken[direction.ordinal()] += b.length;
        return b;
    }

    /** True once the end of {@code direction} has come out of the chain (the engine sent its FIN). */
    public boolean ended(Direction direction) {
        return !datagram && conn.finSent(direction);
    }

    /** Every data-hook call so far, in order. */
    public List<Call> calls() {
        synchronized (calls) {
            return List.copyOf(calls);
        }
    }

    /** The verdicts {@code module} returned, in order. */
    public List<Verdict> verdicts(String module) {
        List<Verdict> v = new ArrayList<>();
        for (Call c : calls()) {
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

    /** Bytes held (HOLD) and buffered (NEED_MORE) on this connection: what the hold limit bounds. */
    public long heldBytes() {
        return datagram ? flow.heldBytes() : conn.heldBytes();
    }

    /** Bytes {@code module} holds or has buffered on this connection. */
    public long heldBytes(String module) {
        requireModule(module);
        return datagram ? flow.heldBytes(module) : conn.heldBytes(module);
    }

    /** Bytes given to send/recv that wait in the source because the engine does not read it (back-pressure). */
    public long pendingSource(Direction direction) {
        return datagram ? 0 : conn.pendingSource(direction);
    }

    /** True while the engine does not read {@code direction}'s source (back-pressure). */
    public boolean isPaused(Direction direction) {
        return !datagram && conn.isPaused(direction);
    }

    /** True while the far side of {@code direction} takes bytes (see {@link #writable(Direction, boolean)}). */
    public boolean isWritable(Direction direction) {
        return writable[direction.ordinal()];
    }

    /** The connection's state. */
    public State state() {
        if (isOpen()) return State.OPEN;
        return (datagram ? flow.wasAborted() : conn.wasReset()) ? State.RESET : State.CLOSED;
    }

    /** True while the connection is open. */
    public boolean isOpen() {
        return datagram ? flow.isOpen() : conn.isOpen();
    }

    /** True once reset. */
    public boolean isReset() {
        return state() == State.RESET;
    }

    /** Why the connection closed or was reset (names the module), or null while open. */
    public String closeReason() {
        return datagram ? flow.closeReason() : conn.closeReason();
    }

    /** True while {@code module} is attached to this connection. */
    public boolean isAttached(String module) {
        requireModule(module);
        return datagram ? flow.isAttached(module) : conn.isAttached(module);
    }

    /** Why {@code module} was detached, or null if it is still attached or never was. */
    public DetachReason detachReason(String module) {
        requireModule(module);
        synchronized (detaches) {
            return detachReasons.get(module);
        }
    }

    /** How many times {@code module}'s detach ran for this connection (the contract says exactly once per attach). */
    public int detachCount(String module) {
        requireModule(module);
        synchronized (detaches) {
            return detaches.getOrDefault(module, 0);
        }
    }

    /** Timers {@code module} has pending on this connection. */
    public int pendingTimers(String module) {
        requireModule(module);
        return datagram ? flow.pendingTimers(module) : conn.pendingTimers(module);
    }

    @Override
    public String toString() {
        return "harness " + info + " [" + (engine == null ? "not open" : state()) + "]";
    }

    // ---------------------------------------------------------------- from the engine's trace

    void called(String module, String hook, Direction direction, int length, String injectedBy, long tag, Verdict verdict) {
        calls.add(new Call(module, hook, direction, length, injectedBy != null, injectedBy, tag, verdict));
    }

    void injected(String module, Direction direction, int length, long tag) {
        injections.add(new Injection(module, direction, length, tag));
    }

    void detached(String module, DetachReason reason) {
        synchronized (detaches) {
            detaches.merge(module, 1, Integer::sum);
            detachReasons.put(module, reason);
        }
    }

    Set<String> attachedAtStart() {
        return attachedAtStart;
    }

    // ---------------------------------------------------------------- checks

    private void requireOpen() {
        if (!isOpen()) {
            throw new IllegalStateException(info + " is " + state() + ": " + closeReason());
        }
    }

    private void requireStream(String what) {
        if (datagram) {
            throw new IllegalStateException(what + " is for TCP connections; " + info + " is a UDP flow");
        }
    }

    private void requireModule(String module) {
        if (!harness.hasModule(module)) {
            throw new IllegalArgumentException("no module '" + module + "' in this harness");
        }
    }
}
