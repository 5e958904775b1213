package dev.interlayer.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.interlayer.api.ByteView;
import dev.interlayer.api.Direction;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.Output;
import dev.interlayer.api.StreamContext;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.Verdict;
import org.junit.jupiter.api.Test;

class ViolationsTest {

    private static ContractViolation.Rule ruleOf(Runnable r) {
        return assertThrows(ContractViolation.class, r::run).rule();
    }

    @Test
    void aViewUsedAfterItsCallIsReportedWithTheModulesName() {
        ByteView[] kept = new ByteView[1];
        Scripted m = new Scripted("keeper").onSend((ctx, d) -> {
            kept[0] = d;
            return Verdict.PASS;
        });
        try (ModuleHarness h = ModuleHarness.of(m)) {
            h.attach().send("x");
            ContractViolation v = assertThrows(ContractViolation.class, () -> kept[0].readByte());
            assertEquals(ContractViolation.Rule.VIEW_AFTER_CALL, v.rule());
            assertEquals("keeper", v.module());
            assertTrue(v.getMessage().contains("keeper") && v.getMessage().contains("onSend"), v.getMessage());
            assertEquals(1, h.violations().size());
        }
    }

    @Test
    void aReplacementUsedAfterItsCallIsReported() {
        Output[] kept = new Output[1];
        Scripted m = new Scripted("m").onSend((ctx, d) -> {
            kept[0] = ctx.replace();
            return Verdict.PASS;
        });
        try (ModuleHarness h = ModuleHarness.of(m)) {
            h.attach().send("x");
            assertEquals(ContractViolation.Rule.REPLACE_AFTER_CALL, ruleOf(() -> kept[0].writeByte(1)));
        }
    }

    @Test
    void aContextUsedAfterItsCallIsReported() {
        StreamContext[] kept = new StreamContext[1];
        Scripted m = new Scripted("m").onSend((ctx, d) -> {
            kept[0] = ctx;
            return Verdict.PASS;
        });
        try (ModuleHarness h = ModuleHarness.of(m)) {
            h.attach().send("x");
            assertEquals(ContractViolation.Rule.CONTEXT_AFTER_CALL, ruleOf(() -> kept[0].hold()));
        }
    }

    @Test
    void holdWithoutCallingHoldIsReported() {
        Scripted m = new Scripted("m").onSend((ctx, d) -> Verdict.HOLD);
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            assertEquals(ContractViolation.Rule.HOLD_WITHOUT_HOLD_CALL, ruleOf(() -> c.send("x")));
        }
    }

    @Test
    void callingHoldWithoutReturningHoldIsReportedAndTheBytesAreReleased() {
        Scripted m = new Scripted("m").onRecv((ctx, d) -> {
            ctx.hold();
            return Verdict.PASS;
        });
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            assertEquals(ContractViolation.Rule.HOLD_CALL_WITHOUT_HOLD, ruleOf(() -> c.recv("x")));
            assertEquals(0, c.heldBytes());
        }
    }

    @Test
    void aNullVerdictIsReported() {
        Scripted m = new Scripted("m").onSend((ctx, d) -> null);
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            assertEquals(ContractViolation.Rule.NULL_VERDICT, ruleOf(() -> c.send("x")));
        }
    }

    @Test
    void aForwardingVerdictAfterAbortingTheConnectionIsReported() {
        Scripted m = new Scripted("m").onSend((ctx, d) -> {
            ctx.attachment().abort("gave up");
            return Verdict.PASS;
        });
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            assertEquals(ContractViolation.Rule.VERDICT_AFTER_CLOSE, ruleOf(() -> c.send("x")));
            assertTrue(c.isReset());
            assertTrue(c.closeReason().contains("gave up"));
        }
    }

    @Test
    void abortFollowedByDropIsFine() {
        Scripted m = new Scripted("m").onSend((ctx, d) -> {
            ctx.attachment().abort("gave up");
            return Verdict.DROP;
        });
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            c.send("x");
            assertTrue(c.isReset());
            assertEquals("", c.sentText());
        }
    }

    @Test
    void injectingBeyondTheHoldLimitIsReported() {
        Scripted m = new Scripted("m");
        try (ModuleHarness h = ModuleHarness.of(m).holdLimit(16)) {
            HarnessConnection c = h.attach();
            c.writable(Direction.SEND, false);
            m.attachment.inject(Direction.SEND, new byte[10]);
            ContractViolation v = assertThrows(ContractViolation.class, () -> m.attachment.inject(Direction.SEND, new byte[10]));
            assertEquals(ContractViolation.Rule.INJECT_BEYOND_HOLD_LIMIT, v.rule());
        }
    }

    @Test
    void needMoreForNoMoreThanTheCallAlreadyHadIsReported() {
        Scripted m = new Scripted("m").onSend((ctx, d) -> Verdict.needMore(d.length()));
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            assertEquals(ContractViolation.Rule.NEED_MORE_TOO_SMALL, ruleOf(() -> c.send("abc")));
        }
    }

    @Test
    void needMoreFromOnEndIsReported() {
        Scripted m = new Scripted("m").onEnd((ctx, rest) -> Verdict.needMore(5));
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            assertEquals(ContractViolation.Rule.END_VERDICT, ruleOf(() -> c.end(Direction.RECV)));
        }
    }

    @Test
    void aViolationOnAnotherThreadFailsTheNextHarnessOperation() throws Exception {
        ByteView[] kept = new ByteView[1];
        Scripted m = new Scripted("m").onSend((ctx, d) -> {
            kept[0] = d;
            return Verdict.PASS;
        });
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            c.send("x");
            Thread t = new Thread(() -> {
                try {
                    kept[0].remaining();
                } catch (ContractViolation expected) {
                    // swallowed on purpose: the harness must still report it
                }
            });
            t.start();
            t.join();
            assertEquals(ContractViolation.Rule.VIEW_AFTER_CALL, ruleOf(c::drain));
        }
    }

    @Test
    void everySuccessfulAttachGetsExactlyOneDetachWhateverEndsIt() {
        Scripted a = new Scripted("a").onSend((ctx, d) -> Verdict.DETACH);
        Scripted b = new Scripted("b").onSend((ctx, d) -> Verdict.error(1, "no"));
        ModuleHarness h = ModuleHarness.of(a, b);
        HarnessConnection c = h.attach();
        c.send("x");
        h.close();
        assertEquals(1, c.detachCount("a"));
        assertEquals(1, c.detachCount("b"));
        assertEquals(1, a.detaches.size());
        assertEquals(1, b.detaches.size());
    }

    // ---- descriptor checks, as the agent does at load

    /** Declares socket but implements only stream. */
    static final class DeclaresWrongInterface implements StreamModule<Void> {
        @Override
        public ModuleDescriptor descriptor() {
            return ModuleDescriptor.builder("wrong", "1.0.0").implement(InterfaceType.SOCKET, 1, 0).build();
        }
    }

    /** Built against a major this SDK does not offer. */
    static final class WrongMajor implements StreamModule<Void> {
        @Override
        public ModuleDescriptor descriptor() {
            return ModuleDescriptor.builder("future", "1.0.0").implement(InterfaceType.STREAM, 2, 0).build();
        }
    }

    @Test
    void aDescriptorDeclaringAnInterfaceTheClassDoesNotImplementIsRefused() {
        ContractViolation v = assertThrows(ContractViolation.class, () -> ModuleHarness.of(new DeclaresWrongInterface()));
        assertEquals(ContractViolation.Rule.DESCRIPTOR, v.rule());
        assertTrue(v.getMessage().contains("does not implement SocketModule"), v.getMessage());
        assertTrue(v.getMessage().contains("does not declare it"), v.getMessage());
    }

    @Test
    void aDescriptorWithAnotherMajorIsRefused() {
        ContractViolation v = assertThrows(ContractViolation.class, () -> ModuleHarness.of(new WrongMajor()));
        assertTrue(v.getMessage().contains("major version must match"), v.getMessage());
    }
}
