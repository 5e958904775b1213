package dev.interlayer.engine;

import dev.interlayer.api.AppInfo;
import dev.interlayer.api.ConnectionEvent;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.OptionDecision;
import dev.interlayer.api.Protocol;
import dev.interlayer.api.Role;
import dev.interlayer.api.Side;
import dev.interlayer.api.TlsInfo;
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
import io.netty.channel.socket.ChannelInputShutdownEvent;
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
 *
 * <p>This class is the wiring: the channels' handlers, reading and back-pressure, the per-chunk path through the
 * chain, injects, close and reset. The rest is in its parts: {@link ModuleChain} (the modules and the rules on them),
 * {@link HoldBudget} (the hold limit), {@link StreamEnds} (the end of each direction, half-close, the close after
 * both) and {@link SpliceHandoff} (bulk transfers in the kernel).
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
    /** The engine's chain trace (the testkit's), or null. */
    private final ChainTrace trace;

    private Channel localCh;
    private Channel remoteCh;
    private InetSocketAddress upstreamTarget;
    /** Where the client connected before the redirect (an intercepting listener's connection), or null. */
    private final InetSocketAddress originalDestination;
    /** The attached modules and the rules shared with the datagram path (attach, detach, socket hooks, events, faults). */
    private final ModuleChain<RealAttachment> mods;
    /** The end of each direction: half-close, the end walking the chain, the close after both, reset detection. */
    final StreamEnds ends;
    /** The hand-off of both sockets to the kernel relay for a bulk transfer, and back. */
    final SpliceHandoff splice;
    private final int[] hookCount = new int[2];
    private final boolean[] paused = new boolean[2];
    private final boolean[] needFlush = new boolean[2];
    private List<Runnable> preConnect;
    private volatile boolean closed;
    private boolean connected;
    private volatile long bytesSent;
    private volatile long bytesReceived;
    private volatile AppInfo app;
    private boolean appLooked;
    private String closeReason;
    /** The listener's TLS contexts, or null: it neither terminates nor originates TLS. */
    private final TlsContexts tls;
    /** The TLS state of the accepted socket and of the upstream's, or null where that side is plain. */
    private TlsSide acceptedTls;
    private TlsSide upstreamTls;

    /**
     * {@code startedAt} (null: now), {@code sent} and {@code received}: where the connection began on the direct path,
     * its start and the bytes it moved there (see {@link DirectConnection}).
     */
    ProxyConnection(Engine engine, long id, ListenerSpec spec, Channel accepted, Watchdog.Slot slot, long holdLimit,
                    Instant startedAt, long sent, long received, TlsContexts tls) {
        this.engine = engine;
        this.tls = tls;
        this.trace = engine.trace;
        this.startedAt = startedAt != null ? startedAt : Instant.now();
        this.bytesSent = sent;
        this.bytesReceived = received;
        this.id = id;
        this.spec = spec;
        this.accepted = accepted;
        this.loop = accepted.eventLoop();
        this.slot = slot;
        this.budget = engine.pauseAt > 0 ? new HoldBudget(holdLimit, engine.pauseAt) : new HoldBudget(holdLimit);
        // an intercepting listener's connection goes where its client meant it to (null: it was not redirected, see Engine.accept)
        this.originalDestination = spec.intercepts() ? Intercepted.originalDestination(accepted) : null;
        this.upstreamTarget = spec.intercepts() ? originalDestination : spec.upstream();
        this.mods = new ModuleChain<>(new Host(), slot, RealAttachment[]::new);
        this.ends = new StreamEnds(this, mods, budget, slot);
        this.splice = new SpliceHandoff(this, engine, mods, budget);
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
            InetSocketAddress[] socket = localSocket();
            if (socket != null) {
                appLooked = true;
                // the /proc scan is the agent's work, not the asking module's: not charged to its time budget or alloc-limit
                app = Watchdog.agentWork(slot, () -> ProcLookup.find(socket[0], socket[1]));
            }
        }
        return app;
    }

    @Override
    public int socketUid() {
        if (appLooked) return app == null ? -1 : app.uid();
        // a redirected connection's uid is in the mark of its accepted socket, when the table could put it there
        int marked = originalDestination != null ? Intercepted.socketUid(accepted) : -1;
        if (marked >= 0) return marked;
        InetSocketAddress[] socket = localSocket();
        return socket == null ? -1 : Watchdog.agentWork(slot, () -> ProcLookup.uid(socket[0], socket[1]));
    }

    /** The local application's socket as {its address, its peer}; null before the upstream connects (server role). */
    private InetSocketAddress[] localSocket() {
        if (spec.role() == Role.CLIENT) {
            // a redirected client's socket is connected to its original destination (whatever a module's onConnect made
            // the upstream), not to the listener
            InetSocketAddress peer = originalDestination != null ? originalDestination : (InetSocketAddress) accepted.localAddress();
            return new InetSocketAddress[] {(InetSocketAddress) accepted.remoteAddress(), peer};
        }
        if (localCh != null && localCh.localAddress() != null) {
            return new InetSocketAddress[] {upstreamTarget, (InetSocketAddress) localCh.localAddress()};
        }
        return null;
    }

    ByteBufAllocator alloc() { return accepted.alloc(); }
    long holdLimit() { return budget.limit; }
    @Override public EventLoop loop() { return loop; }
    @Override public boolean isClosed() { return closed; }
    /** The listener terminates TLS on the accepted socket: the connection starts with {@link #startAfterHandshake}. */
    boolean terminatesTls() { return tls != null && tls.terminates(); }
    /** The upstream is connected (see {@link #early}). */
    boolean isConnected() { return connected; }
    ListenerSpec spec() { return spec; }
    String closeReason() { return closeReason; }

    @Override
    public void execute(Runnable r) {
        Engine.runOn(loop, r);
    }

    @Override
    public List<String> moduleIds() {
        return mods.moduleIds();
    }

    @Override
    public String tls() {
        if (spec.sni() != null) return passthrough == null ? "passthrough: reading the client hello" : passthrough;
        String in = acceptedTls == null ? null : acceptedTls.negotiated() == null ? "handshaking" : acceptedTls.negotiated().toString();
        String out = upstreamTls == null ? null : upstreamTls.negotiated() == null ? "handshaking" : upstreamTls.negotiated().toString();
        if (in == null && out == null) return null;
        return (in == null ? "" : "in: " + in) + (in != null && out != null ? "; " : "") + (out == null ? "" : "out: " + out);
    }

    @Override
    public TlsInfo tls(Side side) {
        if (knownTls != null) return knownTls[side.ordinal()];
        // the accepted socket is the local application's in the client role, the network peer's in the server role
        boolean acceptedSide = (side == Side.LOCAL) == (spec.role() == Role.CLIENT);
        TlsSide t = acceptedSide ? acceptedTls : upstreamTls;
        return t == null ? null : t.negotiated();
    }

    // ---- what TlsSide asks ----------------------------------------------------------------------------

    /** The address of the peer behind {@code side}'s socket. */
    InetSocketAddress peerAddress(TlsSide side) {
        return side == acceptedTls ? (InetSocketAddress) accepted.remoteAddress() : upstreamTarget;
    }

    /** The server name sent to the upstream (SNI, and verified), or null for the accepted side. */
    String serverNameSent(TlsSide side) {
        return side == upstreamTls ? tls.serverName() : null;
    }

    /** The {@code tls} module bound to {@code side}'s handshakes, or null where the listener names none. */
    TlsModuleBinding tlsModule(TlsSide side) {
        return tls == null ? null : tls.module(side == acceptedTls);
    }

        java.time.Duration handshakeTimeout(TlsSide side) {
        return tls.settings(side == acceptedTls).handshakeTimeout();
    }

    // ---- setup ------------------------------------------------------------------------------------

    /** Attaches the modules for a new connection, runs the socket hooks and connects the upstream. */
    void start(List<LoadedModule> modules) {
        if (!attachAll(modules)) {
            return;
        }
        connectUpstream();
    }

    /**
     * Starts a connection on a listener that terminates TLS: only the accepted socket's handlers are added now; the
     * modules are chosen by {@code choose} (selectors can then match what the handshake negotiated), attached, and the
     * upstream connected once the accepted socket's handshake has completed ({@link #handshaken}). A handshake that fails
     * attaches nothing and opens no upstream socket. Plaintext the handshake's last flight carried waits in
     * {@link #early} like any byte read before the upstream is connected, so it enters the chain once the chain exists.
     */
    void startAfterHandshake(java.util.function.Supplier<List<LoadedModule>> choose) {
        this.afterHandshake = choose;
        addAcceptedHandlers();
    }

    /** How to choose the modules once the accepted socket's handshake completes; null once chosen (or never waited for). */
    private java.util.function.Supplier<List<LoadedModule>> afterHandshake;

    /** The accepted socket's TLS handshake is running: no module attaches before it completes (see {@link #startAfterHandshake}). */
    boolean awaitingHandshake() {
        return afterHandshake != null;
    }

    /** {@code side}'s handshake completed (its {@link TlsSide#negotiated()} is set): on the accepted side, the connection starts. */
    void handshaken(TlsSide side) {
        if (side != acceptedTls || afterHandshake == null || closed) return;
        java.util.function.Supplier<List<LoadedModule>> choose = afterHandshake;
        afterHandshake = null;
        List<LoadedModule> modules;
        try {
            modules = choose.get();
        } catch (RuntimeException e) {
            // a selector that cannot be evaluated must not stop the listener: this one connection ends, saying why
            LOG.log(Level.WARNING, "connection {0} ({1}): choosing its modules failed: {2}", id, spec.name(), e.toString());
            abort("choosing its modules failed: " + e);
            return;
        }
        if (!mods.attachAll(modules)) return;
        recount();
        connectUpstream();
    }

    /** Runs the modules' onConnect and onBind hooks and connects the upstream (then {@link #onConnected}). */
    private void connectUpstream() {
        InetSocketAddress[] tb = mods.connectAndBind(upstreamTarget); // the listener's upstream, or the route SNI chose
        if (tb == null) return;
        InetSocketAddress target = tb[0];
        InetSocketAddress bind = tb[1];
        upstreamTarget = target;
        // The upstream channel is made and configured here, not by a Bootstrap: no option map, reflective factory
        // or resolver per connection (the target is an address already).
        Channel up = engine.transport().newChannel(target);
        if (spec.intercepts()) {
            // marked before it connects, or never connected: the redirect rule skips marked packets, so no connection of
            // an intercepting listener can come back to it (a loop)
            int r = Intercepted.mark(up, spec.interceptMark());
            if (r != 0) {
                up.close();
                abort("cannot mark the socket to " + target + " (SO_MARK: " + LinuxSockets.describe(-r)
                        + "); the agent needs CAP_NET_ADMIN to intercept");
                return;
            }
        }
        Transport.configure(up);
        up.config().setConnectTimeoutMillis((int) engine.options().connectTimeout().toMillis());
        int upRead = spec.role() == Role.CLIENT ? RECV : SEND;
        if (tls != null && tls.originates()) {
            // below the connection's handler: it reads and writes plaintext, the SslHandler starts its handshake once connected
            up.pipeline().addLast("tls", tls.clientHandler(up.alloc(), id, target));
            up.pipeline().addLast("tls-side", upstreamTls = new TlsSide(this, upRead, "upstream"));
        }
        up.pipeline().addLast("interlayer", new SideHandler(upRead));
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
                    engine.stats(spec.name()).connectFailures.increment();
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

    // ---- TLS passthrough (sni-routes; see SniPeek) ------------------------------------------------------

    /** What the client hello asked for and the route it took, for the listing; null before (or without) passthrough. */
    private String passthrough;

    /**
     * A passthrough connection's route is known, before {@link #start}: the hello named {@code serverName} (null: none),
     * and {@code route} sends it to its address (the socket hooks' onConnect still sees it and may change it).
     */
    void routed(String serverName, SniRoutes.Route route) {
        upstreamTarget = route.address();
        passthrough = "passthrough sni=" + (serverName == null ? "(none)" : serverName) + " route="
                + (route.pattern() == null ? "default" : route.pattern());
    }

    /** A passthrough connection that cannot be routed: one line saying what and what to do, then the client's socket closes. */
    void refuse(String line) {
        if (closed) return;
        engine.stats(spec.name()).refused.increment();
        Engine.RESETS.log("listener " + spec.name() + ": passthrough refusals", Level.WARNING, "connection {0} ({1}): the client {2} {3}",
                id, spec.name(), accepted.remoteAddress(), line);
        closeGracefully(line);
    }

    /** Adds the accepted side's handler and attaches {@code modules} in order; false if the connection closed meanwhile. */
    private boolean attachAll(List<LoadedModule> modules) {
        addAcceptedHandlers();
        if (!mods.attachAll(modules)) return false;
        recount();
        return true;
    }

    /** Adds the accepted socket's handlers: the TLS ones where the listener terminates TLS, then the connection's. */
    private void addAcceptedHandlers() {
        int readDir = spec.role() == Role.CLIENT ? SEND : RECV;
        if (tls != null && tls.terminates()) {
            // below the connection's handler, so that modules see plaintext as on a plain socket; the SniHandler picks the
            // certificate by the name the client asks for and puts an SslHandler in its place
            accepted.pipeline().addLast("tls", tls.serverHandler(id, (InetSocketAddress) accepted.remoteAddress()));
            accepted.pipeline().addLast("tls-side", acceptedTls = new TlsSide(this, readDir, "client"));
        }
        accepted.pipeline().addLast("interlayer", new SideHandler(readDir));
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
            if (done[d]) ends.ended(d);
        }
        if (pendingSend != null) early(() -> writeOut(SEND, pendingSend));
        if (pendingRecv != null) early(() -> writeOut(RECV, pendingRecv));
        startConnected(List.of(), upstream);
    }

    private void onConnected() {
        connected = true;
        Map<SocketOption, Object> opts = engine.effectiveOptions(spec);
        boolean hooked = mods.count(Hooks.SET_OPTION) > 0;
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

    Channel channel(Side side) {
        return side == Side.LOCAL ? localCh : remoteCh;
    }

    /** The socket the bytes of direction {@code d} are written to. */
    Channel target(int d) {
        return d == SEND ? remoteCh : localCh;
    }

    /** Sets an option on one socket, through the modules' onSetOption hooks. */
    void setOption(Side side, SocketOption opt, Object value) {
        OptionDecision d = mods.decideOption(side, opt, value);
        if (d == null || d.kind() == OptionDecision.Kind.DENY) return;
        Object v = d.kind() == OptionDecision.Kind.MODIFY ? d.value() : value;
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
        return mods.reportedOption(side, opt, ch == null ? null : ch.config().getOption(SocketOptions.of(opt)));
    }

    // ---- attach / detach --------------------------------------------------------------------------

    @Override
    public boolean attach(LoadedModule m) {
        if (spec.sni() != null && passthrough == null) return false; // not started: the modules are chosen once it is routed
        // Still in the accepted socket's TLS handshake: nothing attaches before it completes (the modules are chosen then,
        // an apply-now module among them if its selector matches); a programmatic attach is refused, to be asked again.
        if (awaitingHandshake()) return false;
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

    // ---- what EmbeddedConnection (the testkit) reads ---------------------------------------------------

    ModuleChain<RealAttachment> chain() {
        return mods;
    }

    /** Bytes read from the source of {@code d} while paused, waiting to enter the chain. */
    long parkedBytes(int d) {
        return ends.parkedBytes(d);
    }

    /** Bytes held or buffered by modules (HOLD and NEED_MORE), against the hold limit. */
    long reservedBytes() {
        return budget.reserved();
    }

    @Override
    public long heldBytes() {
        return budget.reserved();
    }

    /** Counts a TLS handshake of either socket for the listener's metrics. */
    void tlsDone(boolean ok) {
        ListenerStats s = engine.stats(spec.name());
        (ok ? s.tlsHandshakes : s.tlsFailures).increment();
    }

    /** What the testkit says TLS negotiated on the local and the remote socket (null: plain), instead of handshakes. */
    void knownTls(TlsInfo local, TlsInfo remote) {
        TlsInfo[] k = new TlsInfo[Side.values().length];
        k[Side.LOCAL.ordinal()] = local;
        k[Side.REMOTE.ordinal()] = remote;
        this.knownTls = k;
    }

    /** Set by {@link #knownTls}: each side's TLS by {@link Side#ordinal()}; null: the handshakes' (the agent). */
    private TlsInfo[] knownTls;

    /** Sets the local application behind the connection instead of looking it up in /proc. */
    void knownApp(AppInfo app) {
        this.app = app;
        this.appLooked = true;
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
                ends.progressEnd(d);
            }
        }
    }

    private void recount() {
        hookCount[SEND] = mods.count(Hooks.SEND);
        hookCount[RECV] = mods.count(Hooks.RECV);
        if ((splice.running() || ends.halfClosureOff()) && !splice.spliceable()) {
            splice.drain();
            ends.allowHalfClosure();
        }
    }

    /** The chain index right after {@code a} in direction {@code d}. */
    private int next(RealAttachment a, int d) {
        int i = mods.indexOf(a);
        return d == SEND ? i + 1 : i - 1;
    }

    // ---- data path --------------------------------------------------------------------------------

    private void onRead(int d, ByteBuf buf) {
        int n = buf.readableBytes();
        countRead(d, n);
        splice.read(d, n);
        if (closed || ends.outputShut(d)) {
            buf.release();
            return;
        }
        if (splice.running()) {
            // the channel read on its own (a read it had scheduled): these bytes follow what the pipe holds
            splice.afterSplice(() -> onReadConnected(d, buf));
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
    void early(Runnable r) {
        if (preConnect == null) preConnect = new ArrayList<>();
        preConnect.add(r);
    }

    /** Work waits for the upstream connection (see {@link #early}). */
    boolean hasEarly() {
        return preConnect != null;
    }

    private void onReadConnected(int d, ByteBuf buf) {
        if (closed || ends.outputShut(d)) {
            buf.release();
            return;
        }
        if (paused[d] || ends.hasParked(d)) {
            ends.park(d, buf); // read although paused: it waits until reading would resume
            return;
        }
        enter(d, buf);
    }

    /** Puts a chunk read from the source of {@code d} (owned) into the chain, or straight out on the fast path. */
    void enter(int d, ByteBuf buf) {
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
                if (trace != null) trace.called(this, a.name, hook, dir, len, injectedBy, tag, v);
                if (v == Verdict.PASS && thrown == null && !over && ctx.untouched()) {
                    if (trace != null && closed) {
                        a.breach(ChainTrace.Breach.VERDICT_AFTER_CLOSE, "returned PASS after the connection was reset or closed in the call");
                    }
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
        Object fault = null; // the exception itself, so a fault listener (the testkit's) sees it; else what was wrong
        if (thrown != null) {
            fault = thrown;
        } else if (over) {
            fault = slot.why();
        } else if (v == null) {
            fault = "returned a null verdict";
            a.breach(ChainTrace.Breach.NULL_VERDICT, (d == SEND ? "onSend" : "onRecv") + " " + fault);
        } else if (v.kind() == Verdict.Kind.HOLD && h == null) {
            fault = "returned HOLD without calling ctx.hold()";
            a.breach(ChainTrace.Breach.HOLD_WITHOUT_HOLD_CALL, (String) fault);
        } else if (h != null && v.kind() != Verdict.Kind.HOLD) {
            fault = "called ctx.hold() but returned " + v + "; return HOLD when keeping the chunk";
            a.breach(ChainTrace.Breach.HOLD_CALL_WITHOUT_HOLD, (String) fault);
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
        if (trace != null && closed && v.kind() != Verdict.Kind.DROP && v.kind() != Verdict.Kind.ERROR && v.kind() != Verdict.Kind.CLOSE) {
            a.breach(ChainTrace.Breach.VERDICT_AFTER_CLOSE, "returned " + v + " after the connection was reset or closed in the call");
        }
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
                if (want <= len) {
                    a.breach(ChainTrace.Breach.NEED_MORE_TOO_SMALL, "needMore(" + want + ") after being given " + len
                            + " bytes; the engine waits for one more byte");
                }
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
    ByteBuf faultOnData(RealAttachment a, String hook, Object fault, ByteBuf in, boolean rewritten) {
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
        if (closed || ends.doomed() != null || ends.outputShut(d) || target == null) {
            buf.release();
            return;
        }
        if (splice.running()) {
            // bytes a module injected: they go out after what the relay's pipe holds, through the channel
            splice.afterSplice(() -> writeOut(d, buf));
            return;
        }
        TlsSide tls = target == accepted ? acceptedTls : upstreamTls;
        if (tls != null && tls.cannotWrite() != null && buf.isReadable()) {
            buf.release();
            failTls(null, tls.cannotWrite());
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

    void flush(int d) {
        if (needFlush[d]) {
            needFlush[d] = false;
            Channel target = d == SEND ? remoteCh : localCh;
            if (target != null && target.isActive()) target.flush();
        }
    }

    /** What was written in direction {@code d} goes out with its FIN or the close: no flush of its own. */
    void skipFlush(int d) {
        needFlush[d] = false;
    }

    /**
     * Reads from the source of direction {@code d} while its target can take more and modules hold little,
     * pauses it otherwise. Reading uses Netty's auto-read, so a readable socket is drained in one batch of up
     * to 16 reads per wake-up and the epoll interest only changes when back-pressure starts or ends.
     */
    void maybeRead(int d) {
        if (closed || !connected || splice.running()) {
            return;
        }
        Channel source = d == SEND ? localCh : remoteCh;
        Channel target = d == SEND ? remoteCh : localCh;
        // NEED_MORE buffers do not pause reading: they need more bytes to make progress, and the hold limit caps them.
        boolean go = target.isWritable() && budget.buffered() < budget.high;
        paused[d] = !go;
        if (go) {
            ends.resume(d);
        }
        if (!ends.inputEnded(d) && source.config().isAutoRead() != !paused[d]) {
            source.config().setAutoRead(!paused[d]);
        }
    }

    /** Reading of direction {@code d} is paused (see {@link #maybeRead}). */
    boolean isPaused(int d) {
        return paused[d];
    }

    boolean isWritable(Direction dir) {
        Channel target = dir == Direction.SEND ? remoteCh : localCh;
        return !closed && target != null && target.isWritable();
    }

    /** Counts bytes read from the source of direction {@code d}, by the channel or by the relay. */
    void countRead(int d, long n) {
        if (d == SEND) bytesSent += n; else bytesReceived += n;
    }

    /** Runs work queued while the connection waited (for the upstream, or for the relay), in order; null is none. */
    static void runQueued(List<Runnable> q) {
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
        ends.progressEndLater(d);
    }

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
            String why = "injected " + len + " bytes " + dir + " while " + (pendingOut + budget.onTheWayBytes(d))
                    + " bytes wait for a peer that does not read (limit " + budget.limit + "); pause while attachment.isWritable("
                    + dir + ") is false";
            a.breach(ChainTrace.Breach.INJECT_BEYOND_HOLD_LIMIT, why);
            execute(() -> moduleFault(a, "inject", why));
            return false;
        }
        if (trace != null) trace.injected(this, a.name, dir, len, tag);
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
        if (trace != null) trace.injected(this, a.name, dir, b.readableBytes(), 0L);
        a.injected.addAndGet(b.readableBytes());
        later(a, d, b, a.name, 0L);
        return true;
    }

    /**
     * Queues {@code buf} (owned), output of module {@code a} in direction {@code d}, to go on to the next module from a
     * task on the loop; any thread. Every output of a module that cannot go on at once (an inject, or what it passes
     * while its injects wait) goes through here, so a module's output leaves it in the order it produced it.
     */
    void later(RealAttachment a, int d, ByteBuf buf, String injectedBy, long tag) {
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
            if (closed || ends.doomed() != null || ends.outputShut(d)) {
                buf.release();
            } else {
                forward(d, buf, next(a, d), injectedBy, tag);
                flush(d);
            }
        } finally {
            budget.arrived(d, len);
            ends.progressEnd(d);
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
            ends.doom(holdOverflow(a));
            return false;
        }
        return true;
    }

    ChainTrace trace() {
        return trace;
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
    private final Runnable afterHeldLeft = this::heldLeft;

    private void heldLeft() {
        for (int d = 0; d < 2; d++) {
            if (paused[d]) maybeRead(d);
            ends.progressEnd(d);
        }
    }

    // ---- close, reset ------------------------------------------------------------------------------

    /** Closes both sockets after flushing what was forwarded; detaches every module. */
    void closeGracefully(String reason) {
        if (closed) return;
        if (ends.doomed() != null) {
            abort(ends.doomed()); // bytes were dropped: the peers must see a reset, not a clean end
            return;
        }
        if (reason != null) LOG.log(Level.DEBUG, "connection {0} closing: {1}", id, reason);
        mods.fireEvent(ConnectionEvent.CLOSING);
        closed = true;
        closeReason = reason == null ? "closed" : reason;
        splice.end();
        for (Channel ch : new Channel[] {localCh, remoteCh}) {
            if (ch != null) ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
        }
        finish();
    }

    /** Resets both sockets (RST) and records why; detaches every module. */
    @Override
    public void abort(String reason) {
        if (closed) return;
        Engine.RESETS.log(Engine.resetKind(spec.name(), reason), Level.INFO, "connection {0} ({1}) reset: {2}", id, spec.name(), reason);
        reset(reason, null);
    }

    /**
     * TLS failed on {@code tlsChannel} (a handshake, or a broken record): one line saying what and what to do, then the
     * other socket is reset while {@code tlsChannel} is left to its SslHandler, which sends the peer its alert and closes.
     */
    void failTls(Channel tlsChannel, String line) {
        if (closed) return;
        tlsDone(false);
        Engine.RESETS.log("listener " + spec.name() + ": TLS failures", Level.WARNING, "connection {0} ({1}): {2}", id, spec.name(), line);
        reset(line, tlsChannel);
    }

    /** Resets both sockets but {@code graceful} (null: none), which is closed; detaches every module. */
    private void reset(String reason, Channel graceful) {
        mods.fireEvent(ConnectionEvent.CLOSING);
        closed = true;
        closeReason = reason;
        splice.end();
        for (Channel ch : new Channel[] {localCh, remoteCh}) {
            if (ch != null && ch == graceful) {
                ch.close();
            } else if (ch != null && ch.isOpen()) {
                try {
                    ch.config().setOption(ChannelOption.SO_LINGER, 0);
                } catch (RuntimeException ignored) {
                    // the socket is already gone; close below is all that is left to do
                }
                // below a TLS socket's SslHandler: its close would send close_notify first, a clean end to the peer
                ChannelHandlerContext below = ch.pipeline().context(io.netty.handler.ssl.SslHandler.class);
                if (below != null) below.close(); else ch.close();
            }
        }
        finish();
    }

    private void finish() {
        mods.detachAll();
        List<Runnable> q = preConnect;
        preConnect = null;
        runQueued(q); // forward() releases every buffer once closed
        ends.release();
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
            splice.readComplete(readDir);
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof ChannelInputShutdownEvent) {
                ends.inputShutdown(readDir, ctx.channel());
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
                LOG.log(Level.WARNING, "connection " + id + ": a write was failed by an output shutdown (" + ends + ")",
                        cause);
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
            ends.inactive(readDir);
        }
    }
}
