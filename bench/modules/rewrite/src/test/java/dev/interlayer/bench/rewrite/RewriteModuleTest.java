package dev.interlayer.bench.rewrite;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.api.Verdict;
import dev.interlayer.testkit.HarnessConnection;
import dev.interlayer.testkit.ModuleHarness;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Both ways of the module ({@code via: rewrite} in place, {@code via: replace} through a replacement) do the same. */
class RewriteModuleTest {

    private static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    @ParameterizedTest(name = "via {0}")
    @ValueSource(strings = {"rewrite", "replace"})
    void withTheDefaultKeyEveryChunkComesOutAsItWent(String via) {
        byte[] payload = random(100_000, 1);
        try (ModuleHarness h = ModuleHarness.of(new RewriteModule()).param("via", via)) {
            HarnessConnection c = h.attach();
            c.send(payload, 0, 40_000).send(payload, 40_000, 60_000).recv(payload, 0, 17);
            assertThat(c.sent()).isEqualTo(payload);
            assertThat(c.received()).hasSize(17);
            assertThat(c.verdicts("rewrite")).containsOnly(Verdict.PASS);
        }
    }

    @ParameterizedTest(name = "via {0}")
    @ValueSource(strings = {"rewrite", "replace"})
    void aKeyXorsEveryByteInBothDirections(String via) {
        byte[] payload = random(50_000, 2);
        try (ModuleHarness h = ModuleHarness.of(new RewriteModule()).param("key", 0x5a).param("via", via)) {
            HarnessConnection c = h.attach();
            c.send(payload).recv(payload);
            byte[] sent = c.sent();
            byte[] received = c.received();
            for (int i = 0; i < payload.length; i++) {
                assertThat(sent[i]).isEqualTo((byte) (payload[i] ^ 0x5a));
                assertThat(received[i]).isEqualTo((byte) (payload[i] ^ 0x5a));
            }
        }
    }

    @Test
    void twoRewritesWithTheSameKeyUndoEachOtherWhicheverWayEachWorks() {
        byte[] payload = random(70_000, 3);
        try (ModuleHarness first = ModuleHarness.of(new RewriteModule()).param("key", 7).param("via", "rewrite");
             ModuleHarness second = ModuleHarness.of(new RewriteModule()).param("key", 7).param("via", "replace")) {
            HarnessConnection a = first.attach();
            HarnessConnection b = second.attach();
            a.send(payload);
            assertThat(a.sent()).isNotEqualTo(payload);
            b.send(a.sent());
            assertThat(b.sent()).isEqualTo(payload);
        }
    }

    @Test
    void anUnknownWayIsRefusedAtInitWithTheChoices() {
        assertThatThrownBy(() -> {
            try (ModuleHarness h = ModuleHarness.of(new RewriteModule()).param("via", "sideways")) {
                h.attach();
            }
        }).hasMessageContaining("via must be rewrite or replace, got 'sideways'");
    }
}
