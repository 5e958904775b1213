package bench.nettyproxy;

import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollChannelOption;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.ReferenceCountUtil;

import java.io.File;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Bare Netty TCP pass-through proxy: a "Java floor" reference for the benchmark harness,
 * not a product. One epoll event loop thread per core (accept shares the same group), pooled
 * direct buffers, the upstream connection on the same event loop as the downstream one, and
 * autoread back-pressure driven by the peer channel's writability (Netty write-buffer water marks).
 * Optional TLS termination (--tls CERT KEY) with the JDK or the OpenSSL (netty-tcnative) engine.
 *
 * <p>This is the benchmark suite's reference forwarder: the {@code netty} target of {@code bench/run}
 * (bench/README.md), kept in the repository so the suite needs nothing from outside it.
 *
 * Usage: java -jar nettyproxy.jar --listen 127.0.0.1:PORT --upstream HOST:PORT
 *            [--threads N] [--reuseport] [--tls cert.pem key.pem] [--ssl-provider jdk|openssl] [--ciphers A,B]
 */
public final class NettyProxy {

    public static void main(String[] args) throws Exception {
        String listen = null, upstream = null, cert = null, key = null, provider = "jdk", ciphers = null;
        int threads = Runtime.getRuntime().availableProcessors();
        boolean reusePort = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--listen": listen = args[++i]; break;
                case "--upstream": upstream = args[++i]; break;
                case "--threads": threads = Integer.parseInt(args[++i]); break;
                case "--tls": cert = args[++i]; key = args[++i]; break;
                case "--ssl-provider": provider = args[++i]; break;
                case "--ciphers": ciphers = args[++i]; break; // comma-separated, e.g. TLS_AES_128_GCM_SHA256
                case "--reuseport": reusePort = true; break;  // one SO_REUSEPORT listener per event loop
                default: usage("unknown argument " + args[i]);
            }
        }
        if (listen == null || upstream == null) usage("--listen and --upstream are required");
        Epoll.ensureAvailability(); // fail fast rather than silently measuring something else

        final HostPort lp = HostPort.parse(listen);
        final HostPort upHp = HostPort.parse(upstream);
        final InetSocketAddress up = new InetSocketAddress(InetAddress.getByName(upHp.host), upHp.port); // resolved once
        final ByteBufAllocator alloc = new PooledByteBufAllocator(true); // pooled, direct
        final SslContext ssl;
        if (cert != null) {
            SslProvider p = "openssl".equalsIgnoreCase(provider) ? SslProvider.OPENSSL : SslProvider.JDK;
            SslContextBuilder scb = SslContextBuilder.forServer(new File(cert), new File(key)).sslProvider(p)
                    .protocols("TLSv1.3", "TLSv1.2");
            if (ciphers != null) scb.ciphers(java.util.Arrays.asList(ciphers.split(",")));
            ssl = scb.build();
        } else {
            ssl = null;
        }

        EventLoopGroup group = new MultiThreadIoEventLoopGroup(threads, EpollIoHandler.newFactory());
        try {
            List<Channel> servers = new ArrayList<>();
            int listeners = reusePort ? threads : 1;
            for (int i = 0; i < listeners; i++) {
                // reuseport: each event loop accepts its own connections (kernel spreads them), no hand-off;
                // otherwise the classic single listener whose accepted channels are spread round-robin.
                EventLoopGroup g = reusePort ? group.next() : group;
                ServerBootstrap sb = new ServerBootstrap()
                        .group(g)
                        .channel(EpollServerSocketChannel.class)
                        .option(ChannelOption.SO_BACKLOG, 4096)
                        .option(ChannelOption.SO_REUSEADDR, true)
                        .option(EpollChannelOption.SO_REUSEPORT, reusePort)
                        .option(ChannelOption.ALLOCATOR, alloc)
                        .childOption(ChannelOption.ALLOCATOR, alloc)
                        .childOption(ChannelOption.TCP_NODELAY, true)
                        .childOption(ChannelOption.AUTO_READ, false) // nothing is read before upstream is connected
                        .childHandler(new ChannelInitializer<SocketChannel>() {
                            @Override
                            protected void initChannel(SocketChannel ch) {
                                if (ssl != null) ch.pipeline().addLast(ssl.newHandler(ch.alloc()));
                                ch.pipeline().addLast(new Frontend(up, alloc));
                            }
                        });
                servers.add(sb.bind(lp.host, lp.port).sync().channel());
            }
            Channel server = servers.get(0);
            System.out.println("nettyproxy listening on " + server.localAddress() + " -> " + up
                    + " threads=" + threads + " listeners=" + listeners
                    + " tls=" + (ssl == null ? "off" : provider + (ciphers == null ? "" : "/" + ciphers))
                    + " java=" + System.getProperty("java.version")
                    + " unsafe=" + io.netty.util.internal.PlatformDependent.hasUnsafe()
                    + " netty=" + io.netty.util.Version.identify().get("netty-transport").artifactVersion());
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                group.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
            }));
            server.closeFuture().sync();
        } finally {
            group.shutdownGracefully(0, 2, TimeUnit.SECONDS);
        }
    }

    private static void usage(String why) {
        System.err.println(why);
        System.err.println("usage: --listen HOST:PORT --upstream HOST:PORT [--threads N] [--reuseport] [--tls CERT KEY] [--ssl-provider jdk|openssl] [--ciphers A,B]");
        System.exit(2);
    }

    /**
     * Downstream (accepted) side: opens the upstream connection on the same event loop, then replaces itself
     * with a {@link Relay}. Plain TCP reads nothing before that (autoread off); with TLS the handshake reads,
     * and early application data (TLS 1.3 sends it with the client Finished) is held until upstream is up.
     */
    static final class Frontend extends ChannelInboundHandlerAdapter {
        private final InetSocketAddress up;
        private final ByteBufAllocator alloc;
        private final java.util.ArrayDeque<Object> pending = new java.util.ArrayDeque<>();

        Frontend(InetSocketAddress up, ByteBufAllocator alloc) {
            this.up = up;
            this.alloc = alloc;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            final Channel in = ctx.channel();
            Bootstrap b = new Bootstrap()
                    .group(in.eventLoop())
                    .channel(EpollSocketChannel.class)
                    .option(ChannelOption.ALLOCATOR, alloc)
                    .option(ChannelOption.TCP_NODELAY, true)
                    .option(ChannelOption.AUTO_READ, false)
                    .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, 5000)
                    .handler(new Relay(in));
            b.connect(up).addListener((ChannelFutureListener) f -> {
                if (!f.isSuccess()) {
                    in.close();
                    return;
                }
                Channel out = f.channel();
                if (!in.isActive()) {
                    out.close();
                    return;
                }
                Object m;
                while ((m = pending.poll()) != null) out.write(m, out.voidPromise());
                out.flush();
                in.pipeline().replace(this, "relay", new Relay(out));
                out.config().setAutoRead(true);
                in.config().setAutoRead(true);
            });
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            pending.add(msg); // only reachable with TLS: data decoded before the upstream connect completed
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            Object m;
            while ((m = pending.poll()) != null) ReferenceCountUtil.release(m);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
        }
    }

    /** Copies bytes to the peer; stops reading while the peer's outbound buffer is above the high water mark. */
    static final class Relay extends ChannelInboundHandlerAdapter {
        private final Channel peer;

        Relay(Channel peer) {
            this.peer = peer;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (!peer.isActive()) {
                ReferenceCountUtil.release(msg);
                return;
            }
            peer.write(msg, peer.voidPromise());
            if (!peer.isWritable()) {
                ctx.channel().config().setAutoRead(false);
            }
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) {
            peer.flush(); // one flush per read burst, not per buffer
        }

        @Override
        public void channelWritabilityChanged(ChannelHandlerContext ctx) {
            if (ctx.channel().isWritable()) {
                peer.config().setAutoRead(true); // our outbound drained: resume reading from the peer
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            closeOnFlush(peer);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
        }
    }

    static void closeOnFlush(Channel ch) {
        if (ch.isActive()) {
            ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
        }
    }

    record HostPort(String host, int port) {
        static HostPort parse(String s) {
            int i = s.lastIndexOf(':');
            if (i <= 0) throw new IllegalArgumentException("expected HOST:PORT, got " + s);
            return new HostPort(s.substring(0, i), Integer.parseInt(s.substring(i + 1)));
        }
    }
}
