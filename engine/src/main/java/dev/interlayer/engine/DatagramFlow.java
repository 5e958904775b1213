package dev.interlayer.engine;

import dev.interlayer.api.AppInfo;
import dev.interlayer.api.Attach;
import dev.interlayer.api.ConnectionEvent;
import dev.interlayer.api.ConnectionInfo;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.Protocol;
import dev.interlayer.api.Role;
import dev.interlayer.api.SocketDecision;
import dev.interlayer.api.Verdict;
import dev.interlayer.runtime.HookPreempted;
import dev.interlayer.runtime.Hooks;
import dev.interlayer.runtime.LoadedModule;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.socket.DatagramPacket;
import io.netty.util.ReferenceCountUtil;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.net.PortUnreachableException;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One UDP flow: the datagrams between one peer address of a {@link UdpListener} and the upstream, through the
 * chain of attached {@link dev.interlayer.api.DatagramModule}s, over the flow's own connected upstream socket.
 *
 * <pre>
 *  client role:  app ──▶ [listener] ──▶ SEND: att[0] → … → att[n-1] ──▶ [upstream socket] ──▶ network
 *                app ◀── [listener] ◀── RECV: att[0] ← … ← att[n-1] ◀── [upstream socket] ◀── network
 *  server role:  the peer at the listener is the network (RECV in), the upstream is the local app (SEND in)
 * </pre>
 *
 * <p>One datagram in is one module call per module and at most one datagram out: boundaries are kept, a
 * datagram larger than {@link #MAX_DATAGRAM} bytes is never sent (a module producing one has faulted). There is no
 * back-pressure in UDP: a datagram whose target socket is over its write high-water mark is dropped and
 * counted, as a full kernel buffer would drop it, so memory stays bounded.
 *
 * <p>Threading: the listener's channel and every flow's upstream channel live on one event loop; every method
 * except {@link #inject}, {@link #execute} and the counters' readers runs on it.
 */
final class DatagramFlow implements Connection {

    private static final System.Logger LOG = System.getLogger("interlayer.engine");
    /** Largest UDP payload over IPv4: 65,535 − 8 (UDP header) − 20 (IPv4 header). */
    static final int MAX_DATAGRAM = 65_507;
    /** Datagrams kept while the upstream socket is being set up (a few microseconds); more are dropped. */
    private static final int MAX_EARLY = 64;
    static final int SEND = 0;
    static final int RECV = 1;

    private final Engine engine;
    private final UdpListener listener;
    private final long id;
    private final ListenerSpec spec;
    private final InetSocketAddress peer;
    private final EventLoop loop;
    private final Watchdog.Slot slot;
    private final Instant startedAt = Instant.now();
    private final long holdLimit;
    /** The direction of datagrams that arrive from the peer at the listener. */
    private final int fromPeer;

    private Channel upstream;
    private InetSocketAddress upstreamTarget;
    /** The local application's socket of a client-role flow: the peer, or an intercepted flow's original source. */
    private InetSocketAddress appSocket;
    /** The attached modules and the rules shared with the stream path; the datagram hooks are below. */
    private final ModuleChain<DatagramAttachment> mods;
    private final int[] hookCount = new int[2];
    private ArrayDeque<Runnable> early = new ArrayDeque<>();
    private boolean connected;
    /** The upstream socket has writes not yet flushed; the listener flushes them at the end of the loop's pass. */
    private boolean upstreamUnflushed;
    private volatile boolean closed;
    private boolean aborted;
    private String closeReason;
    private final AtomicLong held = new AtomicLong();
    private final AtomicLong inflight = new AtomicLong();
    private volatile long lastActive = System.nanoTime();
    private volatile long bytesSent;
    private volatile long bytesReceived;
    private final long[] datagrams = new long[2];
    private final long[] dropped = new long[2];
    private volatile AppInfo app;
    private boolean appLooked;

    /** The engine's chain trace (the testkit's), or null. */
    private final ChainTrace trace;

    DatagramFlow(Engine engine, UdpListener listener, long id, InetSocketAddress peer, Watchdog.Slot slot, long holdLimit) {
        this.mods = new ModuleChain<>(new Host(), slot, DatagramAttachment[]::new);
        this.engine = engine;
        this.trace = engine.trace;
        this.listener = listener;
        this.id = id;
        this.spec = listener.spec();
        this.peer = peer;
        this.loop = listener.loop();
        this.slot = slot;
        this.holdLimit = holdLimit;
        this.upstreamTarget = spec.upstream();
        this.appSocket = peer;
        this.fromPeer = spec.role() == Role.CLIENT ? SEND : RECV;
    }

    // ---- ConnectionInfo ---------------------------------------------------------------------------

    @Override public long id() { return id; }
    @Override public Protocol protocol() { return Protocol.UDP; }
    @Override public String listener() { return spec.name(); }
    @Override public Role role() { return spec.role(); }
    @Override public Instant startedAt() { return startedAt; }
    @Override public long bytesSent() { return bytesSent; }
    @Override public long bytesReceived() { return bytesReceived; }

    @Override
    public InetSocketAddress localAddress() {
        return spec.role() == Role.CLIENT ? appSocket : upstreamTarget;
    }

    @Override
    public InetSocketAddress remoteAddress() {
        return spec.role() == Role.CLIENT ? upstreamTarget : peer;
    }

    @Override
    public AppInfo app() {
        if (!appLooked) {
            InetSocketAddress[] socket = localSocket();
            if (socket != null) {
                appLooked = true;
                // the /proc scan is the agent's work, not the asking module's: not charged to its time budget or alloc-limit
                app = Watchdog.agentWork(slot, () -> ProcLookup.findUdp(socket[0], socket[1]));
            }
        }
        return app;
    }

    @Override
    public int socketUid() {
        if (appLooked) return app == null ? -1 : app.uid();
        InetSocketAddress[] socket = localSocket();
        return socket == null ? -1 : Watchdog.agentWork(slot, () -> ProcLookup.udpUid(socket[0], socket[1]));
    }

    /** The local application's socket as {its address, where it sends}; null before the upstream socket is set up (server role). */
    private InetSocketAddress[] localSocket() {
        if (spec.role() == Role.CLIENT) {
            // the application's socket sent to the listener, or, intercepted, to the original destination
            return new InetSocketAddress[] {appSocket, spec.intercepts() ? upstreamTarget : listener.boundAddress()};
        }
        if (upstream != null && upstream.localAddress() != null) {
            return new InetSocketAddress[] {upstreamTarget, (InetSocketAddress) upstream.localAddress()};
        }
        return null;
    }

    InetSocketAddress peer() { return peer; }
    ByteBufAllocator alloc() { return Engine.ALLOCATOR; }
    long holdLimit() { return holdLimit; }
    ChainTrace trace() { return trace; }
    @Override public EventLoop loop() { return loop; }
    @Override public boolean isClosed() { return closed; }
    String closeReason() { return closeReason; }
    long lastActive() { return lastActive; }
    long heldNow() { return held.get() + inflight.get(); }

    /** Datagrams that entered the flow, [SEND, RECV]. */
    long[] datagrams() { return datagrams.clone(); }

    /** Datagrams dropped because their target socket was backed up or not ready, [SEND, RECV]. */
    long[] dropped() { return dropped.clone(); }

    @Override
    public void execute(Runnable r) {
        Engine.runOn(loop, r);
    }

    @Override
    public List<String> moduleIds() {
        return mods.moduleIds();
    }

    // ---- setup ------------------------------------------------------------------------------------

    /** Attaches the modules, runs the socket modules' connect and bind decisions and sets up the upstream socket. */
    void start(List<LoadedModule> modules) {
        if (!mods.attachAll(modules)) return;
        recount();
        InetSocketAddress[] tb = mods.connectAndBind(upstreamTarget);
        if (tb == null) return;
        InetSocketAddress target = tb[0];
        InetSocketAddress bind = tb[1];
        upstreamTarget = target;
        Bootstrap b = new Bootstrap()
                .group(loop)
                .channel(listener.channelClass())
                .option(ChannelOption.ALLOCATOR, Engine.ALLOCATOR)
                .option(ChannelOption.RCVBUF_ALLOCATOR, UdpListener.RECV)
                .option(ChannelOption.WRITE_BUFFER_WATER_MARK, Engine.WATER_MARK)
                .handler(new UpstreamHandler());
        UdpListener.applyOptions(b, spec);
        ChannelFutureListener done = f -> {
            if (!f.isSuccess()) {
                f.channel().close();
                close("cannot set up the upstream socket to " + target + ": " + f.cause().getMessage());
                return;
            }
            if (closed) {
                f.channel().close();
                return;
            }
            connected(f.channel());
        };
        if (!spec.intercepts()) {
            (bind == null ? b.connect(target) : b.connect(target, bind)).addListener(done);
            return;
        }
        b.register().addListener((ChannelFutureListener) f -> {
            if (!f.isSuccess()) {
                done.operationComplete(f);
                return;
            }
            // marked before it sends, or never sending: the redirect rule skips marked packets, so no datagram of an
            // intercepting listener can come back to it (a loop)
            int r = Intercepted.mark(f.channel(), spec.interceptMark());
            if (r != 0) {
                f.channel().close();
                close("cannot mark the socket to " + target + " (SO_MARK: " + LinuxSockets.describe(-r) + "); the agent needs"
                        + " CAP_NET_ADMIN to intercept");
                return;
            }
            (bind == null ? f.channel().connect(target) : f.channel().connect(target, bind)).addListener(done);
        });
    }

    /**
     * An intercepted flow: its upstream is {@code destination}, where the peer's datagram was going before the redirect,
     * and the application's socket is {@code source} (the peer, unless the kernel gave the flow a port of its own).
     */
    void intercepted(InetSocketAddress source, InetSocketAddress destination) {
        appSocket = source;
        upstreamTarget = destination;
    }

    /**
     * Attaches the modules to a flow whose upstream socket is {@code upstream}, registered on this flow's loop, with
     * this flow's handler in its pipeline: the testkit's {@link EmbeddedFlow}, which has no socket to set up.
     */
    void startConnected(List<LoadedModule> modules, Channel upstream) {
        if (!mods.attachAll(modules)) return;
        recount();
        upstream.pipeline().addLast(new UpstreamHandler());
        connected(upstream);
    }

    private void connected(Channel ch) {
        upstream = ch;
        connected = true;
        mods.fireEvent(ConnectionEvent.CONNECTED);
        ArrayDeque<Runnable> q = early;
        early = null;
        while (!q.isEmpty() && !closed) q.poll().run();
        q.clear();
    }

    ModuleChain<DatagramAttachment> chain() {
        return mods;
    }

    /** Sets the local application behind the flow instead of looking it up in /proc. */
    void knownApp(AppInfo app) {
        this.app = app;
        this.appLooked = true;
    }

    /** Attaches a module to this open flow (apply now, programmatic attach); on the event loop. */
    @Override
    public boolean attach(LoadedModule m) {
        if (mods.attachLater(m, connected) == null) return false;
        recount();
        return true;
    }

    @Override
    public boolean detach(String moduleName, DetachReason reason) {
        DatagramAttachment a = mods.find(moduleName);
        if (a == null) return false;
        detach(a, reason);
        return true;
    }

    /** Runs the module's detach exactly once and releases what the attachment held; on the event loop. */
    void detach(DatagramAttachment a, DetachReason reason) {
        mods.detach(a, reason);
    }

    /** The flow's side of its {@link ModuleChain}. */
    private final class Host implements ModuleChain.Host<DatagramAttachment> {
        @Override public long id() { return id; }
        @Override public DatagramAttachment newLink(LoadedModule m) { return new DatagramAttachment(DatagramFlow.this, m); }
        @Override public boolean isClosed() { return closed; }
        @Override public void abort(String reason) { DatagramFlow.this.abort(reason); }
        @Override public void detaching(DatagramAttachment link) {
            // a datagram a module held is its own: released with the attachment (a datagram may be lost)
        }
        @Override public void detached(DatagramAttachment link) { recount(); }
    }

    private void recount() {
        hookCount[SEND] = mods.count(Hooks.DATAGRAM_SEND);
        hookCount[RECV] = mods.count(Hooks.DATAGRAM_RECV);
    }

    private int next(DatagramAttachment a, int d) {
        int i = mods.indexOf(a);
        if (i >= 0) return d == SEND ? i + 1 : i - 1;
        return d == SEND ? mods.links().length : -1;
    }

    // ---- data path --------------------------------------------------------------------------------

    /** A datagram from the peer at the listener (owned). */
    void fromPeer(ByteBuf buf) {
        onDatagram(fromPeer, buf);
    }

    private void onDatagram(int d, ByteBuf buf) {
        int n = buf.readableBytes();
        if (d == SEND) bytesSent += n; else bytesReceived += n;
        datagrams[d]++;
        lastActive = System.nanoTime();
        if (closed) {
            buf.release();
            return;
        }
        if (!connected) {
            if (early.size() >= MAX_EARLY) {
                dropped[d]++;
                buf.release();
                return;
            }
            early.add(() -> process(d, buf));
            return;
        }
        process(d, buf);
    }

    private void process(int d, ByteBuf buf) {
        if (closed) {
            buf.release();
            return;
        }
        if (hookCount[d] == 0) {
            writeOut(d, buf); // fast path: no module has a datagram hook in this direction
            return;
        }
        forward(d, buf, d == SEND ? 0 : mods.links().length - 1, null, 0);
    }

    /** Passes one datagram (owned) through the chain in direction {@code d} from index {@code start}, then sends it. */
    private void forward(int d, ByteBuf buf, int start, String injectedBy, long tag) {
        DatagramAttachment[] c = mods.links();
        int step = d == SEND ? 1 : -1;
        for (int i = start; i >= 0 && i < c.length; i += step) {
            DatagramAttachment a = c[i];
            if (!a.wants(d)) continue;
            buf = call(a, d, buf, injectedBy, tag);
            if (buf == null) return;
        }
        writeOut(d, buf);
    }

    /** Calls {@code a}'s datagram hook on {@code in} (owned); returns the datagram to pass on (owned), or null. */
    private ByteBuf call(DatagramAttachment a, int d, ByteBuf in, String injectedBy, long tag) {
        Direction dir = d == SEND ? Direction.SEND : Direction.RECV;
        String hook = d == SEND ? "onSend" : "onRecv";
        RealDatagramContext ctx = a.ctx;
        int len = in.readableBytes();
        a.chunks[d]++;
        a.bytesIn[d] += len;
        a.view.lend(in, hook);
        ctx.begin(dir, in, injectedBy, tag);
        Verdict v;
        Throwable thrown = null;
        long s = slot.enter(a, hook);
        Thread t = Thread.currentThread();
        ClassLoader prev = t.getContextClassLoader();
        t.setContextClassLoader(a.lm.loader());
        a.clock.start();
        try {
            v = d == SEND ? a.datagram.onSend(a.state, ctx, a.view) : a.datagram.onRecv(a.state, ctx, a.view);
        } catch (Throwable e) {
            v = null;
            thrown = e;
        } finally {
            a.clock.stop();
            t.setContextClassLoader(prev);
            a.view.invalidate();
            ctx.end();
        }
        boolean over = slot.exit(s);
        if (trace != null) trace.called(this, a.name, hook, dir, len, injectedBy, tag, v);
        RealHeldBytes<DatagramAttachment> h = ctx.takeHeld();
        Object fault = null; // the exception itself, so a fault listener (the testkit's) sees it; else what was wrong
        if (thrown != null) {
            fault = thrown;
        } else if (over) {
            fault = slot.why();
        } else if (v == null) {
            fault = "returned a null verdict";
            a.breach(ChainTrace.Breach.NULL_VERDICT, hook + " returned a null verdict");
        } else if (v.kind() == Verdict.Kind.NEED_MORE || v.kind() == Verdict.Kind.CLOSE) {
            fault = "returned " + v + ", which has no meaning for a datagram; return PASS, DROP, HOLD, DETACH or ERROR"
                    + (v.kind() == Verdict.Kind.CLOSE ? " (attachment.close() ends the flow)" : "");
        } else if (v.kind() == Verdict.Kind.HOLD && h == null) {
            fault = "returned HOLD without calling ctx.hold()";
            a.breach(ChainTrace.Breach.HOLD_WITHOUT_HOLD_CALL, (String) fault);
        } else if (h != null && v.kind() != Verdict.Kind.HOLD) {
            fault = "called ctx.hold() but returned " + v + "; return HOLD when keeping the datagram";
            a.breach(ChainTrace.Breach.HOLD_CALL_WITHOUT_HOLD, (String) fault);
        } else if ((v.kind() == Verdict.Kind.PASS || v.kind() == Verdict.Kind.DETACH) && ctx.replaced()) {
            ByteBuf r = ctx.takeReplacement();
            if (r.readableBytes() > MAX_DATAGRAM) {
                fault = "produced a " + r.readableBytes() + "-byte datagram, over the UDP limit of " + MAX_DATAGRAM
                        + " bytes (the engine never truncates)";
                r.release();
            } else {
                a.verdicts[v.kind().ordinal()]++;
                in.release();
                a.bytesOut[d] += r.readableBytes();
                if (v.kind() == Verdict.Kind.DETACH) detach(a, DetachReason.VERDICT);
                return r;
            }
        }
        if (fault != null) {
            ctx.dropReplacement();
            if (h != null) h.release();
            if (thrown != null && !(thrown instanceof Exception) && !(thrown instanceof StackOverflowError)
                    && !(thrown instanceof LinkageError) && !(thrown instanceof AssertionError) && !(thrown instanceof HookPreempted)) {
                LOG.log(Level.ERROR, "module " + a.lm.id() + " threw a fatal error", thrown);
            }
            return faultOnData(a, hook, fault, in, ctx.rewrote());
        }
        a.verdicts[v.kind().ordinal()]++;
        switch (v.kind()) {
            case PASS, DETACH -> {
                a.bytesOut[d] += len;
                if (v.kind() == Verdict.Kind.DETACH) detach(a, DetachReason.VERDICT);
                return in;
            }
            case DROP -> {
                ctx.dropReplacement();
                in.release();
                return null;
            }
            case HOLD -> {
                ctx.dropReplacement();
                in.release(); // the module's HeldBytes is its own copy
                return null;
            }
            case ERROR -> {
                ctx.dropReplacement();
                in.release();
                abort("module " + a.lm.id() + " returned ERROR(" + v.value() + ", " + v.reason() + ")");
                return null;
            }
            default -> throw new AssertionError(v);
        }
    }

    /**
     * Applies the module's fault policy to a datagram it faulted on; returns what to pass on (owned) or null. A datagram
     * the module {@code rewritten} in place may be half changed: fail-open drops it rather than send it.
     */
    private ByteBuf faultOnData(DatagramAttachment a, String hook, Object fault, ByteBuf in, boolean rewritten) {
        FaultPolicy p = a.lm.recordFault(hook, id, fault);
        if (p == FaultPolicy.FAIL_CLOSED || closed) {
            in.release();
            abort("module " + a.lm.id() + " faulted in " + hook + " (fail-closed): " + fault);
            return null;
        }
        detach(a, DetachReason.FAULT);
        if (rewritten) {
            in.release(); // may be half rewritten: lost, as a datagram may be
            return null;
        }
        return in; // fail-open: the datagram continues as if the module were not there
    }

    private void moduleFault(DatagramAttachment a, String hook, Object cause) {
        mods.moduleFault(a, hook, cause);
    }

    /** Sends one datagram (owned) out of the flow in direction {@code d}, or drops it when its socket is backed up. */
    private void writeOut(int d, ByteBuf buf) {
        boolean toUpstream = d == fromPeer;
        Channel target = toUpstream ? upstream : listener.channel();
        if (!buf.isReadable()) {
            buf.release(); // an empty replacement forwards nothing (and UDP sockets here cannot send empty datagrams)
            return;
        }
        if (closed || target == null || !target.isActive() || !writable(target)) {
            dropped[d]++;
            buf.release();
            return;
        }
        lastActive = System.nanoTime();
        if (toUpstream) {
            target.write(buf, target.voidPromise());
            if (!upstreamUnflushed) {
                upstreamUnflushed = true;
                listener.flushUpstreamLater(this);
            }
        } else {
            target.write(new DatagramPacket(buf, peer), target.voidPromise());
            listener.flushListenLater();
        }
    }

    /**
     * Whether {@code target} takes one more datagram. Writes wait for the end of the loop's pass to be flushed, and they
     * count toward the socket's high-water mark meanwhile: a socket over it is flushed at once, and only a socket the
     * kernel leaves over it is backed up (as before the writes waited).
     */
    private static boolean writable(Channel target) {
        if (target.isWritable()) return true;
        target.flush();
        return target.isWritable();
    }

    /** Sends what {@link #writeOut} queued on the upstream socket (the listener calls it once per loop pass). */
    void flushUpstream() {
        upstreamUnflushed = false;
        if (upstream != null) upstream.flush();
    }

    boolean isWritable(Direction dir) {
        int d = dir == Direction.SEND ? SEND : RECV;
        Channel target = d == fromPeer ? upstream : listener.channel();
        return !closed && target != null && target.isWritable();
    }

    // ---- inject -----------------------------------------------------------------------------------

    /** Queues one datagram {@code b} (owned) to enter the chain after {@code a}; any thread. */
    boolean inject(DatagramAttachment a, Direction dir, ByteBuf b, long tag) {
        int d = dir == Direction.SEND ? SEND : RECV;
        int len = b.readableBytes();
        if (len > MAX_DATAGRAM) {
            b.release();
            execute(() -> moduleFault(a, "inject", "injected a " + len + "-byte datagram, over the UDP limit of " + MAX_DATAGRAM + " bytes"));
            return false;
        }
        if (inflight.get() + held.get() + len > holdLimit) {
            b.release();
            String why = "injected " + len + " bytes " + dir + " while " + (inflight.get() + held.get())
                    + " bytes are held or queued on the flow (limit " + holdLimit + ")";
            a.breach(ChainTrace.Breach.INJECT_BEYOND_HOLD_LIMIT, why);
            execute(() -> moduleFault(a, "inject", why));
            return false;
        }
        if (trace != null) trace.injected(this, a.name, dir, len, tag);
        a.injected.addAndGet(len);
        inflight.addAndGet(len);
        loop.execute(() -> {
            inflight.addAndGet(-len);
            if (closed) {
                b.release();
                return;
            }
            lastActive = System.nanoTime();
            if (!connected) {
                early.add(() -> forward(d, b, next(a, d), a.name, tag));
            } else {
                forward(d, b, next(a, d), a.name, tag);
            }
        });
        return true;
    }

    // ---- hold accounting --------------------------------------------------------------------------

    boolean holdAdd(DatagramAttachment a, long n) {
        if (held.addAndGet(n) > holdLimit) {
            held.addAndGet(-n);
            return false;
        }
        return true;
    }

    String holdOverflow(DatagramAttachment a) {
        return "module " + a.lm.id() + " holds more than the flow's hold limit of " + holdLimit
                + " bytes; raise agent.hold-limit or make the module release or inject sooner";
    }

    void holdSub(long n) {
        held.addAndGet(-n);
    }

    /** The flow's upstream socket's option (the local side of a client flow, the remote one of a server flow). */
    @Override
    public Object option(dev.interlayer.api.Side side, dev.interlayer.api.SocketOption option) {
        boolean upstreamSide = (side == dev.interlayer.api.Side.REMOTE) == (spec.role() == Role.CLIENT);
        return upstreamSide && upstream != null ? upstream.config().getOption(SocketOptions.of(option)) : null;
    }

    @Override
    public void abort(String reason) {
        aborted = true;
        close(reason);
    }

    /** True if the flow ended by an abort: a module's abort or ERROR, or a fail-closed fault (UDP's closest to a reset). */
    boolean aborted() {
        return aborted;
    }

    // ---- close ------------------------------------------------------------------------------------

    /** Ends the flow: detaches every module (CLOSED), closes the upstream socket, forgets the peer; on the event loop. */
    void close(String reason) {
        if (closed) return;
        mods.fireEvent(ConnectionEvent.CLOSING);
        closed = true;
        closeReason = reason;
        LOG.log(Level.DEBUG, "flow {0} ({1}, peer {2}) ended: {3}", id, spec.name(), peer, reason);
        mods.detachAll();
        if (upstream != null) upstream.close();
        if (early != null) {
            ArrayDeque<Runnable> q = early;
            early = null;
            while (!q.isEmpty()) q.poll().run(); // process() releases every buffer once closed
        }
        listener.removed(this);
        engine.removedFlow(this);
    }

    // ---- events, socket hooks, timers ---------------------------------------------------------------

    void runTimer(DatagramAttachment a, Runnable task) {
        mods.runTimer(a, task);
    }

    /** Reads the flow's upstream socket: each datagram enters the chain in the direction opposite to the peer's. */
    private final class UpstreamHandler extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf b;
            if (msg instanceof DatagramPacket p) {
                b = p.content();
            } else if (msg instanceof ByteBuf bb) {
                b = bb;
            } else {
                ReferenceCountUtil.release(msg);
                return;
            }
            onDatagram(1 - fromPeer, UdpListener.compact(b));
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            if (!closed) {
                close("the upstream socket closed"); // a flow without its socket could only drop datagrams
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (cause instanceof PortUnreachableException) {
                // ICMP port unreachable from the upstream: UDP delivers no error to the peer either; the flow stays
                LOG.log(Level.DEBUG, "flow {0} ({1}): upstream {2} unreachable: {3}", id, spec.name(), upstreamTarget, cause.getMessage());
                return;
            }
            LOG.log(Level.DEBUG, "flow {0} ({1}): upstream socket error: {2}", id, spec.name(), cause.toString());
        }
    }
}
