package dev.interlayer.engine;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.api.Direction;
import dev.interlayer.api.HeldBytes;
import dev.interlayer.api.Role;
import dev.interlayer.api.Verdict;
import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.engine.testing.TestModule;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.runtime.LoadedModule;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** {@code ctx.rewrite()} (stream 1.2): a module changes a chunk's bytes in place, through real sockets on loopback. */
class RewriteTest {

    private EngineFixture fx;
    private TestServer upstream;
    /** What the upstream (an echo server) received, in order. */
    private final ByteArrayOutputStream atUpstream = new ByteArrayOutputStream();

    @BeforeEach
    void start() throws IOException {
        fx = new EngineFixture(EngineOptions.defaults().withIoThreads(2).withHookBudget(Duration.ofSeconds(5)));
        upstream = TestServer.echo(atUpstream);
    }

    @AfterEach
    void stop() throws IOException {
        fx.close();
        upstream.close();
    }

    private byte[] upstreamSaw() {
        synchronized (atUpstream) {
            return atUpstream.toByteArray();
        }
    }

    private Socket client() throws Exception {
        return EngineFixture.connect(fx.listen(Role.CLIENT, upstream.address()));
    }

    private static void xor(MemorySegment s, int key) {
        for (long i = 0; i < s.byteSize(); i++) {
            s.set(JAVA_BYTE, i, (byte) (s.get(JAVA_BYTE, i) ^ key));
        }
    }

    private static String text(byte[] b) {
        return new String(b, StandardCharsets.US_ASCII);
    }

    private static String roundTrip(Socket s, String text) throws IOException {
        s.getOutputStream().write(text.getBytes(StandardCharsets.US_ASCII));
        return text(s.getInputStream().readNBytes(text.length()));
    }

    @Test
    void everyByteIsRewrittenInBothDirectionsOfABulkTransfer() throws Exception {
        fx.add(TestModule.named("xor")
                .onSend((st, ctx, v) -> {
                    xor(ctx.rewrite(), 0x5a);
                    return Verdict.PASS;
                })
                .onRecv((st, ctx, v) -> {
                    xor(ctx.rewrite(), 0x5a);
                    return Verdict.PASS;
                }));
        byte[] payload = new byte[8 << 20];
        new Random(42).nextBytes(payload);
        try (Socket s = client()) {
            // the echo sends back what it was sent (the XORed bytes); RECV undoes the XOR on the way back
            CompletableFuture<byte[]> back = CompletableFuture.supplyAsync(() -> {
                try {
                    return s.getInputStream().readNBytes(payload.length);
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            s.getOutputStream().write(payload);
            assertThat(back.get(60, TimeUnit.SECONDS)).isEqualTo(payload);
        }
        byte[] saw = upstreamSaw();
        assertThat(saw).hasSameSizeAs(payload);
        for (int i = 0; i < payload.length; i++) {
            if (saw[i] != (byte) (payload[i] ^ 0x5a)) {
                throw new AssertionError("byte " + i + " reached the upstream as " + saw[i] + ", not " + (payload[i] ^ 0x5a));
            }
        }
    }

    @Test
    void eachModuleOfAChainRewritesWhatTheOneBeforeItForwarded() throws Exception {
        fx.add(TestModule.named("plus-one").priority(10).onSend((st, ctx, v) -> {
            MemorySegment b = ctx.rewrite();
            for (long i = 0; i < b.byteSize(); i++) b.set(JAVA_BYTE, i, (byte) (b.get(JAVA_BYTE, i) + 1));
            return Verdict.PASS;
        }));
        List<String> secondSaw = new CopyOnWriteArrayList<>();
        fx.add(TestModule.named("upper").priority(20).onSend((st, ctx, v) -> {
            secondSaw.add(text(v.copyRemaining()));
            MemorySegment b = ctx.rewrite();
            for (long i = 0; i < b.byteSize(); i++) b.set(JAVA_BYTE, i, (byte) Character.toUpperCase(b.get(JAVA_BYTE, i)));
            return Verdict.PASS;
        }));
        try (Socket s = client()) {
            assertThat(roundTrip(s, "abc")).isEqualTo("BCD");
        }
        assertThat(secondSaw).containsExactly("bcd");
        assertThat(text(upstreamSaw())).isEqualTo("BCD");
    }

    @Test
    void theViewReadsTheRewrittenBytesAndAHoldKeepsThem() throws Exception {
        List<String> viewSaw = new CopyOnWriteArrayList<>();
        fx.add(TestModule.named("upper-then-hold").onSend((st, ctx, v) -> {
            MemorySegment b = ctx.rewrite();
            for (long i = 0; i < b.byteSize(); i++) b.set(JAVA_BYTE, i, (byte) Character.toUpperCase(b.get(JAVA_BYTE, i)));
            v.advance(1);
            viewSaw.add(text(v.copyRemaining()));
            HeldBytes h = ctx.hold();
            st.attachment.schedule(Duration.ofMillis(50), () -> st.attachment.inject(Direction.SEND, h));
            return Verdict.HOLD;
        }));
        try (Socket s = client()) {
            assertThat(roundTrip(s, "hello")).isEqualTo("HELLO");
        }
        assertThat(viewSaw).containsExactly("ELLO");
    }

    @Test
    void aChunkIsEitherRewrittenOrReplacedNotBoth() throws Exception {
        List<String> refused = new CopyOnWriteArrayList<>();
        fx.add(TestModule.named("both")
                .onSend((st, ctx, v) -> {
                    ctx.rewrite();
                    try {
                        ctx.replace();
                    } catch (IllegalStateException e) {
                        refused.add(e.getMessage());
                    }
                    return Verdict.PASS;
                })
                .onRecv((st, ctx, v) -> {
                    ctx.replace().write(v);
                    try {
                        ctx.rewrite();
                    } catch (IllegalStateException e) {
                        refused.add(e.getMessage());
                    }
                    return Verdict.PASS;
                }));
        try (Socket s = client()) {
            assertThat(roundTrip(s, "same")).isEqualTo("same");
        }
        assertThat(refused).hasSize(2).allSatisfy(m -> assertThat(m).contains("module both").contains("either rewritten"));
        assertThat(refused.get(0)).contains("ctx.replace() after ctx.rewrite()");
        assertThat(refused.get(1)).contains("ctx.rewrite() after ctx.replace()");
    }

    @Test
    void aSegmentCannotBeUsedAfterItsCallNorFromAnotherThread() throws Exception {
        List<String> errors = new CopyOnWriteArrayList<>();
        fx.add(TestModule.named("keeper").onSend((st, ctx, v) -> {
            MemorySegment now = ctx.rewrite();
            if (st.scratch instanceof MemorySegment kept) {
                try {
                    kept.set(JAVA_BYTE, 0, (byte) 'X');
                } catch (IllegalStateException e) {
                    errors.add("later: " + e.getClass().getSimpleName());
                }
            }
            st.scratch = now;
            Thread other = Thread.ofPlatform().start(() -> {
                try {
                    now.set(JAVA_BYTE, 0, (byte) 'Y');
                } catch (WrongThreadException e) {
                    errors.add("other thread: " + e.getClass().getSimpleName());
                }
            });
            try {
                other.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return Verdict.PASS;
        }));
        try (Socket s = client()) {
            assertThat(roundTrip(s, "one")).isEqualTo("one");
            assertThat(roundTrip(s, "two")).isEqualTo("two");
        }
        assertThat(errors).containsExactly("other thread: WrongThreadException", "later: IllegalStateException",
                "other thread: WrongThreadException");
        assertThat(text(upstreamSaw())).isEqualTo("onetwo");
    }

    @Test
    void aFaultAfterARewriteResetsTheConnectionEvenUnderFailOpenAndOnlyThatOne() throws Exception {
        TestModule m = TestModule.named("half").onSend((st, ctx, v) -> {
            if (v.indexOf((byte) '!') < 0) return Verdict.PASS;
            ctx.rewrite().set(JAVA_BYTE, 0, (byte) '?');
            throw new IllegalStateException("boom after writing one byte");
        });
        LoadedModule lm = fx.add(m);
        try (Socket other = client(); Socket s = client()) {
            assertThat(roundTrip(other, "before")).isEqualTo("before");
            s.getOutputStream().write("bad!".getBytes(StandardCharsets.US_ASCII));
            assertReset(s);
            assertThat(roundTrip(other, "after")).isEqualTo("after");
        }
        assertThat(lm.lastFault()).contains("onSend").contains("boom after writing one byte");
        assertThat(text(upstreamSaw())).doesNotContain("?").doesNotContain("bad");
    }

    @Test
    void needMoreAfterARewriteIsAFaultThatResetsTheConnection() throws Exception {
        LoadedModule lm = fx.add(TestModule.named("greedy").onSend((st, ctx, v) -> {
            ctx.rewrite();
            return Verdict.needMore(v.length() + 10);
        }));
        try (Socket s = client()) {
            s.getOutputStream().write("abc".getBytes(StandardCharsets.US_ASCII));
            assertReset(s);
        }
        assertThat(lm.lastFault()).contains("called ctx.rewrite() and returned NEED_MORE");
    }

    private static void assertReset(Socket s) {
        assertThatThrownBy(() -> {
            s.setSoTimeout(10_000);
            InputStream in = s.getInputStream();
            while (in.read() >= 0) {
                // until the reset
            }
            throw new AssertionError("the connection ended gracefully instead of being reset");
        }).isInstanceOf(SocketException.class);
    }
}
