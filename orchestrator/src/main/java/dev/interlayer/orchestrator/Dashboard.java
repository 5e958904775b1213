package dev.interlayer.orchestrator;

import com.google.protobuf.util.JsonFormat;
import dev.interlayer.control.Caller;
import dev.interlayer.control.Idl;
import dev.interlayer.control.Policy;
import dev.interlayer.control.SecurityModule;
import dev.interlayer.orchestrator.v1.DashboardGrpc;
import dev.interlayer.orchestrator.v1.DashboardRequest;
import dev.interlayer.orchestrator.v1.StatusResponse;
import io.grpc.stub.StreamObserver;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.timeout.ReadTimeoutHandler;
import java.io.IOException;
import java.io.InputStream;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The orchestrator's read-only web page ({@code --dashboard HOST:PORT}): agents, their modules, the live deployments,
 * refreshed by the page's own script from {@code /api/fleet}. Served with Netty's HTTP/1.1 codec, like the rest of the
 * orchestrator on Netty; every asset comes from the orchestrator (no external address).
 *
 * <p>Every request passes the security module as {@code Dashboard.Read} (structure, policy, audit): the caller is
 * {@link Caller#http}, with the uid of the user that owns the client's socket when it connects from this host (looked
 * up in the kernel's socket table, as {@link LocalSockets} does), so the policy can grant local users as it does on the
 * Unix socket. A request whose {@code Host} is not a name of the dashboard's address is refused (DNS rebinding).
 *
 * <p>Lifecycle: {@link #start} binds or throws; {@link #close} stops it. One event loop; reads of the store run on a
 * small executor, never on the loop.
 */
final class Dashboard implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.orchestrator");
    private static final String ASSETS = "/dev/interlayer/orchestrator/dashboard/";
    private static final Map<String, String> FILES = Map.of("/", "index.html", "/dashboard.css", "dashboard.css", "/dashboard.js", "dashboard.js");
    private static final Map<String, String> TYPES = Map.of("html", "text/html; charset=utf-8", "css", "text/css; charset=utf-8",
            "js", "text/javascript; charset=utf-8");

    private final Store store;
    private final SecurityModule security;
    private final Idl.Method read;
    private final EventLoopGroup loop;
    private final ExecutorService readers;
    private final Channel channel;
    private final List<String> hosts;

    private Dashboard(Store store, SecurityModule security, InetSocketAddress at, List<String> names) throws OrchestratorException {
        this.store = store;
        this.security = security;
        this.read = OrchestratorServices.IDL.method("Dashboard.Read");
        this.loop = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        this.readers = Executors.newFixedThreadPool(2, r -> Thread.ofPlatform().daemon().name("interlayer-dashboard").unstarted(r));
        try {
            this.channel = new ServerBootstrap().group(loop).channel(NioServerSocketChannel.class).childHandler(new ChannelInitializer<SocketChannel>() {
                @Override
                protected void initChannel(SocketChannel ch) {
                    ch.pipeline().addLast(new ReadTimeoutHandler(60), new HttpServerCodec(8192, 16384, 8192), new HttpObjectAggregator(16384),
                            new Handler());
                }
            }).bind(at).syncUninterruptibly().channel();
        } catch (RuntimeException e) {
            close();
            throw new OrchestratorException("the dashboard cannot listen on " + at + ": " + e.getMessage()
                    + "; choose a free address with --dashboard HOST:PORT", e);
        }
        int port = ((InetSocketAddress) channel.localAddress()).getPort();
        this.hosts = names.stream().flatMap(n -> java.util.stream.Stream.of(n, n + ":" + port, "[" + n + "]:" + port)).toList();
    }

    /**
     * Serves the dashboard on {@code at}.
     *
     * @param names the host names the page may be asked for by (the orchestrator's names and the bound address)
     */
    static Dashboard start(Store store, SecurityModule security, InetSocketAddress at, List<String> names) throws OrchestratorException {
        List<String> all = new java.util.ArrayList<>(names);
        all.add(at.getHostString());
        Dashboard d = new Dashboard(store, security, at, all);
        LOG.log(Level.INFO, "orchestrator: dashboard on http://{0}/", hostPort(d.address()));
        return d;
    }

    /** Where it listens. */
    InetSocketAddress address() {
        return (InetSocketAddress) channel.localAddress();
    }

    static String hostPort(InetSocketAddress a) {
        String h = a.getAddress().getHostAddress();
        return (h.contains(":") ? "[" + h + "]" : h) + ":" + a.getPort();
    }

    private final class Handler extends SimpleChannelInboundHandler<FullHttpRequest> {
        @Override
        protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest req) {
            if (!req.decoderResult().isSuccess()) {
                send(ctx, req, HttpResponseStatus.BAD_REQUEST, "text/plain; charset=utf-8", "a malformed HTTP request\n");
                return;
            }
            if (!req.method().equals(HttpMethod.GET) && !req.method().equals(HttpMethod.HEAD)) {
                send(ctx, req, HttpResponseStatus.METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", "the dashboard is read-only: GET only\n");
                return;
            }
            String host = req.headers().get(HttpHeaderNames.HOST, "");
            if (!hosts.contains(host)) {
                send(ctx, req, HttpResponseStatus.MISDIRECTED_REQUEST, "text/plain; charset=utf-8", "this dashboard answers to " + hosts.get(hosts.size() - 2)
                        + " (or a name the orchestrator has, --name), not to host '" + host + "'\n");
                return;
            }
            String path = req.uri().replaceFirst("[?#].*", "");
            InetSocketAddress remote = (InetSocketAddress) ctx.channel().remoteAddress();
            InetSocketAddress local = (InetSocketAddress) ctx.channel().localAddress();
            req.retain();
            readers.execute(() -> {
                try {
                    answer(ctx, req, path, remote, local);
                } finally {
                    req.release();
                }
            });
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
        }
    }

    /** Checks the caller against the policy, then serves {@code path}. Runs on a reader thread. */
    private void answer(ChannelHandlerContext ctx, FullHttpRequest req, String path, InetSocketAddress remote, InetSocketAddress local) {
        Caller caller = Caller.http(LocalSockets.uidOf(remote, local));
        SecurityModule.Verdict v = security.check(caller, read, Policy.Kind.REQUEST, DashboardRequest.getDefaultInstance());
        security.audit().record(caller, read.endpoint(), read.name(), Policy.Kind.REQUEST.word(), v.decision(), v.rule(), v.reason());
        if (!v.granted()) {
            send(ctx, req, HttpResponseStatus.FORBIDDEN, "text/plain; charset=utf-8", SecurityModule.requestStatus(v).getDescription() + "\n");
            return;
        }
        String file = FILES.get(path);
        try {
            if (file != null) {
                send(ctx, req, HttpResponseStatus.OK, TYPES.get(file.substring(file.lastIndexOf('.') + 1)), asset(file));
            } else if (path.equals("/api/fleet")) {
                send(ctx, req, HttpResponseStatus.OK, "application/json", JsonFormat.printer().print(store.status()));
            } else {
                send(ctx, req, HttpResponseStatus.NOT_FOUND, "text/plain; charset=utf-8", "no page " + path + " here; the dashboard is at /\n");
            }
        } catch (Store.Unavailable e) {
            send(ctx, req, HttpResponseStatus.SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", e.getMessage() + "\n");
        } catch (IOException | RuntimeException e) {
            LOG.log(Level.WARNING, "orchestrator: the dashboard failed to answer {0}: {1}", path, e.toString());
            send(ctx, req, HttpResponseStatus.INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8", "the dashboard failed: " + e + "\n");
        }
    }

    private static String asset(String file) throws IOException {
        try (InputStream in = Dashboard.class.getResourceAsStream(ASSETS + file)) {
            if (in == null) {
                throw new IOException("the dashboard's " + file + " is missing from the orchestrator's jar");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    private static void send(ChannelHandlerContext ctx, FullHttpRequest req, HttpResponseStatus status, String type, String body) {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        boolean head = req.method().equals(HttpMethod.HEAD);
        FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, head ? Unpooled.EMPTY_BUFFER : Unpooled.wrappedBuffer(bytes));
        r.headers().set(HttpHeaderNames.CONTENT_TYPE, type).setInt(HttpHeaderNames.CONTENT_LENGTH, bytes.length)
                .set(HttpHeaderNames.CACHE_CONTROL, "no-store").set("X-Content-Type-Options", "nosniff").set("X-Frame-Options", "DENY")
                .set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'");
        boolean keepAlive = HttpUtil.isKeepAlive(req);
        if (keepAlive) {
            r.headers().set(HttpHeaderNames.CONNECTION, "keep-alive");
        }
        var f = ctx.writeAndFlush(r);
        if (!keepAlive) {
            f.addListener(ChannelFutureListener.CLOSE);
        }
    }

    /** {@code Dashboard.Read} on the orchestrator's gRPC endpoint: the data the page shows. */
    static final class Endpoint extends DashboardGrpc.DashboardImplBase {
        private final Store store;

        Endpoint(Store store) {
            this.store = store;
        }

        @Override
        public void read(DashboardRequest r, StreamObserver<StatusResponse> out) {
            try {
                out.onNext(store.status());
                out.onCompleted();
            } catch (Store.Unavailable e) {
                throw FleetEndpoint.status(e);
            }
        }
    }

    @Override
    public void close() {
        if (channel != null) {
            channel.close().syncUninterruptibly();
        }
        loop.shutdownGracefully(0, 2, java.util.concurrent.TimeUnit.SECONDS).syncUninterruptibly();
        readers.shutdownNow();
    }
}
