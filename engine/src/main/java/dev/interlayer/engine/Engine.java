package dev.interlayer.engine;

import dev.interlayer.api.AttachMode;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.ListenerInfo;
import dev.interlayer.api.Protocol;
import dev.interlayer.api.Role;
import dev.interlayer.api.Side;
import dev.interlayer.api.SocketDecision;
import dev.interlayer.api.SocketModule;
import dev.interlayer.api.SocketOption;
import dev.interlayer.runtime.Hooks;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleCallException;
import dev.interlayer.runtime.ModuleRegistry;
import dev.interlayer.runtime.RepeatedLog;
import dev.interlayer.runtime.ModuleState;
import dev.interlayer.runtime.RegistryListener;
import dev.interlayer.runtime.SelectorMatcher;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.AdaptiveByteBufAllocator;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.channel.AdaptiveRecvByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.RecvByteBufAllocator;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.epoll.EpollChannelOption;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The TCP data plane: listeners that accept connections, attach the matching modules and forward bytes
 * through them to the upstream.
 *
 * <p>Every connection lives on one event loop (native epoll where available, NIO otherwise) with both
 * of its sockets, so module calls for a connection never overlap. The engine follows the registry: a
 * module added with apply-now attaches to open connections; an unregistered or revoked module is
 * detached everywhere (the runtime asks each attachment).
 *
 * <pre>{@code
 * try (Engine engine = new Engine(registry, EngineOptions.defaults())) {
 *     InetSocketAddress bound = engine.start(ListenerSpec.tcp("web", Role.CLIENT, listen, upstream));
 *     ...
 * }
 * }</pre>
 */
public final class Engine implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.engine");
    /**
     * Lines about single connections that a peer or a client can make by the thousand (resets, dropped accepts): the
     * first five of a kind per listener every 10 s, then one line that counts the rest.
     */
    static final RepeatedLog RESETS = new RepeatedLog(LOG, 5, Duration.ofSeconds(10));

    /**
     * The {@link #RESETS} kind of a reset on {@code listener}: its reason up to the first {@code ':'} or {@code '('}
     * ("peer reset by the network peer", "cannot connect upstream 10.0.0.1:80", "module tag@1.0.0 returned ERROR"), so
     * a storm of one kind (peers resetting on purpose) never hides a rarer one.
     */
    static String resetKind(String listener, String reason) {
        int end = reason.length();
        for (int i = 0; i < reason.length(); i++) {
            char c = reason.charAt(i);
            if (c == ':' || c == '(') {
                end = i;
                break;
            }
        }
        return "listener " + listener + ": connections reset (" + reason.substring(0, Math.min(end, 100)).strip() + ")";
    }
    static final WriteBufferWaterMark WATER_MARK = new WriteBufferWaterMark(128 * 1024, 512 * 1024);

    /** Buffer allocator of every connection (benchmark knob {@code -Dinterlayer.engine.allocator=pooled|adaptive}). */
    static final ByteBufAllocator ALLOCATOR = switch (System.getProperty("interlayer.engine.allocator", "pooled")) {
        case "adaptive" -> new AdaptiveByteBufAllocator();
        default -> PooledByteBufAllocator.DEFAULT;
    };

    /** Read sizing: adaptive from 2 KiB up to {@code interlayer.engine.read-max} (default 64 KiB) per read. */
    static final RecvByteBufAllocator RECV = new AdaptiveRecvByteBufAllocator(512, 2048,
            Integer.getInteger("interlayer.engine.read-max", 64 * 1024));

    /**
     * Splice a connection once a direction has read this many bytes in a row in reads of at least
     * {@link #SPLICE_BULK_READ} bytes: bulk transfers, not request and reply traffic.
     */
    static final int SPLICE_AFTER = Integer.getInteger("interlayer.engine.splice-after", 256 * 1024);
    static final int SPLICE_BULK_READ = 16 * 1024;
    /** The splice pipe's size in bytes (0: the kernel's default, 64 KiB). */
    static final int SPLICE_PIPE = Integer.getInteger("interlayer.engine.splice-pipe", 0);

    private final ModuleRegistry registry;
    private final EngineOptions options;
    private final Transport transport;
    private final EventLoopGroup group;
    private final Watchdog watchdog;
    private final StuckLoops stuckLoops;
    private final Map<EventLoop, Watchdog.Slot> slots = new ConcurrentHashMap<>();
    /** What listeners' {@code tls} modules ask of the engine: the module by name, the watchdog slot of the calling event loop. */
    private final TlsModuleBinding.Host tlsHost = new TlsModuleBinding.Host() {
        private final ThreadLocal<Watchdog.Slot> mine = new ThreadLocal<>();

        @Override
        public java.util.Optional<LoadedModule> find(String name) {
            return registry.find(name);
        }

        @Override
        public Watchdog.Slot slot() {
            Watchdog.Slot s = mine.get();
            if (s != null) return s;
            for (Map.Entry<EventLoop, Watchdog.Slot> e : slots.entrySet()) {
                if (e.getKey().inEventLoop()) {
                    mine.set(e.getValue());
                    return e.getValue();
                }
            }
            return null; // not an event loop the engine watches (a listener starting): the call runs unwatched
        }
    };
    /** Per listener its listening sockets: one per event loop with epoll (SO_REUSEPORT), else one. */
    private final Map<String, Listening> listeners = new ConcurrentHashMap<>();
    /**
     * Every open connection and UDP flow by id, whichever path serves it: a direct connection that becomes a channel
     * connection is replaced here under the same id.
     */
    private final Map<Long, Connection> open = new ConcurrentHashMap<>();
    private final java.util.concurrent.atomic.LongAdder directConnections = new java.util.concurrent.atomic.LongAdder();
    /** Each listener's counters by name, kept when it stops (one started again under its name counts on). */
    private final Map<String, ListenerStats> listenerStats = new ConcurrentHashMap<>();
    private final java.util.concurrent.atomic.LongAdder promotions = new java.util.concurrent.atomic.LongAdder();
    private final Map<String, ListenerSpec> specs = new ConcurrentHashMap<>();
    /** The listeners of the warm-up ({@link #startWarmUp}) running now, by name. */
    private final Set<String> warming = ConcurrentHashMap.newKeySet();
    /** The TLS contexts of each listener that terminates or originates TLS; closed when it stops. */
    private final Map<String, TlsContexts> tlsContexts = new ConcurrentHashMap<>();
    private final AtomicLong ids = new AtomicLong();
    private final java.util.concurrent.atomic.LongAdder splicedConnections = new java.util.concurrent.atomic.LongAdder();
    private final java.util.concurrent.atomic.LongAdder splicedBytes = new java.util.concurrent.atomic.LongAdder();
    private final RegistryListener follower = new Follower();
    private final ProcessAttachments processAttachments;
    /** Sees every chain step (the testkit's {@link EmbeddedEngine}); null in the agent. Set before any connection opens. */
    ChainTrace trace;
    /** Held bytes at which a connection stops reading, if not the hold budget's default (the testkit sets it); 0: default. */
    long pauseAt;
    private volatile boolean closed;
    /** Splice is on in the options and works here (epoll, the foreign function binding of splice(2)). */
    private final boolean spliceAvailable;

    /**
     * Runs {@code r} on {@code loop}: at once on the loop's own thread, else queued. Once the loop has stopped (the engine
     * closed, or gave up on a stuck loop) its connections are gone with it: the task is dropped, so that a late caller
     * (the registry unloading its modules after the engine, a module's own thread) does not fail on a connection that no
     * longer exists.
     */
    static void runOn(io.netty.channel.EventLoop loop, Runnable r) {
        if (loop.inEventLoop()) {
            r.run();
            return;
        }
        try {
            loop.execute(r);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            if (!loop.isShuttingDown()) {
                throw e;
            }
        }
    }

    /** Starts the event loops; listeners are added with {@link #start(ListenerSpec)}. */
    public Engine(ModuleRegistry registry, EngineOptions options) {
        this.registry = registry;
        this.options = options;
        this.processAttachments = new ProcessAttachments(registry);
        this.transport = Transport.choose(options.nativeTransport());
        int threads = options.ioThreads() > 0 ? options.ioThreads() : Runtime.getRuntime().availableProcessors();
        this.stuckLoops = new StuckLoops(this::directListeners);
        // the chooser hands new connections (NIO, one listening socket) and UDP listeners to loops that are not stuck
        this.group = new MultiThreadIoEventLoopGroup(threads, (java.util.concurrent.Executor) null, stuckLoops, transport.ioHandler());
        this.watchdog = new Watchdog(options.hookBudget(), options.allocLimit(), stuckLoops);
        registry.addListener(follower);
        if (transport.whyNotNative() != null && options.nativeTransport()) {
            LOG.log(Level.INFO, "native epoll transport unavailable ({0}); using NIO", transport.whyNotNative());
        }
        this.spliceAvailable = options.splice() && transport.isEpoll() && LinuxSplice.UNAVAILABLE == null;
        if (options.splice() && transport.isEpoll() && LinuxSplice.UNAVAILABLE != null) {
            LOG.log(Level.INFO, "splice off: {0}; every byte goes through the event loop", LinuxSplice.UNAVAILABLE);
        }
    }

    /** The processes that asked for modules on their next connections (programmatic attach by the application). */
    public ProcessAttachments processAttachments() {
        return processAttachments;
    }

    /** The transport in use: {@code epoll} or {@code nio}. */
    public String transportName() {
        return transport.name();
    }

    Transport transport() {
        return transport;
    }

    EngineOptions options() {
        return options;
    }

    /**
     * Starts a listener and returns the address it bound.
     *
     * @throws EngineException if the name is taken, a module's onListen denies it, or the address cannot be bound
     */
    public InetSocketAddress start(ListenerSpec spec) throws EngineException {
        return start(spec, List.of(), false);
    }

    /**
     * Starts a listener on listening sockets another process bound and handed over (their file descriptor numbers in this
     * process, as {@link #listeningSockets} gave them there): no socket is bound or closed, so the connections the kernel
     * queued on them are accepted here. The sockets are spread over the event loops; this engine owns them from now on.
     *
     * @throws EngineException as {@link #start(ListenerSpec)}, or if the transport is not epoll
     */
    public InetSocketAddress adopt(ListenerSpec spec, List<Integer> sockets) throws EngineException {
        if (sockets.isEmpty()) throw new IllegalArgumentException("no sockets to adopt");
        if (!transport.isEpoll()) {
            throw new EngineException("listener '" + spec.name() + "': inherited sockets need the native epoll transport, which is unavailable here: "
                    + transport.whyNotNative());
        }
        return start(spec, sockets, false);
    }

    /**
     * Replaces the running listener named {@code spec.name()} by one with {@code spec}. A TCP listener on native epoll
     * that keeps its address (the one it bound, or the same {@code listen}) and whether it has TLS and SNI routes goes on
     * accepting from the same listening sockets: the new listener takes second descriptors of them while the old one
     * still accepts, and the old one stops after; the sockets and the connections the kernel queued on them are never
     * closed, so nothing is refused. Otherwise the old listener stops and the new one binds its address (a connection in
     * between is refused). Open connections keep the settings they started with.
     *
     * @return the address the listener serves on now
     * @throws EngineException as {@link #start(ListenerSpec)}, or if no such listener runs; where the sockets are kept,
     *         the old listener then still serves, else it is stopped
     */
    public InetSocketAddress restart(ListenerSpec spec) throws EngineException {
        String name = spec.name();
        Listening old = listeners.get(name);
        ListenerSpec was = specs.get(name);
        if (old == null || was == null) {
            throw new EngineException("no listener named '" + name + "' is running; see interlayer listeners");
        }
        boolean keep = transport.isEpoll() && LinuxSockets.UNAVAILABLE == null && was.protocol() == Protocol.TCP
                && spec.protocol() == Protocol.TCP && !was.intercepts() && !spec.intercepts()
                && (spec.listen().equals(was.listen()) || spec.listen().equals(old.address()))
                // connections find their TLS contexts and SNI routes by the listener's name: while both listeners
                // accept, each must find what it needs
                && was.hasTls() == spec.hasTls() && (was.sni() == null) == (spec.sni() == null);
        if (!keep) {
            stop(name);
            return start(spec);
        }
        TlsContexts oldTls = tlsContexts.get(name);
        listeners.remove(name); // out of the maps, not stopped: it accepts until the new listener does
        specs.remove(name);
        InetSocketAddress at;
        try {
            at = start(spec, listeningSockets(old), true);
        } catch (EngineException | RuntimeException e) {
            specs.put(name, was);
            listeners.put(name, old);
            if (oldTls != null) tlsContexts.put(name, oldTls);
            throw e;
        }
        if (oldTls != null) oldTls.close(); // replaced by the new listener's; open connections keep what their engines hold
        close(old, System.nanoTime() + TimeUnit.SECONDS.toNanos(5));
        LOG.log(Level.INFO, "listener {0} restarted on its listening socket(s): none was closed", name);
        return at;
    }

    /**
     * The listening sockets of a running listener as file descriptor numbers, one per event loop with reuse-port, to hand
     * to another process ({@link #adopt}); empty if no such listener runs or the transport is not epoll.
     */
    public List<Integer> listeningSockets(String name) {
        Listening l = listeners.get(name);
        return l == null || !transport.isEpoll() ? List.of() : listeningSockets(l);
    }

    private static List<Integer> listeningSockets(Listening l) {
        List<Integer> out = new ArrayList<>();
        for (Channel ch : l.channels()) out.add(((io.netty.channel.unix.UnixChannel) ch).fd().intValue());
        for (DirectListener d : l.direct()) out.add(d.fd().intValue());
        return out;
    }

    /**
     * Starts {@code spec}: on {@code inherited} sockets if there are any (this engine owns them from now on; with
     * {@code duplicate}, on second descriptors of them, and their owner keeps the first), else bound afresh.
     */
    private InetSocketAddress start(ListenerSpec spec, List<Integer> inherited, boolean duplicate) throws EngineException {
        if (closed) throw new EngineException("engine is closed");
        if (specs.putIfAbsent(spec.name(), spec) != null) {
            throw new EngineException("a listener named '" + spec.name() + "' is already running; listener names must be unique");
        }
        try {
            if (!warming.contains(spec.name())) checkListen(spec.info(spec.listen())); // a warm-up listener is no listener of the config
            if (spec.protocol() == Protocol.UDP) {
                return startUdp(spec, inherited);
            }
            // With epoll, every event loop gets a listening socket of its own on the same address (SO_REUSEPORT; the
            // kernel spreads new connections over them) and keeps the connections it accepts: no hand-over to another
            // thread per connection, which cost an eventfd wake-up and a context switch (as HAProxy and nginx's
            // reuseport). One loop or NIO: one socket, connections spread over the loops.
            List<EventLoop> loops = new ArrayList<>();
            if (transport.isEpoll()) {
                group.forEach(e -> loops.add((EventLoop) e));
                if (!options.reusePort() && loops.size() > 1) loops.clear();
            }
            List<Channel> bound = new ArrayList<>();
            List<DirectListener> raw = new ArrayList<>();
            InetSocketAddress addr = spec.listen();
            TlsContexts tls = null;
            if (spec.hasTls()) {
                try {
                    tls = TlsContexts.build(spec.tls(), spec.upstreamTls(), spec.upstream(), spec.name(), tlsHost);
                } catch (TlsException e) {
                    throw new EngineException("listener '" + spec.name() + "': " + e.getMessage(), e);
                }
                tlsContexts.put(spec.name(), tls);
                tls.watch(spec.name()); // certificates replaced on disk are loaded without a restart
            }
            try {
                if (spec.intercepts() && Intercepted.unavailable(transport) != null) {
                    throw new EngineException("listener '" + spec.name() + "': " + Intercepted.unavailable(transport));
                }
                // an intercepting listener's connections take the direct path too: it reads each one's original destination
                // and marks its upstream socket on the raw sockets (DirectConnection)
                boolean direct = options.direct() && LinuxSockets.UNAVAILABLE == null;
                if (!inherited.isEmpty()) {
                    List<EventLoop> all = eventLoops();
                    for (int i = 0; i < inherited.size(); i++) {
                        EventLoop loop = all.get(i % all.size());
                        int fd = duplicate ? duplicate(spec, inherited.get(i)) : inherited.get(i);
                        if (direct) {
                            raw.add(DirectListener.adopt(this, spec, loop, fd, inherited.size() > 1));
                        } else {
                            bound.add(bind(spec, null, loop, inherited.size() > 1 ? loop : group, false, () -> new io.netty.channel.epoll.EpollServerSocketChannel(fd)));
                        }
                    }
                    addr = raw.isEmpty() ? (InetSocketAddress) bound.getFirst().localAddress() : raw.getFirst().boundAddress();
                } else if (!loops.isEmpty() && direct) {
                    for (EventLoop loop : loops) {
                        DirectListener l = DirectListener.bind(this, spec, loop, addr, loops.size() > 1);
                        raw.add(l);
                        addr = l.boundAddress(); // port 0: the others take the port the first got
                    }
                } else if (loops.size() < 2) {
                    bound.add(bind(spec, addr, group, group, false));
                    addr = (InetSocketAddress) bound.getFirst().localAddress();
                } else {
                    for (EventLoop loop : loops) {
                        Channel ch = bind(spec, addr, loop, loop, true);
                        bound.add(ch);
                        addr = (InetSocketAddress) ch.localAddress();
                    }
                }
            } catch (EngineException e) {
                bound.forEach(ch -> ch.close().awaitUninterruptibly());
                raw.forEach(d -> d.stop(TimeUnit.SECONDS.toNanos(5)));
                if (tls != null) tlsContexts.remove(spec.name()).close();
                throw e;
            }
            listeners.put(spec.name(), new Listening(List.copyOf(bound), List.copyOf(raw), addr));
            if (spec.sni() != null) sniRoutes.put(spec.name(), spec.sni().matcher(spec.upstream()));
            if (!warming.contains(spec.name())) LOG.log(Level.INFO, "listener {0} ({1}) {2} -> {3} on {4}{5}{6}", spec.name(), spec.role().name().toLowerCase(), addr,
                    spec.sni() != null ? spec.sni().describe(spec.upstream()) : spec.intercepts() ? "original destinations" : spec.upstream(),
                    transport.name(), raw.isEmpty() ? (bound.size() > 1 ? ", a listening socket per event loop" : "")
                            : ", a listening socket per event loop" + (spec.hasTls() || spec.sni() != null ? "" : ", direct path for connections without modules"),
                    tls == null ? "" : "; " + tls.describe());
            return addr;
        } catch (EngineException | RuntimeException e) {
            specs.remove(spec.name());
            throw e;
        }
    }

    /** The name of the listener that takes intercepted connections (see {@link #intercept}). */
    public static final String INTERCEPT_LISTENER = "intercept";
    /** The name of the listener that takes intercepted UDP flows, on the same address (see {@link #intercept}). */
    public static final String INTERCEPT_UDP_LISTENER = "intercept-udp";
    /** The name of the listener that takes intercepted IPv6 connections (see {@link #intercept}). */
    public static final String INTERCEPT6_LISTENER = "intercept6";
    /** The name of the listener that takes intercepted IPv6 UDP flows, on the same address (see {@link #intercept}). */
    public static final String INTERCEPT_UDP6_LISTENER = "intercept-udp6";
    /** The name of the listener that takes intercepted inbound connections (see {@link #intercept}). */
    public static final String INTERCEPT_INBOUND_LISTENER = "intercept-in";
    /** The name of the listener that takes intercepted inbound UDP flows, on the same address (see {@link #intercept}). */
    public static final String INTERCEPT_INBOUND_UDP_LISTENER = "intercept-in-udp";

    /** The installed interception table, or null. */
    private volatile NftTable interceptTable;
    /** While interception runs, the eBPF record of who connected each TCP socket (null if it cannot be used here). */
    private volatile BpfSocketOwners socketOwners;

    /**
     * Starts transparent interception: the intercepting listeners {@code i} needs ({@link Interception#listeners()}; the
     * modules {@code attach} gives for a listener's name attached to its every connection and flow, {@code options} on their
     * sockets; listeners of one address share the port the first bound), then the nftables table that redirects what
     * {@code i}'s rules match to them. Either all run or none: a table nft refuses stops the listeners.
     *
     * @return the address each intercepting listener bound, by name
     * @throws EngineException if the agent lacks CAP_NET_ADMIN or the nft tool (saying which), the transport is not epoll,
     *         an address cannot be bound or nft refuses the rules
     */
    public Map<String, InetSocketAddress> intercept(Interception i, Map<SocketOption, Object> options,
                                                     java.util.function.Function<String, List<String>> attach) throws EngineException {
        if (interceptTable != null) throw new EngineException("interception is running already");
        String why = Intercepted.unavailable(transport);
        if (why == null) why = NftTable.missingPrivilege();
        if (why != null) throw new EngineException(why);
        Map<String, InetSocketAddress> started = new LinkedHashMap<>();
        Map<InetSocketAddress, InetSocketAddress> ports = new LinkedHashMap<>(); // a configured address: what its first listener bound
        try {
            for (Interception.Listener l : i.listeners()) {
                InetSocketAddress at = ports.getOrDefault(l.address(), l.address());
                at = start(ListenerSpec.intercepting(l.name(), l.protocol(), l.role(), at, i.mark(), options, attach.apply(l.name())));
                started.put(l.name(), at);
                ports.putIfAbsent(l.address(), at);
            }
            int port = ports.getOrDefault(i.listen(), i.listen()).getPort();
            int port6 = i.listen6() == null ? 0 : ports.getOrDefault(i.listen6(), i.listen6()).getPort();
            // before the table: every connection it redirects is recorded as it connects
            socketOwners = BpfSocketOwners.attach();
            interceptTable = NftTable.install(i, port, port6);
        } catch (EngineException | RuntimeException e) {
            BpfSocketOwners owners = socketOwners;
            if (owners != null) owners.close();
            started.keySet().forEach(this::stop);
            throw e;
        }
        return started;
    }

    /** The interception table as the kernel holds it now (empty if interception is off or the table was deleted). */
    public List<String> interceptionRules() {
        NftTable t = interceptTable;
        return t == null ? List.of() : t.installed();
    }

    /** A running listener: its Netty listening channels or its direct listeners, and the address they bound. */
    private record Listening(List<Channel> channels, List<DirectListener> direct, InetSocketAddress address) {}

    /** Binds one listening socket of {@code spec} on {@code addr}; its connections run on {@code children}. */
    private Channel bind(ListenerSpec spec, InetSocketAddress addr, EventLoopGroup parent, EventLoopGroup children, boolean reusePort)
            throws EngineException {
        return bind(spec, addr, parent, children, reusePort, () -> transport.newServerChannel(spec.listen()));
    }

    /** Binds {@code addr} with a channel of {@code factory}, or registers that channel as it is if {@code addr} is null (an inherited socket). */
    private Channel bind(ListenerSpec spec, InetSocketAddress addr, EventLoopGroup parent, EventLoopGroup children, boolean reusePort,
                         io.netty.channel.ChannelFactory<? extends io.netty.channel.ServerChannel> factory) throws EngineException {
        ServerBootstrap b = new ServerBootstrap()
                .group(parent, children)
                .channelFactory(factory)
                .option(ChannelOption.SO_BACKLOG, 4096)
                .option(ChannelOption.SO_REUSEADDR, true)
                .childOption(ChannelOption.AUTO_READ, true) // read while the upstream connects, up to ProxyConnection.EARLY_LIMIT
                .childOption(ChannelOption.ALLOCATOR, ALLOCATOR)
                .childOption(ChannelOption.RCVBUF_ALLOCATOR, RECV)
                .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .childOption(ChannelOption.WRITE_BUFFER_WATER_MARK, WATER_MARK)
                .childHandler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        accept(spec, ch);
                    }
                });
        if (reusePort) {
            b.option(EpollChannelOption.SO_REUSEPORT, true);
        }
        ChannelFuture f = (addr == null ? b.register() : b.bind(addr)).awaitUninterruptibly();
        if (!f.isSuccess()) {
            throw new EngineException("listener '" + spec.name() + "' cannot " + (addr == null ? "use its inherited socket" : "bind " + addr) + ": " + f.cause().getMessage()
                    + "; pick another address or port, or stop what holds it", f.cause());
        }
        return f.channel();
    }

    // ---- UDP: listeners and flows (the data path is in UdpListener and DatagramFlow) ------------------

    private InetSocketAddress startUdp(ListenerSpec spec, List<Integer> inherited) throws EngineException {
        if (inherited.size() > 1) throw new EngineException("listener '" + spec.name() + "': a UDP listener has one socket, not " + inherited.size());
        UdpListener l = new UdpListener(this, spec, transport.name().equals("epoll"));
        Channel ch = l.bind(group, inherited.isEmpty() ? -1 : inherited.getFirst());
        listeners.put(spec.name(), new Listening(List.of(ch), List.of(), l.boundAddress()));
        LOG.log(Level.INFO, "listener {0} (udp, {1}) {2} -> {3} on {4}; flows idle out after {5} ms, at most {6}", spec.name(),
                spec.role().name().toLowerCase(), l.boundAddress(), spec.upstream(), transport.name(), spec.udp().idleTimeout().toMillis(),
                spec.udp().maxFlows());
        return l.boundAddress();
    }

    /** A new flow of {@code l} for datagrams from {@code peer}; on the listener's event loop. */
    DatagramFlow newFlow(UdpListener l, InetSocketAddress peer) {
        EventLoop loop = l.loop();
        Watchdog.Slot slot = slots.computeIfAbsent(loop, x -> watchdog.register(Thread.currentThread()));
        DatagramFlow f = new DatagramFlow(this, l, ids.incrementAndGet(), peer, slot, options.holdLimit());
        open.put(f.id(), f);
        stats(f.listener()).accepted.increment();
        return f;
    }

    /** The modules for a new UDP flow: the registry's candidates plus the listener's programmatic ones, by priority. */
    List<LoadedModule> modulesFor(ListenerSpec spec, dev.interlayer.api.ConnectionInfo c) {
        return modulesFor(spec, c, true);
    }

    void removedFlow(DatagramFlow f) {
        ended(f);
    }

    /**
     * Runs {@code s} on {@code c}'s loop and returns its result; {@code fallback} if that takes over 2 s or fails, and at
     * once if the loop is stuck in a module call (a listing of many connections would otherwise wait 2 s for each).
     */
    private <T> T onLoop(Connection c, java.util.function.Supplier<T> s, T fallback) {
        if (c.loop().inEventLoop()) return s.get();
        if (stuckLoops.isStuck(c.loop())) return fallback;
        try {
            return c.loop().submit(s::get).get(2, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt(); // the caller's interrupt stays visible to it
            return fallback;
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            return fallback;
        }
    }

    private void checkListen(ListenerInfo info) throws EngineException {
        Denial d = listenDecision(info);
        if (d != null) {
            throw new EngineException("listener '" + info.name() + "' denied by module " + d.module().id() + ": " + d.decision().reason());
        }
    }

    /** A module's DENY. */
    record Denial(LoadedModule module, SocketDecision decision) {}

    /**
     * The first DENY of the modules' {@code onListen} hooks for a listener, or null if they allow it. A module that
     * throws is counted a fault and the listener starts anyway.
     */
    Denial listenDecision(ListenerInfo info) {
        for (LoadedModule m : registry.modules()) {
            if (!m.has(Hooks.LISTEN) || !m.state().attachesNew()) continue;
            if (!m.selector().listeners().isEmpty() && !m.selector().listeners().contains(info.name())) continue;
            if (m.selector().protocol() != null && m.selector().protocol() != info.protocol()) continue;
            SocketDecision d;
            try {
                d = m.callModuleWide("onListen", () -> ((SocketModule<?>) m.module()).onListen(info));
            } catch (ModuleCallException | IllegalStateException e) {
                LOG.log(Level.WARNING, "{0}; listener {1} starts anyway", e.getMessage(), info.name());
                continue;
            }
            if (d != null && d.kind() == SocketDecision.Kind.DENY) {
                return new Denial(m, d);
            }
        }
        return null;
    }

    /**
     * An intercepting listener's connection that has no original destination: its client connected to the listener's port
     * itself, it was not redirected there. There is nowhere to forward it (and forwarding it to the listener would be a
     * loop): counted as refused and said; the caller resets it.
     */
    private void notRedirected(ListenerSpec spec, Object from) {
        RESETS.log("listener " + spec.name() + ": connections not redirected", Level.WARNING,
                "listener {0}: reset a connection from {1}: it was not redirected by the interception rules (no original destination);"
                        + " applications are intercepted, they do not connect to this port", spec.name(), from);
        stats(spec.name()).refused.increment();
    }

    /** A connection accepted by Netty's acceptor (NIO, or epoll without a listening socket per loop). */
    private void accept(ListenerSpec spec, Channel ch) {
        ProxyConnection c = newConnection(spec, ch, ids.incrementAndGet(), null, 0, 0);
        if (spec.intercepts() && c.remoteAddress() == null) {
            notRedirected(spec, ch.remoteAddress());
            c.abort("no original destination");
            return;
        }
        if (spec.sni() != null) {
            peekSni(spec, c, ch);
            return;
        }
        if (c.terminatesTls()) {
            c.startAfterHandshake(() -> modulesFor(spec, c, false)); // selectors may match what the handshake negotiated
            return;
        }
        c.start(modulesFor(spec, c, false));
    }

    // ---- TLS passthrough: the route from the client hello's server name (sni-routes) ---------------------

    /** Per passthrough listener, its routes with the default (the listener's upstream, or none). */
    private final Map<String, io.netty.util.Mapping<String, SniRoutes.Route>> sniRoutes = new ConcurrentHashMap<>();

    /**
     * Starts a passthrough connection: {@link SniPeek} reads the client hello on {@code ch} (reading on), then the
     * connection starts with the route it chose and the modules for it (their selectors and onConnect see the chosen
     * upstream). Splice stays possible: a connection without data hooks is spliced once a bulk transfer starts.
     */
    private void peekSni(ListenerSpec spec, ProxyConnection c, Channel ch) {
        var routes = sniRoutes.get(spec.name());
        if (routes == null) routes = spec.sni().matcher(spec.upstream()); // stopped meanwhile: its connections go on
        ch.pipeline().addLast("sni-peek", new SniPeek(routes, spec.sni().timeout(), new SniPeek.Outcome() {
            @Override
            public void routed(String serverName, SniRoutes.Route route) {
                if (c.isClosed()) return;
                c.routed(serverName, route);
                List<LoadedModule> mods;
                try {
                    mods = modulesFor(spec, c, false);
                } catch (RuntimeException e) {
                    stats(spec.name()).refused.increment();
                    c.abort("choosing its modules failed: " + e);
                    return;
                }
                c.start(mods);
            }

            @Override
            public void refused(String line) {
                c.refuse(line);
            }

            @Override
            public void ended(long bytes) {
                if (bytes > 0) {
                    c.refuse("closed the connection after " + bytes + " byte" + (bytes == 1 ? "" : "s") + ", before its client hello was"
                            + " complete; nothing was forwarded");
                } else {
                    c.closeGracefully("the client closed before sending anything");
                }
            }
        }));
    }

    private ProxyConnection newConnection(ListenerSpec spec, Channel ch, long id, java.time.Instant startedAt, long sent, long received) {
        EventLoop loop = ch.eventLoop();
        Watchdog.Slot slot = slots.computeIfAbsent(loop, l -> watchdog.register(Thread.currentThread()));
        ProxyConnection c = new ProxyConnection(this, id, spec, ch, slot, options.holdLimit(), startedAt, sent, received, tlsContexts.get(spec.name()));
        if (open.put(c.id(), c) == null) { // a promoted direct connection is replaced by its channel connection, same id
            stats(spec.name()).accepted.increment();
        }
        return c;
    }

    /**
     * A connection a {@link DirectListener} accepted ({@code fd}, from {@code peer}); on its loop. Without modules it
     * stays on the direct path; with modules it runs in a channel, as from Netty's acceptor.
     */
    void acceptDirect(DirectListener l, int fd, InetSocketAddress peer) {
        InetSocketAddress original = null;
        if (l.spec().intercepts()) {
            // an IPv6 listener takes IPv4 connections too (IPv4-mapped): the accepted socket's own address says which
            boolean v6 = l.boundAddress().getAddress() instanceof java.net.Inet6Address
                    && l.sys().localAddress(fd) instanceof InetSocketAddress a && a.getAddress() instanceof java.net.Inet6Address;
            original = l.sys().originalDestination(fd, v6);
            if (original == null) {
                notRedirected(l.spec(), peer);
                l.sys().setLinger(fd, 0);
                l.sys().close(fd);
                return;
            }
        }
        long id = ids.incrementAndGet();
        DirectConnection d = new DirectConnection(this, l, id, fd, peer, original);
        List<LoadedModule> mods;
        boolean terminatesTls = l.spec().tls() != null;
        try {
            // passthrough (sni-routes): a channel that reads the client hello first; modules are chosen once it is routed;
            // where the listener terminates TLS they are chosen once the handshake has completed (see below)
            mods = l.spec().sni() != null ? null : terminatesTls ? List.of() : modulesFor(l.spec(), d, false);
        } catch (RuntimeException e) {
            // a selector that cannot be evaluated must not stop the listener: drop this one connection, say why
            l.sys().setLinger(fd, 0);
            l.sys().close(fd);
            stats(l.spec().name()).refused.increment();
            LOG.log(Level.WARNING, "listener {0}: reset a connection from {1}: choosing its modules failed: {2}", l.spec().name(), peer,
                    e.toString());
            return;
        }
        if (mods != null && mods.isEmpty() && !l.spec().hasTls()) { // TLS needs its SslHandler: a channel
            directConnections.increment();
            open.put(id, d);
            stats(l.spec().name()).accepted.increment();
            d.start();
            return;
        }
        Channel ch;
        try {
            ch = transport.adopt(fd);
        } catch (RuntimeException e) {
            l.sys().close(fd);
            stats(l.spec().name()).refused.increment();
            RESETS.log("listener " + l.spec().name() + ": accepted connections dropped", Level.WARNING, "listener {0}: dropped an accepted connection: {1}",
                    l.spec().name(), e.toString());
            return;
        }
        io.netty.channel.ChannelFuture r = l.loop().register(ch);
        if (!r.isSuccess()) {
            ch.close();
            stats(l.spec().name()).refused.increment();
            RESETS.log("listener " + l.spec().name() + ": accepted connections dropped", Level.WARNING, "listener {0}: dropped an accepted connection: {1}",
                    l.spec().name(), String.valueOf(r.cause()));
            return;
        }
        ProxyConnection c = newConnection(l.spec(), ch, id, null, 0, 0);
        ch.config().setAutoRead(true); // read while the upstream connects, up to ProxyConnection.EARLY_LIMIT
        if (mods == null) {
            peekSni(l.spec(), c, ch);
            return;
        }
        if (c.terminatesTls()) {
            ListenerSpec spec = l.spec();
            c.startAfterHandshake(() -> modulesFor(spec, c, false)); // selectors may match what the handshake negotiated
            return;
        }
        c.start(mods);
    }

    /**
     * The {@link ProxyConnection} a direct connection becomes (see {@link DirectConnection#promote}): its accepted
     * socket in {@code accepted}, registered here on its loop; same id, start time and counters.
     */
    ProxyConnection promoted(DirectConnection d, Channel accepted, java.time.Instant startedAt, long sent, long received) {
        promotions.increment();
        d.loop().register(accepted);
        return newConnection(d.spec(), accepted, d.id(), startedAt, sent, received);
    }

    void removedDirect(DirectConnection d) {
        ended(d);
    }

    /** Connections that started on the direct path (no module, no channel). */
    public long directConnections() {
        return directConnections.sum();
    }

    /** Direct connections that became channel connections: a module attached or a bulk transfer started. */
    public long promotions() {
        return promotions.sum();
    }

    /**
     * The modules for a new connection: the registry's candidates plus the listener's programmatic ones and those its
     * process asked for ({@link ProcessAttachments}), by priority
     * (only modules that serve the connection's protocol: no datagram-only module on TCP, no stream-only module on UDP, no
     * tls-only module on either).
     */
    private List<LoadedModule> modulesFor(ListenerSpec spec, dev.interlayer.api.ConnectionInfo c, boolean udp) {
        // a warm-up listener's connections get exactly the modules it names that allow warm-up: no selector, no process asks
        boolean warmUp = !warming.isEmpty() && warming.contains(spec.name());
        List<LoadedModule> candidates = warmUp ? List.of() : registry.candidates(c);
        List<LoadedModule> asked = warmUp ? List.of() : processAttachments.modulesFor(c);
        if (spec.attach().isEmpty() && asked.isEmpty()) return candidates;
        List<LoadedModule> mods = new ArrayList<>(candidates);
        asked.stream().filter(m -> !mods.contains(m)).forEach(mods::add);
        for (String name : spec.attach()) {
            registry.find(name).ifPresent(m -> {
                if (m.state().attachesNew() && m.serves(c.protocol()) && !mods.contains(m) && (!warmUp || m.descriptor().warmUp())) mods.add(m);
            });
        }
        mods.sort((x, y) -> Integer.compare(x.priority(), y.priority()));
        return mods;
    }

    /**
     * Starts a listener of the agent's warm-up: made-up traffic the agent sends itself before it serves, so that the JIT
     * has compiled the connection path (and the hooks of the modules that allow it, {@code ModuleDescriptor#warmUp()})
     * before a user's first byte. Its connections get exactly the modules {@code spec.attach()} names that allow warm-up
     * (no selector, no process asks), it logs nothing, and {@link #endWarmUp} takes every counter it moved back out.
     *
     * @throws EngineException as {@link #start(ListenerSpec)}
     */
    public InetSocketAddress startWarmUp(ListenerSpec spec) throws EngineException {
        if (!warming.add(spec.name())) throw new EngineException("warm-up listener '" + spec.name() + "' runs already");
        try {
            return start(spec);
        } catch (EngineException | RuntimeException e) {
            warming.remove(spec.name());
            throw e;
        }
    }

    /**
     * Ends the warm-up: stops its listeners, waits up to {@code timeout} for their connections to end (the rest are reset),
     * and sets the counters it moved back (its listeners', the direct path's and splice's), so that what the engine reports
     * counts users' traffic only. The modules' own counters are the registry's to reset.
     *
     * @return the number of warm-up connections that had to be reset
     */
    public int endWarmUp(Duration timeout) {
        for (String name : List.copyOf(warming)) stop(name);
        int reset = 0;
        if (!awaitWarmUpClosed(System.nanoTime() + timeout.toNanos())) {
            for (Connection c : open.values()) {
                if (warming.contains(c.listener())) {
                    c.execute(() -> c.abort("the agent's warm-up ended"));
                    reset++;
                }
            }
            awaitWarmUpClosed(System.nanoTime() + TimeUnit.SECONDS.toNanos(2));
        }
        for (String name : warming) listenerStats.remove(name);
        warming.clear();
        directConnections.reset();
        promotions.reset();
        splicedConnections.reset();
        splicedBytes.reset();
        return reset;
    }

    /** Waits until no warm-up connection is open or {@code deadline} ({@link System#nanoTime()}) passes; true in the first case. */
    private boolean awaitWarmUpClosed(long deadline) {
        while (open.values().stream().anyMatch(c -> warming.contains(c.listener()))) {
            if (System.nanoTime() - deadline > 0) return false;
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return true;
    }

    boolean spliceAvailable() {
        return spliceAvailable;
    }

    void spliceStarted() {
        splicedConnections.increment();
    }

    void splicedBytes(long n) {
        splicedBytes.add(n);
    }

    /** Connections whose bytes moved, for a while, socket to socket in the kernel (see docs/data-plane.md, "Splice"). */
    public long splicedConnections() {
        return splicedConnections.sum();
    }

    /** Bytes moved socket to socket in the kernel, never entering the JVM. */
    public long splicedBytes() {
        return splicedBytes.sum();
    }

    void removed(ProxyConnection c) {
        ended(c);
    }

    /** {@code c} has ended: out of the open connections, its bytes into its listener's totals (once: not a promoted one). */
    private void ended(Connection c) {
        if (open.remove(c.id(), c)) {
            stats(c.listener()).ended(c);
        }
    }

    /** The counters of listener {@code name}, created on first use. */
    ListenerStats stats(String name) {
        return listenerStats.computeIfAbsent(name, n -> new ListenerStats());
    }

    /**
     * Each running listener's counters by name, with the bytes and the number of its open connections (read off their
     * loops: a count may be a read behind).
     */
    public Map<String, ListenerStats.Snapshot> listenerStats() {
        Map<String, long[]> live = new java.util.HashMap<>();
        for (Connection c : open.values()) {
            long[] t = live.computeIfAbsent(c.listener(), n -> new long[3]);
            t[0]++;
            t[1] += c.bytesSent();
            t[2] += c.bytesReceived();
        }
        Map<String, ListenerStats.Snapshot> out = new LinkedHashMap<>();
        for (String name : listeners.keySet()) {
            long[] t = live.getOrDefault(name, new long[3]);
            out.put(name, stats(name).snapshot(t[0], t[1], t[2]));
        }
        return out;
    }

    /** Bytes modules hold or buffer now (HOLD and NEED_MORE), over every open connection. */
    public long heldBytes() {
        long n = 0;
        for (Connection c : open.values()) n += c.heldBytes();
        return n;
    }

    /** The event loops that serve every connection (for probes that schedule work on them; never block on one). */
    public List<EventLoop> eventLoops() {
        List<EventLoop> out = new ArrayList<>();
        group.forEach(e -> out.add((EventLoop) e));
        return out;
    }

    /** Direct memory the connections' buffer allocator holds now (its pools' chunks, in use or free), in bytes; -1 if it does not say. */
    public static long directMemory() {
        return ALLOCATOR instanceof io.netty.buffer.ByteBufAllocatorMetricProvider p ? p.metric().usedDirectMemory() : -1;
    }

    /** The number of open UDP flows. */
    public int udpFlows() {
        int n = 0;
        for (Connection c : open.values()) if (c instanceof DatagramFlow) n++;
        return n;
    }

    /** The socket options a listener's connections get: TCP_NODELAY on unless the listener says otherwise. */
    Map<SocketOption, Object> effectiveOptions(ListenerSpec spec) {
        Map<SocketOption, Object> m = new EnumMap<>(SocketOption.class);
        m.put(SocketOption.TCP_NODELAY, Boolean.TRUE);
        m.putAll(spec.options());
        return m;
    }

    /**
     * What one listener's TLS reload did.
     *
     * @param certificates what was loaded (subject, role, expiry), when it worked
     * @param error what is wrong, when it did not (the old certificates stay in use)
     */
    public record TlsReload(String listener, List<String> certificates, String error) {}

    /**
     * Reads the certificates, keys, CA and CRL files of {@code listener} (null: of every listener with TLS) again; new
     * handshakes use them, open connections keep theirs. A listener whose files do not load keeps its old certificates.
     *
     * @throws EngineException if {@code listener} is not running or has no TLS
     */
    public List<TlsReload> reloadTls(String listener) throws EngineException {
        Map<String, TlsContexts> which = new java.util.TreeMap<>();
        if (listener == null || listener.isEmpty()) {
            which.putAll(tlsContexts);
        } else {
            TlsContexts t = tlsContexts.get(listener);
            if (t == null) {
                throw new EngineException(specs.containsKey(listener) ? "listener '" + listener + "' has no TLS (no tls: block and no upstream tls:);"
                        + " nothing to reload" : "no listener named '" + listener + "' is running; see interlayer listeners");
            }
            which.put(listener, t);
        }
        List<TlsReload> out = new ArrayList<>();
        for (Map.Entry<String, TlsContexts> e : which.entrySet()) {
            try {
                List<String> certs = e.getValue().reload();
                LOG.log(Level.INFO, "listener {0}: TLS reloaded: {1}; open connections keep their certificates", e.getKey(), String.join(", ", certs));
                out.add(new TlsReload(e.getKey(), certs, null));
            } catch (TlsException x) {
                LOG.log(Level.WARNING, "listener {0}: TLS not reloaded: {1}; the old certificates stay in use", e.getKey(), x.getMessage());
                out.add(new TlsReload(e.getKey(), List.of(), x.getMessage() + "; the old certificates stay in use"));
            }
        }
        return out;
    }

    /** Stops a listener (open connections continue). */
    public void stop(String listenerName) {
        stop(listenerName, System.nanoTime() + TimeUnit.SECONDS.toNanos(5));
    }

    /** Stops a listener, waiting for its event loops until {@code deadline} ({@link System#nanoTime()}) at the latest. */
    private void stop(String listenerName, long deadline) {
        Listening l = listeners.remove(listenerName);
        specs.remove(listenerName);
        if (l != null) {
            close(l, deadline);
            TlsContexts tls = tlsContexts.remove(listenerName);
            if (tls != null) tls.close(); // open connections keep what their engines hold
            sniRoutes.remove(listenerName);
            if (!warming.contains(listenerName)) LOG.log(Level.INFO, "listener {0} stopped", listenerName);
        }
    }

    /** Closes the listening sockets (descriptors) of {@code l}, waiting for its event loops until {@code deadline} at the latest. */
    private static void close(Listening l, long deadline) {
        l.channels().forEach(ch -> ch.close().awaitUninterruptibly(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS));
        l.direct().forEach(d -> d.stop(Math.max(0, deadline - System.nanoTime())));
    }

    /** A second descriptor of listening socket {@code fd} for {@code spec}'s listener. */
    private static int duplicate(ListenerSpec spec, int fd) throws EngineException {
        int dup = new LinuxSockets().duplicate(fd);
        if (dup < 0) {
            throw new EngineException("listener '" + spec.name() + "' cannot take over its listening socket (fd " + fd + "): "
                    + LinuxSockets.describe(-dup) + "; raise the agent's open-files limit, or restart the agent");
        }
        return dup;
    }

    /** The direct listeners running now, one per listener and event loop. */
    private List<DirectListener> directListeners() {
        List<DirectListener> out = new ArrayList<>();
        for (Listening l : listeners.values()) out.addAll(l.direct());
        return out;
    }

    /**
     * The module calls stuck now, one per stuck event loop: each ran past its budget, was interrupted and asked to stop,
     * and has not returned; its loop serves nothing else until it does (see {@link StuckCall}).
     */
    public List<StuckCall> stuckCalls() {
        return watchdog.stuck();
    }

    /** Running listeners and their bound addresses. */
    public Map<String, InetSocketAddress> listeners() {
        Map<String, InetSocketAddress> out = new LinkedHashMap<>();
        listeners.forEach((n, l) -> out.put(n, l.address()));
        return out;
    }

    /** The spec a running listener was started with, if {@code name} is running. */
    public java.util.Optional<ListenerSpec> listenerSpec(String name) {
        return listeners.containsKey(name) ? java.util.Optional.ofNullable(specs.get(name)) : java.util.Optional.empty();
    }

    /** A snapshot of every open connection and flow, by id. */
    public List<ConnectionSnapshot> connections() {
        List<ConnectionSnapshot> out = new ArrayList<>();
        for (Connection c : open.values()) {
            out.add(snapshot(c));
        }
        out.sort((a, b) -> Long.compare(a.id(), b.id()));
        return out;
    }

    private ConnectionSnapshot snapshot(Connection c) {
        List<String> mods = onLoop(c, c::moduleIds, List.of());
        var app = c.role() == dev.interlayer.api.Role.CLIENT ? onLoop(c, c::app, null) : null;
        return new ConnectionSnapshot(c.id(), c.listener(), c.localAddress(), c.remoteAddress(), app == null ? null : app.name(),
                c.startedAt(), c.bytesSent(), c.bytesReceived(), mods, c.protocol(), onLoop(c, c::tls, null));
    }

    /** The number of open connections and UDP flows. */
    public int connectionCount() {
        return open.size();
    }

    /**
     * Attaches {@code moduleName} to one open connection or flow (programmatic attach); false if there is no such
     * connection or module, the module does not attach in its state or serve the protocol, declined, or is already attached,
     * or the connection is still in the TLS handshake of a listener that terminates TLS (nothing attaches before it completes).
     */
    public boolean attach(long connectionId, String moduleName) {
        Connection c = open.get(connectionId);
        LoadedModule m = registry.find(moduleName).orElse(null);
        if (c == null || m == null || !m.state().attachesNew() || !m.serves(c.protocol())) return false;
        return Boolean.TRUE.equals(onLoop(c, () -> c.attach(m), false));
    }

    /** Detaches {@code moduleName} from one open connection; false if it was not attached. */
    public boolean detach(long connectionId, String moduleName) {
        Connection c = open.get(connectionId);
        if (c == null) return false;
        return Boolean.TRUE.equals(onLoop(c, () -> c.detach(moduleName, DetachReason.REQUESTED), false));
    }

    /** Reads a socket option of one connection as its modules report it; null if no such connection. */
    public Object option(long connectionId, Side side, SocketOption option) {
        Connection c = open.get(connectionId);
        if (c == null) return null;
        Object v = onLoop(c, () -> c.option(side, option), null);
        Connection now = open.get(connectionId);
        if (v == null && now != null && now != c) {
            v = onLoop(now, () -> now.option(side, option), null); // a direct one became a channel one meanwhile
        }
        return v;
    }

    /** Follows the registry: apply-now attaches new modules to open connections. */
    private final class Follower implements RegistryListener {
        @Override
        public void moduleAdded(LoadedModule m) {
            if (!m.applyNow() || m.attachMode() != AttachMode.GLOBAL || !m.state().attachesNew()) return;
            for (Connection c : List.copyOf(open.values())) {
                c.execute(() -> {
                    if (!c.isClosed() && m.state().attachesNew() && m.serves(c.protocol()) && SelectorMatcher.matches(m.selector(), c)) {
                        c.attach(m);
                    }
                });
            }
            LOG.log(Level.INFO, "module {0}: applied now to the open connection(s) it matches", m.id());
        }

        @Override
        public void stateChanged(LoadedModule m, ModuleState from, ModuleState to) {
            // Detaching on unregister and revoke is driven by the runtime through each AttachmentSite; a revoked module
            // with a stuck call has its connections on the other loops reset first (it is known not to return).
            if (to == ModuleState.REVOKED) {
                List<StuckCall> calls = watchdog.stuck().stream().filter(c -> c.moduleId().equals(m.id())).toList();
                if (!calls.isEmpty()) stuckLoops.revokedWhileStuck(m, calls);
            }
        }
    }

    /** How long {@link #close()} takes at most. */
    public static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(5);

    /** Stops the listeners, resets open connections, and stops the event loops, within {@link #CLOSE_TIMEOUT}. */
    @Override
    public void close() {
        close(CLOSE_TIMEOUT);
    }

    /**
     * Stops the listeners, resets open connections, and stops the event loops; returns within {@code timeout} whatever the
     * loops do. A loop stuck in a module call is not waited for: its connections and its thread are abandoned (the
     * process exit ends them).
     */
    public void close(Duration timeout) {
        if (closed) return;
        closed = true;
        long deadline = System.nanoTime() + timeout.toNanos();
        NftTable table = interceptTable;
        if (table != null) table.close(); // first: no connection is redirected to a listener that is going away
        BpfSocketOwners owners = socketOwners;
        if (owners != null) owners.close();
        registry.removeListener(follower);
        for (String name : List.copyOf(listeners.keySet())) {
            stop(name, deadline);
        }
        List<CompletableFuture<Void>> done = new ArrayList<>();
        int abandoned = 0;
        for (Connection c : List.copyOf(open.values())) {
            if (stuckLoops.isStuck(c.loop())) {
                abandoned++;
                continue;
            }
            CompletableFuture<Void> f = new CompletableFuture<>();
            done.add(f);
            c.execute(() -> {
                c.abort("agent shutting down");
                f.complete(null);
            });
        }
        if (abandoned > 0) {
            LOG.log(Level.WARNING, "stopping with {0} connection(s) on event loops stuck in a module call: {1}", abandoned,
                    String.join("; ", watchdog.stuck().stream().map(StuckCall::describe).toList()));
        }
        try {
            CompletableFuture.allOf(done.toArray(CompletableFuture[]::new)).get(remaining(deadline), TimeUnit.NANOSECONDS);
        } catch (Exception e) {
            LOG.log(Level.WARNING, "some connections did not close in time: {0}", e.toString());
        }
        long quiet = Math.min(TimeUnit.SECONDS.toNanos(2), remaining(deadline) / 2);
        group.shutdownGracefully(0, quiet, TimeUnit.NANOSECONDS);
        for (io.netty.util.concurrent.EventExecutor loop : group) {
            if (!stuckLoops.isStuck(loop)) { // a stuck loop ends when its call returns, or with the process: not worth waiting for
                loop.terminationFuture().awaitUninterruptibly(remaining(deadline), TimeUnit.NANOSECONDS);
            }
        }
        watchdog.close();
    }

    private static long remaining(long deadline) {
        return Math.max(0, deadline - System.nanoTime());
    }
}
