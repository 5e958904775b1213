package dev.interlayer.engine;

import dev.interlayer.runtime.HookTimes;

/**
 * Times one data hook call in {@link HookTimes#SAMPLE} of one attachment into its buckets: on the attachment's event loop
 * only, plain fields (read by a scrape off the loop, where a count may be a call behind). An untimed call costs an
 * increment and two branches.
 */
final class HookClock {

    private static final int MASK = HookTimes.SAMPLE - 1;

    final long[] buckets = new long[HookTimes.BUCKETS];
    long sumNanos;
    private int calls;
    private long started;

    /** Right before a data hook call. */
    void start() {
        if ((++calls & MASK) == 0) started = System.nanoTime();
    }

    /** Right after it returned or threw. */
    void stop() {
        if (started != 0) {
            long n = System.nanoTime() - started;
            started = 0;
            buckets[HookTimes.bucket(n)]++;
            sumNanos += n;
        }
    }
}
