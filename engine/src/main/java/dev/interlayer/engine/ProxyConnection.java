package dev.interlayer.engine;

import dev.interlayer.api.AppInfo;
import dev.interlayer.api.Attach;
import dev.interlayer.api.ConnectionEvent;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.OptionDecision;
import dev.interlayer.api.Protocol;
import dev.interlayer.api.Role;
import dev.interlayer.api.Side;
import dev.interlayer.api.SocketDecision;
import dev.interlayer.api.SocketOption;
import dev.interlayer.api.Verdict;
import dev.interlayer.runtime.HookPreempted;
import dev.interlayer.runtime.Hooks;
import dev.interlayer.runtime.LoadedModule;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.util.internal.PlatformDependent;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One proxied TCP connection: the two sockets, the chain of attached modules, and the flow between them.
 *
 * <pre>
 *  local app ──▶ [localCh] ──read──▶ SEND: att[0] → att[1] → … → att[n-1] ──write──▶ [remoteCh] ──▶ network
 *  local app ◀── [localCh] ◀─write── RECV: att[0] ← att[1] ← … ← att[n-1] ◀──read── [remoteCh] ◀── network
 * </pre>
 *
 * <p>For a {@link Role#CLIENT} listener the accepted channel is {@code localCh} and the upstream is
 * {@code remoteCh}; for {@link Role#SERVER} the other way round.
 *
 * <p>Threading: both channels are on one event loop; every method except {@link #inject}, {@link #execute}
 * and the counters' readers runs on it. Buffers: the last one to touch a buffer releases it, on every
 * branch; modules never see a reference count.
 *
 * <p>Back-pressure: before the upstream is connected only the accepted socket is read, up to {@link #EARLY_LIMIT}
 * bytes kept until it is; then a side reads (Netty auto-read,
 * batches of reads per wake-up) only while the opposite socket is writable and the bytes held by modules
 * (HOLD) are under the high-water mark, and pauses otherwise, even in the middle of a batch; writability
 * changes and held bytes draining resume it. Memory per connection is therefore bounded by the socket
 * buffers, the write-buffer high-water mark, one read batch and the hold limit.
 */
final class ProxyConnection implements Connection {

    private static final System.Logger LOG = System.getLogger("interlayer.engine");
    static final int SEND = 0;
    static final int RECV = 1;

    private final Engine engine;
    private final long id;
    private final ListenerSpec spec;
    private final Channel accepted;
    private final EventLoop loop;
    private final Watchdog.Slot slot;
    private final Instant startedAt;
    /** Held, buffered and in-flight bytes against the hold limit; what pauses reading. */
    private final HoldBudget budget;

    private Channel localCh;
    private Channel remoteCh;
    private InetSocketAddress upstreamTarget;
    /** The attached modules and the rules shared with the datagram path (attach, detach, socket hooks, events, faults). */
    private final ModuleChain<RealAttachment> mods;
    private final int[] hookCount = new int[2];
    private final boolean[] paused = new boolean[2];
    private final boolean[] inputEnded = new boolean[2];
    private final boolean[] endPending = new boolean[2];
    private final boolean[] outputShut = new boolean[2];
    private final boolean[] needFlush = new boolean[2];
    private List<Runnable> preConnect;
    /** The kernel path while it moves this connection's bytes (see {@link SpliceRelay}), else null. */
    private SpliceRelay relay;
    /** Work that waits until the relay gives the sockets back, in order. */
    private List<Runnable> afterSplice;
    private boolean spliceRefused;
    /** A socket of this connection closes at its end of input instead of half-closing (see {@link #shutdownOutput}). */
    private boolean halfClosureOff;
    /** Per direction, the bytes of the latest run of large reads: a long run (a bulk transfer) starts the relay. */
    private final long[] bulkRun = new long[2];
    private volatile boolean closed;
    private boolean connected;
    private volatile long bytesSent;
    private volatile long bytesReceived;
    private volatile AppInfo app;
    private boolean appLooked;
    private String closeReason;
    /**
     * Per direction, chunks read while reading was paused: once a peer's FIN has arrived, Netty reads the socket to
     * its end whatever auto-read says. They enter the chain, in order and before the end of stream, when reading
     * would resume; bounded by the socket's receive buffer, which held them before.
     */
    @SuppressWarnings("unchecked")
    private final java.util.ArrayDeque<ByteBuf>[] parked = new java.util.ArrayDeque[] {new java.util.ArrayDeque<>(), new java.util.ArrayDeque<>()};
    private final boolean[] endParked = new boolean[2];
    private final boolean[] unparking = new boolean[2];
    /** Set when the connection can no longer deliver exactly (the reset is on its way): nothing more is written. */
    private String doomed;
    /**
     * Per direction, the attachment the end of stream is at in the chain (see {@link #progressEnd}); null before it
     * started and once it is past the last module ({@link #endWalked}).
     */
    private final RealAttachment[] endAt = new RealAttachment[2];
    private final boolean[] endStarted = new boolean[2];
    private final boolean[] endCalled = new boolean[2];
    private final boolean[] endWalked = new boolean[2];

    /**
     * {@code startedAt} (null: now), {@code sent} and {@code received}: where the connection began on the direct path,
     * its start and the bytes it moved there (see {@link DirectConnection}).
     */
    ProxyConnection(Engine engine, long id, ListenerSpec spec, Channel accepted, Watchdog.Slot slot, long holdLimit,
                    Instant startedAt, long sent, long received) {
        this.engine = engine;
        this.startedAt = startedAt != null ? startedAt : Instant.now();
        this.bytesSent = sent;
        this.bytesReceived = received;
        this.id = id;
        this.spec = spec;
        this.accepted = accepted;
        this.loop = accepted.eventLoop();
        this.slot = slot;
        this.budget = new HoldBudget(holdLimit);
        this.upstreamTarget = spec.upstream();
        this.mods = new ModuleChain<>(new Host(), slot, RealAttachment[]::new);
        if (spec.role() == Role.CLIENT) {
            localCh = accepted;
        } else {
            remoteCh = accepted;
        }
    }

    // ---- ConnectionInfo ---------------------------------------------------------------------------

    @Override public long id() { return id; }
    @Override public Protocol protocol() { return Protocol.TCP; }
    @Override public String listener() { return spec.name(); }
    @Override public Role role() { return spec.role(); }
    @Override public Instant startedAt() { return startedAt; }
    @Override public long bytesSent() { return bytesSent; }
    @Override public long bytesReceived() { return bytesReceived; }

    @Override
    public InetSocketAddress localAddress() {
        return spec.role() == Role.CLIENT ? (InetSocketAddress) accepted.remoteAddress() : upstreamTarget;
    }

    @Override
    public InetSocketAddress remoteAddress() {
        return spec.role() == Role.CLIENT ? upstreamTarget : (InetSocketAddress) accepted.remoteAddress();
    }

    @Override
    public AppInfo app() {
        if (!appLooked) {
            appLooked = true;
            if (spec.role() == Role.CLIENT) {
                app = ProcLookup.find((InetSocketAddress) accepted.remoteAddress(), (InetSocketAddress) accepted.localAddress());
            } else if (localCh != null && localCh.localAddress() != null) {
                app = ProcLookup.find(upstreamTarget, (InetSocketAddress) localCh.localAddress());
            } else {
                appLooked = false; // the local application's socket is not known before the upstream connects
            }
        }
        return app;
    }

    ByteBufAllocator alloc() { return accepted.alloc(); }
    long holdLimit() { return budget.limit; }
    @Override public EventLoop loop() { return loop; }
    @Override public boolean isClosed() { return closed; }
    ListenerSpec spec() { return spec; }
    String closeReason() { return closeReason; }

    @Override
    public void execute(Runnable r) {
        if (loop.inEventLoop()) {
            r.run();
        } else {
            loop.execute(r);
        }
    }

    @Override
    public List<String> moduleIds() {
        return mods.moduleIds();
    }

    // ---- setup ------------------------------------------------------------------------------------

    /** Attaches the modules for a new connection, runs the socket hooks and connects the upstream. */
    void start(List<LoadedModule> modules) {
        if (!attachAll(modules)) {
            return;
        }

        InetSocketAddress[] tb = mods.connectAndBind(spec.upstream());
        if (tb == null) return;
        InetSocketAddress target = tb[0];
        InetSocketAddress bind = tb[1];
        upstreamTarget = target;
        // The upstream channel is made and configured here, not by a Bootstrap: no option map, reflective factory
        // or resolver per connection (the target is an address already).
        Channel up = engine.transport().newChannel(target);
        Transport.configure(up);
        up.config().setConnectTimeoutMillis((int) engine.options().connectTimeout().toMillis());
        up.pipeline().addLast("interlayer", new SideHandler(spec.role() == Role.CLIENT ? RECV : SEND));
        final InetSocketAddress finalTarget = target;
        final InetSocketAddress finalBind = bind;
        loop.register(up).addListener((ChannelFutureListener) r -> {
            if (!r.isSuccess()) {
                up.close();
                abort("cannot open a socket to upstream " + finalTarget + ": " + r.cause().getMessage());
                return;
            }
            (finalBind == null ? up.connect(finalTarget) : up.connect(finalTarget, finalBind)).addListener((ChannelFutureListener) f -> {
                if (!f.isSuccess()) {
                    f.channel().close();
                    abort("cannot connect upstream " + finalTarget + ": " + f.cause().getMessage());
                    return;
                }
                if (closed) {
                    f.channel().close();
                    return;
                }
                if (spec.role() == Role.CLIENT) {
                    remoteCh = f.channel();
                } else {
                    localCh = f.channel();
                }
                onConnected();
            });
        });
    }

    /** Adds the accepted side's handler and attaches {@code modules} in order; false if the connection closed meanwhile. */
    private boolean attachAll(List<LoadedModule> modules) {
        accepted.pipeline().addLast("interlayer", new SideHandler(spec.role() == Role.CLIENT ? SEND : RECV));
        if (!mods.attachAll(modules)) return false;
        recount();
        return true;
    }

    /**
     * For benchmarks and tests: starts the connection with {@code upstream} as its already connected other
     * socket, without a connect. Attaches {@code modules} as {@link #start} does, skips the onConnect and onBind
     * hooks (there is no connect to intercept), then continues exactly as {@link #start} does once the upstream
     * connected. Lets a benchmark drive the real per-chunk path over channels it made itself (Netty
     * {@code EmbeddedChannel}s) with no sockets; {@code upstream} must be on this connection's event loop or,
     * for embedded channels, be driven from the same thread.
     */
    void startConnected(List<LoadedModule> modules, Channel upstream) {
        if (!attachAll(modules)) {
            return;
        }
        upstream.pipeline().addLast("interlayer", new SideHandler(spec.role() == Role.CLIENT ? RECV : SEND));
        if (spec.role() == Role.CLIENT) {
            remoteCh = upstream;
        } else {
            localCh = upstream;
        }
        onConnected();
    }

    /**
     * Continues a connection the direct path served until now ({@link DirectConnection}): {@code upstream} is its
     * connected other socket, not registered yet; no module is attached yet. {@code pendingSend} and
     * {@code pendingRecv} (owned, or null) are bytes read there and not yet written: they go out first. {@code done}:
     * per direction, whether it ended there already (its input read to the end, every byte and the FIN written).
     */
    void adopt(Channel upstream, ByteBuf pendingSend, ByteBuf pendingRecv, boolean[] done) {
        loop.register(upstream);
        for (int d = 0; d < 2; d++) {
            if (done[d]) {
                inputEnded[d] = true;
                endStarted[d] = true;
                endWalked[d] = true;
                outputShut[d] = true;
            }
        }
        if (pendingSend != null) early(() -> writeOut(SEND, pendingSend));
        if (pendingRecv != null) early(() -> writeOut(RECV, pendingRecv));
        startConnected(List.of(), upstream);
    }

    private void onConnected() {
        connected = true;
        Map<SocketOption, Object> opts = engine.effectiveOptions(spec);
        boolean hooked = false;
        for (RealAttachment a : mods.links()) hooked |= a.has(Hooks.SET_OPTION) && !a.detached;
        for (Map.Entry<SocketOption, Object> e : opts.entrySet()) {
            if (!hooked && e.getKey() == SocketOption.TCP_NODELAY && Boolean.TRUE.equals(e.getValue())
                    && PlatformDependent.canEnableTcpNoDelayByDefault()) {
                continue; // Netty turned it on when it made the sockets: no module to tell, no syscall to repeat
            }
            setOption(Side.LOCAL, e.getKey(), e.getValue());
            setOption(Side.REMOTE, e.getKey(), e.getValue());
            if (closed) return;
        }
        mods.fireEvent(ConnectionEvent.CONNECTED);
        if (closed) return;
        if (preConnect != null) {
            List<Runnable> q = preConnect;
            preConnect = null;
            runQueued(q);
            flush(SEND);
            flush(RECV);
        }
        maybeRead(SEND);
        maybeRead(RECV);
    }

    private Channel channel(Side side) {
        return side == Side.LOCAL ? localCh : remoteCh;
    }

    /** Sets an option on one socket, through the modules' onSetOption hooks. */
    void setOption(Side side, SocketOption opt, Object value) {
        Object v = value;
        for (RealAttachment a : mods.links()) {
            if (a.has(Hooks.SET_OPTION) && !a.detached) {
                final Object cur = v;
                OptionDecision d = mods.callSocket(a, "onSetOption", () -> a.socket.onSetOption(a.state, a, side, opt, cur));
                if (closed) return;
                if (d == null) continue;
                if (d.kind() == OptionDecision.Kind.DENY) {
                    LOG.log(Level.DEBUG, "connection {0}: {1} {2} not set: denied by module {3}: {4}", id, side, opt, a.name, d.reason());
                    return;
                }
                if (d.kind() == OptionDecision.Kind.MODIFY) {
                    if (!opt.valueType().isInstance(d.value())) {
                        moduleFault(a, "onSetOption", "modified " + opt + " to a " + d.value().getClass().getSimpleName()
                                + "; the option takes a " + opt.valueType().getSimpleName());
                        continue;
                    }
                    v = d.value();
                }
            }
        }
        Channel ch = channel(side);
        if (ch != null && ch.isActive()) {
            boolean ok = ch.config().setOption(SocketOptions.of(opt), v);
            if (!ok) {
                LOG.log(Level.DEBUG, "connection {0}: transport does not support {1}", id, opt);
            }
        }
    }

    /** Reads an option of one socket, as the modules' onGetOption hooks report it. */
    @Override
    public Object option(Side side, SocketOption opt) {
        Channel ch = channel(side);
        Object v = ch == null ? null : ch.config().getOption(SocketOptions.of(opt));
        for (RealAttachment a : mods.links()) {
            if (a.has(Hooks.GET_OPTION) && !a.detached) {
                final Object cur = v;
                Object r = mods.callSocket(a, "onGetOption", () -> a.socket.onGetOption(a.state, a, side, opt, cur));
                if (r != null || cur == null) v = r;
            }
        }
        return v;
    }

    // ---- attach / detach --------------------------------------------------------------------------

    @Override
    public boolean attach(LoadedModule m) {
        if (mods.attachLater(m, connected) == null) return false;
        recount();
        return true;
    }

    @Override
    public boolean detach(String moduleName, DetachReason reason) {
        RealAttachment a = mods.find(moduleName);
        if (a == null) return false;
        detach(a, reason);
        return true;
    }

    /** Runs the module's detach exactly once and releases what the attachment held; on the event loop. */
    void detach(RealAttachment a, DetachReason reason) {
        mods.detach(a, reason);
    }

    /** The connection's side of its {@link ModuleChain}. */
    private final class Host implements ModuleChain.Host<RealAttachment> {
        @Override public long id() { return id; }
        @Override public RealAttachment newLink(LoadedModule m) { return new RealAttachment(ProxyConnection.this, m); }
        @Override public boolean isClosed() { return closed; }
        @Override public void abort(String reason) { ProxyConnection.this.abort(reason); }

        /**
         * Nothing of the stream is lost by a detach of an open connection: what the module still holds (oldest first)
         * and then what a NEED_MORE left buffered go on down the chain, after the module's queued output, as if the
         * module had passed them. A module that means to drop held bytes releases them in its detach hook.
         */
        @Override
        public void detaching(RealAttachment a) {
            if (closed) return;
            for (int d = 0; d < 2; d++) {
                synchronized (a.holdLock) {
                    ByteBuf b;
                    while ((b = a.takeOldestHeld(d)) != null) {
                        later(a, d, b, null, 0);
                    }
                }
                ByteBuf p = a.pending[d];
                if (p != null) {
                    a.pending[d] = null;
                    a.need[d] = 0;
                    heldSub(p.readableBytes());
                    later(a, d, p, null, 0);
                }
            }
        }

        @Override
        public void detached(RealAttachment a) {
            recount();
            for (int d = 0; d < 2; d++) {
                progressEnd(d);
            }
        }
    }

    private void recount() {
        hookCount[SEND] = mods.count(Hooks.SEND);
        hookCount[RECV] = mods.count(Hooks.RECV);
        if ((relay != null || halfClosureOff) && !spliceable()) {
            if (relay != null) relay.drain(); // a module with data or event hooks attached: its bytes from now on go through it
            if (halfClosureOff) {
                // its end of input must reach the module as an end, not as a close (see shutdownOutput)
                halfClosureOff = false;
                for (Channel ch : new Channel[] {localCh, remoteCh}) {
                    if (ch != null && ch.isOpen()) ch.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, true);
                }
            }
        }
    }

    private int indexOf(RealAttachment a) {
        return mods.indexOf(a);
    }

    /** The chain index right after {@code a} in direction {@code d}. */
    private int next(RealAttachment a, int d) {
        int i = indexOf(a);
        return d == SEND ? i + 1 : i - 1;
    }

    // ---- data path --------------------------------------------------------------------------------

    private void onRead(int d, ByteBuf buf) {
        int n = buf.readableBytes();
        countRead(d, n);
        bulkRun[d] = n >= Engine.SPLICE_BULK_READ ? bulkRun[d] + n : 0;
        if (closed || outputShut[d]) {
            buf.release();
            return;
        }
        if (relay != null) {
            // the channel read on its own (a read it had scheduled): these bytes follow what the pipe holds
            afterSplice(() -> onReadConnected(d, buf));
            return;
        }
        if (!connected) {
            // The accepted socket is read from the start, while the upstream connects (a request is usually there
            // already): keep the bytes, up to EARLY_LIMIT, until the upstream is connected, then stop reading.
            early(() -> onReadConnected(d, buf));
            earlyBytes += n;
            if (earlyBytes >= EARLY_LIMIT && accepted.config().isAutoRead()) {
                accepted.config().setAutoRead(false);
            }
            return;
        }
        onReadConnected(d, buf);
    }

    /** Bytes the accepted socket may deliver before the upstream is connected (then it pauses until it is). */
    static final int EARLY_LIMIT = 64 * 1024;
    private long earlyBytes;

    /** Queues work that must wait for the upstream connection; replayed in order (or releasing, once closed). */
    private void early(Runnable r) {
        if (preConnect == null) preConnect = new ArrayList<>();
        preConnect.add(r);
    }

    private void onReadConnected(int d, ByteBuf buf) {
        if (closed || outputShut[d]) {
            buf.release();
            return;
        }
        if (paused[d] || !parked[d].isEmpty()) {
            parked[d].add(buf); // read although paused (see parked): it waits until reading would resume
            return;
        }
        enter(d, buf);
    }

    /** Puts a chunk read from the source of {@code d} (owned) into the chain, or straight out on the fast path. */
    private void enter(int d, ByteBuf buf) {
        if (hookCount[d] == 0 && budget.onTheWay(d) == 0) {
            writeOut(d, buf); // fast path: no module has a hook in this direction, and no module's output waits
            return;
        }
        forward(d, buf, d == SEND ? 0 : mods.links().length - 1, null, 0);
    }

    /**
     * Passes {@code buf} (owned) through the chain in direction {@code d} starting at index {@code start},
     * then writes what comes out to the opposite socket.
     */
    private void forward(int d, ByteBuf buf, int start, String injectedBy, long tag) {
        RealAttachment[] c = mods.links();
        int step = d == SEND ? 1 : -1;
        // A module's call leaves its class loader as the thread's context class loader when it passes the chunk on,
        // so a chain switches it once per module instead of twice (each switch is a store with a GC write barrier);
        // the engine's own one is back before the write below and before any other verdict or fault is handled.
        Thread t = Thread.currentThread();
        ClassLoader base = t.getContextClassLoader();
        Direction dir = DIRECTIONS[d];
        String hook = DATA_HOOKS[d];
        try {
            for (int i = start; i >= 0 && i < c.length; i += step) {
                RealAttachment a = c[i];
                if (!a.wants(d)) {
                    if (a.queued[d].get() > 0) {
                        // this module's earlier output has not gone on yet: these bytes go after it
                        if (t.getContextClassLoader() != base) t.setContextClassLoader(base);
                        later(a, d, buf, injectedBy, tag);
                        return;
                    }
                    continue;
                }
                if (a.pending[d] != null) {
                    buf = addToPending(a, d, buf);
                    if (buf == null) return;
                }
                // The module call, written out here rather than in a method of its own: the JIT does not inline a
                // method that is already compiled big, and a call with this many arguments costs a few ns per module.
                // A plain PASS is handled here, everything else in outcome().
                RealStreamContext ctx = a.ctx;
                int len = buf.readableBytes();
                a.before(d, buf, len, dir, injectedBy, tag);
                long s = slot.enterAt(c, i, hook);
                if (t.getContextClassLoader() != a.loader) t.setContextClassLoader(a.loader);
                Verdict v;
                Throwable thrown = null;
                try {
                    v = d == SEND ? a.stream.onSend(a.state, ctx, a.view) : a.stream.onRecv(a.state, ctx, a.view);
                } catch (Throwable e) {
                    v = null;
                    thrown = e;
                }
                a.after();
                boolean over = slot.exit(s);
                if (v == Verdict.PASS && thrown == null && !over && ctx.untouched()) {
                    a.passed(d, len);
                } else {
                    buf = outcome(a, d, buf, len, v, thrown, over, ctx.takeHeld(), t, base);
                    if (buf == null) {
                        return;
                    }
                }
                if (a.queued[d].get() > 0) {
                    // the module injected bytes that have not gone on yet: what it passes now goes after them
                    if (t.getContextClassLoader() != base) t.setContextClassLoader(base);
                    later(a, d, buf, injectedBy, tag);
                    return;
                }
            }
        } finally {
            if (t.getContextClassLoader() != base) t.setContextClassLoader(base);
        }
        writeOut(d, buf);
    }

    /**
     * Adds {@code buf} (owned) to the bytes {@code a} asked for with NEED_MORE; returns them all (owned) once there are
     * as many as it asked for, null while it waits for more (or the hold limit was hit).
     */
    private ByteBuf addToPending(RealAttachment a, int d, ByteBuf buf) {
        ByteBuf p = a.pending[d];
        if (!heldAdd(a, buf.readableBytes())) {
            buf.release();
            return null;
        }
        p.writeBytes(buf);
        buf.release();
        if (p.readableBytes() < a.need[d]) {
            return null;
        }
        a.pending[d] = null;
        a.need[d] = 0;
        heldSub(p.readableBytes());
        return p;
    }
    private static final Direction[] DIRECTIONS = {Direction.SEND, Direction.RECV};
    private static final String[] DATA_HOOKS = {"onSend", "onRecv"};

    /**
     * What follows a data call that was not a plain PASS (see {@link #forward}): faults, a replacement, the other
     * verdicts. Takes {@code in} (owned); returns what to pass on (owned), or null to stop. The module's loader is
     * still the thread's context loader; {@code base}, the caller's own, is put back unless the chunk passes on.
     */
    private ByteBuf outcome(RealAttachment a, int d, ByteBuf in, int len, Verdict v, Throwable thrown, boolean over,
                            RealHeldBytes h, Thread t, ClassLoader base) {
        RealStreamContext ctx = a.ctx;
        if (thrown != null || over || h != null || v == null || v.kind() != Verdict.Kind.PASS) {
            if (t.getContextClassLoader() != base) t.setContextClassLoader(base);
        }
        String fault = null;
        if (thrown != null) {
            fault = thrown.toString();
        } else if (over) {
            fault = "ran longer than the hook budget (" + engine.options().hookBudget().toMillis() + " ms)";
        } else if (v == null) {
            fault = "returned a null verdict";
        } else if (v.kind() == Verdict.Kind.HOLD && h == null) {
            fault = "returned HOLD without calling ctx.hold()";
        } else if (h != null && v.kind() != Verdict.Kind.HOLD) {
            fault = "called ctx.hold() but returned " + v + "; return HOLD when keeping the chunk";
        } else if (ctx.rewrote() && v.kind() == Verdict.Kind.NEED_MORE) {
            fault = "called ctx.rewrite() and returned " + v + "; ask for more bytes first, rewrite them when they are all there";
        }
        if (fault != null) {
            ctx.dropReplacement();
            if (h != null) h.release();
            if (thrown != null && !(thrown instanceof Exception) && !(thrown instanceof StackOverflowError)
                    && !(thrown instanceof LinkageError) && !(thrown instanceof AssertionError) && !(thrown instanceof HookPreempted)) {
                LOG.log(Level.ERROR, "module " + a.lm.id() + " threw a fatal error", thrown);
            }
            return faultOnData(a, d == SEND ? "onSend" : "onRecv", fault, in, ctx.rewrote());
        }
        a.verdicts[v.kind().ordinal()]++;
        switch (v.kind()) {
            case PASS, DETACH -> {
                ByteBuf out = in;
                if (ctx.replaced()) {
                    in.release();
                    out = ctx.takeReplacement();
                }
                a.bytesOut[d] += out.readableBytes();
                if (v.kind() == Verdict.Kind.DETACH) {
                    detach(a, DetachReason.VERDICT);
                }
                if (!out.isReadable()) {
                    out.release();
                    return null;
                }
                return out;
            }
            case DROP -> {
                ctx.dropReplacement();
                in.release();
                return null;
            }
            case HOLD -> {
                ctx.dropReplacement();
                in.release(); // the module's HeldBytes keeps its own reference
                return null;
            }
            case NEED_MORE -> {
                ctx.dropReplacement();
                int want = v.value();
                if (want > budget.limit) {
                    in.release();
                    abort("module " + a.lm.id() + " asked for NEED_MORE(" + want + "), more than the connection's hold limit of "
                            + budget.limit + " bytes; raise agent.hold-limit or fix the module");
                    return null;
                }
                if (!heldAdd(a, len)) {
                    in.release();
                    return null;
                }
                ByteBuf p = alloc().buffer(Math.max(want, len));
                p.writeBytes(in);
                in.release();
                a.pending[d] = p;
                // NEED_MORE(n) with n already buffered means "at least one more byte", never a busy loop.
                a.need[d] = Math.max(want, len + 1);
                return null;
            }
            case ERROR -> {
                ctx.dropReplacement();
                in.release();
                abort("module " + a.lm.id() + " returned ERROR(" + v.value() + ", " + v.reason() + ")");
                return null;
            }
            case CLOSE -> {
                ctx.dropReplacement();
                in.release();
                closeGracefully("module " + a.lm.id() + " returned CLOSE");
                return null;
            }
        }
        throw new AssertionError(v);
    }

    /**
     * Applies the module's fault policy to a chunk it faulted on; returns what to pass on (owned) or null. A chunk the
     * module {@code rewritten} in place may be half changed, so fail-open cannot pass it on: the connection is reset.
     */
    private ByteBuf faultOnData(RealAttachment a, String hook, String fault, ByteBuf in, boolean rewritten) {
        FaultPolicy p = a.lm.recordFault(hook, id, fault);
        if (p == FaultPolicy.FAIL_CLOSED || closed || rewritten) {
            in.release();
            abort("module " + a.lm.id() + " faulted in " + hook + (rewritten
                    ? " after ctx.rewrite() (the chunk may be half rewritten, so it cannot be passed on unchanged)"
                    : " (fail-closed)") + ": " + fault);
            return null;
        }
        detach(a, DetachReason.FAULT);
        return in; // fail-open: the chunk continues as if the module were not there
    }

    private void moduleFault(RealAttachment a, String hook, Object cause) {
        mods.moduleFault(a, hook, cause);
    }

    private void writeOut(int d, ByteBuf buf) {
        Channel target = d == SEND ? remoteCh : localCh;
        if (closed || doomed != null || outputShut[d] || target == null) {
            buf.release();
            return;
        }
        if (relay != null) {
            // bytes a module injected: they go out after what the relay's pipe holds, through the channel
            afterSplice(() -> writeOut(d, buf));
            return;
        }
        target.write(buf, target.voidPromise());
        needFlush[d] = true;
        if (!paused[d] && !target.isWritable()) {
            // over the high-water mark in the middle of a read batch: write out what we have, and stop
            // reading now rather than after the batch if the socket cannot take it
            flush(d);
            maybeRead(d);
        }
    }

    private void flush(int d) {
        if (needFlush[d]) {
            needFlush[d] = false;
            Channel target = d == SEND ? remoteCh : localCh;
            if (target != null && target.isActive()) target.flush();
        }
    }

    /**
     * Reads from the source of direction {@code d} while its target can take more and modules hold little,
     * pauses it otherwise. Reading uses Netty's auto-read, so a readable socket is drained in one batch of up
     * to 16 reads per wake-up and the epoll interest only changes when back-pressure starts or ends.
     */
    private void maybeRead(int d) {
        if (closed || !connected || relay != null) {
            return;
        }
        Channel source = d == SEND ? localCh : remoteCh;
        Channel target = d == SEND ? remoteCh : localCh;
        // NEED_MORE buffers do not pause reading: they need more bytes to make progress, and the hold limit caps them.
        boolean go = target.isWritable() && budget.buffered() < budget.high;
        paused[d] = !go;
        if (go && !unparking[d] && (!parked[d].isEmpty() || endParked[d])) {
            unpark(d); // may pause again
        }
        if (!inputEnded[d] && source.config().isAutoRead() != !paused[d]) {
            source.config().setAutoRead(!paused[d]);
        }
    }

    /** Feeds the chunks read while paused into the chain until reading pauses again; then the end, if it came. */
    private void unpark(int d) {
        unparking[d] = true;
        try {
            ByteBuf b;
            while (!closed && !paused[d] && (b = parked[d].poll()) != null) {
                if (outputShut[d]) {
                    b.release();
                } else {
                    enter(d, b);
                }
            }
            flush(d);
            if (!closed && endParked[d] && parked[d].isEmpty()) {
                endParked[d] = false;
                onInputEndConnected(d);
            }
        } finally {
            unparking[d] = false;
        }
    }

    boolean isWritable(Direction dir) {
        Channel target = dir == Direction.SEND ? remoteCh : localCh;
        return !closed && target != null && target.isWritable();
    }

    // ---- splice -----------------------------------------------------------------------------------

    /** True while no attached module has a data or event hook: then bytes may bypass the JVM entirely. */
    private boolean spliceable() {
        for (RealAttachment a : mods.links()) {
            if (!a.detached && (a.has(Hooks.SEND) || a.has(Hooks.RECV) || a.has(Hooks.END) || a.has(Hooks.EVENT))) return false;
        }
        return true;
    }

    /**
     * Hands both sockets to a {@link SpliceRelay} when this is a bulk transfer (a run of reads of at least
     * 16 KiB each, {@code interlayer.engine.splice-after} bytes long) that nothing in the JVM needs to see: no module hook on
     * the bytes or events, nothing held, queued or pending, neither stream ended. Otherwise nothing changes.
     */
    private void maybeSplice() {
        if (relay != null || spliceRefused || !engine.spliceAvailable() || closed || !connected || preConnect != null
                || inputEnded[SEND] || inputEnded[RECV] || endPending[SEND] || endPending[RECV] || outputShut[SEND] || outputShut[RECV]
                || !budget.isEmpty() || budget.onTheWay(SEND) != 0 || budget.onTheWay(RECV) != 0 || !spliceable()
                || !parked[SEND].isEmpty() || !parked[RECV].isEmpty()
                || !(localCh instanceof EpollSocketChannel l) || !(remoteCh instanceof EpollSocketChannel r)
                || !idle(localCh) || !idle(remoteCh)) {
            return;
        }
        EngineEpoll.Registration lr = EngineEpoll.registrationOf(localCh);
        EngineEpoll.Registration rr = EngineEpoll.registrationOf(remoteCh);
        if (lr == null || rr == null) {
            spliceRefused = true;
            return;
        }
        bulkRun[SEND] = 0;
        bulkRun[RECV] = 0;
        localCh.config().setAutoRead(false);
        remoteCh.config().setAutoRead(false);
        try {
            relay = SpliceRelay.start(this, l.fd().intValue(), r.fd().intValue(), lr, rr, Engine.SPLICE_PIPE);
        } catch (IOException e) {
            spliceRefused = true;
            LOG.log(Level.DEBUG, "connection {0}: no splice ({1}); bytes go through the event loop", id, e.getMessage());
            maybeRead(SEND);
            maybeRead(RECV);
            return;
        }
        engine.spliceStarted();
        relay.kick();
    }

    /** Nothing waits to be written on {@code ch}. */
    private static boolean idle(Channel ch) {
        var out = ch.unsafe().outboundBuffer();
        return out != null && out.isEmpty();
    }

    /** Runs {@code r} once the relay has given the sockets back; asks the relay to stop. */
    private void afterSplice(Runnable r) {
        if (afterSplice == null) afterSplice = new ArrayList<>();
        afterSplice.add(r);
        relay.drain();
    }

    /** The relay moved {@code n} bytes of direction {@code d} into its pipe. */
    void spliced(int d, long n) {
        countRead(d, n);
        engine.splicedBytes(n);
    }

    /** Counts bytes read from the source of direction {@code d}, by the channel or by the relay. */
    private void countRead(int d, long n) {
        if (d == SEND) bytesSent += n; else bytesReceived += n;
    }

    /** The relay wrote out its pipes and gave the sockets back: the channels carry the connection from here on. */
    void spliceDone() {
        relay = null;
        List<Runnable> q = afterSplice;
        afterSplice = null;
        // what the channels read meanwhile (after a FIN Netty reads to the end) enters the chain only while reading
        // may go on, as any read: paused is brought up to date first, so the rest is parked
        maybeRead(SEND);
        maybeRead(RECV);
        runQueued(q);
        flush(SEND);
        flush(RECV);
        maybeRead(SEND);
        maybeRead(RECV);
    }

    /** A splice failed with {@code errno}: reset, as a read ({@code reading}) or write error on that socket would. */
    void spliceFailed(int d, boolean reading, int errno) {
        boolean local = (d == SEND) == reading;
        abort("peer reset by the " + (local ? "local application" : "network peer") + ": " + LinuxSplice.describe(errno));
    }

    /** Closing: the relay gives the sockets back at once; what its pipes held is dropped with the connection. */
    private void endSplice() {
        SpliceRelay r = relay;
        if (r == null) return;
        relay = null;
        if (r.pending() > 0) {
            LOG.log(Level.DEBUG, "connection {0}: {1} spliced bytes dropped by the close", id, r.pending());
        }
        r.release();
        List<Runnable> q = afterSplice;
        afterSplice = null;
        runQueued(q); // closed now: each releases its buffer
    }

    /** Runs work queued while the connection waited (for the upstream, or for the relay), in order; null is none. */
    private static void runQueued(List<Runnable> q) {
        if (q != null) {
            for (Runnable r : q) r.run();
        }
    }

    // ---- inject and ordered output ---------------------------------------------------------------

    /**
     * Holds back the end of stream of {@code dir} while held bytes move from a module's hold into
     * {@link #injectHeld}; {@link #injectDone} must follow.
     */
    void injectStarting(Direction dir) {
        budget.leaving(dir == Direction.SEND ? SEND : RECV, 0);
    }

    /** Ends what {@link #injectStarting} began (the queued bytes are counted by {@link #later}). */
    void injectDone(Direction dir) {
        int d = dir == Direction.SEND ? SEND : RECV;
        budget.arrived(d, 0);
        loop.execute(progressEnd[d]);
    }

    /** {@link #progressEnd(int)} of SEND and of RECV as tasks, made once. */
    private final Runnable[] progressEnd = {() -> progressEnd(SEND), () -> progressEnd(RECV)};

    /**
     * Queues new bytes {@code b} (owned) that module {@code a} injects to enter the chain after it; any thread. Refused
     * (false) once the direction's end has passed the module, or when more than the hold limit would wait for a peer
     * that does not read (a fault).
     */
    boolean inject(RealAttachment a, Direction dir, ByteBuf b, long tag) {
        int d = dir == Direction.SEND ? SEND : RECV;
        int len = b.readableBytes();
        if (a.endPassed(d)) {
            b.release();
            return false;
        }
        Channel target = d == SEND ? remoteCh : localCh;
        long pendingOut = target == null ? 0 : target.unsafe().outboundBuffer() == null ? 0
                : target.unsafe().outboundBuffer().totalPendingWriteBytes();
        if (pendingOut + budget.onTheWayBytes(d) + len > budget.limit) {
            b.release();
            execute(() -> moduleFault(a, "inject", "injected " + len + " bytes " + dir + " while " + (pendingOut + budget.onTheWayBytes(d))
                    + " bytes wait for a peer that does not read (limit " + budget.limit + "); pause while attachment.isWritable("
                    + dir + ") is false"));
            return false;
        }
        a.injected.addAndGet(len);
        later(a, d, b, a.name, tag);
        return true;
    }

    /**
     * Queues bytes {@code b} (owned) that module {@code a} held and now injects: they were counted against the hold
     * limit while held, so they are never refused for size (refusing them would lose bytes of the stream).
     */
    boolean injectHeld(RealAttachment a, Direction dir, ByteBuf b) {
        int d = dir == Direction.SEND ? SEND : RECV;
        if (a.endPassed(d)) {
            // held in the other direction and injected into one whose end has passed the module: refused, as any
            // inject after the end (the end never waits for bytes held in the other direction)
            b.release();
            return false;
        }
        a.injected.addAndGet(b.readableBytes());
        later(a, d, b, a.name, 0L);
        return true;
    }

    /**
     * Queues {@code buf} (owned), output of module {@code a} in direction {@code d}, to go on to the next module from a
     * task on the loop; any thread. Every output of a module that cannot go on at once (an inject, or what it passes
     * while its injects wait) goes through here, so a module's output leaves it in the order it produced it.
     */
    private void later(RealAttachment a, int d, ByteBuf buf, String injectedBy, long tag) {
        int len = buf.readableBytes();
        a.queued[d].incrementAndGet();
        budget.leaving(d, len);
        loop.execute(() -> goOn(a, d, buf, injectedBy, tag, len));
    }

    /** What {@link #later} queued goes on past {@code a}; waits for the upstream if it is not connected yet. */
    private void goOn(RealAttachment a, int d, ByteBuf buf, String injectedBy, long tag, int len) {
        if (!connected && !closed) {
            early(() -> goOn(a, d, buf, injectedBy, tag, len));
            return;
        }
        a.queued[d].decrementAndGet();
        try {
            if (closed || doomed != null || outputShut[d]) {
                buf.release();
            } else {
                forward(d, buf, next(a, d), injectedBy, tag);
                flush(d);
            }
        } finally {
            budget.arrived(d, len);
            progressEnd(d);
            // what is on its way counts for both directions' reading (see HoldBudget)
            if (paused[SEND]) maybeRead(SEND);
            if (paused[RECV]) maybeRead(RECV);
        }
    }

    // ---- hold accounting --------------------------------------------------------------------------

    /** Counts {@code n} more held bytes; over the limit the connection is reset with the module named. */
    boolean heldAdd(RealAttachment a, long n) {
        if (!budget.reserve(n)) {
            // Reset later, from the event loop's queue: this may run inside the module's own call. Until then nothing
            // more is written, so the peers see an exact prefix and then the reset.
            doom(holdOverflow(a));
            return false;
        }
        return true;
    }

    /** The connection cannot deliver exactly any more: write nothing from now on, and reset it from the loop's queue. */
    private void doom(String reason) {
        execute(() -> {
            if (doomed == null && !closed) {
                doomed = reason;
                loop.execute(() -> abort(reason));
            }
        });
    }

    String holdOverflow(RealAttachment a) {
        return "module " + a.lm.id() + " holds more than the connection's hold limit of " + budget.limit
                + " bytes (HOLD and NEED_MORE together); raise agent.hold-limit or make the module release or inject sooner";
    }

    /** Counts bytes a module took with HOLD (they also pause reading above the high-water mark). */
    boolean holdAdd(RealAttachment a, long n) {
        if (!heldAdd(a, n)) return false;
        if (budget.hold(n) >= budget.high) {
            // over the high-water mark in the middle of a read batch: stop reading now, not after the batch
            if (!paused[SEND]) maybeRead(SEND);
            if (!paused[RECV]) maybeRead(RECV);
        }
        return true;
    }

    /** HOLD bytes left the module (injected or released). */
    void holdSub(long n) {
        budget.unhold(n);
        heldSub(n);
    }

    void heldSub(long n) {
        budget.unreserve(n);
        if (budget.buffered() < budget.low) {
            // Always later, never inline: the caller may be in the middle of injecting these very bytes, and an
            // end of stream completed now would send the FIN ahead of them.
            loop.execute(afterHeldLeft);
        }
    }

    /** What {@link #heldSub} runs later; one instance, so a NEED_MORE or HOLD completing allocates no task. */
    private final Runnable afterHeldLeft = () -> {
        for (int d = 0; d < 2; d++) {
            if (paused[d]) maybeRead(d);
            progressEnd(d);
        }
    };

    // ---- end of stream, close, reset --------------------------------------------------------------

    private void onInputEnd(int d) {
        if (inputEnded[d] || closed) return;
        if (relay != null) {
            afterSplice(() -> onInputEnd(d));
            return;
        }
        inputEnded[d] = true;
        if (!connected) {
            early(() -> onInputEndConnected(d));
            return;
        }
        onInputEndConnected(d);
    }

    private void onInputEndConnected(int d) {
        if (closed) return;
        if (!parked[d].isEmpty()) {
            endParked[d] = true; // after the chunks read while paused (see unpark)
            return;
        }
        endStarted[d] = true;
        progressEnd(d);
    }

    /**
     * Moves the end of direction {@code d} down the chain as far as it can go, then passes the half-close on when
     * nothing of that direction is still on its way. The end reaches a module only after every byte before it has,
     * and leaves it only once the module holds nothing more of that direction and its output has gone on: so each
     * module sees its {@code onEnd} after its last chunk, and no byte arrives behind an end. On the loop; called
     * again whenever held or queued bytes go on.
     */
    private void progressEnd(int d) {
        if (!endStarted[d] || endWalked[d] || closed) {
            tryCompleteEnd(d);
            return;
        }
        RealAttachment[] c = mods.links();
        int step = d == SEND ? 1 : -1;
        int i = endAt[d] == null ? (d == SEND ? 0 : c.length - 1) : indexOf(endAt[d]);
        for (; i >= 0 && i < c.length; i += step) {
            RealAttachment a = c[i];
            endAt[d] = a;
            if (!endCalled[d]) {
                endCalled[d] = true;
                ByteBuf rest = a.pending[d];
                if (rest != null) {
                    a.pending[d] = null;
                    a.need[d] = 0;
                    heldSub(rest.readableBytes());
                }
                ByteBuf out = rest;
                if (a.has(Hooks.END) && a.wants(d)) {
                    out = callEnd(a, d, rest == null ? Unpooled.EMPTY_BUFFER : rest);
                    if (closed) {
                        if (out != null) out.release();
                        return;
                    }
                }
                // a module without onEnd cannot finish its NEED_MORE: its bytes go on unchanged rather than being lost
                if (out != null) later(a, d, out, null, 0);
            }
            if (a.queued[d].get() > 0 || a.heldIn(d) > 0) {
                return; // resumes when they have gone on (goOn, heldSub, detach)
            }
            a.endPassed |= 1 << d;
            endCalled[d] = false;
        }
        endAt[d] = null;
        endWalked[d] = true;
        endPending[d] = true;
        flush(d);
        mods.fireEvent(d == SEND ? ConnectionEvent.SEND_SHUTDOWN : ConnectionEvent.RECV_SHUTDOWN);
        tryCompleteEnd(d);
    }

    private ByteBuf callEnd(RealAttachment a, int d, ByteBuf rest) {
        Direction dir = d == SEND ? Direction.SEND : Direction.RECV;
        RealStreamContext ctx = a.ctx;
        a.view.lend(rest);
        ctx.begin(dir, null, 0);
        Verdict v;
        Throwable thrown = null;
        long s = slot.enter(a, "onEnd");
        Thread t = Thread.currentThread();
        ClassLoader prev = t.getContextClassLoader();
        t.setContextClassLoader(a.loader);
        try {
            v = a.stream.onEnd(a.state, ctx, a.view);
        } catch (Throwable e) {
            v = null;
            thrown = e;
        } finally {
            t.setContextClassLoader(prev);
            a.view.invalidate();
            ctx.end();
        }
        boolean over = slot.exit(s);
        RealHeldBytes h = ctx.takeHeld();
        if (thrown != null || over || v == null || v.kind() == Verdict.Kind.NEED_MORE) {
            ctx.dropReplacement();
            if (h != null) h.release();
            String why = thrown != null ? thrown.toString() : over ? "ran longer than the hook budget"
                    : v == null ? "returned a null verdict" : "returned NEED_MORE at the end of the stream";
            return faultOnData(a, "onEnd", why, rest, ctx.rewrote());
        }
        a.verdicts[v.kind().ordinal()]++;
        if (v.kind() == Verdict.Kind.HOLD) {
            ctx.dropReplacement();
            if (h == null) {
                return faultOnData(a, "onEnd", "returned HOLD without calling ctx.hold()", rest, ctx.rewrote());
            }
            rest.release();
            return null;
        }
        if (h != null) h.release();
        switch (v.kind()) {
            case ERROR -> {
                ctx.dropReplacement();
                rest.release();
                abort("module " + a.lm.id() + " returned ERROR(" + v.value() + ", " + v.reason() + ") at the end of " + dir);
                return null;
            }
            case CLOSE, DROP -> {
                ctx.dropReplacement();
                rest.release();
                if (v.kind() == Verdict.Kind.CLOSE) closeGracefully("module " + a.lm.id() + " returned CLOSE");
                return null;
            }
            default -> {
                ByteBuf out = rest;
                if (ctx.replaced()) {
                    rest.release();
                    out = ctx.takeReplacement();
                }
                a.bytesOut[d] += out.readableBytes();
                if (v.kind() == Verdict.Kind.DETACH) detach(a, DetachReason.VERDICT);
                if (!out.isReadable()) {
                    out.release();
                    return null;
                }
                return out;
            }
        }
    }

    /** Propagates a half-close once nothing of that direction is still held by modules or queued for inject. */
    private void tryCompleteEnd(int d) {
        if (!endPending[d] || closed || doomed != null) return; // doomed: the reset follows, never a FIN
        if (budget.onTheWay(d) > 0 || heldIn(d) > 0) return;
        endPending[d] = false;
        outputShut[d] = true;
        Channel target = d == SEND ? remoteCh : localCh;
        needFlush[d] = false;
        // When the other direction has already ended, the close below sends the FIN after the flush: a separate
        // shutdown would only cost a syscall and Netty's exception for the writes it fails.
        if (target instanceof DuplexChannel dc && target.isActive() && !outputShut[1 - d]) {
            shutdownOutputWhenFlushed(target, dc);
        }
        if (outputShut[SEND] && outputShut[RECV]) {
            closeGracefully(null);
        }
    }

    /**
     * Sends the FIN once every byte written before it has left: {@code shutdownOutput()} fails whatever is still
     * queued in the outbound buffer, so wait for an empty write to complete and for the buffer to be empty.
     */
    private void shutdownOutputWhenFlushed(Channel ch, DuplexChannel dc) {
        ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener((ChannelFutureListener) f -> {
            if (!f.isSuccess() || !ch.isActive()) {
                return;
            }
            var out = ch.unsafe().outboundBuffer();
            if (out != null && !out.isEmpty()) {
                shutdownOutputWhenFlushed(ch, dc);
                return;
            }
            shutdownOutput(ch, dc);
        });
    }

    /**
     * Sends the FIN of {@code ch}, whose outbound buffer is empty. On epoll the socket is shut directly: Netty's
     * {@code shutdownOutput()} makes an exception (a stack trace) for the writes it would fail, on every call.
     * Once both directions of the socket are done and nothing watches the stream, its end of input closes it
     * straight away (no half-closure: no {@code SHUT_RD} and no exception for a peer that is already gone).
     */
    private void shutdownOutput(Channel ch, DuplexChannel dc) {
        if (ch instanceof EpollSocketChannel e && e.fd() instanceof io.netty.channel.unix.Socket s) {
            try {
                s.shutdown(false, true);
            } catch (IOException | RuntimeException gone) {
                // the peer is gone already; its reset or end of input reaches the connection through the channel
            }
        } else {
            dc.shutdownOutput();
        }
        if (spliceable()) {
            ch.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, false);
            halfClosureOff = true;
        }
    }

    /**
     * The socket's pending error (SO_ERROR: ECONNRESET after a reset), 0 if none or not known on this transport;
     * {@code finSent}: this side's FIN has been sent on the socket.
     */
    private static int pendingError(Channel ch, boolean finSent) {
        if (ch instanceof EpollSocketChannel e && e.fd() instanceof io.netty.channel.unix.Socket s) {
            try {
                int err = Math.abs(s.getSoError());
                if (err != 0) return err;
                // the error may have been taken by an earlier call already: a reset socket is left in TCP_CLOSE, while
                // one whose peer sent a FIN is in CLOSE_WAIT (TCP_CLOSE too, but only once its own FIN was sent too)
                // the error may have been taken by an earlier call already: a reset socket is left in TCP_CLOSE, while
                // one whose peer sent a FIN is in CLOSE_WAIT (TCP_CLOSE too, but only once this side's FIN went out)
                return e.isActive() && (finSent || e.tcpInfo().state() != TCP_CLOSE) ? 0 : ECONNRESET;
            } catch (IOException | RuntimeException gone) {
                return ECONNRESET;
            }
        }
        return ch.isActive() ? 0 : ECONNRESET;
    }

    private static final int TCP_CLOSE = 7;
    private static final int ECONNRESET = 104;

    private long heldIn(int d) {
        long n = 0;
        for (RealAttachment a : mods.links()) {
            n += a.heldIn(d);
        }
        return n;
    }

    /** Closes both sockets after flushing what was forwarded; detaches every module. */
    void closeGracefully(String reason) {
        if (closed) return;
        if (doomed != null) {
            abort(doomed); // bytes were dropped: the peers must see a reset, not a clean end
            return;
        }
        if (reason != null) LOG.log(Level.DEBUG, "connection {0} closing: {1}", id, reason);
        mods.fireEvent(ConnectionEvent.CLOSING);
        closed = true;
        closeReason = reason == null ? "closed" : reason;
        endSplice();
        for (Channel ch : new Channel[] {localCh, remoteCh}) {
            if (ch != null) ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
        }
        finish();
    }

    /** Resets both sockets (RST) and records why; detaches every module. */
    @Override
    public void abort(String reason) {
        if (closed) return;
        LOG.log(Level.INFO, "connection {0} ({1}) reset: {2}", id, spec.name(), reason);
        mods.fireEvent(ConnectionEvent.CLOSING);
        closed = true;
        closeReason = reason;
        endSplice();
        for (Channel ch : new Channel[] {localCh, remoteCh}) {
            if (ch != null && ch.isOpen()) {
                try {
                    ch.config().setOption(ChannelOption.SO_LINGER, 0);
                } catch (RuntimeException ignored) {
                    // the socket is already gone; close below is all that is left to do
                }
                ch.close();
            }
        }
        finish();
    }

    private void finish() {
        mods.detachAll();
        List<Runnable> q = preConnect;
        preConnect = null;
        runQueued(q); // forward() releases every buffer once closed
        for (var p : parked) {
            ByteBuf b;
            while ((b = p.poll()) != null) b.release();
        }
        engine.removed(this);
    }

    // ---- timers -----------------------------------------------------------------------------------

    /** Runs a module timer with the module's loader, the watchdog and fault handling. */
    void runTimer(RealAttachment a, Runnable task) {
        mods.runTimer(a, task);
        flush(SEND);
        flush(RECV);
    }

    // ---- channel handler --------------------------------------------------------------------------

    /** The pipeline handler of one side; {@code readDir} is the direction of the bytes read from it. */
    private final class SideHandler extends ChannelInboundHandlerAdapter {
        private final int readDir;

        SideHandler(int readDir) {
            this.readDir = readDir;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof ByteBuf b) {
                onRead(readDir, b);
            } else {
                io.netty.util.ReferenceCountUtil.release(msg);
            }
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) {
            flush(readDir);
            maybeRead(readDir);
            if (bulkRun[readDir] >= Engine.SPLICE_AFTER) {
                maybeSplice();
            }
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof ChannelInputShutdownEvent) {
                int err = pendingError(ctx.channel(), outputShut[1 - readDir]);
                if (err != 0) {
                    // Netty reports the input of a reset socket as shut when it was not reading (paused): that is a
                    // reset, not an end of stream, and the other side must see it as one
                    abort("peer reset by the " + (readDir == SEND ? "local application" : "network peer") + ": "
                            + LinuxSplice.describe(err));
                } else {
                    onInputEnd(readDir);
                }
            }
            io.netty.util.ReferenceCountUtil.release(evt);
        }

        @Override
        public void channelWritabilityChanged(ChannelHandlerContext ctx) {
            // this socket receives the bytes of the other direction
            int writeDir = 1 - readDir;
            boolean writable = ctx.channel().isWritable();
            if (writable && paused[writeDir]) {
                maybeRead(writeDir);
            }
            mods.fireEvent(writeDir == SEND ? (writable ? ConnectionEvent.SEND_WRITABLE : ConnectionEvent.SEND_UNWRITABLE)
                    : (writable ? ConnectionEvent.RECV_WRITABLE : ConnectionEvent.RECV_UNWRITABLE));
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            String side = (readDir == SEND ? "local application" : "network peer");
            if (cause instanceof io.netty.channel.socket.ChannelOutputShutdownException) {
                // bytes were queued behind a FIN: that would be data loss, so say so loudly with the state
                LOG.log(Level.WARNING, "connection " + id + ": a write was failed by an output shutdown (output shut "
                        + java.util.Arrays.toString(outputShut) + ", input ended " + java.util.Arrays.toString(inputEnded) + ")", cause);
            }
            if (cause instanceof IOException) {
                abort("peer reset by the " + side + ": " + cause.getMessage());
            } else {
                LOG.log(Level.WARNING, "connection " + id + ": unexpected error on the " + side + " socket", cause);
                abort("error on the " + side + " socket: " + cause);
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            if (closed) return;
            String who = readDir == SEND ? "local application" : "network peer";
            if (inputEnded[readDir] || halfClosureOff) {
                if (!parked[readDir].isEmpty() || endParked[readDir]) {
                    // bytes read before its end still wait (reading was paused): they go out first, then the end
                    // completes the close (without half-closure the socket closed at its end of input)
                    onInputEnd(readDir);
                    return;
                }
                // its stream had ended (a FIN) before the socket closed: end gracefully, flushing what was forwarded
                closeGracefully("the " + who + " closed");
            } else {
                // the socket went away in the middle of its stream (a reset or an error the transport did not report):
                // the other side must not see a clean end of a stream that did not end
                abort("the " + who + "'s socket closed before its stream ended");
            }
        }
    }
}
