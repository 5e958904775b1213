package dev.interlayer.engine;

import static dev.interlayer.engine.SpliceTest.drain;
import static dev.interlayer.engine.SpliceTest.send;
import static dev.interlayer.engine.SpliceTest.waitFor;
import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.api.Role;
import dev.interlayer.api.Side;
import dev.interlayer.api.SocketOption;
import dev.interlayer.api.Verdict;
import dev.interlayer.engine.SpliceTest.Seen;
import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.engine.testing.TestModule;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.runtime.ModuleConfig;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The direct path: connections no module selects run on raw sockets below Netty's channels. Byte-exact through
 * back-pressure and half-close in both orders, a request and its end sent while the upstream connects, a failed
 * connect, the listener's socket options, the listing, a module applied now (the connection becomes a channel
 * connection and the module sees its next bytes), and no descriptor left behind.
 */
class DirectPathTest {

    /** Splice off: bulk transfers stay on the direct path instead of going to the splice relay. */
    private EngineFixture fx = new EngineFixture(EngineOptions.defaults().withIoThreads(2).withSplice(false));

    @AfterEach
    void stop() {
        fx.close();
    }

    /** Open socket descriptors of this process. */
    static long sockets() {
        try (var fds = java.nio.file.Files.list(java.nio.file.Path.of("/proc/self/fd"))) {
            return fds.filter(f -> {
                try {
                    return java.nio.file.Files.readSymbolicLink(f).toString().startsWith("socket:");
                } catch (IOException gone) {
                    return false;
                }
            }).count();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void aSlowReaderHoldsTheStreamBackAndEveryByteArrivesThenTheEnd() throws Exception {
        long total = 24L << 20;
        CompletableFuture<Seen> seen = new CompletableFuture<>();
        try (TestServer up = new TestServer(s -> seen.complete(drain(s.getInputStream(), total, 256 * 1024, 3)))) {
            InetSocketAddress a = fx.listen(Role.CLIENT, up.address());
            long socketsBefore = sockets();
            String sent;
            try (Socket s = EngineFixture.connect(a)) {
                sent = send(s.getOutputStream(), total, 11, null);
                s.shutdownOutput();
                assertThat(s.getInputStream().read()).isEqualTo(-1); // the server's end, after ours reached it
            }
            Seen got = seen.get(60, TimeUnit.SECONDS);
            assertThat(got.error()).isNull();
            assertThat(got.bytes()).isEqualTo(total);
            assertThat(got.sha256()).isEqualTo(sent);
            waitFor(() -> fx.engine.connectionCount() == 0, "the connection to close");
            waitFor(() -> sockets() <= socketsBefore, "the sockets to close (" + socketsBefore + " before)");
        }
        assertThat(fx.engine.directConnections()).isEqualTo(1);
        assertThat(fx.engine.promotions()).isZero();
    }

    @Test
    void bothDirectionsAtOnceWithTheServerHalfClosingFirst() throws Exception {
        SpliceTest.bothDirectionsWithTheServerHalfClosingFirst(fx, 20L << 20, 12L << 20, 12);
        assertThat(fx.engine.directConnections()).isEqualTo(1);
        assertThat(fx.engine.promotions()).isZero();
    }

    @Test
    void aRequestAndItsEndSentWhileTheUpstreamConnectsArriveInOrder() throws Exception {
        // with bytes before the end, and an end alone (a client that half-closes at once)
        for (String request : new String[] {"ping", ""}) {
            try (ServerSocket upstream = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
                List<Socket> fillers = EarlyReadTest.fillAcceptQueue(upstream);
                InetSocketAddress a = fx.listen(Role.CLIENT, (InetSocketAddress) upstream.getLocalSocketAddress());
                try (Socket client = EngineFixture.connect(a)) {
                    client.getOutputStream().write(request.getBytes(StandardCharsets.US_ASCII));
                    client.shutdownOutput(); // the end, too, before the upstream is connected
                    Thread.sleep(300);
                    for (Socket f : fillers) f.close();
                    // serve every connection: the fillers' end at once with nothing; each gets the reply
                    StringBuffer got = new StringBuffer();
                    SpliceTest.THREADS.submit(() -> {
                        while (!upstream.isClosed()) {
                            try (Socket s = upstream.accept()) {
                                s.setSoTimeout(20_000);
                                got.append(new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII)); // to the end
                                s.getOutputStream().write("pong".getBytes(StandardCharsets.US_ASCII));
                            } catch (IOException e) {
                                // a filler's connection reset, or the server closed
                            }
                        }
                    });
                    assertThat(new String(client.getInputStream().readAllBytes(), StandardCharsets.US_ASCII)).isEqualTo("pong");
                    assertThat(got.toString()).isEqualTo(request);
                }
            }
            waitFor(() -> fx.engine.connectionCount() == 0, "the connection to close");
        }
        assertThat(fx.engine.directConnections()).isEqualTo(2);
    }

    @Test
    void aRequestSentBeforeTheUpstreamAnswersIsDeliveredAndTheListingShowsTheConnection() throws Exception {
        CompletableFuture<String> request = new CompletableFuture<>();
        try (TestServer server = new TestServer(s -> {
            byte[] b = new byte[5];
            new java.io.DataInputStream(s.getInputStream()).readFully(b);
            request.complete(new String(b, StandardCharsets.US_ASCII));
            s.getOutputStream().write("world".getBytes(StandardCharsets.US_ASCII));
            s.getInputStream().read(); // until the client closes
        })) {
            InetSocketAddress a = fx.listen(Role.CLIENT, server.address());
            try (Socket s = EngineFixture.connect(a)) {
                s.getOutputStream().write("hello".getBytes(StandardCharsets.US_ASCII));
                assertThat(new String(s.getInputStream().readNBytes(5), StandardCharsets.US_ASCII)).isEqualTo("world");
                assertThat(request.get(10, TimeUnit.SECONDS)).isEqualTo("hello");
                var listed = fx.engine.connections();
                assertThat(listed).hasSize(1);
                ConnectionSnapshot c = listed.getFirst();
                assertThat(c.modules()).isEmpty();
                assertThat(c.bytesSent()).isEqualTo(5);
                assertThat(c.bytesReceived()).isEqualTo(5);
                assertThat(c.local()).isEqualTo(s.getLocalSocketAddress());
                assertThat(c.remote()).isEqualTo(server.address());
            }
        }
        waitFor(() -> fx.engine.connectionCount() == 0, "the connection to close");
        assertThat(fx.engine.directConnections()).isEqualTo(1);
    }

    @Test
    void aModuleAppliedNowTurnsAnOpenConnectionIntoAChannelOneAndSeesItsNextBytes() throws Exception {
        CopyOnWriteArrayList<String> moduleSaw = new CopyOnWriteArrayList<>();
        TestModule watcher = TestModule.named("watcher").onSend((st, ctx, v) -> {
            moduleSaw.add(new String(v.copyRemaining(), StandardCharsets.US_ASCII));
            return Verdict.PASS;
        });
        try (TestServer echo = TestServer.echo()) {
            InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
            try (Socket s = EngineFixture.connect(a)) {
                OutputStream out = s.getOutputStream();
                InputStream in = s.getInputStream();
                out.write("before".getBytes(StandardCharsets.US_ASCII));
                assertThat(new String(in.readNBytes(6), StandardCharsets.US_ASCII)).isEqualTo("before");
                long id = fx.engine.connections().getFirst().id();
                assertThat(fx.engine.promotions()).isZero();

                fx.add(watcher, new ModuleConfig("watcher", null, null, null, null, null, true, Map.of())); // apply-now
                waitFor(() -> watcher.attaches.get() == 1, "the module to attach");
                out.write("after".getBytes(StandardCharsets.US_ASCII));
                assertThat(new String(in.readNBytes(5), StandardCharsets.US_ASCII)).isEqualTo("after");

                assertThat(String.join("", moduleSaw)).isEqualTo("after");
                assertThat(fx.engine.promotions()).isEqualTo(1);
                ConnectionSnapshot c = fx.engine.connections().getFirst();
                assertThat(c.id()).as("the same connection, now in channels").isEqualTo(id);
                assertThat(c.modules()).containsExactly("watcher@" + watcher.descriptor().version());
                assertThat(c.bytesSent()).isEqualTo(11);
                s.shutdownOutput();
                assertThat(in.read()).isEqualTo(-1);
            }
        }
        waitFor(() -> fx.engine.connectionCount() == 0, "the connection to close");
    }

    @Test
    void theListenersSocketOptionsAreSetOnBothSockets() throws Exception {
        try (TestServer echo = TestServer.echo()) {
            InetSocketAddress a = fx.engine.start(new ListenerSpec("opts", dev.interlayer.api.Protocol.TCP, Role.CLIENT,
                    new InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), 0), echo.address(),
                    Map.of(SocketOption.SO_KEEPALIVE, true, SocketOption.TCP_NODELAY, false), List.of()));
            try (Socket s = EngineFixture.connect(a)) {
                s.getOutputStream().write('x');
                assertThat(s.getInputStream().read()).isEqualTo('x');
                long id = fx.engine.connections().getFirst().id();
                // read back from the sockets themselves, on the direct path (nothing promoted it)
                for (Side side : Side.values()) {
                    assertThat(fx.engine.option(id, side, SocketOption.SO_KEEPALIVE)).as(side + " keep-alive").isEqualTo(Boolean.TRUE);
                    assertThat(fx.engine.option(id, side, SocketOption.TCP_NODELAY)).as(side + " no-delay").isEqualTo(Boolean.FALSE);
                    assertThat(fx.engine.option(id, side, SocketOption.SO_LINGER)).as(side + " linger").isEqualTo(-1);
                }
            }
        }
        assertThat(fx.engine.directConnections()).isEqualTo(1);
        assertThat(fx.engine.promotions()).isZero();
    }

    @Test
    void aConnectThatDoesNotCompleteInTheTimeoutResetsTheClient() throws Exception {
        fx.close();
        fx = new EngineFixture(new EngineOptions(2, true, 4L << 20, java.time.Duration.ofMillis(200), EngineOptions.DEFAULT_ALLOC_LIMIT, java.time.Duration.ofMillis(300),
                false, true, true));
        try (ServerSocket upstream = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            List<Socket> fillers = EarlyReadTest.fillAcceptQueue(upstream); // the agent's SYN is dropped: no connect
            InetSocketAddress a = fx.listen(Role.CLIENT, (InetSocketAddress) upstream.getLocalSocketAddress());
            long started = System.nanoTime();
            try (Socket client = EngineFixture.connect(a)) {
                client.getOutputStream().write("ping".getBytes(StandardCharsets.US_ASCII));
                try {
                    assertThat(client.getInputStream().read()).isEqualTo(-1);
                } catch (SocketException reset) {
                    // the agent resets the client when the connect times out
                }
            } finally {
                for (Socket f : fillers) f.close();
            }
            long ms = (System.nanoTime() - started) / 1_000_000;
            assertThat(ms).as("closed by the 300 ms connect timeout, not by the SYN retries").isBetween(250L, 5_000L);
        }
        waitFor(() -> fx.engine.connectionCount() == 0, "the connection to close");
        assertThat(fx.engine.directConnections()).isEqualTo(1);
    }

    @Test
    void aRefusedConnectClosesTheClientAndLeavesNothingOpen() throws Exception {
        InetSocketAddress closed;
        try (ServerSocket ss = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closed = (InetSocketAddress) ss.getLocalSocketAddress();
        }
        InetSocketAddress a = fx.listen(Role.CLIENT, closed);
        long socketsBefore = sockets();
        for (int i = 0; i < 20; i++) {
            try (Socket s = EngineFixture.connect(a)) {
                s.getOutputStream().write("hello".getBytes(StandardCharsets.US_ASCII));
                assertThat(s.getInputStream().read()).isEqualTo(-1);
            } catch (SocketException reset) {
                // the agent resets the client when the upstream refuses (the write or the read sees it)
            }
        }
        waitFor(() -> fx.engine.connectionCount() == 0, "the connections to close");
        waitFor(() -> sockets() <= socketsBefore, "the sockets to close (" + socketsBefore + " before)");
    }

    @Test
    void withOneListeningSocketOrTheDirectPathOffConnectionsRunInChannels() throws Exception {
        for (EngineOptions o : new EngineOptions[] {EngineOptions.defaults().withIoThreads(2).withReusePort(false),
                EngineOptions.defaults().withIoThreads(2).withDirect(false)}) {
            fx.close();
            fx = new EngineFixture(o);
            try (TestServer echo = TestServer.echo()) {
                InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
                try (Socket s = EngineFixture.connect(a)) {
                    s.getOutputStream().write('z');
                    assertThat(s.getInputStream().read()).isEqualTo('z');
                }
            }
            assertThat(fx.engine.directConnections()).isZero();
        }
    }
}
