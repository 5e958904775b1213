package dev.interlayer.bench.pass;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.api.AttachMode;
import dev.interlayer.api.Module;
import dev.interlayer.api.Verdict;
import dev.interlayer.testkit.HarnessConnection;
import dev.interlayer.testkit.ModuleHarness;
import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;
import org.junit.jupiter.api.Test;

class PassModuleTest {

    @Test
    void theJarDeclaresPassAndPass2ToPass8OnlyPassGlobal() {
        List<String> names = new ArrayList<>();
        for (Module<?> m : ServiceLoader.load(Module.class, PassModule.class.getClassLoader())) {
            names.add(m.descriptor().name());
            assertThat(m.descriptor().attachMode())
                    .isEqualTo(m.descriptor().name().equals("pass") ? AttachMode.GLOBAL : AttachMode.PROGRAMMATIC);
        }
        assertThat(names).containsExactly("pass", "pass-2", "pass-3", "pass-4", "pass-5", "pass-6", "pass-7", "pass-8");
    }

    @Test
    void aChainOfEightPassesEveryByteUnchangedWithoutACopy() {
        try (ModuleHarness h = ModuleHarness.of(new PassModule(), new PassModule.Pass2(), new PassModule.Pass3(),
                new PassModule.Pass4(), new PassModule.Pass5(), new PassModule.Pass6(), new PassModule.Pass7(),
                new PassModule.Pass8())) {
            HarnessConnection c = h.attach();
            c.send("hello").recv("world");
            assertThat(c.sentText()).isEqualTo("hello");
            assertThat(c.receivedText()).isEqualTo("world");
            assertThat(c.verdicts("pass-8")).containsExactly(Verdict.PASS, Verdict.PASS);
        }
    }
}
