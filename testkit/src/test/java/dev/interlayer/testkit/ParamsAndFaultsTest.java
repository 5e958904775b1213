package dev.interlayer.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.interlayer.api.DetachReason;
import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.ModuleEnv;
import dev.interlayer.api.Param;
import dev.interlayer.api.Params;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.Verdict;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class ParamsAndFaultsTest {

    /** Declares one parameter of each type and keeps what init got. */
    static final class Typed implements StreamModule<Void> {
        Params params;

        @Override
        public ModuleDescriptor descriptor() {
            return ModuleDescriptor.builder("typed", "1.0.0").implement(InterfaceType.STREAM, 1, 1)
                    .param(Param.ofInt("n", 1, "int"))
                    .param(Param.ofLong("big", 2L, "long"))
                    .param(Param.ofBool("on", false, "bool"))
                    .param(Param.ofString("text", "t", "string"))
                    .param(Param.ofSize("size", 10L, "size"))
                    .param(Param.ofDuration("wait", Duration.ofSeconds(1), "duration"))
                    .build();
        }

        @Override
        public void init(ModuleEnv env) {
            params = env.params();
            env.log().info("n=%d", params.getInt("n"));
        }
    }

    @Test
    void parametersAcceptConfigTextAndTypedValues() {
        Typed t = new Typed();
        try (ModuleHarness h = ModuleHarness.of(t).param("n", "42").param("big", 10_000_000_000L).param("on", "true")
                .param("size", "64KiB").param("wait", "250ms").start()) {
            assertEquals(42, t.params.getInt("n"));
            assertEquals(10_000_000_000L, t.params.getLong("big"));
            assertTrue(t.params.getBool("on"));
            assertEquals("t", t.params.getString("text"));
            assertEquals(65536L, t.params.getSize("size"));
            assertEquals(Duration.ofMillis(250), t.params.getDuration("wait"));
            assertEquals("n=42", h.logs().get(0).message());
        }
        Typed u = new Typed();
        try (ModuleHarness h = ModuleHarness.of(u).param("size", 5).param("wait", Duration.ofMinutes(2)).param("text", "x").start()) {
            assertEquals(5L, u.params.getSize("size"));
            assertEquals(Duration.ofMinutes(2), u.params.getDuration("wait"));
        }
    }

    @Test
    void aBadParameterValueIsRejectedNamingTheParameterAndTheExpectedForm() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ModuleHarness.of(new Typed()).param("size", "lots").start());
        assertTrue(e.getMessage().contains("'size'") && e.getMessage().contains("64KiB"), e.getMessage());
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> ModuleHarness.of(new Typed()).param("nope", "1").start());
        assertTrue(unknown.getMessage().contains("known: n, big"), unknown.getMessage());
    }

    @Test
    void aThrowingModuleFailsOpenByDefaultAndTheTrafficStillPasses() {
        Scripted m = new Scripted("boom").onSend((ctx, d) -> {
            throw new IllegalStateException("kaput");
        });
        try (ModuleHarness h = ModuleHarness.of(m).tolerateFaults()) {
            HarnessConnection c = h.attach();
            c.send("through").send("again");
            assertEquals("throughagain", c.sentText());
            assertEquals(DetachReason.FAULT, c.detachReason("boom"));
            assertEquals(1, h.faults().size());
            assertEquals("onSend", h.faults().get(0).where());
        }
    }

    @Test
    void aThrowingFailClosedModuleResetsTheConnection() {
        Scripted m = new Scripted("boom").onRecv((ctx, d) -> {
            throw new IllegalStateException("kaput");
        });
        try (ModuleHarness h = ModuleHarness.of(m).faultPolicy("boom", FaultPolicy.FAIL_CLOSED).tolerateFaults()) {
            HarnessConnection c = h.attach();
            c.recv("x");
            assertTrue(c.isReset());
            assertTrue(c.closeReason().contains("kaput"));
        }
    }

    @Test
    void aThrowingModuleFailsTheTestUnlessFaultsAreTolerated() {
        Scripted m = new Scripted("boom").onSend((ctx, d) -> {
            throw new IllegalStateException("kaput");
        });
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach();
            AssertionError e = assertThrows(AssertionError.class, () -> c.send("x"));
            assertFalse(e instanceof ContractViolation);
            assertTrue(e.getMessage().contains("boom") && e.getMessage().contains("kaput"), e.getMessage());
        }
    }

    @Test
    void holdingBeyondTheHoldLimitThrowsInTheModuleAsTheEngineDoes() {
        Scripted m = new Scripted("m").onSend((ctx, d) -> {
            ctx.hold();
            return Verdict.HOLD;
        });
        try (ModuleHarness h = ModuleHarness.of(m).holdLimit(4).highWaterMark(100).tolerateFaults()) {
            HarnessConnection c = h.attach();
            c.send("abc").send("def");
            assertEquals(List.of("onSend"), h.faults().stream().map(ModuleHarness.Fault::where).toList());
            assertTrue(h.faults().get(0).error() instanceof IllegalStateException);
        }
    }

    @Test
    void fakeConnectionCountsBytesBeforeModules() {
        Scripted m = new Scripted("m").onSend((ctx, d) -> Verdict.DROP);
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection c = h.attach(new FakeConnection().listener("web"));
            c.send("12345").recv("12");
            assertEquals(5, c.connection().bytesSent());
            assertEquals(2, c.connection().bytesReceived());
            assertEquals("web", m.attachment.connection().listener());
        }
    }
}
