package dev.interlayer.engine.testing;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * An independent traffic driver that proves byte-exact delivery through a proxy: every connection carries a
 * pseudo-random stream in each direction, and each receiver checks every byte against the stream it expects.
 *
 * <p>Both ends are plain blocking JDK sockets (one virtual thread per reader and writer), so nothing of the
 * engine is shared with the check. Each stream starts with a 16-byte header (its key and its length) and then
 * carries {@link #fill pattern bytes} that depend only on the key and the offset, so a receiver knows the first
 * wrong offset, not just that a hash differs. Writers use random write sizes and random pauses; the lengths of the
 * two directions are independent, so either side may half-close first; a connection may be made to end with an
 * abortive close (RST) from either end at a random point.
 *
 * <p>What a receiver may see: all bytes and a clean end ({@link Ending#EOF}), or a correct prefix and a reset
 * ({@link Ending#RESET}). A wrong byte, extra bytes, or a clean end before the last byte is corruption.
 *
 * <pre>{@code
 * try (StressDriver.Server up = StressDriver.server(seed)) {
 *     StressDriver.Report r = StressDriver.run(proxyAddress, up, plan);
 *     assertThat(r.corrupt()).isEmpty();
 * }
 * }</pre>
 */
public final class StressDriver {

    private StressDriver() {}

    /** How a direction of a connection ended at its receiver. */
    public enum Ending { EOF, RESET, TIMEOUT }

    /**
     * One direction of one connection as its receiver saw it; {@code firstWrong} is -1 when every byte was right;
     * {@code aborted}: a peer reset the connection; {@code receiverAborted}: the receiver itself did (its own reads may
     * then end either way, so only wrong bytes count).
     */
    public record Result(long connection, String direction, long expected, long received, long firstWrong, Ending ending,
                         boolean aborted, boolean receiverAborted) {
        /** All bytes, in order, then a clean end. */
        public boolean exact() {
            return ending == Ending.EOF && firstWrong < 0 && received == expected;
        }

        /** Wrong bytes, or a clean end that is not the stream's end: the one outcome that must never happen. */
        public boolean corrupt() {
            return firstWrong >= 0 || received > expected || (ending == Ending.EOF && received != expected && !receiverAborted);
        }

        @Override
        public String toString() {
            return "connection " + connection + " " + direction + ": " + received + "/" + expected + " bytes, " + ending
                    + (firstWrong >= 0 ? ", first wrong byte at " + firstWrong : "") + (aborted ? " (aborted by a peer)" : "");
        }
    }

    /** What a run moved and how every direction ended. */
    public record Report(List<Result> results, long bytes, long millis) {
        public List<Result> corrupt() {
            return results.stream().filter(Result::corrupt).toList();
        }

        /** Directions of connections no peer aborted that did not arrive exactly. */
        public List<Result> inexactWithoutAbort() {
            return results.stream().filter(r -> !r.aborted() && !r.exact()).toList();
        }

        public long count(Ending e) {
            return results.stream().filter(r -> r.ending() == e).count();
        }

        @Override
        public String toString() {
            return results.size() / 2 + " connections, " + bytes + " bytes checked in " + millis + " ms; " + count(Ending.EOF)
                    + " directions ended cleanly, " + count(Ending.RESET) + " by a reset, " + count(Ending.TIMEOUT) + " timed out, "
                    + corrupt().size() + " corrupt";
        }
    }

    /**
     * What to send: {@code connections} connections, at most {@code parallel} at once, each direction up to
     * {@code maxBytes} (log-uniform, so small and large streams both occur), a write pause with probability
     * {@code pauseChance} per write, and an abortive close by one end with probability {@code abortChance}.
     */
    public record Plan(long seed, int connections, int parallel, long maxBytes, double pauseChance, double abortChance,
                       boolean exactLength) {
        public Plan(long seed, int connections, int parallel, long maxBytes, double pauseChance, double abortChance) {
            this(seed, connections, parallel, maxBytes, pauseChance, abortChance, false);
        }

        public Plan withAborts(double chance) {
            return new Plan(seed, connections, parallel, maxBytes, pauseChance, chance, exactLength);
        }

        /** Every stream exactly {@code maxBytes} long, written 64 KiB at a time (a bulk transfer). */
        public Plan exactly() {
            return new Plan(seed, connections, parallel, maxBytes, pauseChance, abortChance, true);
        }
    }

    // ---- the pattern ----------------------------------------------------------------------------

    /** Writes the pattern bytes of stream {@code key} from {@code offset} into {@code dst[off, off+len)}. */
    public static void fill(long key, long offset, byte[] dst, int off, int len) {
        long p = offset;
        int i = off;
        int end = off + len;
        while (i < end) {
            long word = mix(key * 0x9E3779B97F4A7C15L + (p >>> 3));
            int shift = (int) (p & 7);
            int n = Math.min(8 - shift, end - i);
            for (int k = 0; k < n; k++) {
                dst[i++] = (byte) (word >>> ((shift + k) * 8));
            }
            p += n;
        }
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    // ---- one end ----------------------------------------------------------------------------------

    /** One side's plan for the stream it sends: its key, length, write sizes and pauses, and where it aborts (-1: never). */
    private record Sending(long key, long length, long seed, double pauseChance, long abortAt, boolean bulk) {
        static Sending random(long key, Random r, Plan plan, boolean abort) {
            long len = plan.exactLength() ? plan.maxBytes() : r.nextInt(20) == 0 ? 0
                    : Math.min(plan.maxBytes(), (long) Math.exp(r.nextDouble() * Math.log(plan.maxBytes() + 1.0)));
            long abortAt = abort ? (long) (r.nextDouble() * len) : -1;
            return new Sending(key, len, r.nextLong(), plan.pauseChance(), abortAt, plan.exactLength());
        }
    }

    /**
     * Writes the header and the pattern with random write sizes and pauses, then shuts the output down, or resets the
     * connection at the planned point once {@code mayAbort} is open (the server aborts only after it knows the key).
     */
    private static void send(Socket s, Sending p, CountDownLatch mayAbort) throws IOException, InterruptedException {
        OutputStream out = s.getOutputStream();
        out.write(ByteBuffer.allocate(16).putLong(p.key()).putLong(p.length()).array());
        Random r = new Random(p.seed());
        byte[] buf = new byte[64 * 1024];
        long sent = 0;
        while (sent < p.length() && (p.abortAt() < 0 || sent < p.abortAt())) {
            int n = (int) Math.min(p.length() - sent, p.bulk() ? buf.length : 1 + r.nextInt(1 << r.nextInt(17)));
            n = Math.min(n, buf.length);
            fill(p.key(), sent, buf, 0, n);
            out.write(buf, 0, n);
            sent += n;
            if (r.nextDouble() < p.pauseChance()) {
                Thread.sleep(r.nextInt(3));
            }
        }
        if (p.abortAt() >= 0) {
            mayAbort.await(60, TimeUnit.SECONDS);
            s.setSoLinger(true, 0);
            s.close();
            return;
        }
        s.shutdownOutput();
    }

    /** Reads a stream's header; returns its key and length, or null at a reset or end before 16 bytes. */
    private static long[] header(InputStream in) throws IOException {
        byte[] h = in.readNBytes(16);
        if (h.length < 16) return null;
        ByteBuffer b = ByteBuffer.wrap(h);
        return new long[] {b.getLong(), b.getLong()};
    }

    /** Reads the pattern of stream {@code key} after its header, checking every byte; returns what it saw. */
    private static Result receive(InputStream in, long connection, String direction, long key, long expected) {
        long received = 0;
        long firstWrong = -1;
        Ending ending;
        byte[] buf = new byte[64 * 1024];
        byte[] want = new byte[buf.length];
        try {
            while (true) {
                int n = in.read(buf);
                if (n < 0) {
                    ending = Ending.EOF;
                    break;
                }
                if (firstWrong < 0) {
                    int check = (int) Math.max(0, Math.min(n, expected - received));
                    fill(key, received, want, 0, check);
                    int m = Arrays.mismatch(buf, 0, check, want, 0, check);
                    if (m >= 0) firstWrong = received + m;
                }
                received += n;
            }
        } catch (SocketTimeoutException e) {
            ending = Ending.TIMEOUT;
        } catch (IOException e) {
            ending = Ending.RESET;
        }
        return new Result(connection, direction, expected, received, firstWrong, ending, false, false);
    }

    /**
     * How a socket's stream ended, from its reader's {@code ending} and whether its writer saw a reset: the kernel
     * reports a reset to one call only, so when the writer took it, the reader then sees an end of stream.
     */
    private static Ending seenBy(Ending ending, boolean writerReset) {
        return ending == Ending.EOF && writerReset ? Ending.RESET : ending;
    }

    // ---- the upstream server -----------------------------------------------------------------------

    /** The upstream end for {@code plan}: for each connection, checks the stream it receives and sends one of its own. */
    public static Server server(Plan plan) throws IOException {
        return new Server(plan);
    }

    /**
     * The upstream server. Per connection it plans its own stream (sent before or after the client's header arrives,
     * so both "client speaks first" and "server speaks first" occur), and records what it received under the client's
     * stream key, with whether it aborted.
     */
    public static final class Server implements Closeable {
        private final ServerSocket ss;
        private final Plan plan;
        private final ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor();
        private final Map<Long, Result> received = new ConcurrentHashMap<>();
        private final AtomicLong accepted = new AtomicLong();

        private Server(Plan plan) throws IOException {
            this.plan = plan;
            this.ss = new ServerSocket(0, 512, InetAddress.getLoopbackAddress());
            threads.execute(this::acceptLoop);
        }

        public InetSocketAddress address() {
            return new InetSocketAddress(ss.getInetAddress(), ss.getLocalPort());
        }

        private void acceptLoop() {
            while (!ss.isClosed()) {
                Socket s;
                try {
                    s = ss.accept();
                    s.setSoTimeout(60_000);
                } catch (IOException e) {
                    return;
                }
                long n = accepted.incrementAndGet();
                threads.execute(() -> serve(s, n));
            }
        }

        private void serve(Socket s, long n) {
            Random r = new Random(plan.seed() * 31 + n);
            boolean first = r.nextBoolean();
            Sending down = Sending.random(plan.seed() * 1_000_003L - n, r, plan, r.nextDouble() < plan.abortChance() / 2);
            CountDownLatch keyKnown = new CountDownLatch(1);
            CountDownLatch writing = new CountDownLatch(1);
            boolean[] writerReset = {false};
            Runnable writer = () -> {
                try {
                    send(s, down, keyKnown);
                } catch (IOException e) {
                    writerReset[0] = down.abortAt() < 0; // reset by the other end (not by this end's own abort)
                } catch (InterruptedException ignored) {
                    // the test ended
                } finally {
                    writing.countDown();
                }
            };
            try {
                if (first) threads.execute(writer);
                InputStream in = s.getInputStream();
                long[] h;
                try {
                    h = header(in);
                } catch (IOException e) {
                    h = null;
                }
                if (h != null) {
                    if (!first) threads.execute(writer);
                    keyKnown.countDown();
                    Result got = receive(in, h[0], "SEND", h[0], h[1]);
                    writing.await(90, TimeUnit.SECONDS);
                    received.put(h[0], new Result(h[0], "SEND", got.expected(), got.received(), got.firstWrong(),
                            seenBy(got.ending(), writerReset[0]), down.abortAt() >= 0, down.abortAt() >= 0));
                } else {
                    keyKnown.countDown();
                }
                if (first || h != null) writing.await(90, TimeUnit.SECONDS);
            } catch (IOException e) {
                // the socket is gone before it was read: the client records a reset
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                try {
                    s.close();
                } catch (IOException ignored) {
                    // already reset
                }
            }
        }

        Result resultFor(long key) {
            return received.get(key);
        }

        @Override
        public void close() throws IOException {
            ss.close();
            threads.shutdownNow();
        }
    }

    // ---- a run ----------------------------------------------------------------------------------

    /**
     * Runs {@code plan} through the proxy at {@code proxy}, whose upstream is {@code server}; {@code during} runs
     * on its own thread while traffic flows (e.g. attaching and detaching modules) and is interrupted at the end.
     */
    public static Report run(InetSocketAddress proxy, Server server, Plan plan, Runnable during) throws InterruptedException {
        long t0 = System.nanoTime();
        Random r = new Random(plan.seed());
        List<Result> results = new ArrayList<>();
        Thread side = during == null ? null : Thread.ofVirtual().start(during);
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            java.util.concurrent.Semaphore slots = new java.util.concurrent.Semaphore(plan.parallel());
            List<java.util.concurrent.Future<List<Result>>> all = new ArrayList<>();
            for (int i = 0; i < plan.connections(); i++) {
                Sending up = Sending.random(plan.seed() * 1_000_003L + i + 1, r, plan, r.nextDouble() < plan.abortChance() / 2);
                slots.acquire();
                all.add(pool.submit(() -> {
                    try {
                        return client(proxy, server, up);
                    } finally {
                        slots.release();
                    }
                }));
            }
            for (var f : all) {
                try {
                    results.addAll(f.get());
                } catch (java.util.concurrent.ExecutionException e) {
                    throw new IllegalStateException(e.getCause());
                }
            }
        } finally {
            if (side != null) {
                side.interrupt();
                side.join(10_000);
            }
        }
        long bytes = results.stream().mapToLong(x -> Math.max(0, x.received())).sum();
        return new Report(results, bytes, (System.nanoTime() - t0) / 1_000_000);
    }

    /** One connection: the client's stream up, the server's down; returns both directions' results. */
    private static List<Result> client(InetSocketAddress proxy, Server server, Sending up) throws IOException, InterruptedException {
        long key = up.key();
        Result recv;
        try (Socket s = new Socket()) {
            s.connect(proxy, 10_000);
            s.setSoTimeout(60_000);
            InputStream in = s.getInputStream(); // before the writer may abort and close the socket
            boolean[] writerReset = {false};
            Thread writer = Thread.ofVirtual().start(() -> {
                try {
                    send(s, up, new CountDownLatch(0));
                } catch (IOException e) {
                    writerReset[0] = up.abortAt() < 0; // reset by the other end (not by this end's own abort)
                } catch (InterruptedException ignored) {
                    // the test ended
                }
            });
            long[] h;
            try {
                h = header(in);
                recv = h == null ? new Result(key, "RECV", 16, 0, -1, Ending.EOF, false, false) : receive(in, key, "RECV", h[0], h[1]);
            } catch (SocketTimeoutException e) {
                recv = new Result(key, "RECV", 16, 0, -1, Ending.TIMEOUT, false, false);
            } catch (IOException e) {
                recv = new Result(key, "RECV", 16, 0, -1, Ending.RESET, false, false);
            }
            writer.join(60_000);
            recv = new Result(recv.connection(), recv.direction(), recv.expected(), recv.received(), recv.firstWrong(),
                    seenBy(recv.ending(), writerReset[0]), false, false);
        }
        // the server records the client's stream when it has read to its end (or to a reset)
        Result sent = null;
        long end = System.currentTimeMillis() + 5_000;
        while (sent == null && System.currentTimeMillis() < end) {
            sent = server.resultFor(key);
            if (sent == null) Thread.sleep(5);
        }
        boolean serverAborted = sent != null && sent.aborted();
        boolean aborted = up.abortAt() >= 0 || serverAborted;
        if (sent == null) {
            // the header never reached the server: only a reset may explain that
            sent = new Result(key, "SEND", up.length(), 0, -1, aborted || recv.ending() == Ending.RESET ? Ending.RESET : Ending.TIMEOUT, aborted,
                    serverAborted);
        } else {
            sent = new Result(key, "SEND", sent.expected(), sent.received(), sent.firstWrong(), sent.ending(), aborted, serverAborted);
        }
        recv = new Result(key, "RECV", recv.expected(), recv.received(), recv.firstWrong(), recv.ending(), aborted, up.abortAt() >= 0);
        return List.of(sent, recv);
    }
}
