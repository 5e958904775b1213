package dev.interlayer.engine;

import dev.interlayer.api.Attachment;
import dev.interlayer.api.Cancellable;
import dev.interlayer.api.ConnectionInfo;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.HeldBytes;
import dev.interlayer.api.Module;
import dev.interlayer.api.Output;
import dev.interlayer.api.SocketModule;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.Verdict;
import dev.interlayer.runtime.AttachmentSite;
import dev.interlayer.runtime.Hooks;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleStats;
import io.netty.buffer.ByteBuf;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One module on one connection: the module's {@link Attachment} handle and the runtime's
 * {@link AttachmentSite}, with the per-connection state, reusable call objects and counters.
 *
 * <p>Threading: everything but the "any thread" methods of {@link Attachment} and
 * {@link #requestDetach} runs on the connection's event loop. Counters are plain fields written there;
 * other threads read them racily for statistics only.
 */
final class RealAttachment extends ChainLink implements Attachment, RealHeldBytes.Owner<RealAttachment> {

    final ProxyConnection conn;
    final StreamModule<Object> stream;
    final ChunkView view;
    final RealStreamContext ctx;

    /** Bytes buffered for this module by NEED_MORE, per direction, and the totals it asked for. */
    final ByteBuf[] pending = new ByteBuf[2];
    final int[] need = new int[2];

    final long[] chunks = new long[2];
    final long[] bytesIn = new long[2];
    final long[] bytesOut = new long[2];
    final long[] verdicts = new long[Verdict.Kind.values().length];
    final AtomicLong injected = new AtomicLong();
    final HookClock clock = new HookClock();

    /**
     * Per direction, what this module took with HOLD and has neither injected nor released, in the order it took it
     * (guarded by itself): on a detach of an open connection the engine passes these on in that order.
     */
    @SuppressWarnings("unchecked")
    private final java.util.LinkedHashSet<RealHeldBytes<RealAttachment>>[] helds =
            new java.util.LinkedHashSet[] {new java.util.LinkedHashSet<>(), new java.util.LinkedHashSet<>()};
    /**
     * Taking held bytes and queueing them is one step under this lock, for a module's inject (any thread) and for the
     * engine passing them on at detach (loop): so the two never reorder held chunks, nor drop one between them.
     */
    final Object holdLock = new Object();
    /** Per direction, the bytes in {@link #helds}. */
    private final AtomicLong[] heldIn = {new AtomicLong(), new AtomicLong()};
    /**
     * Per direction, what this module emitted (injects, and chunks it passed while injects were queued) that has not
     * yet gone on to the next module: while above zero, whatever this module passes next queues behind it, so the
     * module's output keeps the order in which it emitted it. Incremented when emitted (any thread), decremented on
     * the loop when the bytes go on.
     */
    final java.util.concurrent.atomic.AtomicInteger[] queued = {new java.util.concurrent.atomic.AtomicInteger(),
            new java.util.concurrent.atomic.AtomicInteger()};
    /** Bit d set: the end of direction d has passed this module; an inject in that direction is refused. */
    volatile int endPassed;
    private final Set<RealOutput> outputs = ConcurrentHashMap.newKeySet();
    private final Set<Future<?>> timers = ConcurrentHashMap.newKeySet();

    @SuppressWarnings("unchecked")
    RealAttachment(ProxyConnection conn, LoadedModule lm) {
        super(lm, conn.trace());
        this.conn = conn;
        this.stream = module instanceof StreamModule<?> s ? (StreamModule<Object>) s : null;
        this.view = new ChunkView(name, this);
        this.ctx = new RealStreamContext(this, new RealOutput(conn.alloc(), name, conn.holdLimit(), this));
    }

    private static final int PASS = Verdict.Kind.PASS.ordinal();

    /** Counts a data call and lends the chunk to the module's view and context. */
    void before(int d, ByteBuf in, int len, Direction dir, String injectedBy, long tag) {
        chunks[d]++;
        bytesIn[d] += len;
        view.lend(in, d == 0 ? "onSend" : "onRecv");
        ctx.begin(dir, injectedBy, tag);
        clock.start();
    }

    /** Ends the call: the view and the context can no longer be used. */
    void after() {
        clock.stop();
        view.invalidate();
        ctx.end();
    }

    /** Counts a plain PASS of {@code len} bytes. */
    void passed(int d, int len) {
        verdicts[PASS]++;
        bytesOut[d] += len;
    }

    /** True if this module's data hook for direction {@code d} (0 = SEND, 1 = RECV) is to be called now. */
    boolean wants(int d) {
        return !detached && (hooks & (d == 0 ? Hooks.SEND : Hooks.RECV)) != 0 && lm.state().customizes();
    }

    // ---- Attachment -----------------------------------------------------------------------------

    @Override
    public ConnectionInfo connection() {
        return conn;
    }

    @Override
    public String moduleName() {
        return name;
    }

    @Override
    public boolean inject(Direction direction, byte[] bytes, long tag) {
        if (detached || conn.isClosed()) {
            return false;
        }
        ByteBuf b = conn.alloc().buffer(bytes.length).writeBytes(bytes);
        return conn.inject(this, direction, b, tag);
    }

    @Override
    public boolean inject(Direction direction, HeldBytes held) {
        if (!(held instanceof RealHeldBytes<?> any) || !(any.owner() instanceof RealAttachment o) || o.conn != conn) {
            throw new IllegalArgumentException("module " + name + " injected HeldBytes that do not belong to this connection");
        }
        // Hold back the end of stream, and this module's later output, while the bytes move from the hold into the
        // inject queue.
        int d = direction.ordinal();
        queued[d].incrementAndGet();
        conn.injectStarting(direction);
        try {
            synchronized (holdLock) {
                ByteBuf b = any.take();
                if (b == null) {
                    if (detached || conn.isClosed()) {
                        return false; // the engine passed them on at detach (or released them at close): a no-op, as documented
                    }
                    throw new IllegalStateException("module " + name + " injected HeldBytes that were already injected or released");
                }
                if (conn.isClosed()) {
                    b.release();
                    return false;
                }
                // taken before a concurrent detach could pass them on: they go on now, in their place, attached or not
                return conn.injectHeld(this, direction, b) && !detached;
            }
        } finally {
            queued[d].decrementAndGet();
            conn.injectDone(direction);
        }
    }

    @Override
    public boolean inject(Direction direction, Output output) {
        if (!(output instanceof RealOutput o) || !outputs.remove(o)) {
            throw new IllegalArgumentException("module " + name + " injected an Output that was not allocated by this attachment"
                    + " or was already injected or discarded");
        }
        ByteBuf b = o.take();
        if (detached || conn.isClosed()) {
            b.release();
            return false;
        }
        return conn.inject(this, direction, b, 0L);
    }

    @Override
    public Output allocate(int sizeHint) {
        RealOutput o = new RealOutput(conn.alloc(), name, conn.holdLimit(), this);
        o.open(sizeHint);
        if (!detached) {
            outputs.add(o);
        }
        return o;
    }

    @Override
    public Cancellable schedule(Duration delay, Runnable task) {
        if (detached || conn.isClosed()) {
            return () -> false;
        }
        if (timers.size() >= TIMER_LIMIT) {
            throw new IllegalStateException(tooManyTimers());
        }
        Future<?>[] self = new Future<?>[1];
        Future<?> f = conn.loop().schedule(() -> {
            timers.remove(self[0]);
            if (!detached && !conn.isClosed()) {
                conn.runTimer(this, task);
            }
        }, Math.max(0, delay.toNanos()), TimeUnit.NANOSECONDS);
        self[0] = f;
        timers.add(f);
        if (detached) {
            f.cancel(false);
        }
        return () -> {
            timers.remove(f);
            return f.cancel(false);
        };
    }

    @Override
    public boolean isWritable(Direction direction) {
        return !detached && conn.isWritable(direction);
    }

    @Override
    public long heldBytes() {
        long n = heldIn[0].get() + heldIn[1].get();
        ByteBuf p0 = pending[0];
        ByteBuf p1 = pending[1];
        return n + (p0 == null ? 0 : p0.readableBytes()) + (p1 == null ? 0 : p1.readableBytes());
    }

    @Override
    public void close() {
        if (!detached) {
            conn.execute(() -> conn.closeGracefully("closed by module " + name));
        }
    }

    @Override
    public void abort(String reason) {
        if (!detached) {
            conn.execute(() -> conn.abort("aborted by module " + name + ": " + reason));
        }
    }

    @Override
    public boolean isAttached() {
        return !detached;
    }

    // ---- AttachmentSite -------------------------------------------------------------------------

    @Override
    public long connectionId() {
        return conn.id();
    }

    @Override
    public void requestDetach(DetachReason reason) {
        conn.execute(() -> conn.detach(this, reason));
    }

    @Override
    public void addLiveCounters(ModuleStats.Snapshot.Builder into) {
        into.addLive(chunks.clone(), bytesIn.clone(), bytesOut.clone(), verdicts.clone(), injected.get());
        into.addLiveHookTimes(clock.buckets.clone(), clock.sumNanos);
    }

    // ---- engine side ----------------------------------------------------------------------------

    /** Takes a retained reference to the call's input for the module, counted against the hold limit. */
    RealHeldBytes<RealAttachment> hold(ByteBuf input, Direction d) {
        int len = input.readableBytes();
        if (!conn.holdAdd(this, len)) {
            throw new IllegalStateException(conn.holdOverflow(this));
        }
        RealHeldBytes<RealAttachment> h = new RealHeldBytes<>(input.retainedDuplicate(), this);
        int i = d.ordinal();
        synchronized (helds[i]) {
            helds[i].add(h);
        }
        heldIn[i].addAndGet(len);
        return h;
    }

    /** Held bytes left the module (injected or released). */
    @Override
    public void heldGone(RealHeldBytes<RealAttachment> h, int len) {
        for (int i = 0; i < 2; i++) {
            boolean mine;
            synchronized (helds[i]) {
                mine = helds[i].remove(h);
            }
            if (mine) {
                heldIn[i].addAndGet(-len);
                break;
            }
        }
        conn.holdSub(len);
    }

    /** Bytes this module holds (HOLD) in direction {@code d}, not counting a NEED_MORE buffer. */
    long heldIn(int d) {
        return heldIn[d].get();
    }

    /** Takes the oldest bytes this module still holds in direction {@code d} (owned by the caller), or null if none. */
    ByteBuf takeOldestHeld(int d) {
        while (true) {
            RealHeldBytes<RealAttachment> h;
            synchronized (helds[d]) {
                var it = helds[d].iterator();
                if (!it.hasNext()) return null;
                h = it.next();
            }
            ByteBuf b = h.take(); // null if the module injected or released it meanwhile
            if (b != null) return b;
        }
    }

    /** True if the end of direction {@code d} has passed this module. */
    boolean endPassed(int d) {
        return (endPassed & (1 << d)) != 0;
    }

    @Override
    void releaseAll() {
        for (Future<?> f : timers) {
            f.cancel(false);
        }
        timers.clear();
        for (int d = 0; d < 2; d++) {
            ByteBuf p = pending[d];
            if (p != null) {
                pending[d] = null;
                conn.heldSub(p.readableBytes());
                p.release();
            }
        }
        for (int d = 0; d < 2; d++) {
            ByteBuf b;
            while ((b = takeOldestHeld(d)) != null) {
                b.release();
            }
        }
        for (RealOutput o : outputs) {
            outputs.remove(o);
            o.closeAndRelease();
        }
        ctx.dropReplacement();
    }

    @Override
    void flushCounters() {
        lm.totals().addFinished(chunks, bytesIn, bytesOut, verdicts, injected.get());
        lm.totals().addFinishedHookTimes(clock.buckets, clock.sumNanos);
    }

    @Override
    public String toString() {
        return lm.id() + " on connection " + conn.id();
    }

    /** Timers of this attachment that have not fired or been cancelled. */
    int pendingTimers() {
        return timers.size();
    }
}
