package dev.interlayer.engine;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.api.Role;
import dev.interlayer.api.Verdict;
import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.engine.testing.TestModule;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.runtime.ModuleConfig;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The splice path (bulk transfers of hook-less connections move socket to socket in the kernel): byte-exact
 * through the end of the stream and half-close, with a slow reader holding the pipe full when the end
 * arrives, in both directions at once, across a module attaching mid-stream, and through a reset. Each test
 * checks that the bytes really were spliced (the engine's counters), or were not where they must not be.
 */
class SpliceTest {

    private static final int CHUNK = 256 * 1024;
    /** Blocking readers and writers get threads of their own (the common pool may have one thread on two cores). */
    static final java.util.concurrent.ExecutorService THREADS = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor();
    private EngineFixture fx = new EngineFixture();

    @AfterEach
    void stop() {
        fx.close();
    }

    /** What a reading end saw: byte count and SHA-256, or the error that ended it. */
    record Seen(long bytes, String sha256, Throwable error) {}

    /** Reads {@code in} to its end, pausing {@code pauseMs} after each {@code pauseEvery} bytes while {@code slowUntil} bytes are not yet read. */
    static Seen drain(InputStream in, long slowUntil, int pauseEvery, int pauseMs) {
        MessageDigest md = sha256();
        long n = 0;
        long nextPause = pauseEvery;
        byte[] b = new byte[64 * 1024];
        try {
            int r;
            while ((r = in.read(b)) >= 0) {
                md.update(b, 0, r);
                n += r;
                if (n < slowUntil && n >= nextPause) {
                    nextPause += pauseEvery;
                    Thread.sleep(pauseMs);
                }
            }
            return new Seen(n, HexFormat.of().formatHex(md.digest()), null);
        } catch (IOException | InterruptedException e) {
            return new Seen(n, null, e);
        }
    }

    /** Writes {@code total} seeded random bytes; returns their SHA-256. Runs {@code midway} once, after half of them. */
    static String send(OutputStream out, long total, long seed, Runnable midway) throws IOException {
        MessageDigest md = sha256();
        SplittableRandom rnd = new SplittableRandom(seed);
        byte[] b = new byte[CHUNK];
        long sent = 0;
        boolean ran = false;
        while (sent < total) {
            int n = (int) Math.min(b.length, total - sent);
            rnd.nextBytes(b);
            out.write(b, 0, n);
            md.update(b, 0, n);
            sent += n;
            if (!ran && midway != null && sent >= total / 2) {
                ran = true;
                midway.run();
            }
        }
        return HexFormat.of().formatHex(md.digest());
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    static void waitFor(BooleanSupplier c, String what) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!c.getAsBoolean()) {
            if (System.nanoTime() > end) throw new AssertionError("timed out waiting for " + what);
            Thread.sleep(5);
        }
    }

    /** A server that drains what it receives into {@code seen}, reading slowly for its first {@code slowUntil} bytes. */
    static TestServer sink(CompletableFuture<Seen> seen, long slowUntil) throws IOException {
        return new TestServer(s -> seen.complete(drain(s.getInputStream(), slowUntil, 256 * 1024, 2)));
    }

    /** Open pipe descriptors of this process: the relay's pipes must be closed with their connection. */
    static long pipes() throws IOException {
        try (var fds = java.nio.file.Files.list(java.nio.file.Path.of("/proc/self/fd"))) {
            return fds.filter(f -> {
                try {
                    return java.nio.file.Files.readSymbolicLink(f).toString().startsWith("pipe:");
                } catch (IOException gone) {
                    return false;
                }
            }).count();
        }
    }

    @Test
    void aBulkStreamIsSplicedAndArrivesByteExactThroughItsEnd() throws Exception {
        long pipesBefore = pipes();
        long total = 192L << 20;
        CompletableFuture<Seen> seen = new CompletableFuture<>();
        try (TestServer up = sink(seen, 0)) {
            InetSocketAddress a = fx.listen(Role.CLIENT, up.address());
            String sent;
            try (Socket s = EngineFixture.connect(a)) {
                sent = send(s.getOutputStream(), total, 1, null);
                s.shutdownOutput();
                assertThat(s.getInputStream().read()).isEqualTo(-1); // the server's end arrives after ours
            }
            Seen got = seen.get(30, TimeUnit.SECONDS);
            assertThat(got.error()).isNull();
            assertThat(got.bytes()).isEqualTo(total);
            assertThat(got.sha256()).isEqualTo(sent);
        }
        assertThat(fx.engine.splicedConnections()).isEqualTo(1);
        assertThat(fx.engine.splicedBytes()).isGreaterThan(total / 2);
        waitFor(() -> fx.engine.connectionCount() == 0, "the connection to close");
        assertThat(pipes()).as("pipe descriptors left open").isLessThanOrEqualTo(pipesBefore);
    }

    @Test
    void theEndOfAStreamWaitsForWhatASlowReaderHasNotTakenYet() throws Exception {
        // The reader is slow for the whole transfer: when the writer's FIN reaches the agent, the pipe and the
        // upstream socket are full. Every byte before the FIN must still arrive, then the FIN.
        long total = 48L << 20;
        CompletableFuture<Seen> seen = new CompletableFuture<>();
        try (TestServer up = sink(seen, total)) {
            InetSocketAddress a = fx.listen(Role.CLIENT, up.address());
            String sent;
            try (Socket s = EngineFixture.connect(a)) {
                sent = send(s.getOutputStream(), total, 2, null);
                s.shutdownOutput();
                assertThat(s.getInputStream().read()).isEqualTo(-1);
            }
            Seen got = seen.get(60, TimeUnit.SECONDS);
            assertThat(got.error()).isNull();
            assertThat(got.bytes()).isEqualTo(total);
            assertThat(got.sha256()).isEqualTo(sent);
        }
        assertThat(fx.engine.splicedBytes()).isGreaterThan(0);
    }

    @Test
    void bothDirectionsAtOnceWithAHalfCloseFromTheServerFirst() throws Exception {
        bothDirectionsWithTheServerHalfClosingFirst(fx, 96L << 20, 64L << 20, 3);
        assertThat(fx.engine.splicedBytes()).isGreaterThan(0);
    }

    /**
     * The server sends its whole reply ({@code down} bytes) and half-closes while the client is still sending
     * ({@code up} bytes); then it reads the client's bytes to their end. Both streams must be exact, and each end
     * must arrive after its last byte.
     */
    static void bothDirectionsWithTheServerHalfClosingFirst(EngineFixture fx, long up, long down, long seed) throws Exception {
        CompletableFuture<Seen> serverSaw = new CompletableFuture<>();
        CompletableFuture<String> serverSent = new CompletableFuture<>();
        try (TestServer server = new TestServer(s -> {
            CompletableFuture<Seen> r = CompletableFuture.supplyAsync(() -> drain(uncheckedIn(s), 0, 1, 0), THREADS);
            serverSent.complete(send(s.getOutputStream(), down, seed, null));
            s.shutdownOutput();
            serverSaw.complete(r.join());
        })) {
            InetSocketAddress a = fx.listen(Role.CLIENT, server.address());
            try (Socket s = EngineFixture.connect(a)) {
                CompletableFuture<Seen> clientSaw = CompletableFuture.supplyAsync(() -> drain(uncheckedIn(s), 0, 1, 0), THREADS);
                String clientSent = send(s.getOutputStream(), up, seed + 1, null);
                Seen down1 = clientSaw.get(60, TimeUnit.SECONDS); // the server's end arrives while we may still be sending
                s.shutdownOutput();
                Seen up1 = serverSaw.get(60, TimeUnit.SECONDS);
                assertThat(down1.error()).isNull();
                assertThat(down1.bytes()).isEqualTo(down);
                assertThat(down1.sha256()).isEqualTo(serverSent.get());
                assertThat(up1.error()).isNull();
                assertThat(up1.bytes()).isEqualTo(up);
                assertThat(up1.sha256()).isEqualTo(clientSent);
            }
        }
    }

    @Test
    void aModuleThatAttachesMidStreamSeesTheBytesFromThenOn() throws Exception {
        long total = 128L << 20;
        AtomicLong moduleSaw = new AtomicLong();
        TestModule counter = TestModule.named("counter").onSend((st, ctx, v) -> {
            moduleSaw.addAndGet(v.remaining());
            return Verdict.PASS;
        });
        CompletableFuture<Seen> seen = new CompletableFuture<>();
        try (TestServer up = sink(seen, 0)) {
            InetSocketAddress a = fx.listen(Role.CLIENT, up.address());
            String sent;
            try (Socket s = EngineFixture.connect(a)) {
                sent = send(s.getOutputStream(), total, 5, () -> {
                    try {
                        waitFor(() -> fx.engine.splicedBytes() > 0, "the relay to start");
                        fx.add(counter, new ModuleConfig("counter", null, null, null, null, null, true, Map.of()));
                        waitFor(() -> counter.attaches.get() == 1, "the module to attach");
                    } catch (Exception e) {
                        throw new AssertionError(e);
                    }
                });
                s.shutdownOutput();
                assertThat(s.getInputStream().read()).isEqualTo(-1);
            }
            Seen got = seen.get(30, TimeUnit.SECONDS);
            assertThat(got.bytes()).isEqualTo(total);
            assertThat(got.sha256()).isEqualTo(sent);
        }
        // the relay stopped for the module: it saw the rest of the stream (at least the second half, less what was in flight)
        assertThat(moduleSaw.get()).isGreaterThan(total / 4).isLessThanOrEqualTo(total);
        assertThat(fx.engine.splicedBytes()).isLessThan(total);
    }

    @Test
    void aResetFromTheClientWhileSplicingResetsTheUpstream() throws Exception {
        long pipesBefore = pipes();
        CompletableFuture<Seen> seen = new CompletableFuture<>();
        try (TestServer up = sink(seen, Long.MAX_VALUE)) { // a reader slow enough to keep the relay busy
            InetSocketAddress a = fx.listen(Role.CLIENT, up.address());
            Socket s = EngineFixture.connect(a);
            CompletableFuture<Void> writing = CompletableFuture.runAsync(() -> {
                try {
                    send(s.getOutputStream(), 1L << 30, 6, null);
                } catch (IOException expected) {
                    // the socket is reset under the writer
                }
            }, THREADS);
            waitFor(() -> fx.engine.splicedBytes() > 0, "the relay to start");
            s.setSoLinger(true, 0);
            s.close(); // RST
            Seen got = seen.get(30, TimeUnit.SECONDS);
            assertThat(got.error()).isInstanceOf(SocketException.class);
            writing.get(30, TimeUnit.SECONDS);
        }
        waitFor(() -> fx.engine.connectionCount() == 0, "the connection to close");
        assertThat(pipes()).as("pipe descriptors left open after a reset").isLessThanOrEqualTo(pipesBefore);
    }

    @Test
    void withSpliceOffOrADataHookEveryByteGoesThroughTheEventLoop() throws Exception {
        fx.close();
        fx = new EngineFixture(EngineOptions.defaults().withIoThreads(2).withSplice(false));
        long total = 32L << 20;
        for (int i = 0; i < 2; i++) {
            if (i == 1) {
                fx.close();
                fx = new EngineFixture();
                fx.add(TestModule.named("looks").onRecv((st, ctx, v) -> Verdict.PASS)); // a RECV hook: no splice either way
            }
            CompletableFuture<Seen> seen = new CompletableFuture<>();
            try (TestServer up = sink(seen, 0)) {
                InetSocketAddress a = fx.listen(Role.CLIENT, up.address());
                String sent;
                try (Socket s = EngineFixture.connect(a)) {
                    sent = send(s.getOutputStream(), total, 7, null);
                    s.shutdownOutput();
                    assertThat(s.getInputStream().read()).isEqualTo(-1);
                }
                assertThat(seen.get(30, TimeUnit.SECONDS).sha256()).isEqualTo(sent);
            }
            assertThat(fx.engine.splicedConnections()).isZero();
        }
    }

    private static InputStream uncheckedIn(Socket s) {
        try {
            return s.getInputStream();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
