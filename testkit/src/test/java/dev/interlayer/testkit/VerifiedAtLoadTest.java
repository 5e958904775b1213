package dev.interlayer.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.interlayer.api.ByteView;
import dev.interlayer.api.Capability;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.ModuleEnv;
import dev.interlayer.api.StreamContext;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.Verdict;
import org.junit.jupiter.api.Test;

/**
 * The harness refuses, when it loads the modules, what the agent's verifier refuses at load, with the same message:
 * it is a host of exactly the interface version and capabilities a module declares.
 */
class VerifiedAtLoadTest {

    /** Calls System.exit from a hook: never allowed. */
    static final class Exiter implements StreamModule<Void> {
        @Override
        public ModuleDescriptor descriptor() {
            return ModuleDescriptor.builder("exiter", "1.0.0").implement(InterfaceType.STREAM, 1, 0).build();
        }

        @Override
        public Verdict onSend(Void s, StreamContext ctx, ByteView data) {
            System.exit(3);
            return Verdict.PASS;
        }
    }

    /** Starts a thread in init; declares THREADS when built with {@code declare}. */
    static final class Threader implements StreamModule<Void> {
        private final boolean declare;
        volatile boolean ran;

        Threader(boolean declare) {
            this.declare = declare;
        }

        @Override
        public ModuleDescriptor descriptor() {
            ModuleDescriptor.Builder b = ModuleDescriptor.builder("threader", "1.0.0").implement(InterfaceType.STREAM, 1, 0);
            return (declare ? b.capability(Capability.THREADS) : b).build();
        }

        @Override
        public void init(ModuleEnv env) throws InterruptedException {
            Thread t = new Thread(() -> ran = true);
            t.start();
            t.join();
        }
    }

    /** Declares stream 1.1 and calls ctx.rewrite(), which is stream 1.2. */
    static final class OldRewriter implements StreamModule<Void> {
        @Override
        public ModuleDescriptor descriptor() {
            return ModuleDescriptor.builder("old-rewriter", "1.0.0").implement(InterfaceType.STREAM, 1, 1).build();
        }

        @Override
        public Verdict onSend(Void s, StreamContext ctx, ByteView data) {
            ctx.rewrite();
            return Verdict.PASS;
        }
    }

    /** A module in one of Interlayer's own packages with a helper class of its own: its code, not the agent's. */
    static final class WithHelper implements StreamModule<Void> {
        static final class Upper {
            static byte up(byte b) {
                return b >= 'a' && b <= 'z' ? (byte) (b - 32) : b;
            }
        }

        @Override
        public ModuleDescriptor descriptor() {
            return ModuleDescriptor.builder("with-helper", "1.0.0").implement(InterfaceType.STREAM, 1, 2).build();
        }

        @Override
        public Verdict onSend(Void s, StreamContext ctx, ByteView data) {
            java.lang.foreign.MemorySegment bytes = ctx.rewrite();
            for (long i = 0; i < bytes.byteSize(); i++) {
                bytes.set(java.lang.foreign.ValueLayout.JAVA_BYTE, i, Upper.up(bytes.get(java.lang.foreign.ValueLayout.JAVA_BYTE, i)));
            }
            return Verdict.PASS;
        }
    }

    private static ContractViolation refused(ModuleHarness h) {
        ContractViolation v = assertThrows(ContractViolation.class, h::start);
        assertEquals(ContractViolation.Rule.REFUSED_AT_LOAD, v.rule());
        return v;
    }

    @Test
    void aModuleCallingSystemExitIsRefusedNamingTheMethodAndTheFix() {
        try (ModuleHarness h = ModuleHarness.of(new Exiter())) {
            ContractViolation v = refused(h);
            assertEquals("exiter", v.module());
            assertTrue(v.getMessage().contains("Exiter.onSend") && v.getMessage().contains("System.exit"), v.getMessage());
            assertTrue(v.getMessage().contains("Verdict.error"), v.getMessage());
        }
    }

    @Test
    void aThreadIsRefusedUntilDeclaredAndAllowedThenRuns() {
        try (ModuleHarness h = ModuleHarness.of(new Threader(false))) {
            ContractViolation v = refused(h);
            assertTrue(v.getMessage().contains("needs capability threads") && v.getMessage().contains("does not declare it"), v.getMessage());
        }
        try (ModuleHarness h = ModuleHarness.of(new Threader(true))) {
            ContractViolation v = refused(h);
            assertTrue(v.getMessage().contains("declares capability threads") && v.getMessage().contains("does not allow it"), v.getMessage());
            assertTrue(v.getMessage().contains("allow: [threads]") && v.getMessage().contains("ModuleHarness.allow(Capability...)"), v.getMessage());
        }
        Threader allowed = new Threader(true);
        try (ModuleHarness h = ModuleHarness.of(allowed).allow(Capability.THREADS)) {
            h.start();
            assertTrue(allowed.ran, "init ran its thread once allowed");
        }
    }

    @Test
    void anSdkCallNewerThanTheDeclaredMinorIsRefused() {
        try (ModuleHarness h = ModuleHarness.of(new OldRewriter())) {
            ContractViolation v = refused(h);
            assertTrue(v.getMessage().contains("rewrite") && v.getMessage().contains("1.2"), v.getMessage());
        }
    }

    @Test
    void aModulesOwnHelperClassesInAnInterlayerPackageAreItsOwn() {
        try (ModuleHarness h = ModuleHarness.of(new WithHelper())) {
            HarnessConnection c = h.attach();
            c.send("hello");
            assertEquals("HELLO", c.sentText());
        }
    }
}
