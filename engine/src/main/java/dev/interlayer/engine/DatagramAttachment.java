package dev.interlayer.engine;

import dev.interlayer.api.Attachment;
import dev.interlayer.api.Cancellable;
import dev.interlayer.api.ConnectionInfo;
import dev.interlayer.api.DatagramModule;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.HeldBytes;
import dev.interlayer.api.Module;
import dev.interlayer.api.Output;
import dev.interlayer.api.SocketModule;
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
 * One module on one UDP flow: the module's {@link Attachment} handle and the runtime's {@link AttachmentSite},
 * with the per-flow state, the reusable call objects and counters ("chunks" count datagrams).
 *
 * <p>Threading as for {@link RealAttachment}: everything but the "any thread" methods runs on the flow's event
 * loop; counters are plain fields written there and read racily for statistics.
 */
final class DatagramAttachment extends ChainLink implements Attachment, RealHeldBytes.Owner<DatagramAttachment> {

    final DatagramFlow flow;
    final DatagramModule<Object> datagram;
    final ChunkView view;
    final RealDatagramContext ctx;

    final long[] chunks = new long[2];
    final long[] bytesIn = new long[2];
    final long[] bytesOut = new long[2];
    final long[] verdicts = new long[Verdict.Kind.values().length];
    final AtomicLong injected = new AtomicLong();
    final HookClock clock = new HookClock();

    private final Set<RealHeldBytes<DatagramAttachment>> helds = ConcurrentHashMap.newKeySet();
    private final Set<RealOutput> outputs = ConcurrentHashMap.newKeySet();
    private final Set<Future<?>> timers = ConcurrentHashMap.newKeySet();

    @SuppressWarnings("unchecked")
    DatagramAttachment(DatagramFlow flow, LoadedModule lm) {
        super(lm, flow.trace());
        this.flow = flow;
        this.datagram = module instanceof DatagramModule<?> d ? (DatagramModule<Object>) d : null;
        this.view = new ChunkView(name, this);
        this.ctx = new RealDatagramContext(this, new RealOutput(flow.alloc(), name, flow.holdLimit(), this));
    }

    /** True if this module's datagram hook for direction {@code d} (0 = SEND, 1 = RECV) is to be called now. */
    boolean wants(int d) {
        return !detached && (hooks & (d == 0 ? Hooks.DATAGRAM_SEND : Hooks.DATAGRAM_RECV)) != 0 && lm.state().customizes();
    }

    // ---- Attachment -----------------------------------------------------------------------------

    @Override
    public ConnectionInfo connection() {
        return flow;
    }

    @Override
    public String moduleName() {
        return name;
    }

    @Override
    public boolean inject(Direction direction, byte[] bytes, long tag) {
        if (detached || flow.isClosed()) {
            return false;
        }
        ByteBuf b = flow.alloc().buffer(bytes.length).writeBytes(bytes);
        return flow.inject(this, direction, b, tag);
    }

    @Override
    public boolean inject(Direction direction, HeldBytes held) {
        if (!(held instanceof RealHeldBytes<?> any) || !(any.owner() instanceof DatagramAttachment o) || o.flow != flow) {
            throw new IllegalArgumentException("module " + name + " injected HeldBytes that do not belong to this flow");
        }
        ByteBuf b = any.take();
        if (detached || flow.isClosed()) {
            if (b != null) b.release();
            return false;
        }
        if (b == null) {
            throw new IllegalStateException("module " + name + " injected HeldBytes that were already injected or released");
        }
        return flow.inject(this, direction, b, 0L);
    }

    @Override
    public boolean inject(Direction direction, Output output) {
        if (!(output instanceof RealOutput o) || !outputs.remove(o)) {
            throw new IllegalArgumentException("module " + name + " injected an Output that was not allocated by this attachment"
                    + " or was already injected or discarded");
        }
        ByteBuf b = o.take();
        if (detached || flow.isClosed()) {
            b.release();
            return false;
        }
        return flow.inject(this, direction, b, 0L);
    }

    @Override
    public Output allocate(int sizeHint) {
        RealOutput o = new RealOutput(flow.alloc(), name, flow.holdLimit(), this);
        o.open(sizeHint);
        if (!detached) {
            outputs.add(o);
        }
        return o;
    }

    @Override
    public Cancellable schedule(Duration delay, Runnable task) {
        if (detached || flow.isClosed()) {
            return () -> false;
        }
        if (timers.size() >= TIMER_LIMIT) {
            throw new IllegalStateException(tooManyTimers());
        }
        Future<?>[] self = new Future<?>[1];
        Future<?> f = flow.loop().schedule(() -> {
            timers.remove(self[0]);
            if (!detached && !flow.isClosed()) {
                flow.runTimer(this, task);
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
        return !detached && flow.isWritable(direction);
    }

    @Override
    public long heldBytes() {
        long n = 0;
        for (RealHeldBytes<DatagramAttachment> h : helds) {
            n += h.length();
        }
        return n;
    }

    @Override
    public void close() {
        if (!detached) {
            flow.loop().execute(() -> flow.close("closed by module " + name)); // never inside the module's own call
        }
    }

    @Override
    public void abort(String reason) {
        if (!detached) {
            flow.loop().execute(() -> flow.close("aborted by module " + name + ": " + reason));
        }
    }

    @Override
    public boolean isAttached() {
        return !detached;
    }

    // ---- AttachmentSite -------------------------------------------------------------------------

    @Override
    public long connectionId() {
        return flow.id();
    }

    @Override
    public void requestDetach(DetachReason reason) {
        flow.execute(() -> flow.detach(this, reason));
    }

    @Override
    public void addLiveCounters(ModuleStats.Snapshot.Builder into) {
        into.addLive(chunks.clone(), bytesIn.clone(), bytesOut.clone(), verdicts.clone(), injected.get());
        into.addLiveHookTimes(clock.buckets.clone(), clock.sumNanos);
    }

    // ---- engine side ----------------------------------------------------------------------------

    /**
     * Copies the call's datagram into an exact-size buffer for the module (read buffers are sized for the largest
     * datagram, so keeping them would pin far more memory than the hold limit counts).
     */
    RealHeldBytes<DatagramAttachment> hold(ByteBuf input) {
        int len = input.readableBytes();
        if (!flow.holdAdd(this, len)) {
            throw new IllegalStateException(flow.holdOverflow(this));
        }
        ByteBuf copy = flow.alloc().buffer(len, len);
        copy.writeBytes(input, input.readerIndex(), len);
        RealHeldBytes<DatagramAttachment> h = new RealHeldBytes<>(copy, this);
        helds.add(h);
        return h;
    }

    @Override
    public void heldGone(RealHeldBytes<DatagramAttachment> h, int len) {
        helds.remove(h);
        flow.holdSub(len);
    }

    @Override
    void releaseAll() {
        for (Future<?> f : timers) {
            f.cancel(false);
        }
        timers.clear();
        for (RealHeldBytes<DatagramAttachment> h : helds) {
            h.release();
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
        return lm.id() + " on flow " + flow.id();
    }

    /** Timers of this attachment that have not fired or been cancelled. */
    int pendingTimers() {
        return timers.size();
    }
}
