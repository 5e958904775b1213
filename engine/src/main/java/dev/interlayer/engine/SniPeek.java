package dev.interlayer.engine;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.ssl.AbstractSniHandler;
import io.netty.util.Mapping;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.ScheduledFuture;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * The first stage of a TLS passthrough connection ({@code sni-routes}): the only handler on the accepted socket until the
 * client hello is read. Netty's {@link AbstractSniHandler} buffers the bytes, reassembles a hello that arrives in several
 * reads or spans several TLS records, and reads its server name; it consumes nothing. Once the route is known the
 * connection starts ({@link Outcome#routed}: its handler goes in after this one, the upstream connect begins) and this
 * handler takes itself out, handing everything it read, the hello first, to the connection untouched.
 *
 * <p>Anything else ends the connection with one line saying what and what to do ({@link Outcome#refused}): bytes that
 * are not a TLS client hello, a hello longer than {@link SniRoutes#MAX_HELLO}, no complete hello within the
 * listener's {@code sni-timeout}, a name without a route on a listener without a default. A client that closes before its
 * hello is complete just ends; with nothing sent (a health check's connect-and-close) there is no line at all.
 */
final class SniPeek extends AbstractSniHandler<SniRoutes.Route> {

    /** What became of the connection; each is called at most once, on the event loop. */
    interface Outcome {
        /** The hello asked for {@code serverName} (null: no name) and {@code route} (its address not null) takes it. */
        void routed(String serverName, SniRoutes.Route route);

        /** The connection cannot be routed: {@code line} says what and what to do. */
        void refused(String line);

        /** The client closed or ended its stream before its hello was complete, after sending {@code bytes}. */
        void ended(long bytes);
    }

    private final Mapping<String, SniRoutes.Route> routes;
    private final Duration timeout;
    private final Outcome outcome;
    /** The lookup was given a client hello: bytes that are not one are refused, not routed to the default. */
    private boolean hello;
    private boolean done;
    private ScheduledFuture<?> timer;

    SniPeek(Mapping<String, SniRoutes.Route> routes, Duration timeout, Outcome outcome) {
        super(SniRoutes.MAX_HELLO, 0L); // no timeout of Netty's: ours says what happened
        this.routes = routes;
        this.timeout = timeout;
        this.outcome = outcome;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) throws Exception {
        super.handlerAdded(ctx);
        timer = ctx.executor().schedule(() -> {
            if (done) return;
            ByteBuf b = internalBuffer();
            int n = b == null ? 0 : b.readableBytes();
            refuse("sent no complete TLS client hello within " + timeout.toMillis() + " ms (" + n + " byte" + (n == 1 ? "" : "s")
                    + " so far); clients of this listener must start TLS at once; raise the listener's sni-timeout for slower clients");
        }, timeout.toMillis(), TimeUnit.MILLISECONDS);
    }

    @Override
    protected Future<SniRoutes.Route> lookup(ChannelHandlerContext ctx, ByteBuf clientHello) throws Exception {
        hello = clientHello != null; // null: the first record is not a handshake record holding a client hello
        return super.lookup(ctx, clientHello);
    }

    @Override
    protected Future<SniRoutes.Route> lookup(ChannelHandlerContext ctx, String hostname) {
        return ctx.executor().newSucceededFuture(routes.map(hostname));
    }

    @Override
    protected void onLookupComplete(ChannelHandlerContext ctx, String hostname, Future<SniRoutes.Route> future) {
        if (done) return;
        if (!hello) {
            ByteBuf b = internalBuffer();
            String first = b == null || !b.isReadable() ? "" : " (it began with " + ByteBufUtil.hexDump(b, b.readerIndex(), Math.min(16, b.readableBytes())) + ")";
            refuse("sent bytes that are not a TLS client hello" + first + "; this listener routes TLS by its server name without"
                    + " decrypting: clients must connect with TLS");
            return;
        }
        SniRoutes.Route route = future.getNow();
        if (route == null || route.address() == null) {
            refuse(hostname == null
                    ? "its client hello names no server (no SNI) and the listener has no default route; set upstream: for such clients"
                    : "no route for the server name '" + hostname + "' and the listener has no default route; add the name to"
                    + " sni-routes, or set upstream: for unknown names");
            return;
        }
        finish();
        outcome.routed(hostname, route);
        if (!ctx.isRemoved()) {
            ctx.pipeline().remove(this); // what was read, the hello first, goes on to the connection's handler
        }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        Throwable c = cause instanceof io.netty.handler.codec.DecoderException && cause.getCause() != null ? cause.getCause() : cause;
        if (done) return;
        if (c instanceof TooLongFrameException || cause instanceof TooLongFrameException) {
            refuse("sent a client hello longer than " + SniRoutes.MAX_HELLO + " bytes, the most a passthrough listener reads ("
                    + c.getMessage() + "); route such clients through a listener without sni-routes");
        } else if (c instanceof java.io.IOException) {
            ended(ctx);
        } else {
            refuse("sent bytes that are not a TLS client hello (" + c.getMessage() + "); clients of this listener must connect with TLS");
        }
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
        super.userEventTriggered(ctx, evt); // decodes what is left first: a complete hello still routes
        if (evt instanceof ChannelInputShutdownEvent && !done) {
            ended(ctx);
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
        if (!done) ended(ctx);
        super.channelInactive(ctx);
    }

    @Override
    protected void handlerRemoved0(ChannelHandlerContext ctx) throws Exception {
        if (timer != null) timer.cancel(false);
        super.handlerRemoved0(ctx);
    }

    private void ended(ChannelHandlerContext ctx) {
        ByteBuf b = internalBuffer();
        long n = b == null ? 0 : b.readableBytes();
        finish();
        outcome.ended(n);
    }

    private void refuse(String line) {
        finish();
        outcome.refused(line);
    }

    private void finish() {
        done = true;
        if (timer != null) timer.cancel(false);
    }
}
