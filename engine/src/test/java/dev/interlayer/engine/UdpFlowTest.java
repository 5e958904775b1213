package dev.interlayer.engine;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.HeldBytes;
import dev.interlayer.api.Output;
import dev.interlayer.api.Protocol;
import dev.interlayer.api.Role;
import dev.interlayer.api.Verdict;
import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.engine.testing.TestDatagramModule;
import dev.interlayer.engine.testing.TestModule;
import dev.interlayer.engine.testing.UdpEchoServer;
import dev.interlayer.runtime.Hooks;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleState;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** UDP listeners and flows with the datagram interface, through real sockets on loopback. */
class UdpFlowTest {

    private EngineFixture fx;
    private UdpEchoServer echo;
    private int listeners;

    @BeforeEach
    void start() throws IOException {
        // a generous hook budget: on a busy machine a pause of the event-loop thread must not count as a module fault here
        fx = new EngineFixture(EngineOptions.defaults().withIoThreads(2).withHookBudget(Duration.ofSeconds(5)));
        echo = new UdpEchoServer();
    }

    @AfterEach
    void stop() throws InterruptedException {
        fx.close();
        echo.close();
    }

    private InetSocketAddress listen(Role role, InetSocketAddress upstream) throws EngineException {
        return listen(role, upstream, UdpSettings.DEFAULTS);
    }

    private InetSocketAddress listen(Role role, InetSocketAddress upstream, UdpSettings udp) throws EngineException {
        return fx.engine.start(ListenerSpec.udp("u" + (++listeners), role, new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), upstream)
                .withUdp(udp));
    }

    private static DatagramSocket client() throws IOException {
        DatagramSocket s = new DatagramSocket(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        s.setSoTimeout(5000);
        s.setReceiveBufferSize(4 << 20);
        return s;
    }

    private static void send(DatagramSocket s, InetSocketAddress to, byte[] b) throws IOException {
        s.send(new DatagramPacket(b, b.length, to));
    }

    private static void send(DatagramSocket s, InetSocketAddress to, String text) throws IOException {
        send(s, to, text.getBytes(StandardCharsets.UTF_8));
    }

    private static byte[] receive(DatagramSocket s) throws IOException {
        byte[] buf = new byte[65536];
        DatagramPacket p = new DatagramPacket(buf, buf.length);
        s.receive(p);
        return Arrays.copyOf(p.getData(), p.getLength());
    }

    private static String receiveText(DatagramSocket s) throws IOException {
        return new String(receive(s), StandardCharsets.UTF_8);
    }

    private static boolean nothingArrives(DatagramSocket s, int ms) throws IOException {
        s.setSoTimeout(ms);
        try {
            receive(s);
            return false;
        } catch (SocketTimeoutException e) {
            return true;
        } finally {
            s.setSoTimeout(5000);
        }
    }

    private static void waitFor(String what, BooleanSupplier cond) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("not within 10 s: " + what);
            Thread.sleep(10);
        }
    }

    private static String text(dev.interlayer.api.ByteView v) {
        return new String(v.copyRemaining(), StandardCharsets.UTF_8);
    }

    // ---- plain forwarding ---------------------------------------------------------------------------

    @Test
    void datagramsEchoThroughAUdpListenerWithNoModuleAndTheFlowIsListed() throws Exception {
        InetSocketAddress at = listen(Role.CLIENT, echo.address());
        try (DatagramSocket c = client()) {
            for (int i = 0; i < 20; i++) {
                send(c, at, "ping " + i);
                assertThat(receiveText(c)).isEqualTo("ping " + i);
            }
            List<ConnectionSnapshot> list = fx.engine.connections();
            assertThat(list).hasSize(1);
            ConnectionSnapshot f = list.get(0);
            assertThat(f.protocol()).isEqualTo(Protocol.UDP);
            assertThat(f.local()).isEqualTo(c.getLocalSocketAddress());
            assertThat(f.remote()).isEqualTo(echo.address());
            assertThat(f.bytesSent()).isEqualTo(f.bytesReceived()).isEqualTo(20 * 6 + 10 * 1);
            // the upstream saw the flow's own socket, not the client's
            assertThat(new HashSet<>(echo.senders)).hasSize(1).doesNotContain((InetSocketAddress) c.getLocalSocketAddress());
        }
    }

    @Test
    void largeDatagramsArePreservedExactlyAndBoundariesKept() throws Exception {
        InetSocketAddress at = listen(Role.CLIENT, echo.address());
        TestDatagramModule pass = TestDatagramModule.named("pass");
        fx.add(pass);
        SplittableRandom rnd = new SplittableRandom(7);
        try (DatagramSocket c = client()) {
            for (int size : new int[] {1, 1472, 9000, 60_000, 65_507}) {
                byte[] b = new byte[size];
                for (int i = 0; i < size; i++) b[i] = (byte) rnd.nextInt();
                send(c, at, b);
                assertThat(receive(c)).as("datagram of %d bytes", size).isEqualTo(b);
            }
        }
        assertThat(pass.calls).containsExactly("pass:send:1", "pass:recv:1", "pass:send:1472", "pass:recv:1472",
                "pass:send:9000", "pass:recv:9000", "pass:send:60000", "pass:recv:60000", "pass:send:65507", "pass:recv:65507");
    }

    @Test
    void twoHundredConcurrentFlowsEachGetTheirOwnRepliesAndStateWithModules() throws Exception {
        // SEND appends the flow's id, RECV checks and strips it: a reply reaching the wrong flow would be caught
        TestDatagramModule mark = TestDatagramModule.named("mark")
                .onSend((s, ctx, d) -> {
                    ctx.replace().write(d).write(("|" + s.attachment.connection().id()).getBytes(StandardCharsets.UTF_8));
                    return Verdict.PASS;
                })
                .onRecv((s, ctx, d) -> {
                    String t = text(d);
                    String suffix = "|" + s.attachment.connection().id();
                    if (!t.endsWith(suffix)) return Verdict.error(1, "reply of another flow: " + t);
                    ctx.replace().write(t.substring(0, t.length() - suffix.length()).getBytes(StandardCharsets.UTF_8));
                    return Verdict.PASS;
                });
        fx.add(mark);
        InetSocketAddress at = listen(Role.CLIENT, echo.address());
        int flows = 200;
        int each = 20;
        List<CompletableFuture<Set<String>>> all = new ArrayList<>();
        var threads = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor();
        for (int f = 0; f < flows; f++) {
            final int flow = f;
            all.add(CompletableFuture.supplyAsync(() -> {
                // like a DNS client: one datagram at a time, sent again if no answer comes (UDP may drop under a burst)
                try (DatagramSocket c = client()) {
                    c.setSoTimeout(1000);
                    Set<String> got = new HashSet<>();
                    for (int i = 0; i < each; i++) {
                        String q = "f" + flow + "-" + i;
                        for (int attempt = 0; !got.contains(q); attempt++) {
                            if (attempt == 5) throw new AssertionError("no answer to " + q + " after 5 tries");
                            send(c, at, q);
                            try {
                                while (!got.contains(q)) got.add(receiveText(c));
                            } catch (SocketTimeoutException e) {
                                // send it again
                            }
                        }
                    }
                    return got;
                } catch (IOException e) {
                    throw new RuntimeException("flow " + flow, e);
                }
            }, threads));
        }
        for (int f = 0; f < flows; f++) {
            Set<String> want = new HashSet<>();
            for (int i = 0; i < each; i++) want.add("f" + f + "-" + i);
            // reordering-insensitive: the set of payloads each flow got back is exactly what it sent
            assertThat(all.get(f).get(120, TimeUnit.SECONDS)).as("flow %d", f).isEqualTo(want);
        }
        assertThat(mark.attaches.get()).isEqualTo(flows);
        assertThat(fx.engine.connectionCount()).isEqualTo(flows);
        assertThat(echo.received).hasSizeGreaterThanOrEqualTo(flows * each);
        assertThat(fx.registry.find("mark").orElseThrow().stats().faults()).isZero();
    }

    @Test
    void aBurstFromManySocketsLongerThanOneReadBatchArrivesCompleteInOrderAndByteExactBothWays() throws Exception {
        // every socket sends its whole burst at once, the sockets interleaved: the listener reads many flows' datagrams per
        // wake-up (more than UdpListener.READS_PER_WAKEUP), the writes of each pass are flushed together, and each flow's
        // upstream socket gets several datagrams per flush; none may be lost, reordered within its flow or changed
        InetSocketAddress at = listen(Role.CLIENT, echo.address());
        int flows = 16;
        int each = 3 * UdpListener.READS_PER_WAKEUP;
        SplittableRandom rnd = new SplittableRandom(21);
        List<DatagramSocket> socks = new ArrayList<>();
        List<List<byte[]>> sent = new ArrayList<>();
        try {
            for (int f = 0; f < flows; f++) {
                socks.add(client());
                sent.add(new ArrayList<>());
            }
            for (int i = 0; i < each; i++) {
                for (int f = 0; f < flows; f++) {
                    byte[] d = new byte[8 + rnd.nextInt(993)];
                    rnd.nextBytes(d);
                    java.nio.ByteBuffer.wrap(d).putInt(f).putInt(i);
                    sent.get(f).add(d);
                    send(socks.get(f), at, d);
                }
            }
            for (int f = 0; f < flows; f++) {
                for (int i = 0; i < each; i++) {
                    byte[] got;
                    try {
                        got = receive(socks.get(f));
                    } catch (SocketTimeoutException e) {
                        throw new AssertionError("flow " + f + " got " + i + " of its " + each + " echoes back", e);
                    }
                    assertThat(got).as("echo %d of flow %d", i, f).isEqualTo(sent.get(f).get(i));
                }
            }
        } finally {
            for (DatagramSocket c : socks) c.close();
        }
        // toward the upstream (SEND): the echo server saw each flow's datagrams in the order sent, unchanged
        for (int f = 0; f < flows; f++) {
            final int flow = f;
            List<byte[]> atUpstream = echo.received.stream().filter(d -> java.nio.ByteBuffer.wrap(d).getInt() == flow).toList();
            assertThat(atUpstream).as("flow %d at the upstream", f).containsExactlyElementsOf(sent.get(f));
        }
        assertThat(fx.engine.connectionCount()).isEqualTo(flows);
    }

    @Test
    void aBurstOfLargeDatagramsOverTheHighWaterMarkInOnePassIsSentNotDropped() throws Exception {
        // 48 x 50,000 bytes from one socket: one pass of the loop reads more than the upstream socket's 512 KiB high-water
        // mark; the writes waiting for the pass's flush must go out when they reach it, not be dropped as backed up
        InetSocketAddress at = listen(Role.CLIENT, echo.address());
        int n = 48;
        SplittableRandom rnd = new SplittableRandom(50_000);
        List<byte[]> sent = new ArrayList<>();
        try (DatagramSocket c = client()) {
            c.setSendBufferSize(4 << 20);
            for (int i = 0; i < n; i++) {
                byte[] d = new byte[50_000];
                rnd.nextBytes(d);
                java.nio.ByteBuffer.wrap(d).putInt(i);
                sent.add(d);
                send(c, at, d);
            }
            waitFor("all " + n + " datagrams at the upstream", () -> echo.received.size() >= n);
        }
        assertThat(echo.received).containsExactlyElementsOf(sent);
    }

    @Test
    void idleFlowsExpireAndDetachTheirModulesAndTheNextDatagramStartsANewFlow() throws Exception {
        TestDatagramModule m = TestDatagramModule.named("m");
        fx.add(m);
        InetSocketAddress at = listen(Role.CLIENT, echo.address(), new UdpSettings(Duration.ofMillis(300), 100));
        try (DatagramSocket c = client()) {
            send(c, at, "one");
            assertThat(receiveText(c)).isEqualTo("one");
            assertThat(fx.engine.connectionCount()).isEqualTo(1);
            waitFor("the idle flow ends", () -> fx.engine.connectionCount() == 0);
            assertThat(m.detaches).containsExactly(DetachReason.CLOSED);
            send(c, at, "two");
            assertThat(receiveText(c)).isEqualTo("two");
            assertThat(m.attaches.get()).isEqualTo(2);
        }
        waitFor("every attach got its detach", () -> m.detaches.size() == 2);
    }

    @Test
    void beyondMaxFlowsDatagramsFromNewPeersAreDroppedUntilAFlowExpires() throws Exception {
        InetSocketAddress at = listen(Role.CLIENT, echo.address(), new UdpSettings(Duration.ofMillis(400), 2));
        try (DatagramSocket a = client(); DatagramSocket b = client(); DatagramSocket c = client()) {
            send(a, at, "a");
            assertThat(receiveText(a)).isEqualTo("a");
            send(b, at, "b");
            assertThat(receiveText(b)).isEqualTo("b");
            send(c, at, "c");
            assertThat(nothingArrives(c, 200)).as("a third peer is refused while two flows are open").isTrue();
            waitFor("the two flows expire", () -> fx.engine.connectionCount() == 0);
            send(c, at, "c again");
            assertThat(receiveText(c)).isEqualTo("c again");
        }
    }

    @Test
    void aServerRoleListenerMapsTheLocalApplicationToTheUpstreamSoDirectionsAreSwapped() throws Exception {
        TestDatagramModule m = TestDatagramModule.named("m")
                .onRecv((s, ctx, d) -> {
                    ctx.replace().write(("in:" + text(d)).getBytes(StandardCharsets.UTF_8));
                    return Verdict.PASS;
                })
                .onSend((s, ctx, d) -> {
                    ctx.replace().write(("out:" + text(d)).getBytes(StandardCharsets.UTF_8));
                    return Verdict.PASS;
                });
        fx.add(m);
        InetSocketAddress at = listen(Role.SERVER, echo.address());
        try (DatagramSocket peer = client()) {
            send(peer, at, "hi");
            assertThat(receiveText(peer)).isEqualTo("out:in:hi");
        }
        ConnectionSnapshot f = fx.engine.connections().get(0);
        assertThat(f.local()).isEqualTo(echo.address());
    }

    // ---- verdicts -----------------------------------------------------------------------------------

    @Test
    void dropDiscardsTheDatagramSilently() throws Exception {
        fx.add(TestDatagramModule.named("m").onSend((s, ctx, d) -> text(d).startsWith("x") ? Verdict.DROP : Verdict.PASS));
        InetSocketAddress at = listen(Role.CLIENT, echo.address());
        try (DatagramSocket c = client()) {
            send(c, at, "x1");
            send(c, at, "ok");
            assertThat(receiveText(c)).isEqualTo("ok");
            assertThat(echo.received).hasSize(1);
        }
    }

    @Test
    void anEmptyReplacementForwardsNothing() throws Exception {
        fx.add(TestDatagramModule.named("m").onSend((s, ctx, d) -> {
            if (text(d).equals("gone")) ctx.replace();
            return Verdict.PASS;
        }));
        InetSocketAddress at = listen(Role.CLIENT, echo.address());
        try (DatagramSocket c = client()) {
            send(c, at, "gone");
            send(c, at, "kept");
            assertThat(receiveText(c)).isEqualTo("kept");
            assertThat(echo.received).hasSize(1);
        }
    }

    @Test
    void heldDatagramsAreInjectedLaterAsWholeDatagramsInOrderWithTheMark() throws Exception {
        // holds every SEND datagram and injects them all, in order, when "go" arrives
        TestDatagramModule hold = TestDatagramModule.named("hold").priority(10).onSend((s, ctx, d) -> {
            @SuppressWarnings("unchecked")
            List<HeldBytes> q = s.scratch == null ? new ArrayList<>() : (List<HeldBytes>) s.scratch;
            s.scratch = q;
            if (text(d).equals("go")) {
                for (HeldBytes h : q) s.attachment.inject(Direction.SEND, h);
                q.clear();
                return Verdict.DROP;
            }
            q.add(ctx.hold());
            return Verdict.HOLD;
        });
        TestDatagramModule after = TestDatagramModule.named("after").priority(20);
        fx.add(hold);
        fx.add(after);
        InetSocketAddress at = listen(Role.CLIENT, echo.address());
        try (DatagramSocket c = client()) {
            send(c, at, "a");
            send(c, at, "bb");
            send(c, at, "ccc");
            assertThat(nothingArrives(c, 200)).isTrue();
            send(c, at, "go");
            assertThat(List.of(receiveText(c), receiveText(c), receiveText(c))).containsExactly("a", "bb", "ccc");
        }
        assertThat(after.calls).contains("after:send:1:injected-by-hold", "after:send:2:injected-by-hold", "after:send:3:injected-by-hold");
    }

    @Test
    void aModuleInjectsANewDatagramTowardTheApplication() throws Exception {
        fx.add(TestDatagramModule.named("m").onSend((s, ctx, d) -> {
            s.attachment.inject(Direction.RECV, "ack".getBytes(StandardCharsets.UTF_8));
            return Verdict.DROP;
        }));
        InetSocketAddress at = listen(Role.CLIENT, echo.address());
        try (DatagramSocket c = client()) {
            send(c, at, "q");
            assertThat(receiveText(c)).isEqualTo("ack");
            assertThat(echo.received).isEmpty();
        }
    }

    @Test
    void detachPassesThisDatagramAndTheModuleIsNeverCalledAgainOnThatFlow() throws Exception {
        TestDatagramModule m = TestDatagramModule.named("m").onSend((s, ctx, d) -> {
            ctx.replace().write("first!".getBytes(StandardCharsets.UTF_8));
            return Verdict.DETACH;
        });
        fx.add(m);
        InetSocketAddress at = listen(Role.CLIENT, echo.address());
        try (DatagramSocket c = client()) {
            send(c, at, "1");
            assertThat(receiveText(c)).isEqualTo("first!");
            send(c, at, "2");
            assertThat(receiveText(c)).isEqualTo("2");
        }
        assertThat(m.calls).containsExactly("m:send:1");
        assertThat(m.detaches).containsExactly(DetachReason.VERDICT);
    }

    @Test
    void errorEndsTheFlowAndTheNextDatagramStartsANewOne() throws Exception {
        TestDatagramModule m = TestDatagramModule.named("m").onSend((s, ctx, d) -> text(d).equals("bad") ? Verdict.error(7, "bad input") : Verdict.PASS);
        fx.add(m);
        InetSocketAddress at = listen(Role.CLIENT, echo.address());
        try (DatagramSocket c = client()) {
            send(c, at, "bad");
            waitFor("the flow ends", () -> !m.detaches.isEmpty());
            assertThat(m.detaches).containsExactly(DetachReason.CLOSED);
            send(c, at, "good");
            assertThat(receiveText(c)).isEqualTo("good");
        }
        assertThat(m.attaches.get()).isEqualTo(2);
        assertThat(fx.registry.find("m").orElseThrow().stats().faults()).isZero();
    }

    @Test
    void needMoreAndCloseAreFaultsForDatagramsAndTheDatagramPassesUnderFailOpen() throws Exception {
        TestDatagramModule more = TestDatagramModule.named("more").onSend((s, ctx, d) -> Verdict.needMore(100));
        fx.add(more);
        InetSocketAddress at = listen(Role.CLIENT, echo.address());
        try (DatagramSocket c = client()) {
            send(c, at, "x");
            assertThat(receiveText(c)).isEqualTo("x");
        }
        LoadedModule lm = fx.registry.find("more").orElseThrow();
        assertThat(lm.faults()).isEqualTo(1);
        assertThat(lm.lastFault()).contains("NEED_MORE(100)").contains("no meaning for a datagram");
        assertThat(more.detaches).containsExactly(DetachReason.FAULT);

        TestDatagramModule close = TestDatagramModule.named("close").onSend((s, ctx, d) -> Verdict.CLOSE);
        fx.add(close);
        try (DatagramSocket c = client()) {
            send(c, at, "y");
            assertThat(receiveText(c)).isEqualTo("y");
        }
        assertThat(fx.registry.find("close").orElseThrow().lastFault()).contains("CLOSE").contains("attachment.close()");
    }

    @Test
    void rewriteChangesADatagramInPlaceAndAFaultAfterItLosesThatDatagramOnly() throws Exception {
        TestDatagramModule upper = TestDatagramModule.named("upper").onSend((s, ctx, d) -> {
            MemorySegment b = ctx.rewrite();
            for (long i = 0; i < b.byteSize(); i++) b.set(JAVA_BYTE, i, (byte) Character.toUpperCase(b.get(JAVA_BYTE, i)));
            if (text(d).startsWith("BAD")) throw new IllegalStateException("boom after rewriting");
            return Verdict.PASS;
        });
        fx.add(upper);
        InetSocketAddress at = listen(Role.CLIENT, echo.address());
        try (DatagramSocket c = client()) {
            send(c, at, "hello");
            assertThat(receiveText(c)).isEqualTo("HELLO");
            send(c, at, "bad one");
            send(c, at, "after");
            assertThat(receiveText(c)).as("fail-open: the module is detached, the half-rewritten datagram lost").isEqualTo("after");
        }
        assertThat(echo.received).extracting(b -> new String(b, StandardCharsets.UTF_8)).containsExactly("HELLO", "after");
        assertThat(fx.registry.find("upper").orElseThrow().lastFault()).contains("boom after rewriting");
        assertThat(upper.detaches).containsExactly(DetachReason.FAULT);
    }

    @Test
    void aReplacementOverTheUdpLimitIsAFaultNeverTruncated() throws Exception {
        TestDatagramModule big = TestDatagramModule.named("big").onSend((s, ctx, d) -> {
            Output o = ctx.replace();
            o.write(new byte[65_508]);
            return Verdict.PASS;
        });
        fx.add(big);
        InetSocketAddress at = listen(Role.CLIENT, echo.address());
        try (DatagramSocket c = client()) {
            send(c, at, "small");
            assertThat(receiveText(c)).as("fail-open: the original datagram goes on").isEqualTo("small");
        }
        assertThat(echo.received).hasSize(1);
        assertThat(echo.received.get(0)).hasSize(5);
        assertThat(fx.registry.find("big").orElseThrow().lastFault()).contains("65508-byte datagram").contains("65507");
    }

    @Test
    void aModuleThatThrowsIsContainedFailOpenPassesFailClosedEndsTheFlow() throws Exception {
        TestDatagramModule thrower = TestDatagramModule.named("thrower").onSend((s, ctx, d) -> {
            throw new IllegalStateException("boom");
        });
        fx.add(thrower);
        InetSocketAddress at = listen(Role.CLIENT, echo.address());
        try (DatagramSocket c = client()) {
            send(c, at, "a");
            assertThat(receiveText(c)).isEqualTo("a");
            send(c, at, "b");
            assertThat(receiveText(c)).isEqualTo("b");
        }
        assertThat(thrower.calls).hasSize(1);
        assertThat(thrower.detaches).containsExactly(DetachReason.FAULT);
        fx.registry.find("thrower").orElseThrow().unregister();

        TestDatagramModule strict = TestDatagramModule.named("strict").failClosed().onSend((s, ctx, d) -> {
            throw new IllegalStateException("boom");
        });
        fx.add(strict);
        try (DatagramSocket c = client()) {
            send(c, at, "c");
            assertThat(nothingArrives(c, 300)).isTrue();
        }
        waitFor("the flow of the fail-closed module ends", () -> strict.detaches.contains(DetachReason.CLOSED));
    }

    @Test
    void aModuleIsQuarantinedAfterRepeatedFaultsAndTrafficThenPassesUntouched() throws Exception {
        TestDatagramModule thrower = TestDatagramModule.named("thrower").onSend((s, ctx, d) -> {
            throw new IllegalStateException("boom");
        });
        LoadedModule lm = fx.add(thrower);
        InetSocketAddress at = listen(Role.CLIENT, echo.address());
        for (int i = 0; i < 6; i++) {
            try (DatagramSocket c = client()) { // a new flow each time: fail-open detached it from the previous one
                send(c, at, "x" + i);
                assertThat(receiveText(c)).isEqualTo("x" + i);
            }
        }
        assertThat(lm.state()).isEqualTo(ModuleState.INACTIVE);
        assertThat(thrower.calls).hasSize(5);
    }

    @Test
    void aStreamOnlyModuleDoesNotAttachToUdpFlowsAndADatagramOnlyModuleNotToTcp() throws Exception {
        TestModule stream = TestModule.named("stream-only");
        TestDatagramModule datagram = TestDatagramModule.named("datagram-only");
        LoadedModule s = fx.add(stream);
        LoadedModule d = fx.add(datagram);
        assertThat(s.serves(Protocol.UDP)).isFalse();
        assertThat(d.serves(Protocol.TCP)).isFalse();
        assertThat(d.has(Hooks.DATAGRAM_SEND) && d.has(Hooks.DATAGRAM_RECV)).isTrue();
        assertThat(d.has(Hooks.SEND)).isFalse();
        InetSocketAddress at = listen(Role.CLIENT, echo.address());
        try (DatagramSocket c = client()) {
            send(c, at, "z");
            assertThat(receiveText(c)).isEqualTo("z");
        }
        assertThat(stream.attaches.get()).isZero();
        assertThat(datagram.attaches.get()).isEqualTo(1);
        assertThat(fx.engine.connections().get(0).modules()).containsExactly("datagram-only@1.0.0");
    }

    @Test
    void stoppingTheListenerEndsItsFlowsAndDetachesEveryModuleOnce() throws Exception {
        TestDatagramModule m = TestDatagramModule.named("m");
        fx.add(m);
        InetSocketAddress at = listen(Role.CLIENT, echo.address());
        try (DatagramSocket a = client(); DatagramSocket b = client()) {
            send(a, at, "a");
            send(b, at, "b");
            receive(a);
            receive(b);
        }
        String name = fx.engine.listeners().keySet().iterator().next();
        fx.engine.stop(name);
        waitFor("both flows end", () -> m.detaches.size() == 2);
        assertThat(fx.engine.connectionCount()).isZero();
        assertThat(m.detaches).containsOnly(DetachReason.CLOSED);
        assertThat(Map.copyOf(fx.engine.listeners())).isEmpty();
    }

    @Test
    void theLocalApplicationBehindAClientFlowIsFoundThroughProc() throws Exception {
        java.util.concurrent.atomic.AtomicReference<dev.interlayer.api.AppInfo> seen = new java.util.concurrent.atomic.AtomicReference<>();
        fx.add(TestDatagramModule.named("who").onSend((s, ctx, d) -> {
            seen.set(s.attachment.connection().app());
            return Verdict.PASS;
        }));
        InetSocketAddress at = listen(Role.CLIENT, echo.address());
        try (DatagramSocket c = client()) {
            send(c, at, "who am i");
            assertThat(receiveText(c)).isEqualTo("who am i");
        }
        dev.interlayer.api.AppInfo app = seen.get();
        assertThat(app).as("this test's JVM holds the client socket").isNotNull();
        assertThat((long) app.tgid()).isEqualTo(ProcessHandle.current().pid());
    }
}
