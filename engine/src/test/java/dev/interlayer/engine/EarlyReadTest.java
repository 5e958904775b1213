package dev.interlayer.engine;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.api.Role;
import dev.interlayer.engine.testing.EngineFixture;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * The accepted socket is read while the upstream connects, but only up to {@link ProxyConnection#EARLY_LIMIT}:
 * a client that sends faster than a slow upstream connect is stalled by TCP, not buffered by the agent, and
 * every byte arrives once the upstream is there.
 */
class EarlyReadTest {

    @Test
    void aClientSendingBeforeTheUpstreamConnectsIsStalledThenDeliveredByteExact() throws Exception {
        long total = 32L << 20;
        try (EngineFixture fx = new EngineFixture(EngineOptions.defaults().withIoThreads(2));
             ServerSocket upstream = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
             var threads = Executors.newVirtualThreadPerTaskExecutor()) {
            // Fill the upstream's accept queue: its next connection's SYN is dropped and retried, so the agent's
            // connect stays pending for a second or more.
            List<Socket> fillers = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                Socket f = new Socket();
                try {
                    f.connect(upstream.getLocalSocketAddress(), 200);
                } catch (java.io.IOException full) {
                    // the queue is full: that is what we want
                }
                fillers.add(f);
            }
            InetSocketAddress a = fx.listen(Role.CLIENT, (InetSocketAddress) upstream.getLocalSocketAddress());
            AtomicLong written = new AtomicLong();
            try (Socket client = EngineFixture.connect(a)) {
                CompletableFuture<String> sent = CompletableFuture.supplyAsync(() -> {
                    try {
                        OutputStream out = client.getOutputStream();
                        MessageDigest md = MessageDigest.getInstance("SHA-256");
                        SplittableRandom rnd = new SplittableRandom(11);
                        byte[] b = new byte[64 * 1024];
                        for (long n = 0; n < total; n += b.length) {
                            rnd.nextBytes(b);
                            out.write(b);
                            md.update(b);
                            written.addAndGet(b.length);
                        }
                        client.shutdownOutput();
                        return HexFormat.of().formatHex(md.digest());
                    } catch (Exception e) {
                        throw new AssertionError(e);
                    }
                }, threads);
                Thread.sleep(800);
                // The upstream is not connected yet: what the client got rid of is bounded by the kernel's buffers
                // and the agent's early limit, far below what it wants to send.
                assertThat(sent).isNotDone();
                assertThat(written.get()).isLessThan(total / 2);
                for (Socket f : fillers) f.close();
                upstream.setSoTimeout(20_000);
                // Accept what is queued: the fillers' connections end at once with no byte, the agent's carries them all.
                String got = null;
                long count = 0;
                for (int i = 0; i < 8 && got == null; i++) {
                    try (Socket s = upstream.accept()) {
                        MessageDigest md = MessageDigest.getInstance("SHA-256");
                        InputStream in = s.getInputStream();
                        byte[] b = new byte[64 * 1024];
                        int r;
                        count = 0;
                        while ((r = in.read(b)) >= 0) {
                            md.update(b, 0, r);
                            count += r;
                        }
                        if (count > 0) got = HexFormat.of().formatHex(md.digest());
                    }
                }
                assertThat(count).isEqualTo(total);
                assertThat(got).isEqualTo(sent.get(30, TimeUnit.SECONDS));
            }
        }
    }
}
