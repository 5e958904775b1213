package dev.interlayer.agent.metrics;

import dev.interlayer.control.AuditLog;
import dev.interlayer.control.Caller;
import dev.interlayer.control.ControlServer;
import dev.interlayer.control.ControlSettings;
import dev.interlayer.control.Idl;
import dev.interlayer.control.Policy;
import dev.interlayer.control.v1.ModuleStatsRequest;
import dev.interlayer.engine.Engine;
import dev.interlayer.runtime.ModuleRegistry;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBufOutputStream;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioIoHandler;
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
import io.netty.handler.codec.http.QueryStringDecoder;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.timeout.ReadTimeoutHandler;
import io.prometheus.metrics.expositionformats.ExpositionFormatWriter;
import io.prometheus.metrics.expositionformats.ExpositionFormats;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLPeerUnverifiedException;

/**
 * The agent's Prometheus endpoint: {@code GET /metrics} in the Prometheus text format, or OpenMetrics when the scraper
 * asks for it, on one thread of its own (a scrape never runs on an event loop that serves connections).
 *
 * <p>On a loopback address it serves plain HTTP. On any other address it serves HTTPS with the control endpoint's
 * certificate and key ({@code agent.control.tls}), requires a client certificate signed by its {@code client-ca}, and
 * answers a caller only if the control policy grants that caller a {@code Modules.Stats} request: who may read the
 * modules' counters through the control endpoint may scrape them here, with the same rules. A denied scrape is answered
 * 403 with the decision and written to the audit log.
 */
public final class MetricsServer implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.metrics");
    /** A scraper that sends nothing for this long is disconnected. */
    private static final int IDLE_SECONDS = 60;
    /** The policy method a remote scrape is checked as. */
    static final String READ_METHOD = "Modules.Stats";

    private final EventLoopGroup group;
    private final Channel channel;
    private final LoopLagProbe lag;

    private MetricsServer(EventLoopGroup group, Channel channel, LoopLagProbe lag) {
        this.group = group;
        this.channel = channel;
        this.lag = lag;
    }

    /**
     * Binds the endpoint.
     *
     * @param control the control endpoint, whose policy and audit log a non-loopback endpoint uses (the config makes sure
     *                there is one, with {@code tls}); may be null for a loopback endpoint
     * @param t the control endpoint's TLS settings, used by a non-loopback endpoint
     * @throws IOException if the address cannot be bound or the TLS files cannot be used
     */
    public static MetricsServer start(MetricsSettings s, Engine engine, ModuleRegistry registry, ControlServer control, ControlSettings.Tls t,
                                      String version) throws IOException {
        SslContext ssl = null;
        if (!s.loopback()) {
            try {
                ssl = SslContextBuilder.forServer(t.cert().toFile(), t.key().toFile()).trustManager(t.clientCa().toFile())
                        .clientAuth(ClientAuth.REQUIRE).build();
            } catch (IOException | RuntimeException e) {
                throw new IOException("cannot use agent.control.tls's cert " + t.cert() + ", key " + t.key() + " and client-ca " + t.clientCa()
                        + " for HTTPS: " + e.getMessage(), e);
            }
        }
        LoopLagProbe lag = new LoopLagProbe(engine.eventLoops());
        PrometheusRegistry metrics = new PrometheusRegistry();
        metrics.register(new AgentMetrics(engine, registry, lag, version));
        JvmMetrics.builder().register(metrics);
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, Thread.ofPlatform().daemon().name("interlayer-metrics").factory(),
                NioIoHandler.newFactory());
        SslContext tls = ssl;
        Handler handler = new Handler(metrics, ExpositionFormats.init(), tls == null ? null : control);
        var f = new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
                .childHandler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        if (tls != null) ch.pipeline().addLast(tls.newHandler(ch.alloc()));
                        ch.pipeline().addLast(new ReadTimeoutHandler(IDLE_SECONDS), new HttpServerCodec(), new HttpObjectAggregator(8192), handler);
                    }
                }).bind(s.listen()).awaitUninterruptibly();
        if (!f.isSuccess()) {
            lag.close();
            group.shutdownGracefully(0, 0, java.util.concurrent.TimeUnit.SECONDS);
            throw new IOException("cannot listen on " + s.listen() + ": " + f.cause().getMessage() + "; pick another address or port, or stop what holds it",
                    f.cause());
        }
        MetricsServer server = new MetricsServer(group, f.channel(), lag);
        LOG.log(Level.INFO, "metrics on {0}://{1}{2}{3}", tls == null ? "http" : "https", address(server.address()), MetricsSettings.PATH,
                tls == null ? "" : " (client certificates; the policy's " + READ_METHOD + " rule decides)");
        return server;
    }

    /** The bound address. */
    public InetSocketAddress address() {
        return (InetSocketAddress) channel.localAddress();
    }

    @Override
    public void close() {
        lag.close();
        channel.close().awaitUninterruptibly();
        group.shutdownGracefully(0, 1, java.util.concurrent.TimeUnit.SECONDS).awaitUninterruptibly();
    }

    private static String address(InetSocketAddress a) {
        String host = a.getAddress().getHostAddress();
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + a.getPort();
    }

    @io.netty.channel.ChannelHandler.Sharable
    private static final class Handler extends SimpleChannelInboundHandler<FullHttpRequest> {
        private final PrometheusRegistry metrics;
        private final ExpositionFormats formats;
        private final ControlServer control;

        Handler(PrometheusRegistry metrics, ExpositionFormats formats, ControlServer control) {
            this.metrics = metrics;
            this.formats = formats;
            this.control = control;
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest req) throws IOException {
            if (!req.decoderResult().isSuccess()) {
                reply(ctx, req, HttpResponseStatus.BAD_REQUEST, "not a valid HTTP request: " + req.decoderResult().cause() + "\n");
                return;
            }
            String path = new QueryStringDecoder(req.uri()).path();
            if (!path.equals(MetricsSettings.PATH)) {
                reply(ctx, req, HttpResponseStatus.NOT_FOUND, "no such page: " + path + "; the metrics are at " + MetricsSettings.PATH + "\n");
                return;
            }
            if (!req.method().equals(HttpMethod.GET) && !req.method().equals(HttpMethod.HEAD)) {
                reply(ctx, req, HttpResponseStatus.METHOD_NOT_ALLOWED, req.method() + " is not served; scrape " + MetricsSettings.PATH + " with GET\n");
                return;
            }
            if (control != null) {
                String denied = denied(ctx);
                if (denied != null) {
                    reply(ctx, req, HttpResponseStatus.FORBIDDEN, denied + "\n");
                    return;
                }
            }
            ExpositionFormatWriter w = formats.findWriter(req.headers().get(HttpHeaderNames.ACCEPT));
            FullHttpResponse r = new DefaultFullHttpResponse(req.protocolVersion(), HttpResponseStatus.OK, ctx.alloc().buffer());
            try (ByteBufOutputStream out = new ByteBufOutputStream(r.content())) {
                w.write(out, metrics.scrape());
            } catch (IOException | RuntimeException e) {
                r.release();
                throw e;
            }
            r.headers().set(HttpHeaderNames.CONTENT_TYPE, w.getContentType());
            send(ctx, req, r);
        }

        /** Why the policy denies this connection's caller a scrape, or null if it grants it. */
        private String denied(ChannelHandlerContext ctx) {
            Caller caller;
            try {
                Certificate[] chain = ctx.pipeline().get(SslHandler.class).engine().getSession().getPeerCertificates();
                caller = Caller.tls((X509Certificate) chain[0]);
            } catch (SSLPeerUnverifiedException e) {
                return "no client certificate; scrape with a certificate signed by agent.control.tls.client-ca";
            }
            Idl.Method method = control.policy().current().policy().idl().method(READ_METHOD);
            Policy.Decision d = control.policy().current().policy().decide(caller, method, Policy.Kind.REQUEST, ModuleStatsRequest.getDefaultInstance());
            if (d.granted()) return null;
            control.audit().record(caller, method.endpoint(), method.name(), Policy.Kind.REQUEST.word(), AuditLog.DENIED, d.rule(),
                    "metrics scrape: " + d.reason());
            return "metrics denied: " + d.shown() + " (a scrape is checked as a " + READ_METHOD + " request)";
        }

        private static void reply(ChannelHandlerContext ctx, FullHttpRequest req, HttpResponseStatus status, String text) {
            FullHttpResponse r = new DefaultFullHttpResponse(req.protocolVersion(), status,
                    ctx.alloc().buffer().writeBytes(text.getBytes(StandardCharsets.UTF_8)));
            r.headers().set(HttpHeaderNames.CONTENT_TYPE, "text/plain; charset=utf-8");
            send(ctx, req, r);
        }

        private static void send(ChannelHandlerContext ctx, FullHttpRequest req, FullHttpResponse r) {
            HttpUtil.setContentLength(r, r.content().readableBytes());
            if (req.method().equals(HttpMethod.HEAD)) r.content().clear();
            boolean keepAlive = HttpUtil.isKeepAlive(req);
            HttpUtil.setKeepAlive(r, keepAlive);
            var f = ctx.writeAndFlush(r);
            if (!keepAlive) f.addListener(ChannelFutureListener.CLOSE);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (!(cause instanceof io.netty.handler.timeout.ReadTimeoutException)) {
                LOG.log(Level.DEBUG, "metrics connection from {0} failed: {1}", ctx.channel().remoteAddress(), cause.toString());
            }
            ctx.close();
        }
    }
}
