package dev.interlayer.bench.reliability;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Many concurrent connections with a slow-reader mix through one agent: a few fast connections (bulk streams and
 * 1 KiB request/response pairs) are measured alone, then again while thousands of slow connections are open, each
 * with a server that writes a backlog at once and then 1 KiB a second, and a client that reads 1 KiB a second. The
 * agent must keep its memory bounded (it reads from a server only as fast as the client takes the bytes) and the
 * fast connections must not stall.
 *
 * <p>Every connection is two sockets in this process (client and server) and two in the agent, so with a limit of
 * N open files per process about N/2 connections fit.
 */
final class SlowMix implements AutoCloseable {

    private static final byte SLOW = 'S';
    private static final byte BULK = 'B';
    private static final byte ECHO = 'E';

    /** One measured phase. */
    record Phase(String name, double seconds, long bulkBytes, long slowestBulkBytes, List<Long> rttNanos,
                 AgentProcess.Memory memory, double agentCpu, long kernelTcpBytes) {
        String line(int bulk) {
            List<Long> s = new ArrayList<>(rttNanos);
            Collections.sort(s);
            return ("%s: bulk %.1f MB/s over %d streams (slowest stream %.1f MB/s), %,d request/response pairs: "
                    + "p50 %.2f ms, p99 %.2f ms, max %.2f ms; agent CPU %.0f %%, RSS %s, heap %s, direct %s; "
                    + "the kernel's TCP buffers %s").formatted(name,
                    bulkBytes / seconds / 1e6, bulk, slowestBulkBytes / seconds / 1e6, s.size(), pct(s, 0.50),
                    pct(s, 0.99), s.isEmpty() ? 0 : s.getLast() / 1e6, agentCpu / seconds * 100, MemoryWatch.mib(memory.rss()),
                    MemoryWatch.mib(memory.heap()), MemoryWatch.mib(memory.direct()), MemoryWatch.mib(kernelTcpBytes));
        }

        private static double pct(List<Long> sorted, double p) {
            return sorted.isEmpty() ? 0 : sorted.get((int) Math.min(sorted.size() - 1, sorted.size() * p)) / 1e6;
        }
    }

    private final InetAddress loopback = InetAddress.getLoopbackAddress();
    private final ServerSocket server;
    private final Thread acceptor;
    private final List<Socket> sockets = Collections.synchronizedList(new ArrayList<>());
    private final AtomicBoolean stop = new AtomicBoolean();
    private final List<AtomicLong> bulkRead = Collections.synchronizedList(new ArrayList<>());
    private volatile List<Long> rtts = Collections.synchronizedList(new ArrayList<>());
    final AtomicLong slowOpen = new AtomicLong();
    final AtomicLong slowBytes = new AtomicLong();
    final AtomicLong errors = new AtomicLong();
    private final List<String> problems = Collections.synchronizedList(new ArrayList<>());

    /** Bytes a slow connection's server writes at once before it writes 1 KiB a second (at most 1 MiB). */
    private final int slowBacklog;

    SlowMix(int slowBacklog) throws IOException {
        this.slowBacklog = Math.min(slowBacklog, 1 << 20);
        server = new ServerSocket(0, 16384, loopback);
        acceptor = Thread.ofPlatform().daemon().name("slowmix-accept").start(this::acceptLoop);
    }

    int serverPort() {
        return server.getLocalPort();
    }

    List<String> problems() {
        return List.copyOf(problems.subList(0, Math.min(20, problems.size())));
    }

    private void problem(String what) {
        errors.incrementAndGet();
        if (problems.size() < 20) {
            problems.add(what);
        }
    }

    private void acceptLoop() {
        byte[] block = new byte[1 << 20];
        while (!server.isClosed()) {
            try {
                Socket s = server.accept();
                sockets.add(s);
                Thread.ofVirtual().start(() -> serve(s, block));
            } catch (IOException e) {
                if (!server.isClosed()) {
                    problem("accept failed: " + e);
                }
            }
        }
    }

    private void serve(Socket s, byte[] block) {
        try {
            InputStream in = s.getInputStream();
            OutputStream out = s.getOutputStream();
            int kind = in.read();
            if (kind == SLOW) {
                out.write(block, 0, slowBacklog);
                while (!stop.get()) {
                    out.write(block, 0, 1024);
                    Thread.sleep(1000);
                }
            } else if (kind == BULK) {
                AtomicLong counter = new AtomicLong();
                bulkRead.add(counter);
                byte[] buf = new byte[64 << 10];
                int n;
                while ((n = in.read(buf)) > 0) {
                    counter.addAndGet(n);
                }
            } else if (kind == ECHO) {
                byte[] buf = new byte[1024];
                while (!stop.get()) {
                    in.readNBytes(buf, 0, buf.length);
                    out.write(buf);
                }
            }
        } catch (IOException | InterruptedException e) {
            if (!stop.get()) {
                problem("server end: " + e);
            }
        }
    }

    private Socket connect(int port, byte kind) throws IOException {
        Socket s = new Socket(loopback, port);
        sockets.add(s);
        s.getOutputStream().write(kind);
        return s;
    }

    /** Opens {@code bulk} bulk streams and {@code echo} request/response connections through {@code port}. */
    void startFast(int port, int bulk, int echo) throws IOException {
        for (int i = 0; i < bulk; i++) {
            Socket s = connect(port, BULK);
            Thread.ofVirtual().start(() -> {
                byte[] buf = new byte[64 << 10];
                try {
                    OutputStream out = s.getOutputStream();
                    while (!stop.get()) {
                        out.write(buf);
                    }
                } catch (IOException e) {
                    if (!stop.get()) {
                        problem("bulk client: " + e);
                    }
                }
            });
        }
        for (int i = 0; i < echo; i++) {
            Socket s = connect(port, ECHO);
            Thread.ofVirtual().start(() -> {
                byte[] buf = new byte[1024];
                try {
                    OutputStream out = s.getOutputStream();
                    InputStream in = s.getInputStream();
                    while (!stop.get()) {
                        long t = System.nanoTime();
                        out.write(buf);
                        if (in.readNBytes(buf, 0, buf.length) < buf.length) {
                            throw new IOException("echo ended early");
                        }
                        rtts.add(System.nanoTime() - t);
                    }
                } catch (IOException e) {
                    if (!stop.get()) {
                        problem("echo client: " + e);
                    }
                }
            });
        }
    }

    /** Opens {@code n} slow connections through {@code port}: each reads 1 KiB a second of what its server sends. */
    void openSlow(int port, int n) {
        for (int i = 0; i < n; i++) {
            try {
                Socket s = connect(port, SLOW);
                slowOpen.incrementAndGet();
                Thread.ofVirtual().start(() -> {
                    byte[] buf = new byte[1024];
                    try {
                        InputStream in = s.getInputStream();
                        while (!stop.get()) {
                            int got = in.read(buf);
                            if (got < 0) {
                                throw new IOException("slow connection ended early");
                            }
                            slowBytes.addAndGet(got);
                            Thread.sleep(1000);
                        }
                    } catch (IOException | InterruptedException e) {
                        if (!stop.get()) {
                            problem("slow client: " + e);
                        }
                    }
                });
            } catch (IOException e) {
                problem("slow connection " + i + " not opened: " + e);
                return;
            }
        }
    }

    /** Measures the fast connections for {@code millis}; the agent's memory at the end. */
    Phase measure(String name, long millis, AgentProcess agent) throws IOException, InterruptedException {
        long[] before = bulkRead.stream().mapToLong(AtomicLong::get).toArray();
        rtts = Collections.synchronizedList(new ArrayList<>());
        long t0 = System.nanoTime();
        double cpu0 = agent.cpuSeconds();
        Thread.sleep(millis);
        double cpu = agent.cpuSeconds() - cpu0;
        List<Long> phaseRtts = rtts;
        rtts = Collections.synchronizedList(new ArrayList<>());
        double seconds = (System.nanoTime() - t0) / 1e9;
        long total = 0;
        long slowest = Long.MAX_VALUE;
        for (int i = 0; i < before.length; i++) {
            long d = bulkRead.get(i).get() - before[i];
            total += d;
            slowest = Math.min(slowest, d);
        }
        synchronized (phaseRtts) {
            return new Phase(name, seconds, total, before.length == 0 ? 0 : slowest, List.copyOf(phaseRtts),
                    agent.memory(), cpu, kernelTcpBytes());
        }
    }

    /** Memory the kernel's TCP sockets hold now, every process's (/proc/net/sockstat, "TCP: … mem PAGES"). */
    static long kernelTcpBytes() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/net/sockstat"))) {
            if (line.startsWith("TCP:")) {
                String[] f = line.split("\\s+");
                for (int i = 0; i < f.length - 1; i++) {
                    if (f[i].equals("mem")) {
                        return Long.parseLong(f[i + 1]) * 4096;
                    }
                }
            }
        }
        return 0;
    }

    /** A fast connection stalled: a bulk stream moved less than 1 MiB in the phase, or a round trip took 5 s or more. */
    static boolean stalled(Phase p) {
        return p.slowestBulkBytes() < (1 << 20) || p.rttNanos().isEmpty()
                || p.rttNanos().stream().anyMatch(n -> n >= 5_000_000_000L);
    }

    /**
     * What a run found; ok when every connection opened and stayed open, no fast one stalled beside the slow ones, and
     * the agent neither exited nor leaked.
     */
    record Result(List<String> lines, boolean ok) {}

    /**
     * Runs the figure: one agent, the fast connections alone, then beside {@code slow} slow ones (through the agent, or
     * straight to the server with {@code slowDirect}: what the same slow connections do to the host without the agent).
     */
    static Result run(Path interlayerJar, Path work, int slow, int slowBacklog, boolean slowDirect,
                            int bulk, int echo, long measureMillis, PrintStream progress) throws Exception {
        List<String> lines = new ArrayList<>();
        boolean ok;
        try (SlowMix mix = new SlowMix(slowBacklog);
             AgentProcess agent = AgentProcess.start(interlayerJar, work.resolve("agent"), "mix", "client",
                     mix.serverPort(), List.of(), "")) {
            mix.startFast(agent.port, bulk, echo);
            Thread.sleep(2000);
            Phase alone = mix.measure("fast connections alone", measureMillis, agent);
            progress.println(alone.line(bulk));
            long t0 = System.nanoTime();
            mix.openSlow(slowDirect ? mix.serverPort() : agent.port, slow);
            double openSeconds = (System.nanoTime() - t0) / 1e9;
            progress.printf("%,d slow connections opened in %.1f s (%d errors)%n", mix.slowOpen.get(), openSeconds,
                    mix.errors.get());
            Thread.sleep(5000);
            Phase beside = mix.measure("beside %,d slow connections%s".formatted(mix.slowOpen.get(),
                    slowDirect ? " not through the agent" : ""), measureMillis, agent);
            progress.println(beside.line(bulk));
            lines.add(alone.line(bulk));
            lines.add(beside.line(bulk));
            lines.add("%,d slow connections opened in %.1f s, %s read by their clients; agent's open connections: %s, errors: %d"
                    .formatted(mix.slowOpen.get(), openSeconds, MemoryWatch.mib(mix.slowBytes.get()),
                            agent.openConnections(), mix.errors.get()));
            mix.problems().forEach(p -> lines.add("problem: " + p));
            long leaks = agent.leakReports();
            lines.add("agent alive: " + agent.alive() + ", leak reports in its log: " + leaks);
            ok = mix.errors.get() == 0 && mix.slowOpen.get() == slow && agent.alive() && leaks == 0
                    && !stalled(beside);
        }
        return new Result(lines, ok);
    }

    @Override
    public void close() throws IOException, InterruptedException {
        stop.set(true);
        server.close();
        synchronized (sockets) {
            for (Socket s : sockets) {
                s.close();
            }
        }
        acceptor.join(5000);
    }
}
