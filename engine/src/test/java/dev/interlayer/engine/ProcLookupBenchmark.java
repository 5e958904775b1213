package dev.interlayer.engine;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Arrays;
import java.util.Locale;

/**
 * What finding the process behind a new connection costs ({@link ProcLookup#find}, as an intercepted connection's
 * {@code app()} runs it): each round opens a new loopback connection from this JVM and looks its client socket up once,
 * timed, then closes it. Each round first times the socket owner's uid alone ({@link ProcLookup#uid}, what a selector
 * naming only {@code uid} costs). Not a test: run it with the engine's test class path and read the lines it prints.
 *
 * <pre>{@code
 * java -cp engine/target/test-classes:engine/target/classes:$(cat cp.txt) dev.interlayer.engine.ProcLookupBenchmark 3000
 * }</pre>
 */
public final class ProcLookupBenchmark {

    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 3000;
        long[] ns = new long[rounds];
        long[] uidNs = new long[rounds];
        int found = 0;
        int uids = 0;
        try (ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            for (int i = 0; i < rounds; i++) {
                try (Socket client = new Socket(server.getInetAddress(), server.getLocalPort()); Socket accepted = server.accept()) {
                    InetSocketAddress local = (InetSocketAddress) client.getLocalSocketAddress();
                    InetSocketAddress peer = (InetSocketAddress) client.getRemoteSocketAddress();
                    long t0 = System.nanoTime();
                    int uid = ProcLookup.uid(local, peer);
                    uidNs[i] = System.nanoTime() - t0;
                    if (uid >= 0) uids++;
                    t0 = System.nanoTime();
                    var app = ProcLookup.find(local, peer);
                    ns[i] = System.nanoTime() - t0;
                    if (app != null) found++;
                }
            }
        }
        long[] steady = steady(ns);
        double mean = Arrays.stream(steady).average().orElse(0) / 1000.0;
        long[] uidSteady = steady(uidNs);
        System.out.printf(Locale.ROOT, "socket owner's uid alone per new connection: %d rounds, found %d; steady state (last %d): mean %.1f us, p50 %.1f us,"
                + " p99 %.1f us%n", rounds, uids, uidSteady.length, Arrays.stream(uidSteady).average().orElse(0) / 1000.0,
                uidSteady[uidSteady.length / 2] / 1000.0, uidSteady[uidSteady.length * 99 / 100] / 1000.0);
        ProcLookup.Owners o = ProcLookup.OWNERS;
        long[] fds = {0};
        try (var s = java.nio.file.Files.list(java.nio.file.Path.of("/proc/self/fd"))) {
            fds[0] = s.count();
        }
        long tcp;
        try (var s = java.nio.file.Files.lines(java.nio.file.Path.of("/proc/net/tcp"))) {
            tcp = s.count() - 1;
        }
        System.out.printf(Locale.ROOT, "process lookup per new connection: %d rounds, found %d; steady state (last %d): mean %.1f us, p50 %.1f us,"
                        + " p99 %.1f us; cache: %d map hits, %d recent-owner hits (hit rate %.2f%%), %d new-process hits, %d full scans, %d misses;"
                        + " this process holds %d fds, /proc/net/tcp has %d sockets, /proc has %d processes%n",
                rounds, found, steady.length, mean, steady[steady.length / 2] / 1000.0, steady[steady.length * 99 / 100] / 1000.0,
                o.mapHits.sum(), o.recentHits.sum(), 100.0 * (o.mapHits.sum() + o.recentHits.sum()) / rounds, o.newProcessHits.sum(), o.fullScans.sum(), o.misses.sum(), fds[0], tcp,
                ProcessHandle.allProcesses().count());
    }

    /** The rounds past the cold cache and the JIT's first tenth, sorted. */
    private static long[] steady(long[] ns) {
        long[] steady = Arrays.copyOfRange(ns, ns.length / 10, ns.length);
        Arrays.sort(steady);
        return steady;
    }
}
