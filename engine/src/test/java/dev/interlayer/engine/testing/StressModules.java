package dev.interlayer.engine.testing;

import dev.interlayer.api.Attach;
import dev.interlayer.api.AttachMode;
import dev.interlayer.api.Attachment;
import dev.interlayer.api.ByteView;
import dev.interlayer.api.Cancellable;
import dev.interlayer.api.Direction;
import dev.interlayer.api.HeldBytes;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.StreamContext;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.Verdict;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * Modules for {@link StressDriver} runs: each keeps or changes bytes in a way that must leave the stream exactly as
 * it was (alone or, for the XOR pair, together), using every verdict path that keeps bytes.
 */
public final class StressModules {

    private StressModules() {}

    private static ModuleDescriptor describe(String name, int priority, boolean programmatic) {
        return ModuleDescriptor.builder(name, "1.0.0").implement(InterfaceType.STREAM, 1, 2).priority(priority)
                .attachMode(programmatic ? AttachMode.PROGRAMMATIC : AttachMode.GLOBAL).build();
    }

    /** A stress module's descriptor: stream 1.2, a priority, global or programmatic. */
    private abstract static class Described<S> implements StreamModule<S> {
        private final ModuleDescriptor descriptor;

        Described(String name, int priority, boolean programmatic) {
            this.descriptor = describe(name, priority, programmatic);
        }

        @Override
        public final ModuleDescriptor descriptor() {
            return descriptor;
        }
    }

    /**
     * Holds chunks at random (always while older ones wait, so its own output stays in order) and injects them after
     * 0–3 ms, from a timer on the connection's loop or, a third of the time, from a thread of its own.
     */
    public static final class Delay extends Described<Delay.State> {
        private static final ScheduledExecutorService FOREIGN = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "stress-delay-foreign");
            t.setDaemon(true);
            return t;
        });

        public Delay(int priority, boolean programmatic) {
            super("delay", priority, programmatic);
        }

        /** Per connection: a FIFO per direction; locked, as releases come from two threads. */
        public static final class State {
            final Attachment a;
            final ArrayDeque<HeldBytes>[] q;
            final boolean[] armed = new boolean[2];

            @SuppressWarnings("unchecked")
            State(Attachment a) {
                this.a = a;
                this.q = new ArrayDeque[] {new ArrayDeque<>(), new ArrayDeque<>()};
            }
        }


        @Override
        public Attach<State> attach(Attachment attachment) {
            return Attach.with(new State(attachment));
        }

        @Override
        public Verdict onSend(State s, StreamContext ctx, ByteView data) {
            return hold(s, Direction.SEND, ctx);
        }

        @Override
        public Verdict onRecv(State s, StreamContext ctx, ByteView data) {
            return hold(s, Direction.RECV, ctx);
        }

        private Verdict hold(State s, Direction dir, StreamContext ctx) {
            synchronized (s) {
                ArrayDeque<HeldBytes> q = s.q[dir.ordinal()];
                if (q.isEmpty() && ThreadLocalRandom.current().nextInt(4) == 0) {
                    return Verdict.PASS;
                }
                q.add(ctx.hold());
                arm(s, dir);
                return Verdict.HOLD;
            }
        }

        private void arm(State s, Direction dir) {
            if (s.armed[dir.ordinal()] || s.q[dir.ordinal()].isEmpty()) return;
            s.armed[dir.ordinal()] = true;
            long micros = ThreadLocalRandom.current().nextLong(3000);
            if (ThreadLocalRandom.current().nextInt(3) == 0) {
                FOREIGN.schedule(() -> release(s, dir), micros, TimeUnit.MICROSECONDS);
            } else {
                s.a.schedule(Duration.ofNanos(micros * 1000), () -> release(s, dir));
            }
        }

        private void release(State s, Direction dir) {
            synchronized (s) {
                s.armed[dir.ordinal()] = false;
                ArrayDeque<HeldBytes> q = s.q[dir.ordinal()];
                int n = 1 + ThreadLocalRandom.current().nextInt(4);
                while (n-- > 0 && !q.isEmpty()) {
                    HeldBytes h = q.poll();
                    if (!s.a.inject(dir, h)) {
                        q.clear(); // detached or closed: the engine took care of what was still held
                        return;
                    }
                }
                arm(s, dir);
            }
        }
    }

    /** A token bucket that delays, like the sample ratelimit module: passes when it can, else holds in order. */
    public static final class Bucket extends Described<Bucket.State> {
        private final double rate;
        private final double burst;

        public Bucket(int priority, boolean programmatic, double rate, double burst) {
            super("bucket", priority, programmatic);
            this.rate = rate;
            this.burst = burst;
        }

        /** Per connection and direction: tokens, a queue, one timer. */
        public static final class State {
            final Attachment a;
            final double[] tokens = new double[2];
            final long[] last = new long[2];
            @SuppressWarnings("unchecked")
            final ArrayDeque<HeldBytes>[] q = new ArrayDeque[] {new ArrayDeque<>(), new ArrayDeque<>()};
            final Cancellable[] timer = new Cancellable[2];

            State(Attachment a) {
                this.a = a;
            }
        }


        @Override
        public Attach<State> attach(Attachment attachment) {
            State s = new State(attachment);
            s.tokens[0] = s.tokens[1] = burst;
            s.last[0] = s.last[1] = System.nanoTime();
            return Attach.with(s);
        }

        @Override
        public Verdict onSend(State s, StreamContext ctx, ByteView data) {
            return limit(s, 0, ctx, data.length());
        }

        @Override
        public Verdict onRecv(State s, StreamContext ctx, ByteView data) {
            return limit(s, 1, ctx, data.length());
        }

        private Verdict limit(State s, int d, StreamContext ctx, int len) {
            if (s.q[d].isEmpty()) {
                refill(s, d);
                if (s.tokens[d] >= Math.min(len, burst)) {
                    s.tokens[d] -= len;
                    return Verdict.PASS;
                }
            }
            s.q[d].add(ctx.hold());
            arm(s, d);
            return Verdict.HOLD;
        }

        private void refill(State s, int d) {
            long now = System.nanoTime();
            s.tokens[d] = Math.min(burst, s.tokens[d] + (now - s.last[d]) * rate / 1e9);
            s.last[d] = now;
        }

        private void arm(State s, int d) {
            if (s.timer[d] != null || s.q[d].isEmpty()) return;
            refill(s, d);
            double need = Math.min(s.q[d].peek().length(), burst) - s.tokens[d];
            long nanos = Math.max(1L, (long) Math.ceil(need * 1e9 / rate));
            s.timer[d] = s.a.schedule(Duration.ofNanos(nanos), () -> release(s, d));
        }

        private void release(State s, int d) {
            s.timer[d] = null;
            refill(s, d);
            while (!s.q[d].isEmpty() && s.tokens[d] >= Math.min(s.q[d].peek().length(), burst)) {
                HeldBytes h = s.q[d].poll();
                s.tokens[d] -= h.length();
                if (!s.a.inject(d == 0 ? Direction.SEND : Direction.RECV, h)) {
                    s.q[d].clear();
                    return;
                }
            }
            arm(s, d);
        }
    }

    /** Asks for more bytes at random ({@code NEED_MORE}) before passing them on; its {@code onEnd} passes the rest. */
    public static final class Gather extends Described<int[]> {

        public Gather(int priority, boolean programmatic) {
            super("gather", priority, programmatic);
        }


        @Override
        public Attach<int[]> attach(Attachment attachment) {
            return Attach.with(new int[2]);
        }

        @Override
        public Verdict onSend(int[] want, StreamContext ctx, ByteView data) {
            return gather(want, 0, data.length());
        }

        @Override
        public Verdict onRecv(int[] want, StreamContext ctx, ByteView data) {
            return gather(want, 1, data.length());
        }

        private static Verdict gather(int[] want, int d, int len) {
            if (want[d] == 0 && ThreadLocalRandom.current().nextInt(3) == 0) {
                want[d] = len + 1 + ThreadLocalRandom.current().nextInt(48 * 1024);
            }
            if (want[d] > len) {
                return Verdict.needMore(want[d]);
            }
            want[d] = 0;
            return Verdict.PASS;
        }

        @Override
        public Verdict onEnd(int[] want, StreamContext ctx, ByteView rest) {
            return Verdict.PASS;
        }
    }

    /** Rewrites every byte in place (XOR with a key); two of them with the same key undo each other. */
    public static final class Xor extends Described<Void> {

        public Xor(String name, int priority) {
            super(name, priority, false);
        }


        @Override
        public Verdict onSend(Void s, StreamContext ctx, ByteView data) {
            return xor(ctx);
        }

        @Override
        public Verdict onRecv(Void s, StreamContext ctx, ByteView data) {
            return xor(ctx);
        }

        private static Verdict xor(StreamContext ctx) {
            MemorySegment m = ctx.rewrite();
            for (long i = 0; i < m.byteSize(); i++) {
                m.set(ValueLayout.JAVA_BYTE, i, (byte) (m.get(ValueLayout.JAVA_BYTE, i) ^ 0x5A));
            }
            return Verdict.PASS;
        }
    }

    /** Replaces chunks at random with an identical copy written through {@code ctx.replace()}. */
    public static final class Copy extends Described<Void> {

        public Copy(int priority, boolean programmatic) {
            super("copy", priority, programmatic);
        }


        @Override
        public Verdict onSend(Void s, StreamContext ctx, ByteView data) {
            return copy(ctx, data);
        }

        @Override
        public Verdict onRecv(Void s, StreamContext ctx, ByteView data) {
            return copy(ctx, data);
        }

        private static Verdict copy(StreamContext ctx, ByteView data) {
            if (ThreadLocalRandom.current().nextBoolean()) {
                ctx.replace().write(data);
            }
            return Verdict.PASS;
        }
    }
}
