package dev.interlayer.modules.holdrelease;

import dev.interlayer.api.Attach;
import dev.interlayer.api.Attachment;
import dev.interlayer.api.ByteView;
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
import java.util.List;

/**
 * Holds every chunk for {@code delay} and then injects it again, order kept: the smallest module that exercises
 * {@link Verdict#HOLD}, {@link StreamContext#hold()}, timers and {@link Attachment#inject(Direction, HeldBytes)}.
 *
 * <p>Useful on its own to simulate a slow path (added latency without loss). Each direction has a FIFO of held
 * chunks with their release times and at most one timer, set for the head of the queue; as the delay is the
 * same for every chunk, the FIFO is also in release order.
 *
 * <pre>{@code
 * modules:
 *   - name: hold-release
 *     params: { delay: 100ms, direction: send }
 * }</pre>
 */
public final class HoldReleaseModule implements StreamModule<HoldReleaseModule.State> {

    /** A held chunk and when it goes. */
    record Pending(HeldBytes held, long releaseAt) {}

    /** Per-connection state; used only on the connection's event loop (hooks and its timers). */
    static final class State {
        final Attachment attachment;
        final List<ArrayDeque<Pending>> queues = List.of(new ArrayDeque<>(), new ArrayDeque<>());
        final boolean[] timerSet = new boolean[2];

        State(Attachment attachment) {
            this.attachment = attachment;
        }
    }

    private ModuleEnv env;
    private long delayNanos;
    private boolean holdSend;
    private boolean holdRecv;

    @Override
    public ModuleDescriptor descriptor() {
        return ModuleDescriptor.builder("hold-release", "1.0.0")
                .description("holds each chunk for a delay, then re-injects it in order (exercises HOLD and inject)")
                .implement(InterfaceType.STREAM, 1, 1)
                .param(Param.ofDuration("delay", Duration.ofMillis(100), "how long each chunk is held"))
                .param(Param.ofString("direction", "send", "which direction to delay: send, recv or both"))
                .build();
    }

    @Override
    public void init(ModuleEnv env) {
        this.env = env;
        this.delayNanos = env.params().getDuration("delay").toNanos();
        String d = env.params().getString("direction");
        switch (d) {
            case "send" -> holdSend = true;
            case "recv" -> holdRecv = true;
            case "both" -> {
                holdSend = true;
                holdRecv = true;
            }
            default -> throw new IllegalArgumentException("direction must be send, recv or both, not '" + d + "'");
        }
    }

    @Override
    public Attach<State> attach(Attachment attachment) {
        return Attach.with(new State(attachment));
    }

    @Override
    public Verdict onSend(State s, StreamContext ctx, ByteView data) {
        return holdSend ? hold(s, Direction.SEND, ctx) : Verdict.PASS;
    }

    @Override
    public Verdict onRecv(State s, StreamContext ctx, ByteView data) {
        return holdRecv ? hold(s, Direction.RECV, ctx) : Verdict.PASS;
    }

    private Verdict hold(State s, Direction d, StreamContext ctx) {
        s.queues.get(d.ordinal()).add(new Pending(ctx.hold(), env.nanoTime() + delayNanos));
        arm(s, d);
        return Verdict.HOLD;
    }

    private void arm(State s, Direction d) {
        ArrayDeque<Pending> q = s.queues.get(d.ordinal());
        if (s.timerSet[d.ordinal()] || q.isEmpty()) {
            return;
        }
        s.timerSet[d.ordinal()] = true;
        long wait = Math.max(0L, q.peek().releaseAt() - env.nanoTime());
        s.attachment.schedule(Duration.ofNanos(wait), () -> release(s, d));
    }

    /** Timer: injects every chunk whose time has come, oldest first, then sets the timer for the next one. */
    private void release(State s, Direction d) {
        s.timerSet[d.ordinal()] = false;
        ArrayDeque<Pending> q = s.queues.get(d.ordinal());
        long now = env.nanoTime();
        while (!q.isEmpty() && q.peek().releaseAt() <= now) {
            s.attachment.inject(d, q.poll().held());
        }
        arm(s, d);
    }
}
