package dev.interlayer.engine;

import static dev.interlayer.engine.ProxyConnection.RECV;
import static dev.interlayer.engine.ProxyConnection.SEND;

import dev.interlayer.api.Side;
import dev.interlayer.runtime.Hooks;
import io.netty.channel.Channel;
import io.netty.channel.epoll.EpollSocketChannel;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.List;

/**
 * Hands the two sockets of one {@link ProxyConnection} to a {@link SpliceRelay} for a bulk transfer that nothing in the
 * JVM needs to see, and takes them back.
 *
 * <pre>
 *  a run of large reads; no data or event hook attached; nothing held, queued or ended
 *      ─▶ the channels stop reading ─▶ SpliceRelay moves the bytes in the kernel
 *  a module with a hook attaches; an end of stream; a read or a write through a channel (kept, in order)
 *      ─▶ the relay writes out its pipes ─▶ spliceDone: the channels carry the bytes again, what was kept goes first
 * </pre>
 *
 * <p>Threading: on the connection's event loop.
 */
final class SpliceHandoff {

    private static final System.Logger LOG = System.getLogger("interlayer.engine");

    private final ProxyConnection conn;
    private final Engine engine;
    private final ModuleChain<RealAttachment> mods;
    private final HoldBudget budget;
    /** The kernel path while it moves this connection's bytes, else null. */
    private SpliceRelay relay;
    /** Work that waits until the relay gives the sockets back, in order. */
    private List<Runnable> afterSplice;
    private boolean refused;
    /** Per direction, the bytes of the latest run of large reads: a long run (a bulk transfer) starts the relay. */
    private final long[] bulkRun = new long[2];

    SpliceHandoff(ProxyConnection conn, Engine engine, ModuleChain<RealAttachment> mods, HoldBudget budget) {
        this.conn = conn;
        this.engine = engine;
        this.mods = mods;
        this.budget = budget;
    }

    /** True while the relay has the sockets. */
    boolean running() {
        return relay != null;
    }

    /** The channel read {@code n} bytes from the source of {@code d}. */
    void read(int d, int n) {
        bulkRun[d] = n >= Engine.SPLICE_BULK_READ ? bulkRun[d] + n : 0;
    }

    /** A read batch from the source of {@code d} is over: a long enough run of large reads may start the relay. */
    void readComplete(int d) {
        if (bulkRun[d] >= Engine.SPLICE_AFTER) {
            maybeStart();
        }
    }

    /**
     * True while no attached module has a data or event hook and neither socket speaks TLS: then bytes may bypass the JVM
     * entirely (TLS bytes must go through the SslHandler).
     */
    boolean spliceable() {
        if (conn.spec().hasTls()) return false;
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
    private void maybeStart() {
        Channel localCh = conn.channel(Side.LOCAL);
        Channel remoteCh = conn.channel(Side.REMOTE);
        if (relay != null || refused || !engine.spliceAvailable() || conn.isClosed() || !conn.isConnected() || conn.hasEarly()
                || !conn.ends.streaming()
                || !budget.isEmpty() || budget.onTheWay(SEND) != 0 || budget.onTheWay(RECV) != 0 || !spliceable()
                || !(localCh instanceof EpollSocketChannel l) || !(remoteCh instanceof EpollSocketChannel r)
                || !idle(localCh) || !idle(remoteCh)) {
            return;
        }
        EngineEpoll.Registration lr = EngineEpoll.registrationOf(localCh);
        EngineEpoll.Registration rr = EngineEpoll.registrationOf(remoteCh);
        if (lr == null || rr == null) {
            refused = true;
            return;
        }
        bulkRun[SEND] = 0;
        bulkRun[RECV] = 0;
        localCh.config().setAutoRead(false);
        remoteCh.config().setAutoRead(false);
        try {
            relay = SpliceRelay.start(this, l.fd().intValue(), r.fd().intValue(), lr, rr, Engine.SPLICE_PIPE);
        } catch (IOException e) {
            refused = true;
            LOG.log(Level.DEBUG, "connection {0}: no splice ({1}); bytes go through the event loop", conn.id(), e.getMessage());
            conn.maybeRead(SEND);
            conn.maybeRead(RECV);
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
    void afterSplice(Runnable r) {
        if (afterSplice == null) afterSplice = new ArrayList<>();
        afterSplice.add(r);
        relay.drain();
    }

    /** A module with a data or event hook attached: its bytes go through it from now on. */
    void drain() {
        if (relay != null) relay.drain();
    }

    /** The relay moved {@code n} bytes of direction {@code d} into its pipe. */
    void spliced(int d, long n) {
        conn.countRead(d, n);
        engine.splicedBytes(n);
    }

    /** The relay wrote out its pipes and gave the sockets back: the channels carry the connection from here on. */
    void spliceDone() {
        relay = null;
        List<Runnable> q = afterSplice;
        afterSplice = null;
        // what the channels read meanwhile (after a FIN Netty reads to the end) enters the chain only while reading
        // may go on, as any read: paused is brought up to date first, so the rest is parked
        conn.maybeRead(SEND);
        conn.maybeRead(RECV);
        ProxyConnection.runQueued(q);
        conn.flush(SEND);
        conn.flush(RECV);
        conn.maybeRead(SEND);
        conn.maybeRead(RECV);
    }

    /** A splice failed with {@code errno}: reset, as a read ({@code reading}) or write error on that socket would. */
    void spliceFailed(int d, boolean reading, int errno) {
        boolean local = (d == SEND) == reading;
        conn.abort("peer reset by the " + (local ? "local application" : "network peer") + ": " + LinuxSplice.describe(errno));
    }

    /** Closing: the relay gives the sockets back at once; what its pipes held is dropped with the connection. */
    void end() {
        SpliceRelay r = relay;
        if (r == null) return;
        relay = null;
        if (r.pending() > 0) {
            LOG.log(Level.DEBUG, "connection {0}: {1} spliced bytes dropped by the close", conn.id(), r.pending());
        }
        r.release();
        List<Runnable> q = afterSplice;
        afterSplice = null;
        ProxyConnection.runQueued(q); // closed now: each releases its buffer
    }
}
