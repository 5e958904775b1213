package dev.interlayer.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.interlayer.api.ByteView;
import dev.interlayer.api.ConnectionEvent;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.StreamContext;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.Verdict;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ChainTest {

    /** Appends its letter to every chunk, so the output shows the order modules ran in. */
    private static Scripted appender(String name, List<String> order) {
        Scripted m = new Scripted(name);
        Scripted.Hook h = (ctx, d) -> {
            order.add(name + ":" + ctx.direction());
            ctx.replace().write(d).write(name.getBytes());
            return Verdict.PASS;
        };
        return m.onSend(h).onRecv(h);
    }

    @Test
    void sendPassesModulesInPriorityOrderAndRecvInReverse() {
        List<String> order = new ArrayList<>();
        try (ModuleHarness h = ModuleHarness.of(appender("a", order), appender("b", order), appender("c", order))) {
            HarnessConnection c = h.attach();
            c.send(">").recv("<");
            assertEquals(">abc", c.sentText());
            assertEquals("<cba", c.receivedText());
            assertEquals(List.of("a:SEND", "b:SEND", "c:SEND", "c:RECV", "b:RECV", "a:RECV"), order);
        }
    }

    @Test
    void priorityOverridesReorderTheChain() {
        List<String> order = new ArrayList<>();
        try (ModuleHarness h = ModuleHarness.of(appender("a", order), appender("b", order)).priority("a", 200)) {
            HarnessConnection c = h.attach();
            c.send(">");
            assertEquals(">ba", c.sentText());
            assertEquals(List.of("b", "a"), h.chain());
        }
    }

    @Test
    void injectedBytesEnterRightAfterTheInjectorWithItsMarkAndTheInjectorNeverSeesThem() {
        Scripted a = new Scripted("a");
        Scripted b = new Scripted("b");
        Scripted c3 = new Scripted("c");
        try (ModuleHarness h = ModuleHarness.of(a, b, c3)) {
            HarnessConnection c = h.attach();
            assertTrue(b.attachment.inject(Direction.SEND, "s1".getBytes(), 42));
            assertTrue(b.attachment.inject(Direction.RECV, "r1".getBytes(), 43));
            assertTrue(b.attachment.inject(Direction.SEND, "s2".getBytes()));
            c.drain();
            assertEquals("s1s2", c.sentText());
            assertEquals("r1", c.receivedText());
            assertEquals(List.of(), b.seen);
            assertEquals(List.of("send:s1@b#42", "send:s2@b#0"), c3.seen);
            assertEquals(List.of("recv:r1@b#43"), a.seen);
            assertEquals(3, c.injections().size());
            assertEquals(new HarnessConnection.Injection("b", Direction.SEND, 2, 42), c.injections().get(0));
        }
    }

    @Test
    void injectionsFromAnotherThreadRunInCallOrderOnTheNextOperation() throws Exception {
        Scripted a = new Scripted("a");
        try (ModuleHarness h = ModuleHarness.of(a)) {
            HarnessConnection c = h.attach();
            Thread t = new Thread(() -> {
                for (int i = 0; i < 100; i++) {
                    a.attachment.inject(Direction.RECV, new byte[] {(byte) i});
                }
            });
            t.start();
            t.join();
            c.drain();
            byte[] got = c.received();
            assertEquals(100, got.length);
            for (int i = 0; i < 100; i++) {
                assertEquals((byte) i, got[i]);
            }
        }
    }

    @Test
    void aModuleSeesThePreviousModulesOutputAndTheInjectMarkTravelsWithTheData() {
        Scripted a = new Scripted("a").onSend((ctx, d) -> {
            ctx.replace().write(d).write("+".getBytes());
            return Verdict.PASS;
        });
        Scripted b = new Scripted("b");
        Scripted c3 = new Scripted("c");
        try (ModuleHarness h = ModuleHarness.of(a, b, c3)) {
            HarnessConnection c = h.attach();
            c.send("q");
            assertEquals(List.of("send:q+"), b.seen);
            b.attachment.inject(Direction.SEND, "i".getBytes(), 5);
            c.drain();
            assertEquals(List.of("send:q+", "send:i@b#5"), c3.seen);
        }
    }

    @Test
    void aNeedMoreViewCarriesTheMarkOfTheChunkThatCompletedItAndOnEndsRestIsUnmarked() {
        Scripted a = new Scripted("a");
        Scripted b = new Scripted("b").onSend((ctx, d) -> d.remaining() < 4 ? Verdict.needMore(4) : Verdict.PASS);
        Scripted c3 = new Scripted("c");
        try (ModuleHarness h = ModuleHarness.of(a, b, c3)) {
            HarnessConnection c = h.attach();
            c.send("ab");
            a.attachment.inject(Direction.SEND, "cd".getBytes(), 5);
            c.drain();
            assertEquals(List.of("send:ab", "send:abcd@a#5"), b.seen);
            assertEquals(List.of("send:abcd@a#5"), c3.seen);
            a.attachment.inject(Direction.SEND, "ef".getBytes(), 6);
            c.end(Direction.SEND);
            // the rest is b's own by now: unmarked in its onEnd, and when it goes on
            assertEquals(List.of("send:ab", "send:abcd@a#5", "send:ef@a#6", "end-SEND:ef"), b.seen);
            assertEquals(List.of("send:abcd@a#5", "send:ef", "end-SEND:"), c3.seen);
            assertEquals("abcdef", c.sentText());
        }
    }

    @Test
    void timersFireWhenTheVirtualClockPassesThemAndNanoTimeIsVirtual() {
        Scripted a = new Scripted("a");
        List<Long> fired = new ArrayList<>();
        try (ModuleHarness h = ModuleHarness.of(a)) {
            HarnessConnection c = h.attach();
            long t0 = a.env.nanoTime();
            a.attachment.schedule(Duration.ofMillis(30), () -> fired.add(a.env.nanoTime() - t0));
            a.attachment.schedule(Duration.ofMillis(10), () -> fired.add(a.env.nanoTime() - t0));
            a.env.schedule(Duration.ofMillis(20), () -> fired.add(-(a.env.nanoTime() - t0)));
            h.advance(Duration.ofMillis(15));
            assertEquals(List.of(10_000_000L), fired);
            c.advance(Duration.ofMillis(100));
            assertEquals(List.of(10_000_000L, -20_000_000L, 30_000_000L), fired);
            assertEquals(t0 + 115_000_000L, a.env.nanoTime());
        }
    }

    @Test
    void timersOfADetachedModuleAreCancelled() {
        Scripted a = new Scripted("a").onSend((ctx, d) -> Verdict.DETACH);
        List<String> fired = new ArrayList<>();
        try (ModuleHarness h = ModuleHarness.of(a)) {
            HarnessConnection c = h.attach();
            a.attachment.schedule(Duration.ofMillis(1), () -> fired.add("x"));
            assertEquals(1, c.pendingTimers("a"));
            c.send("go");
            c.advance(Duration.ofSeconds(1));
            assertEquals(List.of(), fired);
        }
    }

    @Test
    void sourcesPauseAboveTheHighWaterMarkAndResumeWhenHeldBytesDrain() {
        List<dev.interlayer.api.HeldBytes> held = new ArrayList<>();
        Scripted a = new Scripted("a").onSend((ctx, d) -> {
            held.add(ctx.hold());
            return Verdict.HOLD;
        });
        try (ModuleHarness h = ModuleHarness.of(a).highWaterMark(10)) {
            HarnessConnection c = h.attach();
            for (int i = 0; i < 5; i++) {
                c.send("123456");
            }
            assertEquals(2, held.size());
            assertTrue(c.isPaused(Direction.SEND));
            assertEquals(18, c.pendingSource(Direction.SEND));
            assertEquals(12, c.connection().bytesSent());
            a.attachment.inject(Direction.SEND, held.get(0));
            a.attachment.inject(Direction.SEND, held.get(1));
            c.drain();
            assertEquals(4, held.size());
            assertEquals("123456123456", c.sentText());
        }
    }

    @Test
    void anUnwritableDirectionHoldsInjectionsBackUntilItDrains() {
        Scripted a = new Scripted("a");
        try (ModuleHarness h = ModuleHarness.of(a)) {
            HarnessConnection c = h.attach();
            c.writable(Direction.SEND, false);
            assertTrue(!a.attachment.isWritable(Direction.SEND));
            a.attachment.inject(Direction.SEND, "wait".getBytes());
            c.drain();
            assertEquals("", c.sentText());
            assertEquals(4, c.heldBytes());
            c.writable(Direction.SEND, true);
            assertEquals("wait", c.sentText());
        }
    }

    /** onSend and onEnd only, so it never sees RECV; onEnd writes a trailer. */
    private static final class SendSide implements StreamModule<Void> {
        final List<String> seen = new ArrayList<>();

        @Override
        public ModuleDescriptor descriptor() {
            return ModuleDescriptor.builder("send-side", "1.0.0").implement(InterfaceType.STREAM, 1, 1).build();
        }

        @Override
        public Verdict onSend(Void state, StreamContext ctx, ByteView data) {
            seen.add("send");
            return Verdict.PASS;
        }

        @Override
        public Verdict onEnd(Void state, StreamContext ctx, ByteView rest) {
            seen.add("end-" + ctx.direction());
            ctx.replace().write("!".getBytes());
            return Verdict.PASS;
        }
    }

    @Test
    void aModuleIsCalledOnlyForTheHooksItHasAndGetsNoOnEndForADirectionItDoesNotSee() {
        SendSide m = new SendSide();
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            c.send("a").recv("b").end(Direction.RECV);
            assertEquals("b", c.receivedText());
            assertEquals(List.of("send"), m.seen);
            assertEquals(1, c.calls().size(), "onRecv is the SDK's default: the agent does not call it");
            c.end(Direction.SEND);
            assertEquals("a!", c.sentText());
            assertEquals(List.of("send", "end-SEND"), m.seen);
        }
    }

    @Test
    void socketModulesHearConnectedFirstAShutdownOnceTheEndHasPassedTheChainAndClosingWhenBothHave() {
        SocketOnly sock = new SocketOnly();
        Scripted[] self = new Scripted[1];
        self[0] = new Scripted("m").onSend((ctx, d) -> {
            dev.interlayer.api.HeldBytes held = ctx.hold();
            self[0].attachment.schedule(Duration.ofMillis(10), () -> self[0].attachment.inject(Direction.SEND, held));
            return Verdict.HOLD;
        });
        try (ModuleHarness h = ModuleHarness.of(sock, self[0])) {
            HarnessConnection c = h.attach();
            assertEquals(List.of(ConnectionEvent.CONNECTED), sock.events);
            c.send("x").end(Direction.SEND);
            assertEquals(List.of(ConnectionEvent.CONNECTED), sock.events, "the end waits behind the held bytes");
            c.advance(Duration.ofMillis(10));
            assertEquals(List.of(ConnectionEvent.CONNECTED, ConnectionEvent.SEND_SHUTDOWN), sock.events);
            assertTrue(c.isOpen());
            c.end(Direction.RECV);
            assertEquals(List.of(ConnectionEvent.CONNECTED, ConnectionEvent.SEND_SHUTDOWN, ConnectionEvent.RECV_SHUTDOWN,
                    ConnectionEvent.CLOSING), sock.events);
            assertEquals(HarnessConnection.State.CLOSED, c.state());
            assertEquals(List.of(DetachReason.CLOSED), self[0].detaches);
            assertEquals("x", c.sentText());
        }
    }

    @Test
    void socketOnlyModulesAreSkippedByTheDataChain() {
        Scripted a = new Scripted("a");
        try (ModuleHarness h = ModuleHarness.of(new SocketOnly(), a)) {
            HarnessConnection c = h.attach();
            c.send("x").recv("y");
            assertEquals("x", c.sentText());
            assertEquals("y", c.receivedText());
            c.close();
            assertEquals(1, c.detachCount("sock"));
            assertEquals(h.control("ping", "").bodyText(), "pong");
        }
    }
}
