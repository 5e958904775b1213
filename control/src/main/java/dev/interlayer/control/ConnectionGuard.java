package dev.interlayer.control;

import io.grpc.netty.GrpcHttp2ConnectionHandler;
import io.grpc.netty.InternalProtocolNegotiator;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.AsciiString;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.SSLPeerUnverifiedException;

/**
 * What a connection to the control endpoint must do before gRPC sees it, so that no local user can exhaust
 * the endpoint or flood its log: a uid holds at most {@link ControlSettings.Limits#connectionsPerUid} connections
 * on the Unix socket at once (root and the agent's user are not limited); a connection starts with the HTTP/2
 * preface every gRPC client sends, within {@link ControlSettings.Limits#handshakeTimeout} (for TLS, the handshake
 * too). Anything else is closed and reported, with the caller, by {@link Rejections}. (Idle connections are
 * closed by the transport itself: {@link ControlSettings.Limits#idleTimeout}.)
 */
final class ConnectionGuard {

    /** The client preface every HTTP/2 connection starts with (RFC 9113, 3.4). */
    static final byte[] PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII);

    private final ControlSettings.Limits limits;
    private final Rejections rejections;
    private final long agentUid;
    private final ConcurrentHashMap<Long, AtomicInteger> perUid = new ConcurrentHashMap<>();

    ConnectionGuard(ControlSettings.Limits limits, Rejections rejections, long agentUid) {
        this.limits = limits;
        this.rejections = rejections;
        this.agentUid = agentUid;
    }

    /** What refusals of {@code c}, connected from {@code remote}, are grouped by: the uid, or the peer's address. */
    static String who(Caller c, SocketAddress remote) {
        if (c != null && Caller.UDS.equals(c.transport())) {
            return "uid " + c.uid();
        }
        return remote instanceof InetSocketAddress a && a.getAddress() != null ? a.getAddress().getHostAddress() : String.valueOf(remote);
    }

    /**
     * Admits a new Unix-socket connection of {@code caller} (null: credentials unknown, admitted: the security
     * module refuses its calls), counting it against its uid until it closes. A connection over the limit is
     * answered with an HTTP/2 GOAWAY that says why (a gRPC client shows it), closed and reported.
     */
    boolean admit(ChannelHandlerContext ctx, Caller caller) {
        if (caller == null || caller.uid() == 0 || caller.uid() == agentUid) {
            return true;
        }
        AtomicInteger n = perUid.computeIfAbsent(caller.uid(), k -> new AtomicInteger());
        if (n.incrementAndGet() > limits.connectionsPerUid()) {
            n.decrementAndGet();
            String reason = "uid " + caller.uid() + " already holds " + limits.connectionsPerUid()
                    + " control connections, the most one user may hold at once (agent.control.max-connections-per-uid)";
            rejections.refuse(caller, who(caller, null), AuditLog.DENIED, Rejections.CONNECTION_LIMIT, reason);
            goAway(ctx, "the agent refused this connection: " + reason + "; close some (interlayer log tail, audit tail) and try again");
            return false;
        }
        ctx.channel().closeFuture().addListener(f -> {
            if (n.decrementAndGet() == 0) {
                perUid.remove(caller.uid(), n);
            }
        });
        return true;
    }

    /**
     * Writes an empty SETTINGS frame (the server preface) and a GOAWAY (ENHANCE_YOUR_CALM) carrying {@code why},
     * which a gRPC client reports as the reason its call failed; closes a second later, or when the client does.
     */
    private static void goAway(ChannelHandlerContext ctx, String why) {
        byte[] debug = why.getBytes(StandardCharsets.UTF_8);
        ByteBuf b = ctx.alloc().buffer(9 + 9 + 8 + debug.length);
        b.writeMedium(0).writeByte(0x4).writeByte(0).writeInt(0);                    // SETTINGS, no parameters
        b.writeMedium(8 + debug.length).writeByte(0x7).writeByte(0).writeInt(0);    // GOAWAY on stream 0
        // The last stream is the highest possible: the client's call counts as seen and fails with this GOAWAY's
        // words; with 0, gRPC would retry it on new connections, each refused again.
        b.writeInt(Integer.MAX_VALUE).writeInt(0xb).writeBytes(debug);             // ENHANCE_YOUR_CALM
        ctx.writeAndFlush(b);
        // A client whose connection closes before it has finished starting reports that, not the GOAWAY: give it a moment.
        ctx.executor().schedule(() -> ctx.close(), 1, TimeUnit.SECONDS);
    }

    /** A handler that checks the first bytes of a connection of {@code caller} are the HTTP/2 preface, by {@code deadline} (System.nanoTime). */
    ChannelHandler preface(Caller caller, String who, long deadline) {
        return new PrefaceGuard(caller, who, deadline);
    }

    /** The deadline of a connection accepted now. */
    long deadline() {
        return System.nanoTime() + limits.handshakeTimeout().toNanos();
    }

    private String timeout() {
        long ms = limits.handshakeTimeout().toMillis();
        return ms % 1000 == 0 ? ms / 1000 + " s" : ms + " ms";
    }

    /**
     * Passes the HTTP/2 preface on and removes itself; refuses a connection whose first bytes are something
     * else (an HTTP/1 request, a stray client) or that has not sent the whole preface by the deadline.
     */
    private final class PrefaceGuard extends ChannelInboundHandlerAdapter {
        private final Caller caller;
        private final String who;
        private final long deadline;
        private int matched;
        private ScheduledFuture<?> timer;

        PrefaceGuard(Caller caller, String who, long deadline) {
            this.caller = caller;
            this.who = who;
            this.deadline = deadline;
        }

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            timer = ctx.executor().schedule(() -> {
                if (ctx.channel().isActive()) {
                    refuse(ctx, AuditLog.INVALID, Rejections.HANDSHAKE_TIMEOUT, "sent " + (matched == 0 ? "nothing" : "only " + matched
                            + " bytes of the HTTP/2 preface") + " within " + timeout() + " (agent.control.handshake-timeout)");
                }
            }, Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        }

        @Override
        public void handlerRemoved(ChannelHandlerContext ctx) {
            timer.cancel(false);
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (!(msg instanceof ByteBuf b)) {
                ctx.fireChannelRead(msg);
                return;
            }
            int n = Math.min(b.readableBytes(), PREFACE.length - matched);
            for (int i = 0; i < n; i++) {
                if (b.getByte(b.readerIndex() + i) != PREFACE[matched + i]) {
                    String start = (matched + i == 0 ? "" : "part of the preface, then ") + printable(b);
                    b.release();
                    refuse(ctx, AuditLog.INVALID, Rejections.NOT_HTTP2, "sent " + start + ", not the HTTP/2 preface a gRPC client starts with");
                    return;
                }
            }
            matched += n;
            if (matched == PREFACE.length) {
                ctx.pipeline().remove(this);
            }
            ctx.fireChannelRead(b);
        }

        private void refuse(ChannelHandlerContext ctx, String decision, String rule, String reason) {
            rejections.refuse(caller, who, decision, rule, reason);
            ctx.close();
        }
    }

    /** Up to 40 characters from the start of {@code b}, quoted, unprintable bytes as {@code \xNN}. */
    static String printable(ByteBuf b) {
        StringBuilder s = new StringBuilder("\"");
        int end = Math.min(b.readableBytes(), 40);
        for (int i = 0; i < end; i++) {
            int c = b.getByte(b.readerIndex() + i) & 0xff;
            if (c == '\r') {
                s.append("\\r");
            } else if (c == '\n') {
                s.append("\\n");
            } else if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
                s.append((char) c);
            } else {
                s.append(String.format("\\x%02x", c));
            }
        }
        return s.append(b.readableBytes() > end ? "...\"" : "\"").toString();
    }

    /** The TLS negotiator {@code inner} ({@code serverTls}), with refused handshakes reported and the preface checked after it. */
    InternalProtocolNegotiator.ProtocolNegotiator tls(InternalProtocolNegotiator.ProtocolNegotiator inner) {
        return new InternalProtocolNegotiator.ProtocolNegotiator() {
            @Override
            public AsciiString scheme() {
                return inner.scheme();
            }

            @Override
            public ChannelHandler newHandler(GrpcHttp2ConnectionHandler grpcHandler) {
                return new TlsWatch(inner.newHandler(grpcHandler));
            }

            @Override
            public void close() {
                inner.close();
            }
        };
    }

    /**
     * Puts grpc-netty's TLS handler in place and watches the handshake of the {@link SslHandler} it adds: a
     * failed handshake is reported (grpc-netty only closes the connection), one not done by the deadline is
     * refused; after a good one, a {@link PrefaceGuard} goes right behind the SslHandler, where the bytes
     * are clear text. Then it leaves the pipeline.
     */
    private final class TlsWatch extends ChannelInboundHandlerAdapter {
        private final ChannelHandler inner;
        private final long deadline = deadline();
        private boolean watching;

        TlsWatch(ChannelHandler inner) {
            this.inner = inner;
        }

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            ctx.pipeline().addBefore(ctx.name(), null, inner);
            watch(ctx);
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            ctx.fireChannelActive();
            watch(ctx);
        }

        /** Once the SslHandler is in the pipeline (grpc-netty adds it when the connection is active): watch its handshake. */
        private void watch(ChannelHandlerContext ctx) {
            SslHandler ssl = ctx.pipeline().get(SslHandler.class);
            if (watching || ssl == null) {
                return;
            }
            watching = true;
            Channel ch = ctx.channel();
            String who = who(null, ch.remoteAddress());
            ScheduledFuture<?> timer = ch.eventLoop().schedule(() -> {
                rejections.refuse(Caller.tls("", List.of()), who, AuditLog.INVALID, Rejections.HANDSHAKE_TIMEOUT,
                        "the TLS client at " + who + " did not complete the handshake within " + timeout() + " (agent.control.handshake-timeout)");
                ch.close();
            }, Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            ssl.handshakeFuture().addListener(f -> {
                timer.cancel(false);
                if (f.isSuccess()) {
                    Caller caller = Caller.tls("", List.of());
                    try {
                        Certificate[] chain = ssl.engine().getSession().getPeerCertificates();
                        if (chain.length > 0 && chain[0] instanceof X509Certificate x) {
                            caller = Caller.tls(x);
                        }
                    } catch (SSLPeerUnverifiedException unverified) {
                        // the handshake requires a certificate; without one it would have failed
                    }
                    ChannelHandlerContext at = ch.pipeline().context(ssl);
                    if (at != null) {
                        ch.pipeline().addAfter(at.name(), null, preface(caller, who, deadline));
                    }
                } else if (ch.isActive() || !(f.cause() instanceof java.nio.channels.ClosedChannelException)) {
                    rejections.refuse(Caller.tls("", List.of()), who, AuditLog.DENIED, Rejections.TLS_HANDSHAKE,
                            "TLS handshake from " + who + " refused: " + TlsProblems.refusedByAgent(f.cause()));
                }
            });
            ctx.pipeline().remove(this);
        }
    }
}
