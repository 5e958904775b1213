package dev.interlayer.modules.ratelimit;

import dev.interlayer.api.Attach;
import dev.interlayer.api.Attachment;
import dev.interlayer.api.ByteView;
import dev.interlayer.api.Cancellable;
import dev.interlayer.api.Direction;
import dev.interlayer.api.HeldBytes;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.ModuleEnv;
import dev.interlayer.api.Param;
import dev.interlayer.api.StreamContext;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.Verdict;
import java.time.Duration;
import java.util.ArrayDeque;

/**
 * Limits each connection to {@code rate} bytes per second per direction by delaying data, never dropping it: a
 * token bucket of depth {@code burst}.
 *
 * <p>A chunk that finds enough tokens passes at once, without a copy. Otherwise the module takes it with
 * {@link StreamContext#hold()} and a timer injects it when enough tokens have accrued; while anything is
 * queued, later chunks queue behind it, so order is kept. A chunk larger than the burst needs only a full
 * bucket and leaves it in debt, so the long-run rate holds for any chunk size.
 *
 * <p>Memory stays bounded without the module doing anything: held bytes count against the connection's hold
 * limit, and the engine stops reading the sender while they exceed its high-water mark, so a fast sender is
 * slowed down by TCP flow control rather than buffered here.
 *
 * <pre>{@code
 * modules:
 *   - name: ratelimit
 *     params: { rate: 1MiB, burst: 64KiB, direction: both }
 * }</pre>
 */
public final class RateLimitModule implements StreamModule<RateLimitModule.State> {

    /** One direction's bucket and queue; used only on the connection's event loop (hooks and its timers). */
    static final class Bucket {
        final Direction direction;
        final ArrayDeque<HeldBytes> queue = new ArrayDeque<>();
        double tokens;
        long last;
        Cancellable timer;

        Bucket(Direction direction, double tokens, long now) {
            this.direction = direction;
            this.tokens = tokens;
            this.last = now;
        }
    }

    /** Per-connection state: the attachment (to inject and set timers) and a bucket per limited direction. */
    static final class State {
        final Attachment attachment;
        final Bucket send;
        final Bucket recv;

        State(Attachment attachment, Bucket send, Bucket recv) {
            this.attachment = attachment;
            this.send = send;
            this.recv = recv;
        }
    }

    private ModuleEnv env;
    private double rate;
    private double burst;
    private boolean limitSend;
    private boolean limitRecv;

    @Override
    public ModuleDescriptor descriptor() {
        return ModuleDescriptor.builder("ratelimit", "1.0.0")
                .description("limits bytes per second per connection by delaying, never dropping (token bucket)")
                .implement(InterfaceType.STREAM, 1, 1)
                .priority(200)
                .param(Param.ofSize("rate", 1L << 20, "bytes per second per connection and direction"))
                .param(Param.ofSize("burst", 64L << 10, "bucket depth: bytes that may pass at once after idling"))
                .param(Param.ofString("direction", "both", "which direction to limit: send, recv or both"))
                .build();
    }

    @Override
    public void init(ModuleEnv env) {
        this.env = env;
        this.rate = env.params().getSize("rate");
        this.burst = env.params().getSize("burst");
        if (rate < 1 || burst < 1) {
            throw new IllegalArgumentException("rate and burst must be at least 1 byte");
        }
        String d = env.params().getString("direction");
        switch (d) {
            case "send" -> limitSend = true;
            case "recv" -> limitRecv = true;
            case "both" -> {
                limitSend = true;
                limitRecv = true;
            }
            default -> throw new IllegalArgumentException("direction must be send, recv or both, not '" + d + "'");
        }
    }

    @Override
    public Attach<State> attach(Attachment attachment) {
        long now = env.nanoTime();
        return Attach.with(new State(attachment,
                limitSend ? new Bucket(Direction.SEND, burst, now) : null,
                limitRecv ? new Bucket(Direction.RECV, burst, now) : null));
    }

    @Override
    public Verdict onSend(State s, StreamContext ctx, ByteView data) {
        return limit(s, s.send, ctx, data);
    }

    @Override
    public Verdict onRecv(State s, StreamContext ctx, ByteView data) {
        return limit(s, s.recv, ctx, data);
    }

    private Verdict limit(State s, Bucket b, StreamContext ctx, ByteView data) {
        if (b == null) {
            return Verdict.PASS;
        }
        int len = data.length();
        if (b.queue.isEmpty()) {
            refill(b);
            if (b.tokens >= Math.min(len, burst)) {
                b.tokens -= len;
                return Verdict.PASS;
            }
        }
        b.queue.add(ctx.hold());
        arm(s, b);
        return Verdict.HOLD;
    }

    private void refill(Bucket b) {
        long now = env.nanoTime();
        b.tokens = Math.min(burst, b.tokens + (now - b.last) * rate / 1e9);
        b.last = now;
    }

    /** Sets the one timer of this bucket to fire when the head of the queue can go. */
    private void arm(State s, Bucket b) {
        if (b.timer != null || b.queue.isEmpty()) {
            return;
        }
        refill(b);
        double need = Math.min(b.queue.peek().length(), burst) - b.tokens;
        long nanos = Math.max(1L, (long) Math.ceil(need * 1e9 / rate));
        b.timer = s.attachment.schedule(Duration.ofNanos(nanos), () -> release(s, b));
    }

    /** Timer: injects every queued chunk the bucket now covers, in order, then re-arms for the rest. */
    private void release(State s, Bucket b) {
        b.timer = null;
        refill(b);
        while (!b.queue.isEmpty() && b.tokens >= Math.min(b.queue.peek().length(), burst)) {
            HeldBytes h = b.queue.poll();
            b.tokens -= h.length();
            s.attachment.inject(b.direction, h);
        }
        arm(s, b);
    }
}
