package dev.interlayer.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.api.Role;
import dev.interlayer.api.Verdict;
import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.engine.testing.TestModule;
import dev.interlayer.engine.testing.TestServer;
import io.netty.buffer.ByteBufAllocatorMetric;
import io.netty.buffer.ByteBufAllocatorMetricProvider;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Socket conformance through the agent: half-close, resets from either side, slow and absent readers, and
 * byte-exact large transfers. Each runs on the fast path (no module) and through a module chain.
 */
class StreamConformanceTest {

    private EngineFixture fx;

    @BeforeEach
    void start() {
        fx = new EngineFixture();
    }

    @AfterEach
    void stop() {
        fx.close();
    }

    /** Two chained modules that XOR every byte with the same key on SEND and on RECV: net effect nothing, every chunk rewritten. */
    private void addModules(boolean withModules) throws Exception {
        if (!withModules) return;
        for (int i = 0; i < 2; i++) {
            fx.add(TestModule.named("xor" + i).priority(10 + i)
                    .onSend(StreamConformanceTest::xor)
                    .onRecv(StreamConformanceTest::xor));
        }
    }

    private static Verdict xor(TestModule.State st, dev.interlayer.api.StreamContext ctx, dev.interlayer.api.ByteView v) {
        byte[] b = new byte[v.remaining()];
        v.readFully(b, 0, b.length);
        for (int i = 0; i < b.length; i++) b[i] ^= 0x5A;
        ctx.replace().write(b);
        return Verdict.PASS;
    }

    /**
     * Memory held by the allocator the agent's connections allocate from, {@link Engine#ALLOCATOR} (not
     * {@code ByteBufAllocator.DEFAULT}, which the engine never uses). Pooled (the default): the arenas' chunks, i.e.
     * memory the pool has taken; adaptive ({@code -Dinterlayer.engine.allocator=adaptive}): its own count. Both
     * allocators provide the metric; heap is counted too so a switch to heap buffers cannot hide growth.
     */
    private static long agentMemory() {
        ByteBufAllocatorMetric m = ((ByteBufAllocatorMetricProvider) Engine.ALLOCATOR).metric();
        return m.usedDirectMemory() + m.usedHeapMemory();
    }

    @ParameterizedTest(name = "modules={0}")
    @ValueSource(booleans = {false, true})
    void halfCloseFromTheClientIsPropagatedAndTheReplyStillArrives(boolean withModules) throws Exception {
        addModules(withModules);
        try (TestServer up = TestServer.echo()) {
            InetSocketAddress a = fx.listen(Role.CLIENT, up.address());
            try (Socket s = EngineFixture.connect(a)) {
                s.getOutputStream().write("request".getBytes(StandardCharsets.US_ASCII));
                s.shutdownOutput();
                byte[] reply = s.getInputStream().readAllBytes(); // the echo half-closes after the last byte
                assertThat(new String(reply, StandardCharsets.US_ASCII)).isEqualTo("request");
            }
        }
    }

    @ParameterizedTest(name = "modules={0}")
    @ValueSource(booleans = {false, true})
    void halfCloseFromTheServerLeavesTheOtherDirectionOpen(boolean withModules) throws Exception {
        addModules(withModules);
        CountDownLatch gotLate = new CountDownLatch(1);
        try (TestServer up = new TestServer(s -> {
            s.getOutputStream().write("banner".getBytes(StandardCharsets.US_ASCII));
            s.shutdownOutput(); // server done talking, still listening
            byte[] rest = s.getInputStream().readAllBytes();
            if (new String(rest, StandardCharsets.US_ASCII).equals("late data")) gotLate.countDown();
        })) {
            InetSocketAddress a = fx.listen(Role.CLIENT, up.address());
            try (Socket s = EngineFixture.connect(a)) {
                assertThat(new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII)).isEqualTo("banner");
                s.getOutputStream().write("late data".getBytes(StandardCharsets.US_ASCII));
                s.shutdownOutput();
                assertThat(gotLate.await(10, TimeUnit.SECONDS)).isTrue();
            }
        }
    }

    @ParameterizedTest(name = "modules={0}")
    @ValueSource(booleans = {false, true})
    void aResetFromTheClientResetsTheUpstream(boolean withModules) throws Exception {
        addModules(withModules);
        CompletableFuture<Throwable> serverSaw = new CompletableFuture<>();
        CountDownLatch accepted = new CountDownLatch(1);
        try (TestServer up = new TestServer(s -> {
            accepted.countDown();
            try {
                InputStream in = s.getInputStream();
                while (in.read() >= 0) {
                    // wait for the end
                }
                serverSaw.complete(null);
            } catch (IOException e) {
                serverSaw.complete(e);
            }
        })) {
            InetSocketAddress a = fx.listen(Role.CLIENT, up.address());
            Socket s = EngineFixture.connect(a);
            s.getOutputStream().write(1);
            assertThat(accepted.await(10, TimeUnit.SECONDS)).isTrue();
            Thread.sleep(100);
            s.setSoLinger(true, 0);
            s.close(); // RST
            assertThat(serverSaw.get(10, TimeUnit.SECONDS)).isInstanceOf(SocketException.class);
        }
    }

    @ParameterizedTest(name = "modules={0}")
    @ValueSource(booleans = {false, true})
    void aResetFromTheServerResetsTheClient(boolean withModules) throws Exception {
        addModules(withModules);
        try (TestServer up = new TestServer(s -> {
            s.getInputStream().read();
            s.setSoLinger(true, 0);
            s.close();
        })) {
            InetSocketAddress a = fx.listen(Role.CLIENT, up.address());
            try (Socket s = EngineFixture.connect(a)) {
                s.getOutputStream().write(1);
                assertThatThrownBy(() -> s.getInputStream().read()).isInstanceOf(SocketException.class);
            }
        }
    }

    @ParameterizedTest(name = "modules={0}")
    @ValueSource(booleans = {false, true})
    void aPeerThatNeverReadsDoesNotGrowTheAgentsMemoryAndLaterGetsEveryByte(boolean withModules) throws Exception {
        addModules(withModules);
        long total = 256L << 20;
        AtomicLong written = new AtomicLong();
        MessageDigest sent = MessageDigest.getInstance("SHA-256");
        try (TestServer up = new TestServer(s -> {
            OutputStream out = s.getOutputStream();
            byte[] chunk = new byte[64 * 1024];
            SplittableRandom r = new SplittableRandom(7);
            long left = total;
            while (left > 0) {
                int n = (int) Math.min(chunk.length, left);
                for (int i = 0; i < n; i++) chunk[i] = (byte) r.nextInt(256);
                synchronized (sent) {
                    sent.update(chunk, 0, n);
                }
                out.write(chunk, 0, n);
                written.addAndGet(n);
                left -= n;
            }
            s.shutdownOutput();
            s.getInputStream().read();
        })) {
            InetSocketAddress a = fx.listen(Role.CLIENT, up.address());
            try (Socket s = EngineFixture.connect(a)) {
                // The client does not read: the server must soon be blocked by back-pressure, with bounded agent memory.
                long before = agentMemory();
                // Wait (up to 20 s on a busy machine) until the server's writes have not moved for 500 ms.
                long stalledAt = -1;
                long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
                while (System.nanoTime() < deadline) {
                    long w = written.get();
                    if (w == stalledAt) break;
                    stalledAt = w;
                    Thread.sleep(500);
                }
                assertThat(written.get()).as("server writes stall while nobody reads").isEqualTo(stalledAt).isLessThan(total);
                assertThat(agentMemory() - before).as("agent buffer memory while the peer does not read").isLessThan(16L << 20);
                // Now a slow reader: small reads with pauses; memory stays bounded throughout.
                MessageDigest got = MessageDigest.getInstance("SHA-256");
                InputStream in = s.getInputStream();
                byte[] buf = new byte[256 * 1024];
                long n = 0;
                long maxUsed = 0;
                int r;
                int reads = 0;
                while ((r = in.read(buf, 0, reads < 200 ? 4096 : buf.length)) > 0) {
                    got.update(buf, 0, r);
                    n += r;
                    if (++reads < 200) {
                        Thread.sleep(2);
                        maxUsed = Math.max(maxUsed, agentMemory() - before);
                    }
                }
                assertThat(n).isEqualTo(total);
                assertThat(maxUsed).as("agent buffer memory under a slow reader").isLessThan(16L << 20);
                synchronized (sent) {
                    assertThat(HexFormat.of().formatHex(got.digest())).isEqualTo(HexFormat.of().formatHex(sent.digest()));
                }
            }
        }
    }

    @ParameterizedTest(name = "modules={0}")
    @ValueSource(booleans = {false, true})
    void concurrentLargeTransfersWithRandomWriteSizesArriveByteExact(boolean withModules) throws Exception {
        addModules(withModules);
        int conns = 4;
        long perConn = 32L << 20;
        try (TestServer up = TestServer.echo()) {
            InetSocketAddress a = fx.listen(Role.CLIENT, up.address());
            List<CompletableFuture<Void>> all = new ArrayList<>();
            for (int c = 0; c < conns; c++) {
                final int seed = c;
                all.add(CompletableFuture.runAsync(() -> {
                    try (Socket s = EngineFixture.connect(a)) {
                        MessageDigest sent = MessageDigest.getInstance("SHA-256");
                        MessageDigest got = MessageDigest.getInstance("SHA-256");
                        Thread reader = Thread.ofVirtual().start(() -> {
                            try {
                                byte[] buf = new byte[128 * 1024];
                                int r;
                                InputStream in = s.getInputStream();
                                while ((r = in.read(buf)) > 0) got.update(buf, 0, r);
                            } catch (IOException e) {
                                throw new RuntimeException(e);
                            }
                        });
                        SplittableRandom rnd = new SplittableRandom(seed);
                        byte[] buf = new byte[200_000];
                        rnd.nextBytes(buf);
                        OutputStream out = s.getOutputStream();
                        long left = perConn;
                        while (left > 0) {
                            int n = (int) Math.min(left, 1 + rnd.nextInt(buf.length));
                            int off = rnd.nextInt(buf.length - n + 1);
                            sent.update(buf, off, n);
                            out.write(buf, off, n);
                            left -= n;
                        }
                        s.shutdownOutput();
                        reader.join(Duration.ofSeconds(60));
                        assertThat(HexFormat.of().formatHex(got.digest())).isEqualTo(HexFormat.of().formatHex(sent.digest()));
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                }));
            }
            CompletableFuture.allOf(all.toArray(CompletableFuture[]::new)).get(120, TimeUnit.SECONDS);
        }
    }
}
