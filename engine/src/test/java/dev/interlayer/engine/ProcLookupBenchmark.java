package dev.interlayer.engine;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;

/**
 * What learning who is behind a new connection costs, each way the engine has, split where the time goes. Each round opens
 * a new loopback connection from this JVM (real sockets, through {@link LinuxSockets}) and times, on its sockets:
 * <ol>
 *   <li>{@code mark}: the uid from the accepted socket's mark, as an intercepted connection's uid selector reads it
 *       ({@link Intercepted#socketUid}: one getsockopt). The round first sets the mark the interception table would have
 *       given the SYN ({@code 0x80000000 | uid}; needs CAP_NET_ADMIN).</li>
 *   <li>{@code netlink}: one netlink round trip on a sock_diag socket that the kernel rejects at once (an unknown message
 *       type): the send, the receive and the foreign calls, without the kernel's socket lookup.</li>
 *   <li>{@code socket}: the socket owner's uid by a sock_diag query ({@link ProcLookup#uid}): the round trip plus the
 *       kernel's lookup of the socket by its 4-tuple.</li>
 *   <li>{@code process}: the whole lookup without the eBPF map ({@link ProcLookup#find}: the query, then the process
 *       through the cache of /proc/PID/fd, then its command and executable).</li>
 *   <li>{@code bpf-map}: who connected the socket from the eBPF map alone ({@link BpfSocketOwners#lookup}: one bpf(2)
 *       call), with the programs attached before the rounds start (needs CAP_BPF and cgroup2; else the bpf ways are
 *       skipped, saying why).</li>
 *   <li>{@code bpf}: the whole lookup through the map ({@link ProcLookup#find} with the map attached: the map, then the
 *       command and executable from the per-process cache).</li>
 * </ol>
 * With the programs attached it then times what they add to the application's {@code connect()}: the call with them
 * and without, in alternating blocks.
 * Not a test: run it with the engine's test class path and read the lines it prints.
 *
 * <pre>{@code
 * java --enable-native-access=ALL-UNNAMED -cp engine/target/test-classes:engine/target/classes:$(cat cp.txt) \
 *     dev.interlayer.engine.ProcLookupBenchmark 20000
 * }</pre>
 */
public final class ProcLookupBenchmark {

    private static final int NETLINK_SOCK_DIAG = 4;
    /** A message type sock_diag does not know: the kernel answers with an error at once. */
    private static final int UNKNOWN_TYPE = 30;
    private static final String[] WAYS = {"mark", "netlink", "socket", "process", "bpf-map", "bpf"};

    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 20000;
        LinuxSockets sys = new LinuxSockets();
        int uid = (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid");
        InetSocketAddress loopback = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
        int listener = sys.socket(loopback);
        check(sys.bind(listener, loopback), "bind");
        check(sys.listen(listener, 64), "listen");
        InetSocketAddress server = sys.localAddress(listener);
        Netlink netlink = new Netlink(NETLINK_SOCK_DIAG);
        MemorySegment req = Arena.ofAuto().allocate(16, 8);
        MemorySegment resp = Arena.ofAuto().allocate(8192, 8);
        Netlink.header(req, 16, UNKNOWN_TYPE, Netlink.NLM_F_REQUEST);
        BpfSocketOwners owners = BpfSocketOwners.attach(); // null: logged why, and the bpf ways are skipped
        ProcLookup.bpf = null; // the first ways are timed without the map
        long[][] ns = new long[WAYS.length][rounds];
        int[] found = new int[WAYS.length];
        for (int i = 0; i < rounds; i++) {
            int client = sys.socket(server);
            int r = sys.connect(client, server);
            if (r != 0 && r != -LinuxSockets.EINPROGRESS) check(r, "connect");
            int accepted;
            while ((accepted = sys.accept(listener)) == -LinuxSockets.EAGAIN) Thread.onSpinWait();
            check(accepted, "accept");
            check(sys.setInt(accepted, LinuxSockets.SOL_SOCKET, LinuxSockets.SO_MARK, (int) (Intercepted.UID_MARK | uid)), "setsockopt(SO_MARK)");
            InetSocketAddress local = sys.localAddress(client);

            long t0 = System.nanoTime();
            int marked = Intercepted.uidOf(sys.getUnsigned(accepted, LinuxSockets.SOL_SOCKET, LinuxSockets.SO_MARK));
            ns[0][i] = System.nanoTime() - t0;
            if (marked == uid) found[0]++;

            t0 = System.nanoTime();
            long answer = netlink.exchange(req, 16, resp);
            ns[1][i] = System.nanoTime() - t0;
            if (answer > 0) found[1]++;

            t0 = System.nanoTime();
            int owner = ProcLookup.uid(local, server);
            ns[2][i] = System.nanoTime() - t0;
            if (owner == uid) found[2]++;

            t0 = System.nanoTime();
            var app = ProcLookup.find(local, server);
            ns[3][i] = System.nanoTime() - t0;
            if (app != null && app.tgid() == ProcessHandle.current().pid()) found[3]++;

            if (owners != null) {
                t0 = System.nanoTime();
                long connected = owners.lookup(local, server);
                ns[4][i] = System.nanoTime() - t0;
                if (connected >>> 32 == ProcessHandle.current().pid()) found[4]++;

                ProcLookup.bpf = owners;
                t0 = System.nanoTime();
                app = ProcLookup.find(local, server);
                ns[5][i] = System.nanoTime() - t0;
                ProcLookup.bpf = null;
                if (app != null && app.tgid() == ProcessHandle.current().pid()) found[5]++;
            }

            sys.close(client);
            sys.close(accepted);
        }
        long[][] connects = owners == null ? null : connectCost(sys, listener, server, rounds);
        sys.close(listener);
        System.out.printf(Locale.ROOT, "%d rounds, one new loopback connection each; steady state (the last %d, past the cold cache and the JIT's"
                + " first tenth):%n", rounds, rounds - rounds / 10);
        for (int w = 0; w < WAYS.length; w++) {
            if (w >= 4 && owners == null) {
                System.out.printf(Locale.ROOT, "  %-8s skipped: the eBPF programs cannot be used here (the log says why)%n", WAYS[w]);
                continue;
            }
            long[] s = steady(ns[w]);
            // on a loaded machine the mean is the scheduler's: a few rounds preempted for milliseconds outweigh the rest
            System.out.printf(Locale.ROOT, "  %-8s answered %d: median %.2f us, mean %.2f us (%.2f us without the slowest 0.1%%), p99 %.2f us,"
                            + " p99.9 %.2f us, max %.2f ms%n", WAYS[w], found[w], s[s.length / 2] / 1000.0,
                    Arrays.stream(s).average().orElse(0) / 1000.0, Arrays.stream(s, 0, s.length * 999 / 1000).average().orElse(0) / 1000.0,
                    s[s.length * 99 / 100] / 1000.0, s[s.length * 999 / 1000] / 1000.0, s[s.length - 1] / 1e6);
        }
        if (connects != null) {
            for (int k = 0; k < 2; k++) {
                long[] c = connects[k];
                Arrays.sort(c);
                System.out.printf(Locale.ROOT, "  connect() %s the programs attached: median %.2f us, mean %.2f us (%.2f us without the slowest 0.1%%),"
                                + " p99 %.2f us%n", k == 0 ? "with" : "without", c[c.length / 2] / 1000.0, Arrays.stream(c).average().orElse(0) / 1000.0,
                        Arrays.stream(c, 0, c.length * 999 / 1000).average().orElse(0) / 1000.0, c[c.length * 99 / 100] / 1000.0);
            }
        }
        if (owners != null) {
            ProcessLookups.Snapshot l = ProcessLookups.snapshot();
            System.out.printf(Locale.ROOT, "eBPF map: %d lookups answered, %d misses (hit rate %.2f%%); its maps take %d KiB of kernel"
                    + " memory%n", l.byBpf(), l.bpfMisses(), 100.0 * l.byBpf() / Math.max(1, l.byBpf() + l.bpfMisses()), owners.memory / 1024);
            owners.close();
        }
        ProcLookup.Owners o = ProcLookup.OWNERS;
        long fds;
        try (var s = Files.list(Path.of("/proc/self/fd"))) {
            fds = s.count();
        }
        System.out.printf(Locale.ROOT, "process cache: %d map hits, %d recent-owner hits (hit rate %.2f%%), %d new-process hits, %d full scans,"
                        + " %d misses; this process holds %d fds, /proc has %d processes%n", o.mapHits.sum(), o.recentHits.sum(),
                100.0 * (o.mapHits.sum() + o.recentHits.sum()) / rounds, o.newProcessHits.sum(), o.fullScans.sum(), o.misses.sum(), fds,
                ProcessHandle.allProcesses().count());
    }

    /**
     * What the programs add to an application's {@code connect()} (every TCP connect on the host pays it): the call timed
     * with the programs attached and without, in alternating blocks of a twentieth of {@code rounds} each (attached again
     * for each block: the same noise falls on both). {with, without}, nanoseconds per call.
     */
    private static long[][] connectCost(LinuxSockets sys, int listener, InetSocketAddress server, int rounds) {
        int block = Math.max(1, rounds / 20);
        long[][] ns = new long[2][20 * block];
        for (int b = 0; b < 20; b++) {
            BpfSocketOwners attached = BpfSocketOwners.attach();
            for (int k = 0; k < 2; k++) {
                for (int i = 0; i < block; i++) {
                    int client = sys.socket(server);
                    long t0 = System.nanoTime();
                    int r = sys.connect(client, server);
                    ns[k][b * block + i] = System.nanoTime() - t0;
                    if (r != 0 && r != -LinuxSockets.EINPROGRESS) check(r, "connect");
                    int accepted;
                    while ((accepted = sys.accept(listener)) == -LinuxSockets.EAGAIN) Thread.onSpinWait();
                    check(accepted, "accept");
                    sys.close(client);
                    sys.close(accepted);
                }
                if (k == 0) attached.close();
            }
        }
        return ns;
    }

    private static void check(long r, String call) {
        if (r < 0) throw new IllegalStateException(call + " failed: errno " + -r);
    }

    /** The rounds past the cold cache and the JIT's first tenth, sorted. */
    private static long[] steady(long[] ns) {
        long[] steady = Arrays.copyOfRange(ns, ns.length / 10, ns.length);
        Arrays.sort(steady);
        return steady;
    }
}
