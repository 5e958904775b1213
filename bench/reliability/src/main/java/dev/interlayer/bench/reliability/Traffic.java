package dev.interlayer.bench.reliability;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The load: {@code connections} concurrent workers, each opening one connection after another to an entry port, and
 * the sink/source server those connections reach (through the agents) in the same process.
 *
 * <p>Each connection follows a {@link Plan} drawn from the seed: how many bytes go each way (log-uniform up to
 * {@code maxStream}), written in random sizes (log-uniform, 1 B to 256 KiB, from random offsets of a random block),
 * whether the client or the server reads slowly (sleeps after each read of at most 16 KiB), and whether the client or
 * the server resets it (SO_LINGER 0) after a random number of bytes. The client's first 8 bytes name the plan; after
 * them both ends keep a running SHA-256 of what they write and what they read. A connection without a planned reset
 * must deliver exactly what was written, both ways: same length, same hash. A reset connection is not checked, but
 * must end on both ends. A connection where no byte moved, either way at either end, for {@code timeout} is stalled: a
 * failure, as is any error on a connection not reset on purpose.
 */
public final class Traffic implements AutoCloseable {

    /** Who resets a connection, if anyone. */
    enum Reset { NONE, CLIENT, SERVER }

    /** What one connection does. */
    record Plan(long id, long up, long down, boolean clientSlow, boolean serverSlow, Reset reset, long resetAt, long seed) {}

    /**
     * The load's shape: concurrent connections, the volume to check (bytes, both directions), the longest stream one
     * way, the shares of connections with a slow reader and reset on purpose, the seed, and how long any read may wait.
     */
    public record Settings(int connections, long volume, long maxStream, double slowShare, double resetShare, long seed,
                    long timeoutMillis) {}

    /** What one end saw: bytes and hash of what it wrote and of what it read. */
    private record End(long wrote, String wroteHash, long read, String readHash) {}

    static final int MAX_WRITE = 256 << 10;
    private static final int BLOCK = 1 << 20;
    private static final int SLOW_READ = 16 << 10;

    private final Settings settings;
    private final InetAddress loopback = InetAddress.getLoopbackAddress();
    private final ServerSocket server;
    private final byte[] block = new byte[BLOCK + MAX_WRITE];
    /** A connection under way: its plan, its server end's result, and the bytes either end moved so far. */
    private record Conn(Plan plan, CompletableFuture<End> serverEnd, AtomicLong moved, int[] ports) {}

    private final Map<Long, Conn> conns = new ConcurrentHashMap<>();
    private final Set<Long> serving = ConcurrentHashMap.newKeySet();
    private final AtomicLong nextId = new AtomicLong();
    private final AtomicBoolean stop = new AtomicBoolean();
    private final List<Thread> workers = new ArrayList<>();
    private final Thread acceptor;

    final AtomicLong checkedBytes = new AtomicLong();
    final AtomicLong resetBytes = new AtomicLong();
    final AtomicLong checked = new AtomicLong();
    final AtomicLong resets = new AtomicLong();
    final AtomicLong slow = new AtomicLong();
    final AtomicLong mismatches = new AtomicLong();
    final AtomicLong failures = new AtomicLong();
    private final List<String> problems = new ArrayList<>();
    private final Map<Integer, PortCounts> byPort = new ConcurrentHashMap<>();

    /** Starts the sink/source server on a free loopback port; {@link #start(int)} starts the clients. */
    Traffic(Settings settings) throws IOException {
        this.settings = settings;
        new SplittableRandom(settings.seed()).nextBytes(block);
        server = new ServerSocket(0, 4096, loopback);
        acceptor = Thread.ofPlatform().daemon().name("sink-accept").start(this::acceptLoop);
    }

    int serverPort() {
        return server.getLocalPort();
    }

    /** Starts the workers, connecting to {@code entryPorts} (worker i to the i-th, round robin). */
    void start(int... entryPorts) {
        for (int port : entryPorts) {
            byPort.putIfAbsent(port, new PortCounts());
        }
        for (int i = 0; i < settings.connections(); i++) {
            int port = entryPorts[i % entryPorts.length];
            workers.add(Thread.ofVirtual().name("client-" + i).start(() -> {
                while (!stop.get() && checkedBytes.get() + resetBytes.get() < settings.volume()) {
                    runOne(port, plan(nextId.incrementAndGet()));
                }
            }));
        }
    }

    /** What the connections to one entry port saw: how many ended, how many failed, how many connects were refused. */
    public static final class PortCounts {
        private final AtomicLong done = new AtomicLong();
        private final AtomicLong failed = new AtomicLong();
        private final AtomicLong refused = new AtomicLong();
        /** When the last connect was refused ({@link System#nanoTime()}), and the refusals since the first of its burst. */
        private long lastRefusal;
        private long burstStart;
        private long longestBurstNanos = -1;

        private synchronized void refusedAt(long now) {
            if (refused.incrementAndGet() == 1 || now - lastRefusal > 1_000_000_000L) {
                burstStart = now; // more than a second since the last: a new moment of refusal
            }
            lastRefusal = now;
            longestBurstNanos = Math.max(longestBurstNanos, now - burstStart);
        }

        public long done() {
            return done.get();
        }

        public long failed() {
            return failed.get();
        }

        public long refused() {
            return refused.get();
        }

        /** The longest time from the first to the last refused connect less than a second apart, in ms; -1 if none was refused. */
        synchronized double longestRefusalMillis() {
            return longestBurstNanos < 0 ? -1 : longestBurstNanos / 1e6;
        }
    }

    /** The counts of the connections to {@code entryPort}. */
    PortCounts counts(int entryPort) {
        return byPort.get(entryPort);
    }

    /** Waits until the volume is done (or {@link #stop()}) and every worker's last connection ended. */
    void await() throws InterruptedException {
        for (Thread t : workers) {
            t.join();
        }
    }

    /** Asks every worker to end after its current connection. */
    void stop() {
        stop.set(true);
    }

    long connectionsDone() {
        return checked.get() + resets.get() + mismatches.get() + failures.get();
    }

    /** Up to 20 problems seen (mismatches and failures), each with its connection's plan. */
    List<String> problems() {
        synchronized (problems) {
            return List.copyOf(problems);
        }
    }

    private Plan plan(long id) {
        SplittableRandom r = new SplittableRandom(settings.seed() * 1_000_003L + id);
        long up = streamLength(r);
        long down = streamLength(r);
        boolean clientSlow = r.nextDouble() < settings.slowShare() / 2;
        boolean serverSlow = r.nextDouble() < settings.slowShare() / 2;
        Reset reset = Reset.NONE;
        long resetAt = 0;
        if (r.nextDouble() < settings.resetShare()) {
            reset = r.nextBoolean() ? Reset.CLIENT : Reset.SERVER;
            up = Math.max(up, 2);
            resetAt = r.nextLong(1, up);
        }
        return new Plan(id, up, down, clientSlow, serverSlow, reset, resetAt, r.nextLong());
    }

    /** 0 for one stream in a hundred, else log-uniform between 1 B and maxStream. */
    private long streamLength(SplittableRandom r) {
        return r.nextInt(100) == 0 ? 0 : logUniform(r, settings.maxStream());
    }

    private static long logUniform(SplittableRandom r, long max) {
        return Math.max(1, Math.min(max, (long) Math.exp(r.nextDouble() * Math.log(max))));
    }

    private void problem(AtomicLong counter, Plan p, String what) {
        counter.incrementAndGet();
        synchronized (problems) {
            if (problems.size() < 20) {
                problems.add("at " + java.time.LocalTime.now() + ": " + what + " (" + p + ")"); // the time, to find it in the agents' logs
            }
        }
    }

    // ---- client side ----

    private void runOne(int entryPort, Plan p) {
        PortCounts counts = byPort.get(entryPort);
        Conn c = new Conn(p, new CompletableFuture<>(), new AtomicLong(), new int[2]);
        conns.put(p.id(), c);
        try {
            End client = client(entryPort, c);
            if (p.reset() != Reset.NONE) {
                awaitEnd(c);
                resets.incrementAndGet();
                resetBytes.addAndGet(client.wrote() + Math.max(0, client.read()));
                return;
            }
            End srv = await(c.serverEnd(), c.moved(), "the server's end");
            if (client.wrote() != p.up() || srv.read() != p.up() || !client.wroteHash().equals(srv.readHash())) {
                counts.failed.incrementAndGet();
                problem(mismatches, p, "client to server: wrote %d bytes sha256 %s, server read %d bytes sha256 %s"
                        .formatted(client.wrote(), client.wroteHash(), srv.read(), srv.readHash()));
            } else if (srv.wrote() != p.down() || client.read() != p.down() || !srv.wroteHash().equals(client.readHash())) {
                counts.failed.incrementAndGet();
                problem(mismatches, p, "server to client: wrote %d bytes sha256 %s, client read %d bytes sha256 %s"
                        .formatted(srv.wrote(), srv.wroteHash(), client.read(), client.readHash()));
            } else {
                checked.incrementAndGet();
                checkedBytes.addAndGet(p.up() + p.down());
                if (p.clientSlow() || p.serverSlow()) {
                    slow.incrementAndGet();
                }
            }
        } catch (ConnectException e) {
            counts.refusedAt(System.nanoTime());
            counts.failed.incrementAndGet();
            problem(failures, p, "connect to port " + entryPort + " refused: " + e.getMessage());
        } catch (Exception e) {
            counts.failed.incrementAndGet();
            problem(failures, p, (p.reset() == Reset.NONE ? "" : "reset connection did not end cleanly: ") + e
                    + " (entry port " + entryPort + "; " + serverSide(c) + ")");
        } finally {
            counts.done.incrementAndGet();
            conns.remove(p.id());
            serving.remove(p.id());
        }
    }

    /**
     * What the server's end of a failed connection saw, for the problem line: the loopback ports of the connection's
     * first hop (client to entry agent) and last hop (exit agent to server), to find its packets and its agents' log
     * lines, and how the server's end ended (its own error, if it failed first).
     */
    private String serverSide(Conn c) {
        String end;
        try {
            End e = c.serverEnd().get(2, TimeUnit.SECONDS);
            end = "the server's end read %d and wrote %d bytes".formatted(e.read(), e.wrote());
        } catch (ExecutionException e) {
            end = "the server's end failed: " + e.getCause();
        } catch (TimeoutException e) {
            end = serving.contains(c.plan().id()) ? "the server's end had not ended 2 s later" : "the server never read this plan's id";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            end = "interrupted";
        }
        return "client port %d, server's peer port %d; %s".formatted(c.ports()[0], c.ports()[1], end);
    }

    /**
     * Waits until the server's end of a reset connection ended, whichever way. A reset may reach the agents before
     * they connected upstream, or the server before it read the plan's id: then there is no server end to wait for.
     */
    private void awaitEnd(Conn c) throws InterruptedException, IOException {
        long id = c.plan().id();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
        while (!serving.contains(id) && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        if (!serving.contains(id)) {
            return;
        }
        try {
            await(c.serverEnd(), c.moved(), "the server's end of a reset connection");
        } catch (ExecutionException expected) {
            // a reset connection's server end may fail: the reset is what was planned
        }
    }

    /**
     * Waits for {@code f} as long as the connection moves bytes: fails once no byte moved, either way at either end, for
     * the timeout (a stalled connection), however long it takes in all.
     */
    private <T> T await(CompletableFuture<T> f, AtomicLong moved, String what)
            throws InterruptedException, ExecutionException, IOException {
        long last = -1;
        while (true) {
            try {
                return f.get(settings.timeoutMillis(), TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                long now = moved.get();
                if (now == last) {
                    throw new IOException(what + " stalled: no byte moved for " + settings.timeoutMillis() + " ms");
                }
                last = now;
            }
        }
    }

    /** Runs {@code body} on a virtual thread; its result or failure in the future. */
    private static CompletableFuture<Object[]> spawn(Callable<Object[]> body, Socket closeOnFailure) {
        CompletableFuture<Object[]> f = new CompletableFuture<>();
        Thread.ofVirtual().start(() -> {
            try {
                f.complete(body.call());
            } catch (Exception e) {
                f.completeExceptionally(e);
                if (closeOnFailure != null) {
                    closeQuietly(closeOnFailure);
                }
            }
        });
        return f;
    }

    private End client(int entryPort, Conn c) throws Exception {
        Plan p = c.plan();
        try (Socket s = new Socket(loopback, entryPort)) {
            s.setSoTimeout((int) settings.timeoutMillis());
            c.ports()[0] = s.getLocalPort();
            OutputStream out = s.getOutputStream();
            out.write(ByteBuffer.allocate(8).putLong(p.id()).array());
            CompletableFuture<Object[]> wrote = spawn(() -> {
                MessageDigest md = sha256();
                long n = write(s, out, md, p.up(), new SplittableRandom(p.seed()),
                        p.reset() == Reset.CLIENT ? p.resetAt() : -1, c.moved());
                return new Object[] {n, hex(md)};
            }, s);
            MessageDigest md = sha256();
            long read;
            try {
                read = read(s.getInputStream(), md, p.clientSlow(), -1, null, c.moved());
            } catch (IOException e) {
                if (p.reset() == Reset.NONE) {
                    closeQuietly(s);
                    throw e;
                }
                read = -1;
            }
            Object[] w;
            try {
                w = await(wrote, c.moved(), "the client's writer");
            } catch (ExecutionException e) {
                if (p.reset() == Reset.NONE) {
                    throw new IOException("client's write failed: " + e.getCause(), e.getCause());
                }
                w = new Object[] {0L, ""};
            } catch (IOException e) {
                closeQuietly(s);
                throw e;
            }
            return new End((long) w[0], (String) w[1], read, hex(md));
        }
    }

    // ---- server side ----

    private void acceptLoop() {
        while (!server.isClosed()) {
            try {
                Socket s = server.accept();
                Thread.ofVirtual().start(() -> serve(s));
            } catch (IOException e) {
                if (!server.isClosed()) {
                    synchronized (problems) {
                        problems.add("accept failed: " + e);
                    }
                }
            }
        }
    }

    private void serve(Socket s) {
        CompletableFuture<End> end = null;
        try (s) {
            s.setSoTimeout((int) settings.timeoutMillis());
            long id = new DataInputStream(s.getInputStream()).readLong();
            Conn c = conns.get(id);
            if (c == null) {
                if (id < 1 || id > nextId.get() || plan(id).reset() == Reset.NONE) {
                    // closing now resets the connection (its bytes are unread), which its client counts as a failure:
                    // say why here, or that reset is a mystery
                    synchronized (problems) {
                        if (problems.size() < 20) {
                            problems.add("the server read plan id %d, which names no open connection: the first 8 bytes of a stream arrived changed"
                                    .formatted(id));
                        }
                    }
                }
                return; // else a reset connection whose client gave up waiting for this end
            }
            Plan p = c.plan();
            end = c.serverEnd();
            c.ports()[1] = s.getPort();
            serving.add(id);
            OutputStream out = s.getOutputStream();
            CompletableFuture<Object[]> wrote = spawn(() -> {
                MessageDigest md = sha256();
                long n = write(s, out, md, p.down(), new SplittableRandom(~p.seed()), -1, c.moved());
                return new Object[] {n, hex(md)};
            }, null);
            MessageDigest md = sha256();
            long read = read(s.getInputStream(), md, p.serverSlow(), p.reset() == Reset.SERVER ? p.resetAt() : -1, s,
                    c.moved());
            if (read < 0) {
                end.complete(new End(0, "", 0, ""));
                return;
            }
            Object[] w = await(wrote, c.moved(), "the server's writer");
            end.complete(new End((long) w[0], (String) w[1], read, hex(md)));
        } catch (Exception e) {
            if (end != null) {
                end.completeExceptionally(e);
            }
        }
    }

    // ---- both ----

    /**
     * Writes {@code length} bytes in random sizes, hashing them, then shuts the output down; with {@code resetAt >= 0}
     * resets the connection once that many bytes are written instead. Returns the bytes written.
     */
    private long write(Socket s, OutputStream out, MessageDigest md, long length, SplittableRandom r, long resetAt,
                       AtomicLong moved) throws IOException {
        long done = 0;
        while (done < length) {
            if (resetAt >= 0 && done >= resetAt) {
                reset(s);
                return done;
            }
            int n = (int) Math.min(length - done, logUniform(r, MAX_WRITE));
            int off = r.nextInt(BLOCK);
            out.write(block, off, n);
            md.update(block, off, n);
            done += n;
            moved.addAndGet(n);
        }
        s.shutdownOutput();
        return done;
    }

    /**
     * Reads to the end of the stream, hashing, sleeping 1 ms after each read when slow; with {@code resetAt >= 0}
     * resets {@code s} once that many bytes are read and returns -1.
     */
    private static long read(InputStream in, MessageDigest md, boolean slow, long resetAt, Socket s, AtomicLong moved)
            throws IOException, InterruptedException {
        byte[] buf = new byte[slow ? SLOW_READ : 64 << 10];
        long total = 0;
        int n;
        while ((n = in.read(buf)) > 0) {
            md.update(buf, 0, n);
            total += n;
            moved.addAndGet(n);
            if (resetAt >= 0 && total >= resetAt) {
                reset(s);
                return -1;
            }
            if (slow) {
                Thread.sleep(1);
            }
        }
        return total;
    }

    private static void reset(Socket s) throws IOException {
        s.setSoLinger(true, 0);
        s.close();
    }

    private static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException ignored) {
            // closing to unblock the other thread; nothing to report
        }
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String hex(MessageDigest md) {
        return java.util.HexFormat.of().formatHex(md.digest());
    }

    @Override
    public void close() throws IOException, InterruptedException {
        stop();
        server.close();
        acceptor.join(5000);
    }
}
