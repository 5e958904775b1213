package dev.interlayer.engine;

import static dev.interlayer.engine.VerdictTest.waitFor;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.api.Attachment;
import dev.interlayer.api.ByteView;
import dev.interlayer.api.ConnectionEvent;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ListenerInfo;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.OptionDecision;
import dev.interlayer.api.Role;
import dev.interlayer.api.Side;
import dev.interlayer.api.SocketDecision;
import dev.interlayer.api.SocketModule;
import dev.interlayer.api.SocketOption;
import dev.interlayer.api.StreamContext;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.Verdict;
import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.engine.testing.TestModule;
import dev.interlayer.engine.testing.TestServer;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The socket interface (docs/architecture.md, "Socket hooks") and the stream 1.1 onEnd hook with version gating. */
class SocketHooksTest {

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

    /** A socket module whose decisions are set per test; records events. */
    static class Sock implements SocketModule<Void> {
        final String name;
        InetSocketAddress redirectTo;
        String denyConnect;
        String denyListen;
        InetSocketAddress bindTo;
        boolean forceNoDelayOff;
        final List<ConnectionEvent> events = new CopyOnWriteArrayList<>();
        final List<InetSocketAddress> connectTargets = new CopyOnWriteArrayList<>();

        Sock(String name) {
            this.name = name;
        }

        @Override
        public ModuleDescriptor descriptor() {
            return ModuleDescriptor.builder(name, "1.0.0").implement(InterfaceType.SOCKET, 1, 0).build();
        }

        @Override
        public SocketDecision onConnect(Void s, Attachment a, InetSocketAddress target) {
            connectTargets.add(target);
            if (denyConnect != null) return SocketDecision.deny(denyConnect);
            return redirectTo != null ? SocketDecision.redirect(redirectTo) : SocketDecision.allow();
        }

        @Override
        public SocketDecision onBind(Void s, Attachment a, InetSocketAddress local) {
            return bindTo != null ? SocketDecision.redirect(bindTo) : SocketDecision.allow();
        }

        @Override
        public SocketDecision onListen(ListenerInfo l) {
            return denyListen != null ? SocketDecision.deny(denyListen) : SocketDecision.allow();
        }

        @Override
        public OptionDecision onSetOption(Void s, Attachment a, Side side, SocketOption o, Object v) {
            return forceNoDelayOff && o == SocketOption.TCP_NODELAY && side == Side.REMOTE ? OptionDecision.modify(false) : OptionDecision.allow();
        }

        @Override
        public Object onGetOption(Void s, Attachment a, Side side, SocketOption o, Object v) {
            return o == SocketOption.IP_TOS ? 0x20 : v;
        }

        @Override
        public void onEvent(Void s, Attachment a, ConnectionEvent e) {
            events.add(e);
        }
    }

    private static String roundTrip(Socket s, String text) throws IOException {
        s.getOutputStream().write(text.getBytes(StandardCharsets.US_ASCII));
        return new String(s.getInputStream().readNBytes(text.length()), StandardCharsets.US_ASCII);
    }

    @Test
    void onConnectCanRedirectTheUpstream() throws Exception {
        try (TestServer other = new TestServer(s -> s.getOutputStream().write("other".getBytes(StandardCharsets.US_ASCII)))) {
            Sock m = new Sock("redirect");
            m.redirectTo = other.address();
            fx.add(m);
            InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
            try (Socket s = EngineFixture.connect(a)) {
                assertThat(new String(s.getInputStream().readNBytes(5), StandardCharsets.US_ASCII)).isEqualTo("other");
            }
            assertThat(m.connectTargets).containsExactly(echo.address());
        }
    }

    @Test
    void onConnectCanDenyTheConnectionWithAReason() throws Exception {
        Sock m = new Sock("deny");
        m.denyConnect = "not on my watch";
        fx.add(m);
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket s = EngineFixture.connect(a)) {
            assertThatThrownBy(() -> {
                InputStream in = s.getInputStream();
                s.getOutputStream().write(1);
                while (in.read() >= 0) {
                    // until reset
                }
            }).isInstanceOf(SocketException.class);
        }
    }

    @Test
    void onBindChoosesTheUpstreamSocketsLocalAddress() throws Exception {
        java.util.concurrent.CompletableFuture<InetSocketAddress> seenFrom = new java.util.concurrent.CompletableFuture<>();
        try (TestServer up = new TestServer(s -> {
            seenFrom.complete((InetSocketAddress) s.getRemoteSocketAddress());
            s.getOutputStream().write('k');
        })) {
            Sock m = new Sock("bind");
            m.bindTo = new InetSocketAddress(InetAddress.getByName("127.0.0.2"), 0);
            fx.add(m);
            InetSocketAddress a = fx.listen(Role.CLIENT, up.address());
            try (Socket s = EngineFixture.connect(a)) {
                assertThat(s.getInputStream().read()).isEqualTo('k');
            }
            assertThat(seenFrom.get().getAddress().getHostAddress()).isEqualTo("127.0.0.2");
        }
    }

    @Test
    void onListenCanRefuseAListenerAndTheAgentSaysWhy() throws Exception {
        Sock m = new Sock("nolisten");
        m.denyListen = "port reserved for the lab";
        fx.add(m);
        assertThatThrownBy(() -> fx.listen(Role.CLIENT, echo.address()))
                .isInstanceOf(EngineException.class)
                .hasMessageContaining("denied by module nolisten@1.0.0: port reserved for the lab");
        assertThat(fx.engine.listeners()).isEmpty();
    }

    @Test
    void optionHooksSeeAndChangeWhatTheEngineSetsAndReports() throws Exception {
        Sock m = new Sock("opts");
        m.forceNoDelayOff = true;
        fx.add(m);
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket s = EngineFixture.connect(a)) {
            assertThat(roundTrip(s, "x")).isEqualTo("x");
            long id = fx.engine.connections().getFirst().id();
            assertThat(fx.engine.option(id, Side.LOCAL, SocketOption.TCP_NODELAY)).isEqualTo(true);
            assertThat(fx.engine.option(id, Side.REMOTE, SocketOption.TCP_NODELAY)).isEqualTo(false);
            assertThat(fx.engine.option(id, Side.REMOTE, SocketOption.IP_TOS)).isEqualTo(0x20);
        }
    }

    @Test
    void eventsAreObservedInOrder() throws Exception {
        Sock m = new Sock("events");
        fx.add(m);
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket s = EngineFixture.connect(a)) {
            assertThat(roundTrip(s, "x")).isEqualTo("x");
            s.shutdownOutput();
            assertThat(s.getInputStream().read()).isEqualTo(-1);
        }
        waitFor(() -> m.events.contains(ConnectionEvent.CLOSING));
        assertThat(m.events).startsWith(ConnectionEvent.CONNECTED)
                .containsSubsequence(ConnectionEvent.SEND_SHUTDOWN, ConnectionEvent.RECV_SHUTDOWN, ConnectionEvent.CLOSING);
    }

    @Test
    void onEndReceivesTheNeedMoreRemainderAtHalfCloseAndMayRewriteIt() throws Exception {
        TestModule m = TestModule.named("framer")
                .onSend((st, ctx, v) -> Verdict.needMore(100))
                .onEnd((st, ctx, rest) -> {
                    if (ctx.direction() != dev.interlayer.api.Direction.SEND) return Verdict.PASS;
                    ctx.replace().write(("[" + rest.length() + " at end]").getBytes(StandardCharsets.US_ASCII));
                    return Verdict.PASS;
                });
        fx.add(m);
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket s = EngineFixture.connect(a)) {
            s.getOutputStream().write("short".getBytes(StandardCharsets.US_ASCII));
            s.shutdownOutput();
            assertThat(new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII)).isEqualTo("[5 at end]");
        }
        assertThat(m.calls).contains("framer:end:SEND:5", "framer:end:RECV:0");
    }

    /** Declares stream 1.0 but implements the 1.1 hook onEnd: the engine must never call it. */
    static final class OldModule implements StreamModule<Void> {
        final List<String> ends = new CopyOnWriteArrayList<>();

        @Override
        public ModuleDescriptor descriptor() {
            return ModuleDescriptor.builder("old", "1.0.0").implement(InterfaceType.STREAM, 1, 0).build();
        }

        @Override
        public Verdict onSend(Void s, StreamContext ctx, ByteView data) {
            return data.length() < 10 ? Verdict.needMore(10) : Verdict.PASS;
        }

        @Override
        public Verdict onEnd(Void s, StreamContext ctx, ByteView rest) {
            ends.add("called");
            return Verdict.DROP;
        }
    }

    @Test
    void aHookNewerThanTheModulesDeclaredMinorIsNeverCalledAndItsBytesAreNotLost() throws Exception {
        OldModule m = new OldModule();
        fx.add(m);
        InetSocketAddress a = fx.listen(Role.CLIENT, echo.address());
        try (Socket s = EngineFixture.connect(a)) {
            s.getOutputStream().write("abc".getBytes(StandardCharsets.US_ASCII));
            s.shutdownOutput();
            assertThat(new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII)).isEqualTo("abc");
        }
        assertThat(m.ends).isEmpty();
    }
}
