package dev.interlayer.engine;

import static dev.interlayer.engine.ProxyConnection.RECV;
import static dev.interlayer.engine.ProxyConnection.SEND;

import dev.interlayer.api.ConnectionEvent;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.Side;
import dev.interlayer.api.Verdict;
import dev.interlayer.runtime.Hooks;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelOption;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.socket.DuplexChannel;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.Arrays;

/**
 * The end of each direction of one {@link ProxyConnection}'s stream, from the peer's FIN on the way in to the FIN the
 * connection sends on the way out, and the close once both directions have ended.
 *
 * <pre>
 *  FIN read ─▶ chunks read while paused go first (parked) ─▶ the end walks the chain: onEnd per module, and it
 *  waits at a module while that holds bytes of the direction or its output is on its way ─▶ SHUTDOWN event ─▶
 *  FIN once every byte before it has left ─▶ both directions ended: close
 * </pre>
 *
 * <p>A reset is never taken for an end: an input shutdown with an error pending on the socket, or a socket that
 * closes before its stream ended, resets the connection. Once the connection cannot deliver exactly ({@link #doom})
 * no FIN is sent: the reset follows.
 *
 * <p>Threading: on the connection's event loop, except {@link #doom} and {@link #progressEndLater}.
 */
final class StreamEnds {

    private static final int TCP_CLOSE = 7;
    private static final int ECONNRESET = 104;

    private final ProxyConnection conn;
    private final ModuleChain<RealAttachment> mods;
    private final HoldBudget budget;
    private final Watchdog.Slot slot;

    private final boolean[] inputEnded = new boolean[2];
    private final boolean[] endPending = new boolean[2];
    private final boolean[] outputShut = new boolean[2];
    /**
     * Per direction, whether its source socket closes at its end of input instead of half-closing (see
     * {@link #shutdownOutput}): its close is then the end of its stream. Per socket, not per connection: a module
     * attached meanwhile turns half-closure back on for the sockets still open, while the close of one already closed
     * (whose channelInactive may still be on its way) stays an end.
     */
    private final boolean[] closesAtEnd = new boolean[2];
    /**
     * Per direction, chunks read while reading was paused: once a peer's FIN has arrived, Netty reads the socket to
     * its end whatever auto-read says. They enter the chain, in order and before the end of stream, when reading
     * would resume; bounded by the socket's receive buffer, which held them before.
     */
    @SuppressWarnings("unchecked")
    private final ArrayDeque<ByteBuf>[] parked = new ArrayDeque[] {new ArrayDeque<>(), new ArrayDeque<>()};
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
    /** {@link #progressEnd(int)} of SEND and of RECV as tasks, made once. */
    private final Runnable[] progressEnd = {() -> progressEnd(SEND), () -> progressEnd(RECV)};

    StreamEnds(ProxyConnection conn, ModuleChain<RealAttachment> mods, HoldBudget budget, Watchdog.Slot slot) {
        this.conn = conn;
        this.mods = mods;
        this.budget = budget;
        this.slot = slot;
    }

    /** The input of direction {@code d} has ended (its source sent its FIN, or it ended on the direct path). */
    boolean inputEnded(int d) {
        return inputEnded[d];
    }

    /** The FIN of direction {@code d} is sent, or on its way: nothing more is written in that direction. */
    boolean outputShut(int d) {
        return outputShut[d];
    }

    /** Why the connection can no longer deliver exactly (see {@link #doom}), or null. */
    String doomed() {
        return doomed;
    }

    /** Bytes parked in direction {@code d}: read while reading was paused, waiting to enter the chain. */
    long parkedBytes(int d) {
        long n = 0;
        for (ByteBuf b : parked[d]) n += b.readableBytes();
        return n;
    }

    /** True while neither direction has ended or begun to end, and nothing waits in front of an end (parked). */
    boolean streaming() {
        return !inputEnded[SEND] && !inputEnded[RECV] && !endPending[SEND] && !endPending[RECV]
                && !outputShut[SEND] && !outputShut[RECV] && parked[SEND].isEmpty() && parked[RECV].isEmpty();
    }

    /** True while a socket closes at its end of input instead of half-closing (see {@link #shutdownOutput}). */
    boolean halfClosureOff() {
        return closesAtEnd[SEND] || closesAtEnd[RECV];
    }

    /** Direction {@code d} ended on the direct path already: its input read to the end, every byte and the FIN written. */
    void ended(int d) {
        inputEnded[d] = true;
        endStarted[d] = true;
        endWalked[d] = true;
        outputShut[d] = true;
    }

    // ---- the way in -------------------------------------------------------------------------------

    /**
     * Netty reports the input of {@code ch}, the source of {@code d}, as shut: an end of stream, or a reset when the
     * socket has a pending error.
     */
    void inputShutdown(int d, Channel ch) {
        int err = pendingError(ch, outputShut[1 - d]);
        if (err != 0) {
            // Netty reports the input of a reset socket as shut when it was not reading (paused): that is a
            // reset, not an end of stream, and the other side must see it as one
            conn.abort("peer reset by the " + (d == SEND ? "local application" : "network peer") + ": "
                    + LinuxSplice.describe(err));
        } else {
            onInputEnd(d);
        }
    }

    /** The socket that is the source of {@code d} closed. */
    void inactive(int d) {
        if (conn.isClosed()) return;
        String who = d == SEND ? "local application" : "network peer";
        if (inputEnded[d] || closesAtEnd[d]) {
            if (!parked[d].isEmpty() || endParked[d]) {
                // bytes read before its end still wait (reading was paused): they go out first, then the end
                // completes the close (without half-closure the socket closed at its end of input)
                onInputEnd(d);
                return;
            }
            // its stream had ended (a FIN) before the socket closed: end gracefully, flushing what was forwarded
            conn.closeGracefully("the " + who + " closed");
        } else {
            // the socket went away in the middle of its stream (a reset or an error the transport did not report):
            // the other side must not see a clean end of a stream that did not end
            conn.abort("the " + who + "'s socket closed before its stream ended");
        }
    }

    private void onInputEnd(int d) {
        if (inputEnded[d] || conn.isClosed()) return;
        if (conn.splice.running()) {
            conn.splice.afterSplice(() -> onInputEnd(d));
            return;
        }
        inputEnded[d] = true;
        if (!conn.isConnected()) {
            conn.early(() -> onInputEndConnected(d));
            return;
        }
        onInputEndConnected(d);
    }

    private void onInputEndConnected(int d) {
        if (conn.isClosed()) return;
        if (!parked[d].isEmpty()) {
            endParked[d] = true; // after the chunks read while paused (see unpark)
            return;
        }
        endStarted[d] = true;
        progressEnd(d);
    }

    /** True while chunks of {@code d} read while reading was paused wait: a new chunk goes behind them ({@link #park}). */
    boolean hasParked(int d) {
        return !parked[d].isEmpty();
    }

    /** Keeps {@code buf} (owned), read from the source of {@code d} while reading was paused, until reading resumes. */
    void park(int d, ByteBuf buf) {
        parked[d].add(buf);
    }

    /** Reading of {@code d} may go on: what was parked enters the chain, then the end if it came. */
    void resume(int d) {
        if (!unparking[d] && (!parked[d].isEmpty() || endParked[d])) {
            unpark(d); // may pause again
        }
    }

    /** Feeds the chunks read while paused into the chain until reading pauses again; then the end, if it came. */
    private void unpark(int d) {
        unparking[d] = true;
        try {
            ByteBuf b;
            while (!conn.isClosed() && !conn.isPaused(d) && (b = parked[d].poll()) != null) {
                if (outputShut[d]) {
                    b.release();
                } else {
                    conn.enter(d, b);
                }
            }
            conn.flush(d);
            if (!conn.isClosed() && endParked[d] && parked[d].isEmpty()) {
                endParked[d] = false;
                onInputEndConnected(d);
            }
        } finally {
            unparking[d] = false;
        }
    }

    /** Closed: drops the parked chunks. */
    void release() {
        for (var p : parked) {
            ByteBuf b;
            while ((b = p.poll()) != null) b.release();
        }
    }

    // ---- through the chain ------------------------------------------------------------------------

    /** {@link #progressEnd} of {@code d} from a task on the loop; any thread. */
    void progressEndLater(int d) {
        conn.loop().execute(progressEnd[d]);
    }

    /**
     * Moves the end of direction {@code d} down the chain as far as it can go, then passes the half-close on when
     * nothing of that direction is still on its way. The end reaches a module only after every byte before it has,
     * and leaves it only once the module holds nothing more of that direction and its output has gone on: so each
     * module sees its {@code onEnd} after its last chunk, and no byte arrives behind an end. On the loop; called
     * again whenever held or queued bytes go on.
     */
    void progressEnd(int d) {
        if (!endStarted[d] || endWalked[d] || conn.isClosed()) {
            tryCompleteEnd(d);
            return;
        }
        RealAttachment[] c = mods.links();
        int step = d == SEND ? 1 : -1;
        int i = endAt[d] == null ? (d == SEND ? 0 : c.length - 1) : mods.indexOf(endAt[d]);
        for (; i >= 0 && i < c.length; i += step) {
            RealAttachment a = c[i];
            endAt[d] = a;
            if (!endCalled[d]) {
                endCalled[d] = true;
                ByteBuf rest = a.pending[d];
                if (rest != null) {
                    a.pending[d] = null;
                    a.need[d] = 0;
                    conn.heldSub(rest.readableBytes());
                }
                ByteBuf out = rest;
                if (a.has(Hooks.END) && a.wants(d)) {
                    out = callEnd(a, d, rest == null ? Unpooled.EMPTY_BUFFER : rest);
                    if (conn.isClosed()) {
                        if (out != null) out.release();
                        return;
                    }
                }
                // a module without onEnd cannot finish its NEED_MORE: its bytes go on unchanged rather than being lost
                if (out != null) conn.later(a, d, out, null, 0);
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
        conn.flush(d);
        mods.fireEvent(d == SEND ? ConnectionEvent.SEND_SHUTDOWN : ConnectionEvent.RECV_SHUTDOWN);
        tryCompleteEnd(d);
    }

    private ByteBuf callEnd(RealAttachment a, int d, ByteBuf rest) {
        Direction dir = d == SEND ? Direction.SEND : Direction.RECV;
        RealStreamContext ctx = a.ctx;
        a.view.lend(rest, "onEnd");
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
        ChainTrace trace = conn.trace();
        if (trace != null) trace.called(conn, a.name, "onEnd", dir, rest.readableBytes(), null, 0, v);
        RealHeldBytes h = ctx.takeHeld();
        if (thrown == null && v == null) a.breach(ChainTrace.Breach.NULL_VERDICT, "onEnd returned a null verdict");
        if (thrown == null && v != null && v.kind() == Verdict.Kind.NEED_MORE) {
            a.breach(ChainTrace.Breach.END_VERDICT, "onEnd returned " + v + " at the end of the stream (" + dir + ")");
        }
        if (thrown != null || over || v == null || v.kind() == Verdict.Kind.NEED_MORE) {
            ctx.dropReplacement();
            if (h != null) h.release();
            Object why = thrown != null ? thrown : over ? slot.why()
                    : v == null ? "returned a null verdict" : "returned " + v + " at the end of the stream";
            return conn.faultOnData(a, "onEnd", why, rest, ctx.rewrote());
        }
        a.verdicts[v.kind().ordinal()]++;
        if (v.kind() == Verdict.Kind.HOLD) {
            ctx.dropReplacement();
            if (h == null) {
                a.breach(ChainTrace.Breach.HOLD_WITHOUT_HOLD_CALL, "onEnd returned HOLD without calling ctx.hold()");
                return conn.faultOnData(a, "onEnd", "returned HOLD without calling ctx.hold()", rest, ctx.rewrote());
            }
            rest.release();
            return null;
        }
        if (h != null) {
            a.breach(ChainTrace.Breach.HOLD_CALL_WITHOUT_HOLD, "onEnd called ctx.hold() but returned " + v + "; the hold is released");
            h.release();
        }
        switch (v.kind()) {
            case ERROR -> {
                ctx.dropReplacement();
                rest.release();
                conn.abort("module " + a.lm.id() + " returned ERROR(" + v.value() + ", " + v.reason() + ") at the end of " + dir);
                return null;
            }
            case CLOSE, DROP -> {
                ctx.dropReplacement();
                rest.release();
                if (v.kind() == Verdict.Kind.CLOSE) conn.closeGracefully("module " + a.lm.id() + " returned CLOSE");
                return null;
            }
            default -> {
                ByteBuf out = rest;
                if (ctx.replaced()) {
                    rest.release();
                    out = ctx.takeReplacement();
                }
                a.bytesOut[d] += out.readableBytes();
                if (v.kind() == Verdict.Kind.DETACH) conn.detach(a, DetachReason.VERDICT);
                if (!out.isReadable()) {
                    out.release();
                    return null;
                }
                return out;
            }
        }
    }

    // ---- the way out ------------------------------------------------------------------------------

    /** Propagates a half-close once nothing of that direction is still held by modules or queued for inject. */
    private void tryCompleteEnd(int d) {
        if (!endPending[d] || conn.isClosed() || doomed != null) return; // doomed: the reset follows, never a FIN
        if (budget.onTheWay(d) > 0 || heldIn(d) > 0) return;
        endPending[d] = false;
        outputShut[d] = true;
        Channel target = conn.target(d);
        conn.skipFlush(d);
        // When the other direction has already ended, the close below sends the FIN after the flush: a separate
        // shutdown would only cost a syscall and Netty's exception for the writes it fails.
        if (target instanceof DuplexChannel dc && target.isActive() && !outputShut[1 - d]) {
            shutdownOutputWhenFlushed(target, dc);
        }
        if (outputShut[SEND] && outputShut[RECV]) {
            conn.closeGracefully(null);
        }
    }

    private long heldIn(int d) {
        long n = 0;
        for (RealAttachment a : mods.links()) {
            n += a.heldIn(d);
        }
        return n;
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
        io.netty.handler.ssl.SslHandler ssl = ch.pipeline().get(io.netty.handler.ssl.SslHandler.class);
        if (ssl != null && ssl.handshakeFuture().isSuccess()) {
            // a TLS socket ends its stream with close_notify, then the FIN (a FIN alone reads as truncation to a TLS peer)
            ssl.closeOutbound().addListener((ChannelFutureListener) f -> {
                if (ch.isActive()) shutdownSocket(ch, dc);
            });
            return;
        }
        shutdownSocket(ch, dc);
    }

    private void shutdownSocket(Channel ch, DuplexChannel dc) {
        if (ch instanceof EpollSocketChannel e && e.fd() instanceof io.netty.channel.unix.Socket s) {
            try {
                s.shutdown(false, true);
            } catch (IOException | RuntimeException gone) {
                // the peer is gone already; its reset or end of input reaches the connection through the channel
            }
        } else {
            dc.shutdownOutput();
        }
        if (conn.splice.spliceable()) {
            ch.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, false);
            closesAtEnd[ch == conn.target(SEND) ? RECV : SEND] = true; // ch is written by one direction and read by the other
        }
    }

    /**
     * A module now watches the stream: its end of input must reach the module as an end, not as a close. A socket that
     * closed already at its end of input keeps that meaning: its channelInactive may still be queued.
     */
    void allowHalfClosure() {
        for (int d = 0; d < 2; d++) {
            Channel source = conn.target(1 - d);
            if (closesAtEnd[d] && source != null && source.isOpen()) {
                source.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, true);
                closesAtEnd[d] = false;
            }
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
                // one whose peer sent a FIN is in CLOSE_WAIT (TCP_CLOSE too, but only once this side's FIN went out)
                return e.isActive() && (finSent || e.tcpInfo().state() != TCP_CLOSE) ? 0 : ECONNRESET;
            } catch (IOException | RuntimeException gone) {
                return ECONNRESET;
            }
        }
        return ch.isActive() ? 0 : ECONNRESET;
    }

    // ---- a reset instead ----------------------------------------------------------------------------

    /** The connection cannot deliver exactly any more: write nothing from now on, and reset it from the loop's queue. */
    void doom(String reason) {
        conn.execute(() -> {
            if (doomed == null && !conn.isClosed()) {
                doomed = reason;
                conn.loop().execute(() -> conn.abort(reason));
            }
        });
    }

    @Override
    public String toString() {
        return "output shut " + Arrays.toString(outputShut) + ", input ended " + Arrays.toString(inputEnded);
    }
}
