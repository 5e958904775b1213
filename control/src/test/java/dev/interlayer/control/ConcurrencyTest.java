package dev.interlayer.control;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.api.Role;
import dev.interlayer.control.testing.ControlFixture;
import dev.interlayer.control.testing.CountingControlModule;
import dev.interlayer.control.v1.AuditQuery;
import dev.interlayer.control.v1.HealthRequest;
import dev.interlayer.control.v1.ListConnectionsRequest;
import dev.interlayer.control.v1.ListModulesRequest;
import dev.interlayer.control.v1.ModuleControlRequest;
import dev.interlayer.control.v1.ModuleStatsRequest;
import dev.interlayer.control.v1.SetPriorityRequest;
import dev.interlayer.control.v1.SetStateRequest;
import dev.interlayer.control.v1.StateChange;
import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.engine.testing.TestServer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * Many control clients at once while traffic flows through the agent: every call is answered (none lost,
 * none refused for load), every decision is audited, and the data plane delivers every byte exactly.
 */
class ConcurrencyTest {

    static final int CLIENTS = 200;
    static final int CALLS_EACH = 10;
    static final int STREAMS = 8;
    static final int STREAM_BYTES = 4 << 20;

    @Test
    void twoHundredClientsWithMixedCallsLoseNoCallAndTheDataPlaneStaysExact() throws Exception {
        try (ControlFixture f = new ControlFixture(); TestServer echo = TestServer.echo()) {
            CountingControlModule ctl = new CountingControlModule();
            f.engine.add(ctl);
            InetSocketAddress entry = f.engine.listen(Role.CLIENT, echo.address());
            ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
            CountDownLatch go = new CountDownLatch(1);
            // traffic: echo streams through the agent, checked by hash
            List<Future<Boolean>> traffic = new ArrayList<>();
            for (int i = 0; i < STREAMS; i++) {
                int seed = i;
                traffic.add(pool.submit(() -> {
                    go.await();
                    return echoExactly(entry, seed);
                }));
            }
            EventLoopGroup loops = new MultiThreadIoEventLoopGroup(2, EpollIoHandler.newFactory());
            AtomicInteger answered = new AtomicInteger();
            AtomicInteger controls = new AtomicInteger();
            ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<>();
            List<Future<?>> clients = new ArrayList<>();
            for (int i = 0; i < CLIENTS; i++) {
                int id = i;
                clients.add(pool.submit(() -> {
                    try (ControlClient c = ControlClient.unix(f.server.socket(), loops)) {
                        go.await();
                        for (int k = 0; k < CALLS_EACH; k++) {
                            try {
                                switch ((id + k) % 8) {
                                    case 0 -> c.modules().list(ListModulesRequest.getDefaultInstance());
                                    case 1 -> c.modules().stats(ModuleStatsRequest.getDefaultInstance());
                                    case 2 -> c.connections().list(ListConnectionsRequest.getDefaultInstance());
                                    case 3 -> c.health().check(HealthRequest.getDefaultInstance());
                                    case 4 -> {
                                        c.modules().control(ModuleControlRequest.newBuilder().setName("ctl").setCommand("status").build());
                                        controls.incrementAndGet();
                                    }
                                    case 5 -> c.modules().setPriority(SetPriorityRequest.newBuilder().setName("ctl").setPriority(id).build());
                                    case 6 -> c.modules().setState(SetStateRequest.newBuilder().setName("ctl")
                                            .setState(id % 2 == 0 ? StateChange.DEACTIVATE : StateChange.ACTIVATE).build());
                                    default -> c.audit().query(AuditQuery.newBuilder().setLimit(10).build());
                                }
                                answered.incrementAndGet();
                            } catch (RuntimeException e) {
                                failures.add("client " + id + " call " + k + ": " + e);
                            }
                        }
                    }
                    return null;
                }));
            }
            long started = System.nanoTime();
            go.countDown();
            for (Future<?> c : clients) {
                c.get(120, TimeUnit.SECONDS);
            }
            for (Future<Boolean> t : traffic) {
                assertThat(t.get(120, TimeUnit.SECONDS)).as("a stream through the agent came back byte for byte").isTrue();
            }
            long ms = (System.nanoTime() - started) / 1_000_000;
            loops.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
            pool.shutdown();
            assertThat(failures).as("calls that failed").isEmpty();
            assertThat(answered).hasValue(CLIENTS * CALLS_EACH);
            assertThat(ctl.calls).hasValue(controls.get());
            // every call: one request decision and one response decision, all granted to root
            assertThat(f.server.audit().lastSeq()).isEqualTo(2L * CLIENTS * CALLS_EACH);
            assertThat(f.server.audit().query(100_000, "denied", null, 0)).isEmpty();
            System.out.println("ConcurrencyTest: " + CLIENTS * CALLS_EACH + " calls from " + CLIENTS + " clients and " + STREAMS + " x "
                    + (STREAM_BYTES >> 20) + " MiB echoed in " + ms + " ms");
        }
    }

    /** Sends random bytes through the agent to the echo server and checks that the same bytes come back. */
    private static boolean echoExactly(InetSocketAddress entry, int seed) throws Exception {
        byte[] data = new byte[STREAM_BYTES];
        new Random(seed).nextBytes(data);
        try (Socket s = EngineFixture.connect(entry)) {
            Thread writer = Thread.ofVirtual().start(() -> {
                try {
                    OutputStream out = s.getOutputStream();
                    Random r = new Random(seed + 1000);
                    for (int off = 0; off < data.length; ) {
                        int n = Math.min(data.length - off, 1 + r.nextInt(64 * 1024));
                        out.write(data, off, n);
                        off += n;
                    }
                    s.shutdownOutput();
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            InputStream in = s.getInputStream();
            byte[] back = in.readAllBytes();
            writer.join();
            return MessageDigest.isEqual(MessageDigest.getInstance("SHA-256").digest(data), MessageDigest.getInstance("SHA-256").digest(back));
        }
    }
}
