package dev.interlayer.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.HeldBytes;
import dev.interlayer.api.Verdict;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class VerdictsTest {

    @Test
    void passForwardsTheChunkUnchangedInBothDirections() {
        Scripted m = new Scripted("m");
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            c.send("hello").recv("world");
            assertEquals("hello", c.sentText());
            assertEquals("world", c.receivedText());
            assertEquals(List.of(Verdict.PASS, Verdict.PASS), c.verdicts("m"));
        }
    }

    @Test
    void passWithAReplacementForwardsExactlyTheReplacement() {
        Scripted m = new Scripted("m").onSend((ctx, d) -> {
            ctx.replace().write(d, 2).write("!".getBytes());
            return Verdict.PASS;
        });
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            c.send("abcdef");
            assertEquals("ab!", c.sentText());
        }
    }

    @Test
    void anEmptyReplacementForwardsNothing() {
        Scripted m = new Scripted("m").onRecv((ctx, d) -> {
            ctx.replace();
            return Verdict.PASS;
        });
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            c.recv("gone");
            assertEquals("", c.receivedText());
        }
    }

    @Test
    void dropDiscardsTheChunkSilently() {
        Scripted m = new Scripted("m").onSend((ctx, d) -> d.peek(0) == 'x' ? Verdict.DROP : Verdict.PASS);
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            c.send("a").send("xx").send("b");
            assertEquals("ab", c.sentText());
            assertTrue(c.isOpen());
        }
    }

    @Test
    void heldBytesAreDeliveredInOrderAfterInject() {
        HeldBytes[] held = new HeldBytes[1];
        Scripted m = new Scripted("m").onSend((ctx, d) -> {
            held[0] = ctx.hold();
            return Verdict.HOLD;
        });
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            c.send("held");
            assertEquals("", c.sentText());
            assertEquals(4, c.heldBytes());
            assertEquals(4, c.heldBytes("m"));
            assertTrue(m.attachment.inject(Direction.SEND, held[0]));
            c.drain();
            assertEquals("held", c.sentText());
            assertEquals(0, c.heldBytes());
            assertFalse(held[0].isHeld());
            assertThrows(IllegalStateException.class, () -> m.attachment.inject(Direction.SEND, held[0]));
        }
    }

    @Test
    void needMoreBuffersUntilEnoughBytesThenCallsWithEverythingAsOneView() {
        Scripted m = new Scripted("m").onSend((ctx, d) -> d.remaining() < 6 ? Verdict.needMore(6) : Verdict.PASS);
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            c.send("ab");
            c.send("cd");
            assertEquals("", c.sentText());
            assertEquals(4, c.heldBytes("m"));
            c.send("efg");
            assertEquals("abcdefg", c.sentText());
            // not called for "cd": 4 buffered bytes are still fewer than the 6 asked for
            assertEquals(List.of("send:ab", "send:abcdefg"), m.seen);
            assertEquals(List.of(Verdict.needMore(6), Verdict.PASS), c.verdicts("m"));
            assertEquals(0, c.heldBytes());
        }
    }

    @Test
    void needMoreBeyondTheHoldLimitResetsTheConnectionWithAClearReason() {
        Scripted m = new Scripted("m").onSend((ctx, d) -> Verdict.needMore(1 << 20));
        try (ModuleHarness h = ModuleHarness.of(m).holdLimit(8)) {
            HarnessConnection c = h.attach();
            c.send("12345"); // asking for more than the limit can ever hold resets at once, as in the agent
            assertTrue(c.isReset());
            assertTrue(c.closeReason().contains("hold limit"), c.closeReason());
            assertEquals(List.of(DetachReason.CLOSED), m.detaches);
        }
    }

    @Test
    void detachActsAsPassThenTheModuleIsNeverCalledAgainInEitherDirection() {
        Scripted m = new Scripted("m").onSend((ctx, d) -> {
            ctx.replace().write("X".getBytes());
            return Verdict.DETACH;
        });
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            c.send("a").send("b").recv("c");
            assertEquals("Xb", c.sentText());
            assertEquals("c", c.receivedText());
            assertEquals(List.of("send:a"), m.seen);
            assertEquals(List.of(DetachReason.VERDICT), m.detaches);
            assertFalse(c.isAttached("m"));
            assertFalse(m.attachment.inject(Direction.SEND, new byte[] {1}));
            c.close();
            assertEquals(1, c.detachCount("m"));
        }
    }

    @Test
    void errorResetsTheConnectionAndRecordsTheReason() {
        Scripted m = new Scripted("m").onRecv((ctx, d) -> Verdict.error(7, "bad frame"));
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            c.send("ok").recv("bad");
            assertTrue(c.isReset());
            assertEquals("ok", c.sentText());
            assertEquals("", c.receivedText());
            assertTrue(c.closeReason().contains("ERROR(7, bad frame)") && c.closeReason().contains("m"), c.closeReason());
            assertEquals(DetachReason.CLOSED, c.detachReason("m"));
            assertThrows(IllegalStateException.class, () -> c.send("more"));
        }
    }

    @Test
    void closeDiscardsTheChunkKeepsWhatWasForwardedAndClosesGracefully() {
        Scripted m = new Scripted("m").onSend((ctx, d) -> d.peek(0) == 'q' ? Verdict.CLOSE : Verdict.PASS);
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            c.send("before").send("quit");
            assertEquals("before", c.sentText());
            assertEquals(HarnessConnection.State.CLOSED, c.state());
            assertEquals(List.of(DetachReason.CLOSED), m.detaches);
        }
    }

    @Test
    void onEndGetsTheNeedMoreRestAndMayReplaceIt() {
        Scripted m = new Scripted("m")
                .onSend((ctx, d) -> Verdict.needMore(100))
                .onEnd((ctx, rest) -> {
                    ctx.replace().write("[".getBytes()).write(rest).write("]".getBytes());
                    return Verdict.PASS;
                });
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            c.send("partial").end(Direction.SEND);
            assertEquals("[partial]", c.sentText());
            assertTrue(c.ended(Direction.SEND));
            assertFalse(c.ended(Direction.RECV));
        }
    }

    @Test
    void aStream10ModuleNeverGetsOnEndAndItsRestPassesOn() {
        Scripted m = new Scripted("old", 0).onSend((ctx, d) -> Verdict.needMore(100));
        try (ModuleHarness h = ModuleHarness.of(m)) {
            assertEquals(1, h.notes().size(), h.notes().toString());
            HarnessConnection c = h.attach();
            c.send("tail").end(Direction.SEND);
            assertEquals("tail", c.sentText());
            assertTrue(m.seen.stream().noneMatch(s -> s.startsWith("end")), m.seen.toString());
            assertTrue(c.ended(Direction.SEND));
        }
    }

    @Test
    void theEndReachesAHolderAfterItsLastChunkAndWaitsThereSoItNeverOvertakesHeldBytes() {
        Scripted[] self = new Scripted[1];
        self[0] = new Scripted("m").onSend((ctx, d) -> {
            HeldBytes held = ctx.hold();
            self[0].attachment.schedule(Duration.ofMillis(10), () -> self[0].attachment.inject(Direction.SEND, held));
            return Verdict.HOLD;
        });
        Scripted after = new Scripted("after");
        try (ModuleHarness h = ModuleHarness.of(self[0], after)) {
            HarnessConnection c = h.attach();
            c.send("late").end(Direction.SEND);
            // as in the agent: the end reaches m after its last chunk (onEnd now), and waits there while m holds
            assertFalse(c.ended(Direction.SEND));
            assertEquals(List.of("send:late", "end-SEND:"), self[0].seen);
            assertEquals(List.of(), after.seen);
            c.advance(Duration.ofMillis(10));
            assertEquals("late", c.sentText());
            assertTrue(c.ended(Direction.SEND));
            assertEquals(List.of("send:late@m#0", "end-SEND:"), after.seen);
        }
    }

    @Test
    void bytesInjectedDuringACallGoOnBeforeTheChunkTheCallPasses() {
        Scripted m = new Scripted("m").onSend((ctx, d) -> {
            ctx.attachment().inject(Direction.SEND, "[hdr]".getBytes());
            return Verdict.PASS;
        });
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            c.send("data").send("more");
            // as in the agent: a module's output keeps the order in which the module produced it
            assertEquals("[hdr]data[hdr]more", c.sentText());
        }
    }

    @Test
    void aDetachVerdictPassesOnWhatTheModuleStillHeldBeforeTheChunk() {
        int[] n = {0};
        Scripted m = new Scripted("m").onSend((ctx, d) -> {
            if (n[0]++ < 2) {
                ctx.hold();
                return Verdict.HOLD;
            }
            return Verdict.DETACH;
        });
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            c.send("a").send("b").send("c").send("d");
            assertEquals("abcd", c.sentText());
            assertEquals(0, c.heldBytes());
            assertEquals(DetachReason.VERDICT, c.detachReason("m"));
        }
    }

    @Test
    void aFailOpenFaultPassesOnWhatTheModuleStillHeldAndThenTheChunk() {
        int[] n = {0};
        Scripted m = new Scripted("m").onSend((ctx, d) -> {
            if (n[0]++ == 0) {
                ctx.hold();
                return Verdict.HOLD;
            }
            throw new IllegalStateException("boom");
        });
        try (ModuleHarness h = ModuleHarness.of(m).tolerateFaults()) {
            HarnessConnection c = h.attach();
            c.send("held-").send("then");
            assertEquals("held-then", c.sentText());
            assertEquals(DetachReason.FAULT, c.detachReason("m"));
        }
    }

    @Test
    void aDetachTheControlPlaneRequestsPassesOnWhatTheModuleHeldAndTheChainGoesOn() {
        Scripted m = new Scripted("m").onSend((ctx, d) -> {
            ctx.hold();
            return Verdict.HOLD;
        });
        Scripted after = new Scripted("after");
        try (ModuleHarness h = ModuleHarness.of(m, after)) {
            HarnessConnection c = h.attach();
            c.send("first").send("second");
            assertEquals("", c.sentText());
            c.detach("m");
            assertEquals("firstsecond", c.sentText());
            assertEquals(List.of("send:first", "send:second"), after.seen);
            assertEquals(DetachReason.REQUESTED, c.detachReason("m"));
            assertEquals(List.of(DetachReason.REQUESTED), m.detaches);
            c.send("third").detach("m");
            assertEquals("firstsecondthird", c.sentText());
            assertEquals(1, c.detachCount("m"));
        }
    }

    @Test
    void onEndMayHoldTheRestAndTheEndWaitsUntilItIsInjected() {
        HeldBytes[] held = new HeldBytes[1];
        Scripted m = new Scripted("m")
                .onSend((ctx, d) -> Verdict.needMore(100))
                .onEnd((ctx, rest) -> {
                    held[0] = ctx.hold();
                    return Verdict.HOLD;
                });
        Scripted after = new Scripted("after");
        try (ModuleHarness h = ModuleHarness.of(m, after)) {
            HarnessConnection c = h.attach();
            c.send("tail").end(Direction.SEND);
            assertEquals("", c.sentText());
            assertFalse(c.ended(Direction.SEND));
            assertEquals(4, c.heldBytes("m"));
            assertTrue(m.attachment.inject(Direction.SEND, held[0]));
            c.drain();
            assertEquals("tail", c.sentText());
            assertTrue(c.ended(Direction.SEND));
            assertEquals(List.of("send:tail@m#0", "end-SEND:"), after.seen);
        }
    }

    @Test
    void anInjectAfterTheEndHasPassedTheModuleIsRefused() {
        HeldBytes[] held = new HeldBytes[1];
        Scripted m = new Scripted("m").onRecv((ctx, d) -> {
            held[0] = ctx.hold();
            return Verdict.HOLD;
        });
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            c.recv("r").end(Direction.SEND);
            assertTrue(c.ended(Direction.SEND));
            assertFalse(m.attachment.inject(Direction.SEND, "late".getBytes()));
            assertFalse(m.attachment.inject(Direction.SEND, held[0]), "held bytes may not follow the end either");
            assertFalse(held[0].isHeld());
            c.drain();
            assertEquals("", c.sentText());
            assertTrue(m.attachment.inject(Direction.RECV, "still open".getBytes()));
            c.drain();
            assertEquals("still open", c.receivedText());
        }
    }
}
