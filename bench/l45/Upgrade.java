import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The two ends of bench/l45/upgrade.
 *
 *   java Upgrade.java echo PORT                    an echo server on 127.0.0.1:PORT; prints "listening"
 *   java Upgrade.java storm PORT RATE SECONDS WARMUP   RATE new connections a second to 127.0.0.1:PORT for SECONDS: each
 *                                                      sends 32 bytes, reads them back and closes; prints the counts and
 *                                                      the longest gap between two served connections after WARMUP
 *                                                      seconds (the first ones wait for cold JITs)
 */
public class Upgrade {

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[1]);
        if (args[0].equals("echo")) {
            echo(port);
        } else {
            storm(port, Integer.parseInt(args[2]), Integer.parseInt(args[3]), Integer.parseInt(args[4]));
        }
    }

    static void echo(int port) throws IOException {
        try (ServerSocket server = new ServerSocket()) {
            server.bind(new InetSocketAddress("127.0.0.1", port), 4096);
            System.out.println("listening");
            System.out.flush();
            while (true) {
                Socket s = server.accept();
                Thread.startVirtualThread(() -> {
                    try (s; InputStream in = s.getInputStream(); OutputStream out = s.getOutputStream()) {
                        in.transferTo(out);
                    } catch (IOException e) {
                        // the client went away
                    }
                });
            }
        }
    }

    static void storm(int port, int rate, int seconds, int warmup) throws InterruptedException {
        AtomicLong ok = new AtomicLong();
        AtomicLong longestGap = new AtomicLong();
        AtomicLong gapEnd = new AtomicLong();
        long start = System.nanoTime();
        AtomicLong lastOk = new AtomicLong(start);
        Map<String, Long> failures = new TreeMap<>();
        long every = TimeUnit.SECONDS.toNanos(1) / rate;
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        long total = 0;
        try (ExecutorService workers = Executors.newVirtualThreadPerTaskExecutor()) {
            for (long next = System.nanoTime(); next < end; next += every) {
                long wait = next - System.nanoTime();
                if (wait > 0) TimeUnit.NANOSECONDS.sleep(wait);
                total++;
                workers.execute(() -> {
                    byte[] sent = new byte[32];
                    Arrays.fill(sent, (byte) 'u');
                    try (Socket s = new Socket()) {
                        s.setSoTimeout(10_000);
                        s.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
                        s.getOutputStream().write(sent);
                        if (!Arrays.equals(sent, s.getInputStream().readNBytes(sent.length))) {
                            throw new IOException("short or wrong echo");
                        }
                        long now = System.nanoTime();
                        long before = lastOk.getAndAccumulate(now, Math::max);
                        long gap = now - before;
                        if (before - start > TimeUnit.SECONDS.toNanos(warmup) && gap > longestGap.getAndAccumulate(gap, Math::max)) {
                            gapEnd.set(now - start);
                        }
                        ok.incrementAndGet();
                    } catch (IOException e) {
                        String why = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
                        synchronized (failures) {
                            failures.merge(why, 1L, Long::sum);
                        }
                    }
                });
            }
        }
        long failed = failures.values().stream().mapToLong(Long::longValue).sum();
        long refused = failures.getOrDefault("Connection refused", 0L);
        System.out.printf("total=%d ok=%d refused=%d failed=%d longest_accept_gap_ms=%.1f (ended %.1f s into the storm; after %d s)%n", total,
                ok.get(), refused, failed, longestGap.get() / 1e6, gapEnd.get() / 1e9, warmup);
        failures.forEach((why, n) -> System.out.println("  " + n + " x " + why));
    }
}
