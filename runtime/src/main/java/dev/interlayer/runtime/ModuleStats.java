package dev.interlayer.runtime;

import dev.interlayer.api.Verdict;
import java.util.List;
import java.util.concurrent.atomic.LongAdder;

/**
 * A module's counters across all its connections.
 *
 * <p>The engine counts per attachment in plain fields on the event loop and adds them here when the
 * attachment ends; {@link LoadedModule#stats()} adds the live attachments' counters to these totals.
 */
public final class ModuleStats {

    final LongAdder attaches = new LongAdder();
    final LongAdder declines = new LongAdder();
    final LongAdder detaches = new LongAdder();
    final LongAdder faults = new LongAdder();
    private final LongAdder[] chunks = {new LongAdder(), new LongAdder()};
    private final LongAdder[] bytesIn = {new LongAdder(), new LongAdder()};
    private final LongAdder[] bytesOut = {new LongAdder(), new LongAdder()};
    private final LongAdder[] verdicts = new LongAdder[Verdict.Kind.values().length];
    private final LongAdder injected = new LongAdder();
    private final LongAdder[] hookTimes = new LongAdder[HookTimes.BUCKETS];
    private final LongAdder hookNanos = new LongAdder();

    ModuleStats() {
        for (int i = 0; i < verdicts.length; i++) {
            verdicts[i] = new LongAdder();
        }
        for (int i = 0; i < hookTimes.length; i++) {
            hookTimes[i] = new LongAdder();
        }
    }

    /**
     * Sets every counter back to zero: the agent's warm-up ran made-up connections through the module, and its
     * figures count users' traffic only. Call it when no attachment is live.
     */
    public void reset() {
        for (LongAdder a : new LongAdder[] {attaches, declines, detaches, faults, injected, hookNanos}) {
            a.reset();
        }
        for (LongAdder[] group : List.of(chunks, bytesIn, bytesOut, verdicts, hookTimes)) {
            for (LongAdder a : group) {
                a.reset();
            }
        }
    }

    /** Adds one finished attachment's timed data hook calls ({@link HookTimes} buckets) and their total nanoseconds. */
    public void addFinishedHookTimes(long[] buckets, long nanos) {
        for (int i = 0; i < hookTimes.length; i++) {
            hookTimes[i].add(buckets[i]);
        }
        hookNanos.add(nanos);
    }

    /** Adds one finished attachment's counters (index 0 = SEND, 1 = RECV). */
    public void addFinished(long[] chunksByDir, long[] bytesInByDir, long[] bytesOutByDir, long[] verdictCounts, long injectedBytes) {
        for (int d = 0; d < 2; d++) {
            chunks[d].add(chunksByDir[d]);
            bytesIn[d].add(bytesInByDir[d]);
            bytesOut[d].add(bytesOutByDir[d]);
        }
        for (int i = 0; i < verdicts.length; i++) {
            verdicts[i].add(verdictCounts[i]);
        }
        injected.add(injectedBytes);
    }

    Snapshot.Builder totals() {
        Snapshot.Builder b = new Snapshot.Builder();
        b.attaches = attaches.sum();
        b.declines = declines.sum();
        b.detaches = detaches.sum();
        b.faults = faults.sum();
        for (int d = 0; d < 2; d++) {
            b.chunks[d] = chunks[d].sum();
            b.bytesIn[d] = bytesIn[d].sum();
            b.bytesOut[d] = bytesOut[d].sum();
        }
        for (int i = 0; i < verdicts.length; i++) {
            b.verdicts[i] = verdicts[i].sum();
        }
        b.injected = injected.sum();
        for (int i = 0; i < hookTimes.length; i++) {
            b.hookTimes[i] = hookTimes[i].sum();
        }
        b.hookNanos = hookNanos.sum();
        return b;
    }

    /**
     * A point-in-time copy of the counters.
     *
     * @param attaches successful attaches
     * @param declines attaches the module declined
     * @param detaches detaches (equal to attaches once every connection ended)
     * @param live attachments right now
     * @param faults faults counted against the module
     * @param chunks chunks seen, [SEND, RECV]
     * @param bytesIn bytes handed to the module, [SEND, RECV]
     * @param bytesOut bytes it forwarded, [SEND, RECV]
     * @param verdicts verdicts returned, indexed by {@link Verdict.Kind#ordinal()}
     * @param injected bytes injected
     * @param hookTimes timed data hook calls per {@link HookTimes} bucket (one call in {@link HookTimes#SAMPLE} is timed)
     * @param hookNanos the timed calls' total time
     */
    public record Snapshot(long attaches, long declines, long detaches, long live, long faults, long[] chunks, long[] bytesIn,
                           long[] bytesOut, long[] verdicts, long injected, long[] hookTimes, long hookNanos) {

        /** The count of verdicts of {@code kind}. */
        public long verdicts(Verdict.Kind kind) {
            return verdicts[kind.ordinal()];
        }

        /** Accumulates counters. */
        public static final class Builder {
            long attaches;
            long declines;
            long detaches;
            long live;
            long faults;
            final long[] chunks = new long[2];
            final long[] bytesIn = new long[2];
            final long[] bytesOut = new long[2];
            final long[] verdicts = new long[Verdict.Kind.values().length];
            long injected;
            final long[] hookTimes = new long[HookTimes.BUCKETS];
            long hookNanos;

            /** Adds a live attachment's timed data hook calls, as {@link ModuleStats#addFinishedHookTimes}. */
            public void addLiveHookTimes(long[] buckets, long nanos) {
                for (int i = 0; i < hookTimes.length; i++) {
                    hookTimes[i] += buckets[i];
                }
                hookNanos += nanos;
            }

            /** Adds a live attachment's counters (index 0 = SEND, 1 = RECV). */
            public void addLive(long[] chunksByDir, long[] bytesInByDir, long[] bytesOutByDir, long[] verdictCounts, long injectedBytes) {
                live++;
                for (int d = 0; d < 2; d++) {
                    chunks[d] += chunksByDir[d];
                    bytesIn[d] += bytesInByDir[d];
                    bytesOut[d] += bytesOutByDir[d];
                }
                for (int i = 0; i < verdicts.length; i++) {
                    verdicts[i] += verdictCounts[i];
                }
                injected += injectedBytes;
            }

            Snapshot build() {
                return new Snapshot(attaches, declines, detaches, live, faults, chunks, bytesIn, bytesOut, verdicts, injected, hookTimes, hookNanos);
            }
        }
    }
}
