package dev.interlayer.engine;

import static dev.interlayer.engine.VerdictTest.waitFor;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.Role;
import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleConfig;
import dev.interlayer.runtime.ModuleState;
import dev.interlayer.runtime.testing.TestJars;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Hooks that run past their budget, from real module jars on real sockets: a module spinning in any hook is stopped
 * within a few budgets, the fault is counted and its policy applied; a module stuck where nothing can stop it is
 * reported, new connections go to the other event loop, a revoke ends its connections there and the engine still
 * stops in time. Throughout, another connection of the same engine keeps flowing, its bytes checked.
 */
class HookBudgetTest {

    private static final Duration BUDGET = Duration.ofMillis(200);
    /** "A few budgets": the watchdog flags a call after one to two budgets; the stop follows within milliseconds. */
    private static final Duration STOPPED_WITHIN = Duration.ofSeconds(2);

    @TempDir
    Path dir;
    private EngineFixture fx;
    private TestServer echo;
    private InetSocketAddress entry;
    private final List<Runnable> cleanups = new ArrayList<>();

    @BeforeEach
    void start() throws Exception {
        fx = new EngineFixture(EngineOptions.defaults().withIoThreads(2).withHookBudget(BUDGET), 3);
        echo = TestServer.echo();
        entry = fx.listen(Role.CLIENT, echo.address());
    }

    @AfterEach
    void stop() throws IOException {
        cleanups.forEach(Runnable::run); // first: a stuck loop returns, so the engine closes at once
        fx.close();
        echo.close();
    }

    /** Spins in the hook its {@code where} parameter names, when a SEND or RECV chunk holds a '!' (or on every attach). */
    private static final String RUNAWAY = """
            package hostile;
            import dev.interlayer.api.*;
            import java.time.Duration;
            public class Runaway implements StreamModule<Object>, SocketModule<Object> {
                static volatile long sink;
                private String where;
                public ModuleDescriptor descriptor() {
                    return ModuleDescriptor.builder("runaway", "1.0.0")
                            .implement(InterfaceType.STREAM, 1, 2).implement(InterfaceType.SOCKET, 1, 0)
                            .param(Param.ofString("where", "onSend", "the hook that spins")).build();
                }
                public void init(ModuleEnv env) { where = env.params().getString("where"); }
                public Attach<Object> attach(Attachment a) {
                    if (where.equals("attach")) spin();
                    if (where.equals("timer")) a.schedule(Duration.ofMillis(20), () -> spin());
                    return Attach.stateless();
                }
                public Verdict onSend(Object s, StreamContext c, ByteView v) {
                    if (v.indexOf((byte) '!') >= 0) {
                        switch (where) {
                            case "onSend" -> spin();
                            case "catch" -> { while (true) { try { spin(); } catch (Throwable t) { sink--; } } }
                            case "recursion" -> explode(0);
                            case "hoard" -> { java.util.List<byte[]> kept = new java.util.ArrayList<>(); while (true) kept.add(new byte[8 << 20]); }
                            case "timers" -> { for (int i = 0; i < 100_000; i++) c.attachment().schedule(Duration.ofHours(1), () -> { }); }
                            case "modest" -> { for (int i = 0; i < 16; i++) sink += new byte[1 << 20].length; }
                            default -> { }
                        }
                    }
                    return Verdict.PASS;
                }
                public Verdict onRecv(Object s, StreamContext c, ByteView v) {
                    if (where.equals("onRecv") && v.indexOf((byte) '!') >= 0) spin();
                    return Verdict.PASS;
                }
                public Verdict onEnd(Object s, StreamContext c, ByteView rest) {
                    if (where.equals("onEnd") && c.direction() == Direction.SEND) spin();
                    return Verdict.PASS;
                }
                public void detach(Object s, DetachReason r) {
                    if (where.equals("detach")) spin();
                }
                public void onEvent(Object s, Attachment a, ConnectionEvent e) {
                    if (where.equals("onEvent") && e == ConnectionEvent.CONNECTED) spin();
                }
                static void spin() { while (true) { sink++; } }
                /** About 2^depth calls: each StackOverflowError is caught and the call made again. */
                static int explode(int depth) {
                    try { return explode(depth + 1); } catch (Throwable t) { return explode(depth + 1); }
                }
            }
            """;

    private LoadedModule runaway(String where, FaultPolicy policy) throws Exception {
        Path jar = TestJars.jar().source("hostile.Runaway", RUNAWAY).service("hostile.Runaway").write(dir.resolve("runaway-" + where + ".jar"));
        return fx.addJar(jar, new ModuleConfig("runaway", null, null, null, null, policy, null, Map.of("where", where))).getFirst();
    }

    @Test
    void aHookSpinningInOnSendIsStoppedCountedAndDetachedUnderFailOpen() throws Exception {
        spinningHookIsStoppedAndContained("onSend", "!go");
    }

    @Test
    void aHookSpinningInOnRecvIsStoppedCountedAndDetachedUnderFailOpen() throws Exception {
        spinningHookIsStoppedAndContained("onRecv", "!back");
    }

    @Test
    void anAttachSpinningIsStoppedAndTheConnectionGoesOnWithoutTheModule() throws Exception {
        spinningHookIsStoppedAndContained("attach", "hello");
    }

    @Test
    void aTimerSpinningIsStoppedAndTheModuleDetached() throws Exception {
        spinningHookIsStoppedAndContained("timer", "hello");
    }

    @Test
    void anEventHookSpinningIsStoppedAndTheModuleDetached() throws Exception {
        spinningHookIsStoppedAndContained("onEvent", "hello");
    }

    @Test
    void anOnEndSpinningIsStoppedAndTheEndOfStreamGoesOn() throws Exception {
        try (Steady steady = new Steady()) {
            LoadedModule m = runaway("onEnd", FaultPolicy.FAIL_OPEN);
            long t0 = System.nanoTime();
            try (Socket victim = EngineFixture.connect(entry)) {
                assertThat(roundTrip(victim, "last words")).isEqualTo("last words");
                victim.shutdownOutput();
                assertThat(victim.getInputStream().read()).as("the end of stream went on: the echo server ended too").isEqualTo(-1);
            }
            waitFor(() -> m.faults() >= 1);
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(STOPPED_WITHIN);
            assertThat(m.faults()).isEqualTo(1);
            assertThat(m.lastFault()).contains("onEnd").contains("it was stopped at hostile.Runaway.");
            long during = steady.trips();
            Thread.sleep(300);
            steady.assertFlowing(during);
        }
    }

    @Test
    void aDetachSpinningIsStoppedAndCountedOnce() throws Exception {
        try (Steady steady = new Steady()) {
            LoadedModule m = runaway("detach", FaultPolicy.FAIL_OPEN);
            long t0 = System.nanoTime();
            try (Socket victim = EngineFixture.connect(entry)) {
                assertThat(roundTrip(victim, "bye")).isEqualTo("bye");
            }
            waitFor(() -> m.faults() >= 1);
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(STOPPED_WITHIN);
            Thread.sleep(300);
            assertThat(m.faults()).as("one fault for one call").isEqualTo(1);
            assertThat(m.lastFault()).contains("detach").contains("it was stopped at hostile.Runaway.");
            assertThat(m.liveAttachments()).isZero();
            long during = steady.trips();
            Thread.sleep(300);
            steady.assertFlowing(during);
        }
    }

    @Test
    void aLoopThatCatchesThrowableIsStoppedAllTheSame() throws Exception {
        spinningHookIsStoppedAndContained("catch", "!caught");
    }

    @Test
    void exponentialRecursionIsStopped() throws Exception {
        spinningHookIsStoppedAndContained("recursion", "!deep");
    }

    @Test
    void aHookFillingTheHeapIsStoppedAtTheAllocationLimitAndOthersKeepFlowing() throws Exception {
        try (Steady steady = new Steady()) {
            LoadedModule m = runaway("hoard", FaultPolicy.FAIL_OPEN);
            long t0 = System.nanoTime();
            try (Socket victim = EngineFixture.connect(entry)) {
                assertThat(roundTrip(victim, "!hoard")).isEqualTo("!hoard");
                waitFor(() -> m.faults() >= 1);
                assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(STOPPED_WITHIN);
                assertThat(m.faults()).isEqualTo(1);
                assertThat(m.lastFault()).contains("runaway@1.0.0's hook onSend")
                        .contains("allocated more than " + dev.interlayer.runtime.ParamValues.formatSize(EngineOptions.DEFAULT_ALLOC_LIMIT) + " in one call")
                        .contains("it was stopped at hostile.Runaway.");
                assertThat(roundTrip(victim, "after")).as("the connection goes on without the module").isEqualTo("after");
            }
            long during = steady.trips();
            Thread.sleep(300);
            steady.assertFlowing(during);
            System.out.printf("allocation bomb: stopped, the steady connection's slowest round trip %.1f ms%n", steady.worstNanos / 1e6);
        }
    }

    @Test
    void timersPerConnectionAreLimitedAndTheModuleThatFloodsThemFaults() throws Exception {
        LoadedModule m = runaway("timers", FaultPolicy.FAIL_OPEN);
        try (Socket s = EngineFixture.connect(entry)) {
            assertThat(roundTrip(s, "!timers")).isEqualTo("!timers");
            waitFor(() -> m.faults() >= 1);
            assertThat(m.lastFault()).contains("onSend").contains("IllegalStateException")
                    .contains("module runaway has " + ChainLink.TIMER_LIMIT + " timers pending on connection")
                    .contains("cancel the timers it no longer needs");
            assertThat(roundTrip(s, "after")).as("the connection goes on without the module").isEqualTo("after");
        }
        waitFor(() -> m.liveAttachments() == 0);
    }

    @Test
    void aHookAllocatingLessThanTheLimitIsLeftAlone() throws Exception {
        LoadedModule m = runaway("modest", FaultPolicy.FAIL_OPEN);
        try (Socket s = EngineFixture.connect(entry)) {
            for (int i = 0; i < 20; i++) {
                assertThat(roundTrip(s, "!" + i)).isEqualTo("!" + i);
            }
        }
        assertThat(m.faults()).as("16 MiB of garbage per call is under the 64 MiB limit").isZero();
    }

    /**
     * With a steady connection flowing (opened before the module, so nothing of the module is on it): a connection whose
     * data or events make {@code where} spin gets its bytes through (fail-open), the module's fault is counted within a
     * few budgets naming where it was stopped, and the steady connection never waited more than a few budgets.
     */
    private void spinningHookIsStoppedAndContained(String where, String text) throws Exception {
        try (Steady steady = new Steady()) {
            LoadedModule m = runaway(where, FaultPolicy.FAIL_OPEN);
            long t0 = System.nanoTime();
            try (Socket victim = EngineFixture.connect(entry)) {
                assertThat(roundTrip(victim, text)).isEqualTo(text);
                waitFor(() -> m.faults() >= 1);
                Duration stoppedAfter = Duration.ofNanos(System.nanoTime() - t0);
                assertThat(stoppedAfter).as("stopped within a few budgets").isLessThan(STOPPED_WITHIN);
                assertThat(m.faults()).isEqualTo(1);
                assertThat(m.lastFault()).contains("runaway@1.0.0's hook").contains("ran longer than the hook budget (200 ms)")
                        .contains("it was stopped at hostile.Runaway.");
                assertThat(roundTrip(victim, text + " again")).as("the connection goes on without the module").isEqualTo(text + " again");
            }
            assertThat(m.state()).isEqualTo(ModuleState.ACTIVE);
            long during = steady.trips();
            Thread.sleep(300);
            steady.assertFlowing(during);
            assertThat(fx.engine.stuckCalls()).isEmpty();
        }
    }

    @Test
    void aSpinningHookUnderFailClosedResetsItsConnection() throws Exception {
        try (Steady steady = new Steady()) {
            LoadedModule m = runaway("onSend", FaultPolicy.FAIL_CLOSED);
            try (Socket victim = EngineFixture.connect(entry)) {
                victim.getOutputStream().write("!".getBytes(StandardCharsets.US_ASCII));
                assertReset(victim);
            }
            assertThat(m.faults()).isEqualTo(1);
            long during = steady.trips();
            Thread.sleep(300);
            steady.assertFlowing(during);
        }
    }

    @Test
    void aModuleThatKeepsSpinningIsQuarantinedAndTrafficPassesUntouched() throws Exception {
        try (Steady steady = new Steady()) {
            LoadedModule m = runaway("onSend", FaultPolicy.FAIL_OPEN);
            for (int i = 0; i < 3; i++) {
                try (Socket victim = EngineFixture.connect(entry)) {
                    assertThat(roundTrip(victim, "!" + i)).isEqualTo("!" + i);
                    int n = i + 1;
                    waitFor(() -> m.faults() >= n);
                }
            }
            waitFor(() -> m.state() == ModuleState.INACTIVE);
            long t0 = System.nanoTime();
            try (Socket after = EngineFixture.connect(entry)) {
                assertThat(roundTrip(after, "!quarantined")).isEqualTo("!quarantined");
            }
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).as("no module call any more").isLessThan(BUDGET);
            long during = steady.trips();
            Thread.sleep(300);
            steady.assertFlowing(during);
        }
    }

    // ---- stuck where no check reaches -------------------------------------------------------------------------------

    /**
     * Blocks in {@link java.util.concurrent.locks.ReentrantLock#lock()}, which ignores interrupts, when a SEND chunk holds
     * a '!': a thread the module started holds the lock until the test counts {@code RELEASE} down. Records each
     * connection's event loop by the client's port.
     */
    private static final String STUCK = """
            package hostile;
            import dev.interlayer.api.*;
            import java.util.Map;
            import java.util.concurrent.ConcurrentHashMap;
            import java.util.concurrent.CountDownLatch;
            import java.util.concurrent.locks.ReentrantLock;
            public class Stuck implements StreamModule<Object> {
                public static final ReentrantLock GATE = new ReentrantLock();
                public static final CountDownLatch RELEASE = new CountDownLatch(1);
                public static final Map<Integer, String> LOOPS = new ConcurrentHashMap<>();
                public ModuleDescriptor descriptor() {
                    return ModuleDescriptor.builder("stuck", "1.0.0").implement(InterfaceType.STREAM, 1, 0)
                            .capability(Capability.THREADS).build(); // init starts the thread that holds the lock

                }
                public void init(ModuleEnv env) throws Exception {
                    CountDownLatch held = new CountDownLatch(1);
                    Thread holder = new Thread(() -> {
                        GATE.lock();
                        held.countDown();
                        try {
                            while (true) { try { RELEASE.await(); break; } catch (InterruptedException e) { } }
                        } finally {
                            GATE.unlock();
                        }
                    }, "stuck-gate-holder");
                    holder.setDaemon(true);
                    holder.start();
                    held.await();
                }
                public void fini() { RELEASE.countDown(); }
                public Attach<Object> attach(Attachment a) {
                    LOOPS.put(a.connection().localAddress().getPort(), Thread.currentThread().getName());
                    return Attach.stateless();
                }
                public Verdict onSend(Object s, StreamContext c, ByteView v) {
                    if (v.indexOf((byte) '!') >= 0) { GATE.lock(); GATE.unlock(); }
                    return Verdict.PASS;
                }
            }
            """;

    /** The stuck module, its connections by event loop, and the one stuck connection. */
    private final class StuckScene {
        final LoadedModule m;
        final Map<Integer, String> loops;
        final CountDownLatch release;
        final List<Socket> onStuckLoop = new ArrayList<>();
        final List<Socket> onOtherLoop = new ArrayList<>();
        String stuckLoop;
        Socket victim;

        @SuppressWarnings("unchecked")
        StuckScene() throws Exception {
            Path jar = TestJars.jar().source("hostile.Stuck", STUCK).service("hostile.Stuck").write(dir.resolve("stuck.jar"));
            m = fx.addJar(jar, ModuleConfig.defaults("stuck").withAllow(java.util.Set.of(dev.interlayer.api.Capability.THREADS))).getFirst();
            Class<?> c = m.module().getClass();
            loops = (Map<Integer, String>) c.getField("LOOPS").get(null);
            release = (CountDownLatch) c.getField("RELEASE").get(null);
            cleanups.add(release::countDown);
            // connections on both event loops (the kernel spreads them over the loops' listening sockets)
            for (int i = 0; i < 64 && (onStuckLoop.size() < 2 || onOtherLoop.isEmpty()); i++) {
                Socket s = EngineFixture.connect(entry);
                cleanups.add(() -> closeQuietly(s));
                assertThat(roundTrip(s, "hi")).isEqualTo("hi");
                String loop = loops.get(s.getLocalPort());
                if (stuckLoop == null) stuckLoop = loop;
                (loop.equals(stuckLoop) ? onStuckLoop : onOtherLoop).add(s);
            }
            assertThat(onOtherLoop).as("connections on the second event loop").isNotEmpty();
            victim = onStuckLoop.removeFirst();
            victim.getOutputStream().write("!".getBytes(StandardCharsets.US_ASCII));
            waitFor(() -> !fx.engine.stuckCalls().isEmpty());
        }
    }

    @Test
    void aHookStuckInTheJdkIsReportedWithWhereItIsStuck() throws Exception {
        StuckScene scene = new StuckScene();
        List<StuckCall> stuck = fx.engine.stuckCalls();
        assertThat(stuck).hasSize(1);
        StuckCall c = stuck.getFirst();
        assertThat(c.moduleId()).isEqualTo("stuck@1.0.0");
        assertThat(c.hook()).isEqualTo("onSend");
        assertThat(c.thread()).isEqualTo(scene.stuckLoop);
        assertThat(c.at()).contains("java.util.concurrent.locks.").contains("called from hostile.Stuck.onSend (Stuck.java:");
        assertThat(c.running()).isGreaterThanOrEqualTo(BUDGET);
        assertThat(c.describe()).startsWith("module stuck@1.0.0 onSend on connection ");
        for (Socket s : scene.onOtherLoop) {
            assertThat(roundTrip(s, "other loop")).as("a connection on the other event loop keeps flowing").isEqualTo("other loop");
        }
        long t0 = System.nanoTime();
        assertThat(fx.engine.connections()).as("the listing has every connection, the stuck loop's too")
                .hasSize(1 + scene.onStuckLoop.size() + scene.onOtherLoop.size());
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).as("without waiting for the stuck loop").isLessThan(Duration.ofSeconds(1));
    }

    @Test
    void newConnectionsAvoidAStuckEventLoop() throws Exception {
        StuckScene scene = new StuckScene();
        for (int i = 0; i < 24; i++) {
            try (Socket s = EngineFixture.connect(entry)) {
                s.setSoTimeout(3_000);
                assertThat(roundTrip(s, "new " + i)).as("new connection " + i + " is served").isEqualTo("new " + i);
                assertThat(scene.loops.get(s.getLocalPort())).isNotEqualTo(scene.stuckLoop);
            }
        }
    }

    @Test
    void revokingAStuckModuleResetsItsConnectionsOnTheOtherLoop() throws Exception {
        StuckScene scene = new StuckScene();
        scene.m.revoke();
        for (Socket s : scene.onOtherLoop) {
            assertReset(s);
        }
        assertThat(scene.m.state()).isEqualTo(ModuleState.REVOKED);
        try (Socket s = EngineFixture.connect(entry)) {
            s.setSoTimeout(3_000);
            assertThat(roundTrip(s, "after revoke")).isEqualTo("after revoke");
        }
    }

    @Test
    void theEngineStopsWithinItsDeadlineWithAStuckLoop() throws Exception {
        new StuckScene();
        long t0 = System.nanoTime();
        fx.engine.close(Duration.ofSeconds(2));
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).as("the stuck loop is not waited for").isLessThan(Duration.ofMillis(1_500));
    }

    @Test
    void aStuckLoopServesAgainOnceTheCallReturnsAndTheFaultIsCounted() throws Exception {
        StuckScene scene = new StuckScene();
        scene.release.countDown();
        waitFor(() -> fx.engine.stuckCalls().isEmpty());
        assertThat(readText(scene.victim, 1)).as("the stuck chunk went on once the call returned").isEqualTo("!");
        waitFor(() -> scene.m.faults() == 1);
        assertThat(scene.m.lastFault()).contains("onSend").contains("ran longer than the hook budget");
        boolean servedByTheRecoveredLoop = false;
        for (int i = 0; i < 48 && !servedByTheRecoveredLoop; i++) {
            try (Socket s = EngineFixture.connect(entry)) {
                s.setSoTimeout(3_000);
                assertThat(roundTrip(s, "again " + i)).isEqualTo("again " + i);
                servedByTheRecoveredLoop = scene.stuckLoop.equals(scene.loops.get(s.getLocalPort()));
            }
        }
        assertThat(servedByTheRecoveredLoop).as("the recovered loop accepts new connections again").isTrue();
        for (Socket s : scene.onStuckLoop) {
            assertThat(roundTrip(s, "back")).isEqualTo("back");
        }
    }

    // ---- helpers ----------------------------------------------------------------------------------------------------

    /** A connection without modules doing round trips of random bytes on its own thread, checking every byte. */
    private final class Steady implements AutoCloseable {
        private final Socket s;
        private final Thread t;
        private final AtomicLong trips = new AtomicLong();
        private volatile long worstNanos;
        private volatile Throwable failed;
        private volatile boolean stop;

        Steady() throws IOException {
            s = EngineFixture.connect(entry);
            s.setSoTimeout(10_000);
            t = Thread.ofPlatform().daemon().name("steady").start(this::run);
        }

        private void run() {
            Random r = new Random(42);
            byte[] b = new byte[256];
            try {
                while (!stop) {
                    r.nextBytes(b);
                    long t0 = System.nanoTime();
                    s.getOutputStream().write(b);
                    byte[] back = s.getInputStream().readNBytes(b.length);
                    if (!Arrays.equals(back, b)) {
                        throw new AssertionError("the steady connection got other bytes back than it sent");
                    }
                    worstNanos = Math.max(worstNanos, System.nanoTime() - t0);
                    trips.incrementAndGet();
                    Thread.sleep(2);
                }
            } catch (Throwable e) {
                if (!stop) failed = e;
            }
        }

        long trips() {
            return trips.get();
        }

        /** It made round trips since {@code since}, none failed, and none took more than a few budgets. */
        void assertFlowing(long since) {
            assertThat(failed).as("the steady connection failed").isNull();
            assertThat(trips.get()).as("round trips on the steady connection").isGreaterThan(since + 10);
            assertThat(Duration.ofNanos(worstNanos)).as("its slowest round trip").isLessThan(STOPPED_WITHIN);
        }

        @Override
        public void close() throws IOException {
            stop = true;
            s.close();
            try {
                t.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            assertThat(failed).as("the steady connection failed").isNull();
        }
    }

    private static String roundTrip(Socket s, String text) throws IOException {
        s.getOutputStream().write(text.getBytes(StandardCharsets.US_ASCII));
        return readText(s, text.length());
    }

    private static String readText(Socket s, int n) throws IOException {
        return new String(s.getInputStream().readNBytes(n), StandardCharsets.US_ASCII);
    }

    private static void assertReset(Socket s) {
        assertThatThrownBy(() -> {
            InputStream in = s.getInputStream();
            while (in.read() >= 0) {
                // until the reset
            }
        }).isInstanceOf(SocketException.class);
    }

    private static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }
}
