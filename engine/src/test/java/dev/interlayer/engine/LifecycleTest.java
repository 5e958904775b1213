package dev.interlayer.engine;

import static dev.interlayer.engine.VerdictTest.waitFor;
import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.api.AttachMode;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Role;
import dev.interlayer.api.Selector;
import dev.interlayer.api.Verdict;
import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.engine.testing.TestModule;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleConfig;
import dev.interlayer.runtime.ModuleState;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The lifecycle (docs/architecture.md) on live connections: states, exactly-one-detach, apply now, priorities, programmatic attach, selectors. */
class LifecycleTest {

    private EngineFixture fx;
    private TestServer echo;

    @BeforeEach
    void start() throws IOException {
        fx = new EngineFixture();
        echo = TestServer.echo();
    }

    @AfterEach
    void stop() throws IOException {
        fx.close();
        echo.close();
    }

    /** A module that upper-cases SEND data, so customization is visible in the echo. */
    private static TestModule upper(String name) {
        return TestModule.named(name).onSend((st, ctx, v) -> {
            ctx.replace().write(new String(v.copyRemaining(), StandardCharsets.US_ASCII).toUpperCase().getBytes(StandardCharsets.US_ASCII));
            return Verdict.PASS;
        });
    }

    private static String roundTrip(Socket s, String text) throws IOException {
        s.getOutputStream().write(text.getBytes(StandardCharsets.US_ASCII));
        return new String(s.getInputStream().readNBytes(text.length()), StandardCharsets.US_ASCII);
    }

    private static ModuleConfig config(String name, ModuleState state, Integer prio, AttachMode mode, Boolean applyNow, Selector sel) {
        return new ModuleConfig(name, state, prio, sel, mode, null, applyNow, Map.of());
    }

    @Test
    void unregisterDetachesEveryConnectionOnceThenRunsFiniAndTrafficContinuesUntouched() throws Exception {
        AtomicBoolean fini = new AtomicBoolean();
        TestModule m = new TestModule("up") {
            @Override
            public void fini() {
                assertThat(detaches).hasSize(3); // fini runs after the last detach
                fini.set(true);
            }
        }.onSend((st, ctx, v) -> {
            ctx.replace().write(new String(v.copyRemaining(), StandardCharsets.US_ASCII).toUpperCase().getBytes(StandardCharsets.US_ASCII));
            return Verdict.PASS;
        });
        LoadedModule lm = fx.add(m);
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        Socket[] conns = new Socket[3];
        for (int i = 0; i < 3; i++) {
            conns[i] = EngineFixture.connect(a);
            assertThat(roundTrip(conns[i], "abc")).isEqualTo("ABC");
        }
        lm.unregister();
        waitFor(fini::get);
        for (Socket s : conns) {
            assertThat(roundTrip(s, "xyz")).isEqualTo("xyz");
            s.close();
        }
        assertThat(m.detaches).containsOnly(DetachReason.UNREGISTERED).hasSize(3);
        assertThat(m.detachesByConnection.values()).allMatch(n -> n.get() == 1);
        assertThat(lm.isUnloaded()).isTrue();
        assertThat(fx.registry.modules()).doesNotContain(lm);
    }

    @Test
    void revokeDetachesEverywhereAtOnce() throws Exception {
        TestModule m = upper("up");
        LoadedModule lm = fx.add(m);
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket s1 = EngineFixture.connect(a); Socket s2 = EngineFixture.connect(a)) {
            assertThat(roundTrip(s1, "a")).isEqualTo("A");
            assertThat(roundTrip(s2, "b")).isEqualTo("B");
            lm.revoke();
            waitFor(lm::isUnloaded);
            assertThat(roundTrip(s1, "c")).isEqualTo("c");
            assertThat(roundTrip(s2, "d")).isEqualTo("d");
        }
        assertThat(m.detaches).containsExactly(DetachReason.REVOKED, DetachReason.REVOKED);
    }

    @Test
    void aDeprecatedModuleKeepsItsConnectionsButAttachesToNoNewOne() throws Exception {
        TestModule m = upper("up");
        LoadedModule lm = fx.add(m);
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket old = EngineFixture.connect(a)) {
            assertThat(roundTrip(old, "a")).isEqualTo("A");
            lm.setState(ModuleState.DEPRECATED);
            try (Socket fresh = EngineFixture.connect(a)) {
                assertThat(roundTrip(fresh, "b")).isEqualTo("b");
            }
            assertThat(roundTrip(old, "c")).isEqualTo("C");
        }
        waitFor(() -> m.detaches.size() == 1);
        assertThat(m.attaches.get()).isEqualTo(1);
    }

    @Test
    void anInactiveModuleAttachesButPassesTrafficUntilActivated() throws Exception {
        TestModule m = upper("up");
        LoadedModule lm = fx.add(m, config("up", ModuleState.INACTIVE, null, null, null, null));
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket s = EngineFixture.connect(a)) {
            assertThat(roundTrip(s, "a")).isEqualTo("a");
            lm.setState(ModuleState.ACTIVE);
            assertThat(roundTrip(s, "b")).isEqualTo("B");
            lm.setState(ModuleState.INACTIVE);
            assertThat(roundTrip(s, "c")).isEqualTo("c");
        }
        assertThat(m.attaches.get()).isEqualTo(1);
    }

    @Test
    void applyNowAttachesANewModuleToOpenConnectionsFromTheirNextData() throws Exception {
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket s = EngineFixture.connect(a)) {
            assertThat(roundTrip(s, "before")).isEqualTo("before");
            TestModule m = upper("late");
            fx.add(m, config("late", null, null, null, true, null));
            waitFor(() -> m.attaches.get() == 1);
            assertThat(roundTrip(s, "after")).isEqualTo("AFTER");
        }
    }

    @Test
    void withoutApplyNowOpenConnectionsAreLeftAlone() throws Exception {
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket s = EngineFixture.connect(a)) {
            assertThat(roundTrip(s, "x")).isEqualTo("x");
            TestModule m = upper("late");
            fx.add(m);
            assertThat(roundTrip(s, "y")).isEqualTo("y");
            assertThat(m.attaches.get()).isZero();
        }
    }

    @Test
    void aPriorityChangeReordersTheChainForNewConnections() throws Exception {
        List<String> order = new java.util.concurrent.CopyOnWriteArrayList<>();
        LoadedModule first = fx.add(TestModule.named("first").priority(10).onSend((st, c, v) -> {
            order.add("first");
            return Verdict.PASS;
        }));
        fx.add(TestModule.named("second").priority(20).onSend((st, c, v) -> {
            order.add("second");
            return Verdict.PASS;
        }));
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket s = EngineFixture.connect(a)) {
            roundTrip(s, "1");
        }
        assertThat(order).containsExactly("first", "second");
        order.clear();
        first.setPriority(30);
        try (Socket s = EngineFixture.connect(a)) {
            roundTrip(s, "2");
        }
        assertThat(order).containsExactly("second", "first");
    }

    @Test
    void aProgrammaticModuleAttachesOnlyWhereAskedAndDetachesOnRequest() throws Exception {
        TestModule m = upper("prog");
        fx.add(m, config("prog", null, null, AttachMode.PROGRAMMATIC, null, null));
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket s = EngineFixture.connect(a)) {
            assertThat(roundTrip(s, "a")).isEqualTo("a");
            long id = fx.engine.connections().getFirst().id();
            assertThat(fx.engine.attach(id, "prog")).isTrue();
            assertThat(fx.engine.attach(id, "prog")).as("already attached").isFalse();
            assertThat(roundTrip(s, "b")).isEqualTo("B");
            assertThat(fx.engine.connections().getFirst().modules()).containsExactly("prog@1.0.0");
            assertThat(fx.engine.detach(id, "prog")).isTrue();
            assertThat(roundTrip(s, "c")).isEqualTo("c");
        }
        assertThat(m.detaches).containsExactly(DetachReason.REQUESTED);
    }

    @Test
    void aListenerCanAttachAProgrammaticModuleToEveryConnectionItAccepts() throws Exception {
        TestModule m = upper("prog");
        fx.add(m, config("prog", null, null, AttachMode.PROGRAMMATIC, null, null));
        InetSocketAddress plain = fx.listen(Role.CLIENT, echo.address());
        InetSocketAddress withProg = fx.engine.start(new ListenerSpec("custom", dev.interlayer.api.Protocol.TCP, Role.CLIENT,
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), echo.address(), Map.of(), List.of("prog")));
        try (Socket s = EngineFixture.connect(plain); Socket t = EngineFixture.connect(withProg)) {
            assertThat(roundTrip(s, "a")).isEqualTo("a");
            assertThat(roundTrip(t, "a")).isEqualTo("A");
        }
    }

    @Test
    void aSelectorKeepsAModuleOffConnectionsItDoesNotMatch() throws Exception {
        TestModule onlyL2 = upper("only-l2");
        fx.add(onlyL2, config("only-l2", null, null, null, null, Selector.builder().listeners("l2").build()));
        TestModule port = upper("port");
        fx.add(port, config("port", null, null, null, null, Selector.builder().remotePorts("1-2").build()));
        InetSocketAddress l1 = fx.listen(Role.CLIENT, echo.address());
        InetSocketAddress l2 = fx.listen(Role.CLIENT, echo.address());
        try (Socket s = EngineFixture.connect(l1); Socket t = EngineFixture.connect(l2)) {
            assertThat(roundTrip(s, "a")).isEqualTo("a");
            assertThat(roundTrip(t, "a")).isEqualTo("A");
        }
        assertThat(port.attaches.get()).isZero();
    }

    @Test
    void appAndPidSelectorsMatchTheLocalProcessFoundThroughProc() throws Exception {
        int me = (int) ProcessHandle.current().pid();
        String comm = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/self/comm")).trim();
        TestModule byPid = upper("by-pid");
        fx.add(byPid, config("by-pid", null, null, null, null, Selector.builder().pids(me).build()));
        TestModule byApp = upper("by-app");
        fx.add(byApp, config("by-app", null, null, null, null, Selector.builder().apps(comm).build()));
        TestModule other = upper("other-app");
        fx.add(other, config("other-app", null, null, null, null, Selector.builder().apps("no-such-program").build()));
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket s = EngineFixture.connect(a)) {
            assertThat(roundTrip(s, "x")).isEqualTo("X");
            assertThat(fx.engine.connections().getFirst().app()).isEqualTo(comm);
        }
        assertThat(byPid.attaches.get()).isEqualTo(1);
        assertThat(byApp.attaches.get()).isEqualTo(1);
        assertThat(other.attaches.get()).isZero();
        assertThat(byPid.states.getFirst().attachment.connection().app().tgid()).isEqualTo(me);
    }

    @Test
    void everyAttachGetsExactlyOneDetachUnderChurn() throws Exception {
        TestModule m = upper("churn");
        fx.add(m);
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        for (int i = 0; i < 50; i++) {
            Socket s = EngineFixture.connect(a);
            assertThat(roundTrip(s, "q")).isEqualTo("Q");
            if (i % 2 == 0) {
                s.setSoLinger(true, 0); // half of them reset
            }
            s.close();
        }
        waitFor(() -> m.detaches.size() == 50);
        Thread.sleep(200);
        assertThat(m.attaches.get()).isEqualTo(50);
        assertThat(m.detachesByConnection).hasSize(50).allSatisfy((id, n) -> assertThat(n.get()).isEqualTo(1));
        waitFor(() -> fx.engine.connectionCount() == 0);
    }
}
