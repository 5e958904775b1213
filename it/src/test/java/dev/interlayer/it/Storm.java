package dev.interlayer.it;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;

/**
 * A connection storm against an echo path: every {@code 1000 / rate} ms a new connection sends 32 bytes, reads them back
 * and closes. Counts connections that worked and that failed (refused, reset, short or wrong echo), each failure with its
 * reason, and the longest gap between two connections that worked (how long no new connection was served).
 */
final class Storm implements AutoCloseable {

    private final InetSocketAddress target;
    private final ExecutorService workers = Executors.newVirtualThreadPerTaskExecutor();
    private final Thread pacer;
    private final AtomicLong ok = new AtomicLong();
    private final AtomicLong lastOk = new AtomicLong(System.nanoTime());
    private final AtomicLong longestGap = new AtomicLong();
    private final ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<>();
    private volatile boolean running = true;

    /** Starts {@code rate} connections a second to {@code target}. */
    Storm(InetSocketAddress target, int rate) {
        this.target = target;
        long every = TimeUnit.SECONDS.toNanos(1) / rate;
        pacer = Thread.ofPlatform().name("storm-pacer").daemon().start(() -> {
            long next = System.nanoTime();
            long n = 0;
            while (running) {
                long id = n++;
                workers.execute(() -> once(id));
                next += every;
                long wait = next - System.nanoTime();
                if (wait > 0) {
                    try {
                        TimeUnit.NANOSECONDS.sleep(wait);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            }
        });
    }

    private void once(long id) {
        byte[] sent = new byte[32];
        Arrays.fill(sent, (byte) ('a' + id % 26));
        try (Socket s = new Socket()) {
            s.setSoTimeout(10_000);
            s.connect(target, 5_000);
            s.getOutputStream().write(sent);
            byte[] got = s.getInputStream().readNBytes(sent.length);
            if (!Arrays.equals(sent, got)) {
                failures.add("connection " + id + ": echo of " + got.length + " bytes differs");
                return;
            }
            long now = System.nanoTime();
            long before = lastOk.getAndAccumulate(now, Math::max);
            longestGap.accumulateAndGet(now - before, Math::max);
            ok.incrementAndGet();
        } catch (IOException e) {
            failures.add("connection " + id + ": " + e);
        }
    }

    /** Stops starting connections and waits for those under way. */
    @Override
    public void close() throws InterruptedException {
        running = false;
        pacer.join();
        workers.shutdown();
        workers.awaitTermination(30, TimeUnit.SECONDS);
    }

    long ok() {
        return ok.get();
    }

    List<String> failures() {
        return List.copyOf(failures);
    }

    /** The longest time between two connections that worked, in ms. */
    double longestGapMillis() {
        return longestGap.get() / 1e6;
    }

    /**
     * A connection that streams {@code total} bytes of a pattern in 4 KiB writes, {@code pause} ms apart, and checks the
     * echo byte for byte; returns the number of bytes echoed correctly, or throws on the first wrong or missing one.
     */
    static long stream(InetSocketAddress target, int total, long pause) throws IOException, InterruptedException {
        return stream(target, total, pause, () -> false);
    }

    /** As {@link #stream(InetSocketAddress, int, long)}, going on with 4 KiB writes beyond {@code total} while {@code more} says so. */
    static long stream(InetSocketAddress target, int total, long pause, BooleanSupplier more) throws IOException, InterruptedException {
        try (Socket s = new Socket()) {
            s.setSoTimeout(20_000);
            s.connect(target, 5_000);
            OutputStream out = s.getOutputStream();
            InputStream in = s.getInputStream();
            byte[] chunk = new byte[4096];
            long done = 0;
            while (done < total || more.getAsBoolean()) {
                int n = done < total ? (int) Math.min(chunk.length, total - done) : chunk.length;
                for (int i = 0; i < n; i++) chunk[i] = (byte) ((done + i) * 31 % 251);
                out.write(chunk, 0, n);
                byte[] back = in.readNBytes(n);
                if (!Arrays.equals(back, 0, back.length, chunk, 0, n)) {
                    throw new IOException("echo differs at byte " + done + " (" + back.length + " of " + n + " bytes came back)");
                }
                done += n;
                Thread.sleep(pause);
            }
            s.shutdownOutput();
            if (in.read() != -1) throw new IOException("bytes after the end");
            return done;
        }
    }
}
