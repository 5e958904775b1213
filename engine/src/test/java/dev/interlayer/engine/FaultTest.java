package dev.interlayer.engine;

import static dev.interlayer.engine.VerdictTest.waitFor;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.api.Attach;
import dev.interlayer.api.Attachment;
import dev.interlayer.api.ByteView;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.Role;
import dev.interlayer.api.Verdict;
import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.engine.testing.TestModule;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleState;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Misbehaving modules are contained: faults follow the module's policy, and other connections keep flowing. */
class FaultTest {

    private EngineFixture fx;
    private TestServer echo;

    @BeforeEach
    void start() throws IOException {
        fx = new EngineFixture(EngineOptions.defaults().withIoThreads(2).withHoldLimit(256 * 1024).withHookBudget(Duration.ofMillis(200)), 3);
        echo = TestServer.echo();
    }

    @AfterEach
    void stop() throws IOException {
        fx.close();
        echo.close();
    }

    private static String roundTrip(Socket s, String text) throws IOException {
        s.getOutputStream().write(text.getBytes(StandardCharsets.US_ASCII));
        return new String(s.getInputStream().readNBytes(text.length()), StandardCharsets.US_ASCII);
    }

    private static void assertReset(Socket s) {
        assertThatThrownBy(() -> {
            InputStream in = s.getInputStream();
            while (in.read() >= 0) {
                // until the reset
            }
        }).isInstanceOf(SocketException.class);
    }

    @Test
    void aThrowingHookIsDetachedAndTrafficPassesUnderFailOpen() throws Exception {
        TestModule m = TestModule.named("thrower").onSend((st, ctx, v) -> {
            throw new IllegalStateException("boom");
        });
        LoadedModule lm = fx.add(m);
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket s = EngineFixture.connect(a)) {
            assertThat(roundTrip(s, "abc")).isEqualTo("abc");
            assertThat(roundTrip(s, "def")).isEqualTo("def");
        }
        assertThat(m.calls).containsExactly("thrower:send:3");
        waitFor(() -> m.detaches.size() == 1);
        assertThat(m.detaches).containsExactly(DetachReason.FAULT);
        assertThat(lm.faults()).isEqualTo(1);
        assertThat(lm.lastFault()).contains("onSend").contains("boom");
    }

    @Test
    void aThrowingHookResetsTheConnectionUnderFailClosed() throws Exception {
        fx.add(TestModule.named("strict").failClosed().onSend((st, ctx, v) -> {
            throw new IllegalStateException("boom");
        }));
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket s = EngineFixture.connect(a)) {
            s.getOutputStream().write('x');
            assertReset(s);
        }
    }

    @Test
    void aModuleIsQuarantinedAfterRepeatedFaultsAndTrafficPassesUntouched() throws Exception {
        TestModule m = TestModule.named("flaky").onSend((st, ctx, v) -> {
            throw new RuntimeException("flaky");
        });
        LoadedModule lm = fx.add(m);
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        for (int i = 0; i < 3; i++) {
            try (Socket s = EngineFixture.connect(a)) {
                assertThat(roundTrip(s, "x" + i)).isEqualTo("x" + i);
            }
        }
        waitFor(() -> lm.state() == ModuleState.INACTIVE);
        int callsBefore = m.calls.size();
        try (Socket s = EngineFixture.connect(a)) {
            assertThat(roundTrip(s, "after")).isEqualTo("after");
        }
        assertThat(m.calls).hasSize(callsBefore); // attached but not called while INACTIVE
        lm.setState(ModuleState.ACTIVE);
        assertThat(lm.faults()).isZero();
    }

    @Test
    void aHookThatBlocksTooLongIsInterruptedCountedAndOtherConnectionsKeepFlowing() throws Exception {
        TestModule m = TestModule.named("sleeper").onSend((st, ctx, v) -> {
            if (v.indexOf((byte) 'z') >= 0) {
                try {
                    Thread.sleep(30_000);
                } catch (InterruptedException e) {
                    throw new IllegalStateException("interrupted while sleeping in a hook", e);
                }
            }
            return Verdict.PASS;
        });
        LoadedModule lm = fx.add(m);
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket blocked = EngineFixture.connect(a)) {
            assertThat(roundTrip(blocked, "ok")).isEqualTo("ok");
            long t0 = System.nanoTime();
            CompletableFuture<String> stuck = CompletableFuture.supplyAsync(() -> {
                try {
                    return roundTrip(blocked, "zz");
                } catch (IOException e) {
                    return e.toString();
                }
            });
            // Other connections are served meanwhile (on the other event loop at once, on the same one once interrupted).
            for (int i = 0; i < 4; i++) {
                try (Socket other = EngineFixture.connect(a)) {
                    assertThat(roundTrip(other, "hello" + i)).isEqualTo("hello" + i);
                }
            }
            assertThat(stuck.get(10, TimeUnit.SECONDS)).isEqualTo("zz"); // fail-open: the chunk passes
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(5));
        }
        assertThat(lm.faults()).isGreaterThanOrEqualTo(1);
        assertThat(lm.lastFault()).containsAnyOf("interrupted", "hook budget");
    }

    @Test
    void aHookThatSpinsOnTheCpuPastTheBudgetIsCountedAndItsChunkStillPasses() throws Exception {
        TestModule m = TestModule.named("spinner").onSend((st, ctx, v) -> {
            if (v.indexOf((byte) 'z') >= 0) {
                // 600 ms of CPU, however long that takes on a busy machine
                java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
                long until = mx.getCurrentThreadCpuTime() + Duration.ofMillis(600).toNanos();
                long x = 0;
                while (mx.getCurrentThreadCpuTime() < until) {
                    x += Long.numberOfTrailingZeros(x + 1); // burn CPU: cannot be interrupted, only counted
                }
                if (x == 42) throw new AssertionError();
            }
            return Verdict.PASS;
        });
        LoadedModule lm = fx.add(m);
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket s = EngineFixture.connect(a)) {
            assertThat(roundTrip(s, "zz")).isEqualTo("zz"); // fail-open: the chunk passes once the call returns
        }
        assertThat(lm.faults()).isEqualTo(1);
        assertThat(lm.lastFault()).contains("hook budget");
    }

    @Test
    void aThrowingAttachLeavesTheConnectionServedWithoutTheModule() throws Exception {
        TestModule m = new TestModule("bad-attach") {
            @Override
            public Attach<State> attach(Attachment attachment) {
                throw new IllegalArgumentException("cannot attach");
            }
        };
        LoadedModule lm = fx.add(m);
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket s = EngineFixture.connect(a)) {
            assertThat(roundTrip(s, "abc")).isEqualTo("abc");
        }
        assertThat(m.calls).isEmpty();
        assertThat(m.detaches).isEmpty(); // never attached, so no detach
        assertThat(lm.lastFault()).contains("attach").contains("cannot attach");
    }

    @Test
    void contractViolationsAreFaultsNamingTheModule() throws Exception {
        LoadedModule nullVerdict = fx.add(TestModule.named("null-verdict").priority(1).onSend((st, ctx, v) -> null));
        LoadedModule holdless = fx.add(TestModule.named("holdless").priority(2).onSend((st, ctx, v) -> Verdict.HOLD));
        LoadedModule holdPass = fx.add(TestModule.named("hold-pass").priority(3).onSend((st, ctx, v) -> {
            ctx.hold();
            return Verdict.PASS;
        }));
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket s = EngineFixture.connect(a)) {
            assertThat(roundTrip(s, "abc")).isEqualTo("abc");
        }
        assertThat(nullVerdict.lastFault()).contains("null verdict");
        assertThat(holdless.lastFault()).contains("HOLD without calling ctx.hold()");
        assertThat(holdPass.lastFault()).contains("called ctx.hold() but returned PASS");
    }

    @Test
    void aViewUsedAfterItsCallFailsWithTheModulesName() throws Exception {
        AtomicReference<ByteView> kept = new AtomicReference<>();
        TestModule m = TestModule.named("keeper").onSend((st, ctx, v) -> {
            kept.set(v);
            st.attachment.schedule(Duration.ofMillis(10), () -> kept.get().readByte());
            return Verdict.PASS;
        });
        LoadedModule lm = fx.add(m);
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket s = EngineFixture.connect(a)) {
            assertThat(roundTrip(s, "abc")).isEqualTo("abc");
            waitFor(() -> lm.lastFault() != null);
            assertThat(roundTrip(s, "def")).isEqualTo("def");
        }
        assertThat(lm.lastFault()).contains("timer").contains("module keeper used a ByteView after its call returned");
    }

    @Test
    void aModuleThatAlwaysNeedsMoreHitsTheHoldLimitAndOnlyThatConnectionIsReset() throws Exception {
        fx.add(TestModule.named("greedy").onSend((st, ctx, v) -> Verdict.needMore(v.length() + 1)));
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket s = EngineFixture.connect(a)) {
            byte[] big = new byte[64 * 1024];
            CompletableFuture<IOException> writer = CompletableFuture.supplyAsync(() -> {
                try {
                    for (int i = 0; i < 64; i++) s.getOutputStream().write(big);
                    return null;
                } catch (IOException expected) {
                    return expected; // the agent reset the connection
                }
            });
            // The kernel reports a reset once: to the reader or to the writer, whichever asks first.
            IOException seenByReader = null;
            try {
                InputStream in = s.getInputStream();
                while (in.read() >= 0) {
                    // until the reset, or the end if the writer consumed it
                }
            } catch (IOException e) {
                seenByReader = e;
            }
            IOException seenByWriter = writer.get(10, TimeUnit.SECONDS);
            assertThat(seenByReader != null ? seenByReader : seenByWriter).as("the connection was reset").isInstanceOf(SocketException.class);
        }
        fx.registry.find("greedy").orElseThrow().setState(ModuleState.INACTIVE);
        try (Socket s = EngineFixture.connect(a)) {
            assertThat(roundTrip(s, "still serving")).isEqualTo("still serving");
        }
    }

    @Test
    void aModuleThatHoldsWithoutReleasingStallsItsSenderWithBoundedMemory() throws Exception {
        TestModule hoarder = TestModule.named("hoarder").onSend((st, ctx, v) -> {
            ctx.hold(); // never injected: released at detach
            return Verdict.HOLD;
        });
        fx.add(hoarder);
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        java.util.concurrent.atomic.AtomicLong written = new java.util.concurrent.atomic.AtomicLong();
        try (Socket s = EngineFixture.connect(a)) {
            CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
                byte[] block = new byte[16 * 1024];
                try {
                    for (int i = 0; i < 4096; i++) {
                        s.getOutputStream().write(block);
                        written.addAndGet(block.length);
                    }
                } catch (IOException expected) {
                    // closed at the end of the test
                }
            });
            Thread.sleep(1000);
            long stalled = written.get();
            Thread.sleep(300);
            assertThat(written.get()).as("the sender is blocked by back-pressure").isEqualTo(stalled).isLessThan(4096L * 16 * 1024);
            long heldNow = hoarder.states.getFirst().attachment.heldBytes();
            assertThat(heldNow).isPositive().isLessThanOrEqualTo(256 * 1024);
            s.setSoLinger(true, 0);
            s.close();
            writer.get(10, TimeUnit.SECONDS);
        }
        waitFor(() -> hoarder.detaches.size() == 1); // detach releases the held bytes (the leak check verifies)
    }

    @Test
    void injectingWhileThePeerDoesNotReadIsBoundedAndCountedAsAFault() throws Exception {
        TestModule m = TestModule.named("flooder").onSend((st, ctx, v) -> {
            byte[] block = new byte[32 * 1024];
            for (int i = 0; i < 64 && st.attachment.isAttached(); i++) {
                st.attachment.inject(Direction.RECV, block); // the client is not reading
            }
            return Verdict.PASS;
        });
        LoadedModule lm = fx.add(m);
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket s = EngineFixture.connect(a)) {
            s.getOutputStream().write('x');
            waitFor(() -> lm.lastFault() != null);
            assertThat(lm.lastFault()).contains("inject").contains("does not read");
        }
    }
}
