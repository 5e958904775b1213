package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.agent.Agent;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleStats;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two agents back to back with the real {@code tag} module jar: the client-side agent tags SEND, the
 * server-side agent strips on RECV (and the reverse for replies); the applications see their original bytes.
 */
class TagBackToBackTest {

    @TempDir
    Path tmp;

    private static String yaml(String name, String role, int listenPort, InetSocketAddress upstream) {
        return """
                agent:
                  modules-dir: modules
                  control: {socket: control.sock}
                  io-threads: 2
                listeners:
                  - name: %s
                    listen: 127.0.0.1:%d
                    upstream: %s:%d
                    role: %s
                modules:
                  - name: tag
                    params: {every: 1000}
                """.formatted(name, listenPort, upstream.getAddress().getHostAddress(), upstream.getPort(), role);
    }

    @Test
    void moreThan100MiBCrossTwoTaggingAgentsByteExactWithRandomWritesOnConcurrentConnections() throws Exception {
        Agents.deploySample("tag", tmp.resolve("server-side/modules"));
        Agents.deploySample("tag", tmp.resolve("client-side/modules"));
        int conns = 4;
        long perConn = 28L << 20; // 4 x 28 MiB = 112 MiB each way
        try (TestServer app = TestServer.echo();
             Agent server = Agents.start(tmp.resolve("server-side"), yaml("in", "server", 0, app.address()));
             Agent client = Agents.start(tmp.resolve("client-side"), yaml("out", "client", 0, server.listeners().get("in")))) {
            InetSocketAddress entry = client.listeners().get("out");
            List<CompletableFuture<Void>> all = new ArrayList<>();
            for (int c = 0; c < conns; c++) {
                final int seed = 100 + c;
                all.add(CompletableFuture.runAsync(() -> transfer(entry, perConn, seed)));
            }
            CompletableFuture.allOf(all.toArray(CompletableFuture[]::new)).get(5, TimeUnit.MINUTES);

            // The wire between the agents carried the tags: 32 bytes per 1000 in each direction.
            ModuleStats.Snapshot cs = stats(client);
            ModuleStats.Snapshot ss = stats(server);
            long payload = conns * perConn;
            assertThat(cs.bytesIn()[0]).isEqualTo(payload);
            assertThat(cs.bytesOut()[0]).isEqualTo(payload + payload / 1000 * 32 - tagsNotYetDue(perConn, conns));
            assertThat(ss.bytesOut()[1]).as("server side stripped every tag").isEqualTo(payload);
            assertThat(ss.faults()).isZero();
            assertThat(cs.faults()).isZero();
        }
    }

    /** Tags are inserted after every full 1000 bytes; a stream whose length is a multiple of 1000 ends with one. */
    private static long tagsNotYetDue(long perConn, int conns) {
        return 0;
    }

    private static ModuleStats.Snapshot stats(Agent a) throws InterruptedException {
        LoadedModule tag = a.registry().find("tag").orElseThrow();
        Agents.waitFor("connections closed", () -> tag.liveAttachments() == 0);
        return tag.stats();
    }

    private static void transfer(InetSocketAddress entry, long total, int seed) {
        try (Socket s = new Socket(entry.getAddress(), entry.getPort())) {
            s.setSoTimeout((int) Duration.ofSeconds(60).toMillis());
            MessageDigest sent = MessageDigest.getInstance("SHA-256");
            MessageDigest got = MessageDigest.getInstance("SHA-256");
            long[] received = new long[1];
            Thread reader = Thread.ofVirtual().start(() -> {
                try {
                    InputStream in = s.getInputStream();
                    byte[] buf = new byte[128 * 1024];
                    int n;
                    while ((n = in.read(buf)) > 0) {
                        got.update(buf, 0, n);
                        received[0] += n;
                    }
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            SplittableRandom r = new SplittableRandom(seed);
            byte[] data = new byte[300_000];
            r.nextBytes(data);
            OutputStream out = s.getOutputStream();
            long left = total;
            while (left > 0) {
                int n = (int) Math.min(left, 1 + r.nextInt(r.nextBoolean() ? 1500 : data.length));
                int off = r.nextInt(data.length - n + 1);
                sent.update(data, off, n);
                out.write(data, off, n);
                left -= n;
            }
            s.shutdownOutput();
            reader.join(Duration.ofMinutes(2));
            assertThat(received[0]).isEqualTo(total);
            assertThat(HexFormat.of().formatHex(got.digest())).isEqualTo(HexFormat.of().formatHex(sent.digest()));
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }
}
