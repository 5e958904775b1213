package dev.interlayer.runtime;

/**
 * The buckets of a module's data hook call times. The engine times one call in {@link #SAMPLE} of each attachment (two
 * clock reads cost more than a plain PASS), counts it in the bucket of its duration and adds it to a sum; the counts are
 * per bucket, not cumulative.
 */
public final class HookTimes {

    /** One data hook call in this many is timed, per attachment (a power of two). */
    public static final int SAMPLE = 64;

    /** Upper bounds of the buckets, in nanoseconds: 1 µs to 1 s; a last bucket takes what is longer. */
    public static final long[] BOUNDS_NANOS = {1_000, 5_000, 10_000, 50_000, 100_000, 500_000, 1_000_000, 5_000_000, 10_000_000,
            50_000_000, 100_000_000, 500_000_000, 1_000_000_000};

    /** Buckets, with the last one for calls longer than every bound. */
    public static final int BUCKETS = BOUNDS_NANOS.length + 1;

    private HookTimes() {}

    /** The bucket of a call that took {@code nanos}. */
    public static int bucket(long nanos) {
        int i = 0;
        while (i < BOUNDS_NANOS.length && nanos > BOUNDS_NANOS[i]) i++;
        return i;
    }
}
