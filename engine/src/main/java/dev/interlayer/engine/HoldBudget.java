package dev.interlayer.engine;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What one connection's modules keep, against its hold limit, and what pauses its reading.
 *
 * <ul>
 *   <li><b>held</b>: bytes modules hold with {@code HOLD} plus bytes buffered for {@code NEED_MORE}; never above the
 *       limit ({@link #reserve} refuses);
 *   <li><b>held by modules</b>: the {@code HOLD} part;
 *   <li>per direction, output <b>on its way</b> from one module to the next (an inject, or what a module passed while
 *       its injects waited): how many (the end of stream waits for them) and how many bytes.
 * </ul>
 *
 * <p>Reading pauses while the bytes held by modules plus the bytes on their way reach {@link #high} (a quarter of the
 * limit, at least 64 KiB) and may resume under {@link #low} (half of it): bytes moving from one module's hold to the
 * next still count, so a chain of modules that hold stays near a quarter of the limit. {@code NEED_MORE} buffers do not
 * pause reading (they need more bytes to make progress); the limit caps them.
 *
 * <p>Threading: any thread (modules release and inject from their own threads); the decisions the counts feed are
 * taken on the connection's loop.
 */
final class HoldBudget {

    final long limit;
    final long high;
    final long low;
    private final AtomicLong held = new AtomicLong();
    private final AtomicLong byModules = new AtomicLong();
    private final AtomicInteger[] onTheWay = {new AtomicInteger(), new AtomicInteger()};
    private final AtomicLong[] onTheWayBytes = {new AtomicLong(), new AtomicLong()};

    HoldBudget(long limit) {
        this(limit, Math.max(64 * 1024, limit / 4));
    }

    /** A budget that pauses reading at {@code high} held bytes instead of the default (the testkit sets it). */
    HoldBudget(long limit, long high) {
        this.limit = limit;
        this.high = high;
        this.low = high / 2;
    }

    /** Counts {@code n} more held bytes; false, counting nothing, if that would pass the limit. */
    boolean reserve(long n) {
        if (held.addAndGet(n) > limit) {
            held.addAndGet(-n);
            return false;
        }
        return true;
    }

    /** {@code n} held bytes left (injected, released, or a {@code NEED_MORE} buffer handed on). */
    void unreserve(long n) {
        held.addAndGet(-n);
    }

    /** {@code n} of the reserved bytes are a module's {@code HOLD}; returns the bytes held by modules now. */
    long hold(long n) {
        return byModules.addAndGet(n);
    }

    /** {@code n} bytes left a module's {@code HOLD} (then {@link #unreserve} them). */
    void unhold(long n) {
        byModules.addAndGet(-n);
    }

    /** Bytes held or buffered (HOLD and NEED_MORE) against the limit. */
    long reserved() {
        return held.get();
    }

    /** True if nothing is held or buffered. */
    boolean isEmpty() {
        return held.get() == 0;
    }

    /** Bytes held by modules plus bytes on their way between modules: what pauses reading. */
    long buffered() {
        return byModules.get() + onTheWayBytes[0].get() + onTheWayBytes[1].get();
    }

    /** Output of direction {@code d} starts on its way: {@code bytes} of it (0 while held bytes move into an inject). */
    void leaving(int d, long bytes) {
        onTheWay[d].incrementAndGet();
        onTheWayBytes[d].addAndGet(bytes);
    }

    /** What {@link #leaving} counted has arrived at the next module (or was dropped by a close). */
    void arrived(int d, long bytes) {
        onTheWay[d].decrementAndGet();
        onTheWayBytes[d].addAndGet(-bytes);
    }

    /** How many outputs of direction {@code d} are on their way. */
    int onTheWay(int d) {
        return onTheWay[d].get();
    }

    /** Bytes of direction {@code d} on their way. */
    long onTheWayBytes(int d) {
        return onTheWayBytes[d].get();
    }
}
