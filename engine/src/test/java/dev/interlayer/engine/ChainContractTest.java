package dev.interlayer.engine;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.api.Direction;
import dev.interlayer.api.HeldBytes;
import dev.interlayer.api.Module;
import dev.interlayer.api.Role;
import dev.interlayer.api.Verdict;
import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.engine.testing.TestModule;
import dev.interlayer.testkit.HarnessConnection;
import dev.interlayer.testkit.ModuleHarness;
import dev.interlayer.runtime.ModuleRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The chain contract: each scenario runs through the real engine on loopback sockets and through the testkit
 * ({@link ModuleHarness}), which module authors test with, and what comes out must be the same — the bytes of each
 * direction and how each direction ended (a clean end, a reset, or still open). The testkit is its own model of
 * the chain; this is what holds it to the engine.
 *
 * <p>On sockets each step waits a little, so each write is one read (one chunk) and each timer has fired.
 */
class ChainContractTest {

    /** One step of a scenario: a chunk from the local application or the network, an end, or time passing. */
    sealed interface Step {}

    record Send(String text) implements Step {}

    record Recv(String text) implements Step {}

    record End(Direction direction) implements Step {}

    record Wait(int millis) implements Step {}

    /** A scenario: modules made fresh for each run, and what happens to the connection. */
    record Scenario(String name, Supplier<List<Module<?>>> modules, List<Step> steps) {
        @Override
        public String toString() {
            return name;
        }
    }

    /** How one direction came out: its bytes and how it ended. */
    record Outcome(String bytes, String ending) {}

    static Stream<Scenario> scenarios() {
        List<Step> ends = List.of(new End(Direction.SEND), new End(Direction.RECV));
        return Stream.of(
                new Scenario("pass both ways", () -> List.of(TestModule.named("m")),
                        steps(List.of(new Send("hello"), new Recv("world")), ends)),
                new Scenario("replace", () -> List.of(TestModule.named("m").onSend((st, ctx, v) -> {
                    ctx.replace().write(upper(v).getBytes(StandardCharsets.US_ASCII));
                    return Verdict.PASS;
                })), steps(List.of(new Send("abc"), new Send("def")), ends)),
                new Scenario("drop", () -> List.of(TestModule.named("m").onSend((st, ctx, v) -> v.peek(0) == 'x' ? Verdict.DROP
                        : Verdict.PASS)), steps(List.of(new Send("a"), new Send("xx"), new Send("b")), ends)),
                new Scenario("inject during a call, then pass", () -> List.of(TestModule.named("m").onSend((st, ctx, v) -> {
                    st.attachment.inject(Direction.SEND, "[h]".getBytes(StandardCharsets.US_ASCII));
                    return Verdict.PASS;
                })), steps(List.of(new Send("one"), new Send("two")), ends)),
                new Scenario("hold, then inject from a timer, then the end", () -> List.of(holdThenInject(20)),
                        steps(List.of(new Send("late"), new End(Direction.SEND), new Wait(80)), List.of(new End(Direction.RECV)))),
                new Scenario("need more, then complete", () -> List.of(TestModule.named("m").onSend((st, ctx, v) ->
                        v.length() < 6 ? Verdict.needMore(6) : Verdict.PASS)),
                        steps(List.of(new Send("abc"), new Send("def"), new Send("g")), ends)),
                new Scenario("need more, then the end gives the rest to onEnd", () -> List.of(TestModule.named("m")
                        .onSend((st, ctx, v) -> Verdict.needMore(100))
                        .onEnd((st, ctx, v) -> {
                            ctx.replace().write(("<" + new String(v.copyRemaining(), StandardCharsets.US_ASCII) + ">")
                                    .getBytes(StandardCharsets.US_ASCII));
                            return Verdict.PASS;
                        })), steps(List.of(new Send("abc"), new Send("de")), ends)),
                new Scenario("detach verdict while holding an earlier chunk", () -> List.of(holdTwiceThenDetach()),
                        steps(List.of(new Send("a"), new Send("b"), new Send("c"), new Send("d")), ends)),
                new Scenario("fail-open fault while holding", () -> List.of(holdOnceThenThrow()),
                        steps(List.of(new Send("held-"), new Send("then")), ends)),
                new Scenario("error resets", () -> List.of(TestModule.named("m").onSend((st, ctx, v) ->
                        v.peek(0) == '!' ? Verdict.error(7, "no") : Verdict.PASS)),
                        List.of(new Send("ok"), new Send("!bad"), new Wait(50))),
                new Scenario("two modules: RECV runs the chain backwards", () -> List.of(
                        TestModule.named("a").priority(10).onRecv((st, ctx, v) -> prefix(ctx, v, "a")),
                        TestModule.named("b").priority(20).onRecv((st, ctx, v) -> prefix(ctx, v, "b"))),
                        steps(List.of(new Recv("x"), new Recv("y")), ends)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scenarios")
    void theEngineAndTheTestkitAgree(Scenario sc) throws Exception {
        Outcome[] engine = onSockets(sc);
        Outcome[] embedded = onEmbeddedChannels(sc);
        Outcome[] testkit = inTestkit(sc);
        assertThat(embedded[0]).as("%s: SEND (engine on sockets vs engine without sockets)", sc.name()).isEqualTo(engine[0]);
        assertThat(embedded[1]).as("%s: RECV (engine on sockets vs engine without sockets)", sc.name()).isEqualTo(engine[1]);
        assertThat(testkit[0]).as("%s: SEND (engine on sockets vs testkit)", sc.name()).isEqualTo(engine[0]);
        assertThat(testkit[1]).as("%s: RECV (engine on sockets vs testkit)", sc.name()).isEqualTo(engine[1]);
    }

    // ---- the modules ------------------------------------------------------------------------------

    private static TestModule holdThenInject(int millis) {
        return TestModule.named("m").onSend((st, ctx, v) -> {
            HeldBytes h = ctx.hold();
            st.attachment.schedule(Duration.ofMillis(millis), () -> st.attachment.inject(Direction.SEND, h));
            return Verdict.HOLD;
        });
    }

    private static TestModule holdTwiceThenDetach() {
        return TestModule.named("m").onSend((st, ctx, v) -> {
            int n = st.scratch == null ? 0 : (Integer) st.scratch;
            st.scratch = n + 1;
            if (n < 2) {
                ctx.hold();
                return Verdict.HOLD;
            }
            return Verdict.DETACH;
        });
    }

    private static TestModule holdOnceThenThrow() {
        return TestModule.named("m").onSend((st, ctx, v) -> {
            if (st.scratch == null) {
                st.scratch = Boolean.TRUE;
                ctx.hold();
                return Verdict.HOLD;
            }
            throw new IllegalStateException("boom");
        });
    }

    private static Verdict prefix(dev.interlayer.api.StreamContext ctx, dev.interlayer.api.ByteView v, String p) {
        ctx.replace().write(p.getBytes(StandardCharsets.US_ASCII)).write(v);
        return Verdict.PASS;
    }

    private static String upper(dev.interlayer.api.ByteView v) {
        return new String(v.copyRemaining(), StandardCharsets.US_ASCII).toUpperCase(Locale.ROOT);
    }

    private static List<Step> steps(List<Step> a, List<Step> b) {
        return Stream.concat(a.stream(), b.stream()).toList();
    }

    // ---- the drivers --------------------------------------------------------------------------------

    /** The scenario through a real engine: a client socket, the agent's listener, an upstream server socket. */
    private static Outcome[] onSockets(Scenario sc) throws Exception {
        try (EngineFixture fx = new EngineFixture(EngineOptions.defaults().withIoThreads(1), 1000);
             ServerSocket ss = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            for (Module<?> m : sc.modules().get()) fx.add(m);
            InetSocketAddress a = fx.listen(Role.CLIENT, new InetSocketAddress(ss.getInetAddress(), ss.getLocalPort()));
            try (Socket client = EngineFixture.connect(a); Socket server = ss.accept()) {
                server.setSoTimeout(2000);
                client.setSoTimeout(2000);
                Outcome[] out = new Outcome[2];
                Thread up = Thread.ofVirtual().start(() -> out[0] = drain(server));
                Thread down = Thread.ofVirtual().start(() -> out[1] = drain(client));
                for (Step s : sc.steps()) {
                    try {
                        switch (s) {
                            case Send x -> client.getOutputStream().write(x.text().getBytes(StandardCharsets.US_ASCII));
                            case Recv x -> server.getOutputStream().write(x.text().getBytes(StandardCharsets.US_ASCII));
                            case End x -> (x.direction() == Direction.SEND ? client : server).shutdownOutput();
                            case Wait x -> Thread.sleep(x.millis());
                        }
                    } catch (IOException reset) {
                        // a reset the scenario caused: the readers record it
                    }
                    Thread.sleep(40); // one write is one read; timers and tasks have run
                }
                up.join(5000);
                down.join(5000);
                return out;
            }
        }
    }

    /** Reads a socket until its end, a reset or 2 s of silence. */
    private static Outcome drain(Socket s) {
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        String ending;
        try {
            InputStream in = s.getInputStream();
            byte[] buf = new byte[4096];
            int n;
            while ((n = in.read(buf)) > 0) got.write(buf, 0, n);
            ending = "end";
        } catch (SocketTimeoutException e) {
            ending = "open";
        } catch (IOException e) {
            ending = "reset";
        }
        return new Outcome(got.toString(StandardCharsets.US_ASCII), ending);
    }

    /**
     * An embedded channel that can be half-closed, as a socket channel: the engine sends its FIN with
     * {@code shutdownOutput()}, recorded here; and it collects what the engine writes to it.
     */
    private static final class HalfClosable extends io.netty.channel.embedded.EmbeddedChannel
            implements io.netty.channel.socket.DuplexChannel {
        final ByteArrayOutputStream got = new ByteArrayOutputStream();
        boolean outputShut;

        HalfClosable() {
            pipeline().addLast(new io.netty.channel.ChannelOutboundHandlerAdapter() {
                @Override
                public void write(io.netty.channel.ChannelHandlerContext ctx, Object msg, io.netty.channel.ChannelPromise p) {
                    if (msg instanceof io.netty.buffer.ByteBuf b) {
                        byte[] bytes = new byte[b.readableBytes()];
                        b.getBytes(b.readerIndex(), bytes);
                        got.writeBytes(bytes);
                    }
                    io.netty.util.ReferenceCountUtil.release(msg);
                    p.trySuccess();
                }
            });
        }

        @Override public boolean isInputShutdown() { return false; }
        @Override public io.netty.channel.ChannelFuture shutdownInput() { return newSucceededFuture(); }
        @Override public io.netty.channel.ChannelFuture shutdownInput(io.netty.channel.ChannelPromise p) { return p.setSuccess(); }
        @Override public boolean isOutputShutdown() { return outputShut; }
        @Override public io.netty.channel.ChannelFuture shutdownOutput() { outputShut = true; return newSucceededFuture(); }
        @Override public io.netty.channel.ChannelFuture shutdownOutput(io.netty.channel.ChannelPromise p) {
            outputShut = true;
            return p.setSuccess();
        }
        @Override public boolean isShutdown() { return outputShut; }
        @Override public io.netty.channel.ChannelFuture shutdown() { outputShut = true; return newSucceededFuture(); }
        @Override public io.netty.channel.ChannelFuture shutdown(io.netty.channel.ChannelPromise p) { outputShut = true; return p.setSuccess(); }
    }

    /**
     * The scenario through the engine's own {@link ProxyConnection} between two embedded channels: no sockets, the
     * time of the connection's loop advanced by hand. A chunk is one channel read, as from the transport.
     */
    private static Outcome[] onEmbeddedChannels(Scenario sc) throws Exception {
        ModuleRegistry registry = new ModuleRegistry(1000);
        HalfClosable local = new HalfClosable();
        HalfClosable remote = new HalfClosable();
        local.freezeTime();
        try (Engine engine = new Engine(registry, EngineOptions.defaults().withIoThreads(1))) {
            for (Module<?> m : sc.modules().get()) {
                registry.add(m, dev.interlayer.runtime.PackageRef.builtin(m.getClass().getSimpleName(), m.getClass().getClassLoader()), null);
            }
            InetSocketAddress any = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
            ListenerSpec spec = ListenerSpec.tcp("contract", Role.CLIENT, any, new InetSocketAddress(InetAddress.getLoopbackAddress(), 9));
            EngineOptions o = EngineOptions.defaults();
            ProxyConnection conn = new ProxyConnection(engine, 1, spec, local, new Watchdog.Slot(Thread.currentThread()), o.holdLimit(),
                    null, 0, 0);
            conn.startConnected(registry.candidates(conn), remote);
            for (Step s : sc.steps()) {
                if (conn.isClosed()) break;
                switch (s) {
                    case Send x -> read(local, x.text());
                    case Recv x -> read(remote, x.text());
                    case End x -> (x.direction() == Direction.SEND ? local : remote).pipeline()
                            .fireUserEventTriggered(io.netty.channel.socket.ChannelInputShutdownEvent.INSTANCE);
                    case Wait x -> local.advanceTimeBy(x.millis(), java.util.concurrent.TimeUnit.MILLISECONDS);
                }
                for (int i = 0; i < 10; i++) {
                    local.runPendingTasks();
                    local.runScheduledPendingTasks();
                    remote.runPendingTasks();
                }
            }
            // the last direction to end is not half-closed: the graceful close of both channels is its FIN
            String send = conn.wasReset() ? "reset" : remote.outputShut || conn.isClosed() ? "end" : "open";
            String recv = conn.wasReset() ? "reset" : local.outputShut || conn.isClosed() ? "end" : "open";
            Outcome[] out = {new Outcome(remote.got.toString(StandardCharsets.US_ASCII), send),
                    new Outcome(local.got.toString(StandardCharsets.US_ASCII), recv)};
            if (!conn.isClosed()) conn.abort("contract scenario done");
            local.finishAndReleaseAll();
            remote.finishAndReleaseAll();
            return out;
        } finally {
            registry.close();
        }
    }

    private static void read(io.netty.channel.embedded.EmbeddedChannel from, String text) {
        from.pipeline().fireChannelRead(Engine.ALLOCATOR.buffer().writeBytes(text.getBytes(StandardCharsets.US_ASCII)));
        from.pipeline().fireChannelReadComplete();
    }

    /** The scenario through the testkit, with its virtual clock. */
    private static Outcome[] inTestkit(Scenario sc) {
        try (ModuleHarness h = ModuleHarness.of(sc.modules().get().toArray(Module<?>[]::new)).tolerateFaults()) {
            HarnessConnection c = h.attach();
            for (Step s : sc.steps()) {
                if (!c.isOpen()) break;
                switch (s) {
                    case Send x -> c.send(x.text());
                    case Recv x -> c.recv(x.text());
                    case End x -> c.end(x.direction());
                    case Wait x -> c.advance(Duration.ofMillis(x.millis()));
                }
            }
            String send = c.isReset() ? "reset" : c.ended(Direction.SEND) ? "end" : "open";
            String recv = c.isReset() ? "reset" : c.ended(Direction.RECV) ? "end" : "open";
            return new Outcome[] {new Outcome(c.sentText(), send), new Outcome(c.receivedText(), recv)};
        }
    }
}
