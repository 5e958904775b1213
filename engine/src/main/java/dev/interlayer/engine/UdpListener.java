package dev.interlayer.engine;

import dev.interlayer.api.SocketOption;
import dev.interlayer.runtime.LoadedModule;
import io.netty.bootstrap.AbstractBootstrap;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.FixedRecvByteBufAllocator;
import io.netty.channel.RecvByteBufAllocator;
import io.netty.channel.epoll.EpollChannelOption;
import io.netty.channel.epoll.EpollDatagramChannel;
import io.netty.channel.socket.DatagramPacket;
import io.netty.channel.socket.nio.NioDatagramChannel;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A UDP listener: one socket bound to {@code listen}, and a {@link DatagramFlow} per peer address that sends to
 * it, each with its own connected socket to the upstream.
 *
 * <pre>
 *   peer A ─┐                    ┌─ flow A ── [upstream socket A] ──▶ upstream
 *   peer B ─┼─▶ [listen socket] ─┼─ flow B ── [upstream socket B] ──▶ upstream
 *   peer C ─┘   (one event loop) └─ flow C ── [upstream socket C] ──▶ upstream
 * </pre>
 *
 * <p>The listen socket, every flow's upstream socket and all their module calls run on one event loop, so a
 * listener's flows never need locks (and one listener uses one core). A flow ends when nothing passed in either
 * direction and nothing was held for {@link UdpSettings#idleTimeout()}; at most {@link UdpSettings#maxFlows()}
 * flows exist at once, and datagrams from new peers beyond that are dropped and logged.
 */
final class UdpListener {

    private static final System.Logger LOG = System.getLogger("interlayer.engine");
    /**
     * Datagrams one socket reads per wake-up before the loop serves its other sockets. Netty's allocators read one
     * message per wake-up unless told otherwise: a UDP socket with a queue then costs an epoll_wait, and a pass through
     * the loop, per datagram.
     */
    static final int READS_PER_WAKEUP = 32;
    /** Every read gets room for the largest datagram, so nothing is ever truncated on receive. */
    static final RecvByteBufAllocator RECV = new FixedRecvByteBufAllocator(65_536).maxMessagesPerRead(READS_PER_WAKEUP);
    /** Receive buffer of the listen socket unless the listener sets {@code rcvbuf}. */
    static final int LISTEN_RCVBUF = 4 << 20;
    private static final long FULL_LOG_EVERY_NANOS = TimeUnit.SECONDS.toNanos(10);

    private final Engine engine;
    private final ListenerSpec spec;
    private final Class<? extends Channel> channelClass;
    private final Map<InetSocketAddress, DatagramFlow> flows = new HashMap<>();
    private Channel channel;
    private EventLoop loop;
    private InetSocketAddress bound;
    private ScheduledFuture<?> sweeper;
    private long refused;
    private long lastFullLog;
    /** Flows whose upstream socket was written since the last {@link #flushAll}. */
    private final List<DatagramFlow> unflushed = new ArrayList<>();
    /** Whether the listen socket was written since the last {@link #flushAll}. */
    private boolean listenUnflushed;
    private boolean flushQueued;
    private final Runnable flushTask = this::flushAll;

    UdpListener(Engine engine, ListenerSpec spec, boolean epoll) {
        this.engine = engine;
        this.spec = spec;
        this.channelClass = epoll ? EpollDatagramChannel.class : NioDatagramChannel.class;
    }

    /** A listener whose socket is {@code channel}, already set up (the testkit's {@link EmbeddedFlow}); no idle sweep. */
    UdpListener(Engine engine, ListenerSpec spec, Channel channel) {
        this.engine = engine;
        this.spec = spec;
        this.channelClass = channel.getClass();
        this.channel = channel;
        this.loop = channel.eventLoop();
        this.bound = spec.listen();
    }

    ListenerSpec spec() { return spec; }
    EventLoop loop() { return loop; }
    Channel channel() { return channel; }
    InetSocketAddress boundAddress() { return bound; }
    Class<? extends Channel> channelClass() { return channelClass; }

    /** Applies the listener's socket options that mean something for UDP (buffer sizes, TOS) to a bootstrap. */
    static void applyOptions(AbstractBootstrap<?, ?> b, ListenerSpec spec) {
        for (Map.Entry<SocketOption, Object> e : spec.options().entrySet()) {
            if (SocketOptions.forUdp(e.getKey())) { // TCP-only options are refused for UDP listeners by the config
                b.option(SocketOptions.of(e.getKey()), e.getValue());
            }
        }
    }

    /**
     * Binds the listen socket, or takes {@code inherited} (a bound socket's file descriptor, epoll only; -1: none) as it is,
     * and starts the idle sweep; returns the bound channel.
     */
    Channel bind(EventLoopGroup group, int inherited) throws EngineException {
        Bootstrap b = new Bootstrap().group(group);
        if (inherited < 0) {
            b.channel(channelClass);
        } else {
            b.channelFactory(() -> new io.netty.channel.epoll.EpollDatagramChannel(inherited));
        }
        b
                .option(ChannelOption.SO_REUSEADDR, true)
                .option(ChannelOption.ALLOCATOR, Engine.ALLOCATOR)
                .option(ChannelOption.RCVBUF_ALLOCATOR, RECV)
                .option(ChannelOption.WRITE_BUFFER_WATER_MARK, Engine.WATER_MARK)
                .handler(new ListenHandler());
        // one socket receives for every flow: a larger buffer than the default (the kernel caps it at net.core.rmem_max)
        b.option(ChannelOption.SO_RCVBUF, LISTEN_RCVBUF);
        applyOptions(b, spec);
        if (spec.intercepts() && spec.listen().getAddress().isAnyLocalAddress() && channelClass == EpollDatagramChannel.class) {
            // inbound: redirected datagrams arrive at the address of the interface they came in on, which the conntrack query
            // needs (it is the reply tuple's source); each IPv4 datagram then carries it as its recipient
            b.option(EpollChannelOption.IP_RECVORIGDSTADDR, true);
        }
        ChannelFuture f = (inherited < 0 ? b.bind(spec.listen()) : b.register()).awaitUninterruptibly();
        if (!f.isSuccess()) {
            throw new EngineException("listener '" + spec.name() + "' cannot " + (inherited < 0 ? "bind udp " + spec.listen() : "use its inherited udp socket")
                    + ": " + f.cause().getMessage()
                    + "; pick another address or port, or stop what holds it", f.cause());
        }
        channel = f.channel();
        loop = channel.eventLoop();
        bound = (InetSocketAddress) channel.localAddress();
        long idle = spec.udp().idleTimeout().toNanos();
        long every = Math.max(TimeUnit.MILLISECONDS.toNanos(10), Math.min(idle / 4, TimeUnit.SECONDS.toNanos(1)));
        sweeper = loop.scheduleAtFixedRate(this::sweep, every, every, TimeUnit.NANOSECONDS);
        channel.closeFuture().addListener(x -> loop.execute(this::closeAll));
        return channel;
    }

    private void onDatagram(DatagramPacket p) {
        InetSocketAddress from = p.sender();
        DatagramFlow flow = flows.get(from);
        if (flow == null) {
            if (!channel.isOpen()) {
                p.release();
                return;
            }
            if (flows.size() >= spec.udp().maxFlows()) {
                refused++;
                long now = System.nanoTime();
                if (lastFullLog == 0 || now - lastFullLog > FULL_LOG_EVERY_NANOS) {
                    lastFullLog = now;
                    LOG.log(Level.WARNING, "listener {0}: {1} udp flows open (the udp-max-flows limit); dropping datagrams from new peers"
                            + " such as {2} until flows expire ({3} dropped so far); raise agent.udp-max-flows or lower agent.udp-idle-timeout",
                            spec.name(), flows.size(), from, refused);
                }
                p.release();
                return;
            }
            InetSocketAddress[] original = null;
            if (spec.intercepts()) {
                InetSocketAddress to = bound.getAddress().isAnyLocalAddress() ? p.recipient() : bound;
                // an IPv6 datagram does not say (Netty reads IPv4's IP_ORIGDSTADDR only): the redirect sent it to one of this host's addresses
                original = to != null && to.getAddress().isAnyLocalAddress() ? Conntrack.originalUdpToAny(from, to.getPort())
                        : Conntrack.originalUdp(from, to);
                if (original == null) {
                    LOG.log(Level.WARNING, "listener {0}: a datagram from {1} to {2} has no original destination (it was sent to the"
                            + " intercepting listener directly, not redirected); dropped", spec.name(), from, to);
                    p.release();
                    return;
                }
            }
            flow = engine.newFlow(this, from);
            if (original != null) flow.intercepted(original[0], original[1]);
            flows.put(from, flow);
            List<LoadedModule> mods = engine.modulesFor(spec, flow);
            flow.start(mods);
            if (flow.isClosed()) {
                p.release();
                return;
            }
        }
        flow.fromPeer(p.content());
    }

    /**
     * {@code flow} wrote to its upstream socket without a flush. All the writes of one pass of the event loop are flushed
     * together once it has read every socket that was ready ({@link #flushAll}, a task, which the loop runs after its I/O):
     * several datagrams queued on one socket then leave in one sendmmsg.
     */
    void flushUpstreamLater(DatagramFlow flow) {
        unflushed.add(flow);
        queueFlush();
    }

    /** A flow wrote to the listen socket without a flush: the answers of one loop pass, to any peers, go in one sendmmsg. */
    void flushListenLater() {
        listenUnflushed = true;
        queueFlush();
    }

    private void queueFlush() {
        if (!flushQueued) {
            flushQueued = true;
            loop.execute(flushTask);
        }
    }

    private void flushAll() {
        flushQueued = false;
        for (int i = 0; i < unflushed.size(); i++) {
            unflushed.get(i).flushUpstream();
        }
        unflushed.clear();
        if (listenUnflushed) {
            listenUnflushed = false;
            channel.flush();
        }
    }

    /**
     * {@code received} (a datagram in its 64 KiB receive buffer, owned) copied into a buffer of its own size, the receive
     * buffer released. The pool hands the same 64 KiB buffer to the next read instead of carving new ones out of its
     * chunks (a burst of 64 KiB buffers in flight makes it create and free whole chunks), and a datagram waiting in a
     * socket's queue holds its bytes, not 64 KiB.
     */
    static ByteBuf compact(ByteBuf received) {
        try {
            int n = received.readableBytes();
            return Engine.ALLOCATOR.directBuffer(n, n).writeBytes(received);
        } finally {
            received.release();
        }
    }

    /** A flow ended. */
    void removed(DatagramFlow flow) {
        flows.remove(flow.peer(), flow);
    }

    private void sweep() {
        long now = System.nanoTime();
        long idle = spec.udp().idleTimeout().toNanos();
        List<DatagramFlow> expired = new ArrayList<>();
        for (DatagramFlow f : flows.values()) {
            if (now - f.lastActive() > idle && f.heldNow() == 0) expired.add(f);
        }
        for (DatagramFlow f : expired) {
            f.close("idle for " + spec.udp().idleTimeout().toMillis() + " ms (udp-idle-timeout)");
        }
    }

    private void closeAll() {
        if (sweeper != null) sweeper.cancel(false);
        for (DatagramFlow f : List.copyOf(flows.values())) {
            f.close("listener " + spec.name() + " stopped");
        }
    }

    private final class ListenHandler extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof DatagramPacket p) {
                onDatagram(p.replace(compact(p.content())));
            } else {
                ReferenceCountUtil.release(msg);
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            // a UDP socket keeps serving after an error (e.g. ICMP unreachable for one peer)
            LOG.log(Level.DEBUG, "listener {0}: udp socket error: {1}", spec.name(), cause.toString());
        }
    }
}
