package dev.interlayer.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.Output;
import dev.interlayer.api.Role;
import dev.interlayer.api.Verdict;
import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.engine.testing.TestModule;
import dev.interlayer.engine.testing.TestServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Every verdict (docs/architecture.md, "Data hooks and verdicts"), in both directions, through real sockets on loopback. */
class VerdictTest {

    private EngineFixture fx;
    private TestServer upstream;
    /** What the upstream (echo) server received, in order. */
    private final ByteArrayOutputStream atUpstream = new ByteArrayOutputStream();

    @BeforeEach
    void start() throws IOException {
        fx = new EngineFixture();
        upstream = TestServer.echo(atUpstream);
    }

    @AfterEach
    void stop() throws IOException {
        fx.close();
        upstream.close();
    }

    private String upstreamSaw() {
        synchronized (atUpstream) {
            return atUpstream.toString(StandardCharsets.US_ASCII);
        }
    }

    private Socket client() throws Exception {
        InetSocketAddress a = fx.listen(Role.CLIENT, upstream.address());
        return EngineFixture.connect(a);
    }

    private static void send(Socket s, String text) throws IOException {
        s.getOutputStream().write(text.getBytes(StandardCharsets.US_ASCII));
        s.getOutputStream().flush();
    }

    private static String read(Socket s, int n) throws IOException {
        byte[] b = s.getInputStream().readNBytes(n);
        return new String(b, StandardCharsets.US_ASCII);
    }

    private static String upper(dev.interlayer.api.ByteView v) {
        return new String(v.copyRemaining(), StandardCharsets.US_ASCII).toUpperCase();
    }

    @Test
    void passForwardsBytesUnchangedInBothDirections() throws Exception {
        TestModule m = TestModule.named("pass");
        fx.add(m);
        try (Socket s = client()) {
            send(s, "hello");
            assertThat(read(s, 5)).isEqualTo("hello");
        }
        assertThat(m.calls).contains("pass:send:5", "pass:recv:5");
    }

    @Test
    void passWithAReplacementForwardsWhatTheModuleWrote() throws Exception {
        fx.add(TestModule.named("rewrite")
                .onSend((st, ctx, v) -> {
                    ctx.replace().write(upper(v).getBytes(StandardCharsets.US_ASCII));
                    return Verdict.PASS;
                })
                .onRecv((st, ctx, v) -> {
                    Output o = ctx.replace();
                    o.write("<".getBytes(StandardCharsets.US_ASCII)).write(v).write(">".getBytes(StandardCharsets.US_ASCII));
                    return Verdict.PASS;
                }));
        try (Socket s = client()) {
            send(s, "hello");
            assertThat(read(s, 7)).isEqualTo("<HELLO>");
        }
        assertThat(upstreamSaw()).isEqualTo("HELLO");
    }

    @Test
    void anEmptyReplacementForwardsNothing() throws Exception {
        fx.add(TestModule.named("swallow").onSend((st, ctx, v) -> {
            if (v.indexOf((byte) 'x') >= 0) ctx.replace();
            return Verdict.PASS;
        }));
        try (Socket s = client()) {
            send(s, "ab");
            assertThat(read(s, 2)).isEqualTo("ab");
            send(s, "xx");
            Thread.sleep(100);
            send(s, "cd");
            assertThat(read(s, 2)).isEqualTo("cd");
        }
        assertThat(upstreamSaw()).isEqualTo("abcd");
    }

    @Test
    void dropDiscardsTheChunkInEitherDirection() throws Exception {
        fx.add(TestModule.named("drop")
                .onSend((st, ctx, v) -> v.indexOf((byte) 'X') >= 0 ? Verdict.DROP : Verdict.PASS)
                .onRecv((st, ctx, v) -> v.indexOf((byte) 'Y') >= 0 ? Verdict.DROP : Verdict.PASS));
        try (Socket s = client()) {
            send(s, "aaa");
            assertThat(read(s, 3)).isEqualTo("aaa");
            send(s, "XXX");
            Thread.sleep(100); // separate chunks: a chunk is whatever one read returned
            send(s, "YYY"); // reaches the upstream, its echo is dropped on RECV
            waitFor(() -> upstreamSaw().endsWith("YYY"));
            Thread.sleep(100);
            send(s, "bbb");
            assertThat(read(s, 3)).isEqualTo("bbb");
        }
        assertThat(upstreamSaw()).isEqualTo("aaaYYYbbb");
    }

    @Test
    void holdKeepsTheChunkUntilTheModuleInjectsItFromATimer() throws Exception {
        TestModule m = TestModule.named("hold").onSend((st, ctx, v) -> {
            var held = ctx.hold();
            st.attachment.schedule(Duration.ofMillis(300), () -> st.attachment.inject(Direction.SEND, held));
            return Verdict.HOLD;
        });
        fx.add(m);
        try (Socket s = client()) {
            long t0 = System.nanoTime();
            send(s, "later");
            assertThat(read(s, 5)).isEqualTo("later");
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).isGreaterThanOrEqualTo(Duration.ofMillis(280));
        }
    }

    @Test
    void heldBytesInjectedAfterTheSenderHalfClosedStillArriveBeforeTheEnd() throws Exception {
        fx.add(TestModule.named("hold").onSend((st, ctx, v) -> {
            var held = ctx.hold();
            st.attachment.schedule(Duration.ofMillis(150), () -> st.attachment.inject(Direction.SEND, held));
            return Verdict.HOLD;
        }));
        fx.add(TestModule.named("hold-again").priority(200).onSend((st, ctx, v) -> {
            var held = ctx.hold();
            st.attachment.schedule(Duration.ofMillis(50), () -> st.attachment.inject(Direction.SEND, held));
            return Verdict.HOLD;
        }));
        try (Socket s = client()) {
            send(s, "held then closed");
            s.shutdownOutput(); // the end arrives while both modules still hold the bytes
            assertThat(new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII)).isEqualTo("held then closed");
        }
        assertThat(upstreamSaw()).isEqualTo("held then closed");
    }

    @Test
    void holdOnRecvDelaysTheReplyAndKeepsOrder() throws Exception {
        fx.add(TestModule.named("hold").onRecv((st, ctx, v) -> {
            var held = ctx.hold();
            st.attachment.schedule(Duration.ofMillis(50), () -> st.attachment.inject(Direction.RECV, held));
            return Verdict.HOLD;
        }));
        try (Socket s = client()) {
            for (int i = 0; i < 20; i++) {
                send(s, String.format("%03d", i));
            }
            StringBuilder want = new StringBuilder();
            for (int i = 0; i < 20; i++) want.append(String.format("%03d", i));
            assertThat(read(s, 60)).isEqualTo(want.toString());
        }
    }

    @Test
    void needMoreBuffersUntilEnoughBytesArriveThenShowsThemAsOneView() throws Exception {
        List<Integer> seen = new CopyOnWriteArrayList<>();
        fx.add(TestModule.named("frame").onSend((st, ctx, v) -> {
            seen.add(v.length());
            return v.length() < 10 ? Verdict.needMore(10) : Verdict.PASS;
        }));
        try (Socket s = client()) {
            send(s, "abc");
            Thread.sleep(50);
            send(s, "def");
            s.setSoTimeout(300);
            assertThatThrownBy(() -> s.getInputStream().read()).isInstanceOf(SocketTimeoutException.class);
            s.setSoTimeout(20_000);
            send(s, "ghij");
            assertThat(read(s, 10)).isEqualTo("abcdefghij");
        }
        assertThat(seen.getLast()).isGreaterThanOrEqualTo(10);
        assertThat(upstreamSaw()).isEqualTo("abcdefghij");
    }

    @Test
    void needMoreOnRecvWorksTheSameWay() throws Exception {
        fx.add(TestModule.named("frame").onRecv((st, ctx, v) -> v.length() < 8 ? Verdict.needMore(8) : Verdict.PASS));
        try (Socket s = client()) {
            send(s, "1234");
            Thread.sleep(50);
            send(s, "5678");
            assertThat(read(s, 8)).isEqualTo("12345678");
        }
    }

    @Test
    void detachPassesTheChunkThenNeverCallsTheModuleAgainOnThatConnection() throws Exception {
        TestModule m = TestModule.named("once").onSend((st, ctx, v) -> {
            ctx.replace().write(upper(v).getBytes(StandardCharsets.US_ASCII));
            return Verdict.DETACH;
        });
        fx.add(m);
        try (Socket s = client()) {
            send(s, "first");
            assertThat(read(s, 5)).isEqualTo("FIRST");
            send(s, "second");
            assertThat(read(s, 6)).isEqualTo("second");
        }
        assertThat(m.calls).containsExactly("once:send:5");
        waitFor(() -> m.detaches.size() == 1);
        Thread.sleep(100);
        assertThat(m.detaches).containsExactly(DetachReason.VERDICT);
    }

    @Test
    void errorResetsTheConnection() throws Exception {
        fx.add(TestModule.named("deny").onSend((st, ctx, v) -> v.indexOf((byte) '!') >= 0 ? Verdict.error(7, "bang") : Verdict.PASS));
        try (Socket s = client()) {
            send(s, "ok");
            assertThat(read(s, 2)).isEqualTo("ok");
            send(s, "!");
            assertThatThrownBy(() -> {
                InputStream in = s.getInputStream();
                while (in.read() >= 0) {
                    // drain until the reset arrives
                }
            }).isInstanceOf(SocketException.class);
        }
    }

    @Test
    void errorOnRecvResetsTheConnectionToo() throws Exception {
        fx.add(TestModule.named("deny").onRecv((st, ctx, v) -> Verdict.error(9, "no replies")));
        try (Socket s = client()) {
            send(s, "x");
            assertThatThrownBy(() -> s.getInputStream().read()).isInstanceOf(SocketException.class);
        }
    }

    @Test
    void closeDiscardsTheChunkFlushesEarlierDataAndClosesGracefully() throws Exception {
        fx.add(TestModule.named("quit").onSend((st, ctx, v) -> v.indexOf((byte) 'q') >= 0 ? Verdict.CLOSE : Verdict.PASS));
        try (Socket s = client()) {
            send(s, "one");
            assertThat(read(s, 3)).isEqualTo("one");
            send(s, "q");
            assertThat(s.getInputStream().read()).isEqualTo(-1); // EOF, not a reset
        }
        assertThat(upstreamSaw()).isEqualTo("one");
    }

    @Test
    void sendRunsTheChainInPriorityOrderAndRecvInReverse() throws Exception {
        List<String> order = new CopyOnWriteArrayList<>();
        for (String n : List.of("c", "a", "b")) {
            int prio = switch (n) { case "a" -> 10; case "b" -> 20; default -> 30; };
            fx.add(TestModule.named(n).priority(prio)
                    .onSend((st, ctx, v) -> {
                        order.add("send-" + n);
                        ctx.replace().write(v).write(n.getBytes(StandardCharsets.US_ASCII));
                        return Verdict.PASS;
                    })
                    .onRecv((st, ctx, v) -> {
                        order.add("recv-" + n);
                        // undo this module's SEND suffix: stacked transformations unwind in reverse
                        ctx.replace().write(v, v.length() - 1);
                        return Verdict.PASS;
                    }));
        }
        try (Socket s = client()) {
            send(s, "x");
            assertThat(read(s, 1)).isEqualTo("x");
        }
        assertThat(upstreamSaw()).isEqualTo("xabc");
        assertThat(order).containsExactly("send-a", "send-b", "send-c", "recv-c", "recv-b", "recv-a");
    }

    @Test
    void injectedBytesEnterAfterTheInjectorCarryItsMarkAndGoBeforeTheChunkItPassesLater() throws Exception {
        TestModule a = TestModule.named("a").priority(10);
        TestModule c = TestModule.named("c").priority(30);
        TestModule b = TestModule.named("b").priority(20).onSend((st, ctx, v) -> {
            if (st.scratch == null) {
                st.scratch = "done";
                st.attachment.inject(Direction.SEND, "[s-inj]".getBytes(StandardCharsets.US_ASCII), 42L);
                st.attachment.inject(Direction.RECV, "[r-inj]".getBytes(StandardCharsets.US_ASCII));
            }
            return Verdict.PASS;
        });
        List<Long> tags = new CopyOnWriteArrayList<>();
        c.onSend((st, ctx, v) -> {
            if (ctx.injected()) tags.add(ctx.injectTag());
            return Verdict.PASS;
        });
        fx.add(a);
        fx.add(b);
        fx.add(c);
        try (Socket s = client()) {
            send(s, "data");
            // RECV: the injected reply goes straight to the client; then the echo of "[s-inj]data": the module injected
            // during the call, before it passed the chunk, and its output keeps that order
            assertThat(read(s, 7 + 7 + 4)).isEqualTo("[r-inj][s-inj]data");
        }
        assertThat(upstreamSaw()).isEqualTo("[s-inj]data");
        assertThat(tags).containsExactly(42L);
        assertThat(c.calls).contains("c:send:7:injected-by-b").doesNotContain("c:recv:7:injected-by-b");
        assertThat(a.calls).contains("a:recv:7:injected-by-b").noneMatch(x -> x.startsWith("a:send:7"));
        assertThat(b.calls).noneMatch(x -> x.contains("injected"));
    }

    @Test
    void aModuleWithoutDataHooksInADirectionIsNotCalledThere() throws Exception {
        TestModule sendOnly = new TestModule("sendonly") {
            // overrides only onSend: RECV takes the fast path
        };
        fx.add(sendOnly);
        try (Socket s = client()) {
            send(s, "abc");
            assertThat(read(s, 3)).isEqualTo("abc");
        }
        // TestModule overrides both hooks, so both are called; the engine's per-direction dispatch is covered
        // in FastPathTest with a module that implements only onSend.
        assertThat(sendOnly.calls).contains("sendonly:send:3");
    }

    static void waitFor(java.util.function.BooleanSupplier cond) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("condition not met within 10 s");
            Thread.sleep(10);
        }
    }
}
