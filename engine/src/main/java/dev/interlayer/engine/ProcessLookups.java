package dev.interlayer.engine;

import java.util.concurrent.atomic.LongAdder;

/**
 * How the engine learned who is behind local applications' sockets since the agent started, for metrics: each way counted
 * once per lookup made that way (a whole lookup also counts its socket query). Any thread counts and reads.
 */
public final class ProcessLookups {

    /** The socket owner's uid from an intercepted connection's mark (one getsockopt). */
    static final LongAdder BY_MARK = new LongAdder();
    /**
     * Lookups the eBPF map of who connected each TCP socket answered ({@link BpfSocketOwners}: one bpf(2) call), a uid alone
     * or a whole process; their socket table is not queried.
     */
    static final LongAdder BY_BPF = new LongAdder();
    /** Lookups the eBPF map did not have (connected before it was attached, another network namespace, pushed out): they go on to the socket table. */
    static final LongAdder BPF_MISSES = new LongAdder();
    /** Queries of the kernel's socket table (sock_diag; /proc/net for UDP): a uid alone, or the first step of a whole lookup. */
    static final LongAdder BY_SOCKET = new LongAdder();
    /** The whole process (the socket, then its owner process through the cache of /proc/PID/fd). */
    static final LongAdder BY_PROCESS = new LongAdder();

    private ProcessLookups() {}

    /**
     * A point-in-time copy.
     *
     * @param byMark uids read from intercepted connections' socket marks
     * @param bySocket queries of the kernel's socket table (a netlink sock_diag query, or /proc/net for UDP), for a uid alone or
     *                 as the first step of a whole lookup
     * @param byProcess whole lookups: the socket, then the process holding it (pid, command, executable)
     * @param cacheHits whole lookups whose process the cache named without listing /proc
     * @param byBpf lookups the eBPF map of who connected each TCP socket answered (a uid alone or a whole process), without a
     *              socket table query
     * @param bpfMisses lookups the eBPF map did not have, answered (or not) by the socket table
     */
    public record Snapshot(long byMark, long bySocket, long byProcess, long cacheHits, long byBpf, long bpfMisses) {}

    public static Snapshot snapshot() {
        ProcLookup.Owners o = ProcLookup.OWNERS;
        return new Snapshot(BY_MARK.sum(), BY_SOCKET.sum(), BY_PROCESS.sum(), o.mapHits.sum() + o.recentHits.sum(), BY_BPF.sum(),
                BPF_MISSES.sum());
    }
}
