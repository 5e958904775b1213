package dev.interlayer.engine;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.api.Role;
import dev.interlayer.engine.testing.EngineFixture;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;
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

    /**
     * Fills the accept queue of {@code upstream} (made with a backlog of 1): its next connection's SYN is dropped and
     * retried, so an agent's connect to it stays pending for a second or more. Close the fillers to let it through.
     */
    static List<Socket> fillAcceptQueue(ServerSocket upstream) {
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
        return fillers;
    }

    @Test
    void aClientSendingBeforeTheUpstreamConnectsIsStalledThenDeliveredByteExact() throws Exception {
        long total = 32L << 20;
        try (EngineFixture fx = new EngineFixture(EngineOptions.defaults().withIoThreads(2));
             ServerSocket upstream = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
             var threads = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Socket> fillers = fillAcceptQueue(upstream);
            InetSocketAddress a = fx.listen(Role.CLIENT, (InetSocketAddress) upstream.getLocalSocketAddress());
            AtomicLong written = new AtomicLong();
            try (Socket client = EngineFixture.connect(a)) {
                CompletableFuture<String> sent = CompletableFuture.supplyAsync(() -> {
                    try {
                        OutputStream counted = new java.io.FilterOutputStream(client.getOutputStream()) {
                            @Override
                            public void write(byte[] b, int off, int len) throws java.io.IOException {
                                out.write(b, off, len);
                                written.addAndGet(len);
                            }
                        };
                        String sha = SpliceTest.send(counted, total, 11, null);
                        client.shutdownOutput();
                        return sha;
                    } catch (java.io.IOException e) {
                        throw new java.io.UncheckedIOException(e);
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
                SpliceTest.Seen got = null;
                for (int i = 0; i < 8 && (got == null || got.bytes() == 0); i++) {
                    try (Socket s = upstream.accept()) {
                        got = SpliceTest.drain(s.getInputStream(), 0, 1, 0);
                    }
                }
                assertThat(got.bytes()).isEqualTo(total);
                assertThat(got.sha256()).isEqualTo(sent.get(30, TimeUnit.SECONDS));
            }
        }
    }
}
