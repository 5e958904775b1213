package dev.interlayer.testkit;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.HeldBytes;
import dev.interlayer.api.Protocol;
import dev.interlayer.api.Verdict;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code ctx.rewrite()} in the harness keeps the engine's rules (the engine's side: engine {@code RewriteTest}). */
class RewriteHarnessTest {

    private static void upper(MemorySegment s) {
        for (long i = 0; i < s.byteSize(); i++) {
            s.set(JAVA_BYTE, i, (byte) Character.toUpperCase(s.get(JAVA_BYTE, i)));
        }
    }

    @Test
    void theRewrittenBytesAreForwardedAndTheViewReadsThem() {
        List<String> viewSaw = new ArrayList<>();
        Scripted m = new Scripted("up", 2).onSend((ctx, d) -> {
            upper(ctx.rewrite());
            viewSaw.add(new String(d.copyRemaining(), StandardCharsets.US_ASCII));
            return Verdict.PASS;
        });
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            c.send("hello").send("").send("world");
            assertThat(c.sentText()).isEqualTo("HELLOWORLD");
            assertThat(viewSaw).containsExactly("HELLO", "WORLD");
        }
    }

    @Test
    void aHoldAfterARewriteKeepsTheRewrittenBytes() {
        HeldBytes[] held = new HeldBytes[1];
        Scripted m = new Scripted("up", 2).onSend((ctx, d) -> {
            upper(ctx.rewrite());
            held[0] = ctx.hold();
            return Verdict.HOLD;
        });
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            c.send("later");
            assertThat(c.sentText()).isEmpty();
            assertThat(m.attachment.inject(Direction.SEND, held[0])).isTrue();
            c.drain();
            assertThat(c.sentText()).isEqualTo("LATER");
        }
    }

    @Test
    void theSegmentDiesWithItsCallAndCannotBeMixedWithAReplacement() {
        MemorySegment[] kept = new MemorySegment[1];
        List<String> refused = new ArrayList<>();
        Scripted m = new Scripted("m", 2).onSend((ctx, d) -> {
            kept[0] = ctx.rewrite();
            try {
                ctx.replace();
            } catch (IllegalStateException e) {
                refused.add(e.getMessage());
            }
            return Verdict.PASS;
        }).onRecv((ctx, d) -> {
            ctx.replace().write(d);
            try {
                ctx.rewrite();
            } catch (IllegalStateException e) {
                refused.add(e.getMessage());
            }
            return Verdict.PASS;
        });
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            c.send("abc").recv("def");
            assertThat(c.sentText()).isEqualTo("abc");
            assertThat(c.receivedText()).isEqualTo("def");
            assertThatThrownBy(() -> kept[0].get(JAVA_BYTE, 0)).isInstanceOf(IllegalStateException.class);
        }
        assertThat(refused).hasSize(2).allSatisfy(r -> assertThat(r).contains("module m").contains("either rewritten"));
    }

    @Test
    void aFaultAfterARewriteResetsTheConnectionEvenUnderFailOpen() {
        Scripted m = new Scripted("half", 2).onSend((ctx, d) -> {
            ctx.rewrite().set(JAVA_BYTE, 0, (byte) '?');
            throw new IllegalStateException("kaput");
        });
        try (ModuleHarness h = ModuleHarness.of(m).faultPolicy("half", FaultPolicy.FAIL_OPEN).tolerateFaults()) {
            HarnessConnection c = h.attach();
            c.send("abc");
            assertThat(c.isReset()).isTrue();
            assertThat(c.closeReason()).contains("after ctx.rewrite()").contains("kaput");
            assertThat(c.sentText()).isEmpty();
            assertThat(h.faults()).hasSize(1);
        }
    }

    @Test
    void needMoreAfterARewriteIsAFault() {
        Scripted m = new Scripted("greedy", 2).onSend((ctx, d) -> {
            ctx.rewrite();
            return Verdict.needMore(d.length() + 1);
        });
        try (ModuleHarness h = ModuleHarness.of(m).tolerateFaults()) {
            HarnessConnection c = h.attach();
            c.send("abc");
            assertThat(c.isReset()).isTrue();
            assertThat(h.faults()).singleElement().satisfies(f -> assertThat(f.error().getMessage())
                    .contains("called ctx.rewrite() and returned NEED_MORE(4)"));
        }
    }

    @Test
    void aDatagramIsRewrittenWholeAndAFaultAfterARewriteLosesIt() {
        try (ModuleHarness h = ModuleHarness.of(new DatagramHarnessTest.Dgram("up", (ctx, d) -> {
            upper(ctx.rewrite());
            if (d.peek(0) == 'B') throw new IllegalStateException("kaput");
            return Verdict.PASS;
        })).tolerateFaults()) {
            HarnessConnection flow = h.attach(new FakeConnection().protocol(Protocol.UDP));
            flow.send("a1").send("b2").send("c3");
            assertThat(flow.sentDatagrams()).extracting(b -> new String(b, StandardCharsets.US_ASCII)).containsExactly("A1", "c3");
            assertThat(flow.detachReason("up")).isEqualTo(DetachReason.FAULT);
        }
    }
}
