package dev.interlayer.modules.holdrelease;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.interlayer.api.Direction;
import dev.interlayer.api.Verdict;
import dev.interlayer.testkit.HarnessConnection;
import dev.interlayer.testkit.ModuleHarness;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class HoldReleaseModuleTest {

    @Test
    void eachChunkIsHeldForTheDelayThenInjectedInOrder() {
        try (ModuleHarness h = ModuleHarness.of(new HoldReleaseModule()).param("delay", "100ms")) {
            HarnessConnection c = h.attach();
            c.send("one,");
            c.advance(Duration.ofMillis(40));
            c.send("two,");
            c.advance(Duration.ofMillis(59));
            assertEquals("", c.sentText());
            assertEquals(8, c.heldBytes("hold-release"));
            c.advance(Duration.ofMillis(1));
            assertEquals("one,", c.sentText());
            c.advance(Duration.ofMillis(40));
            assertEquals("one,two,", c.sentText());
            assertEquals(0, c.heldBytes());
            assertEquals(List.of(Verdict.HOLD, Verdict.HOLD), c.verdicts("hold-release"));
            assertEquals(2, c.injections().size());
        }
    }

    @Test
    void theDefaultDirectionIsSendAndRecvPassesAtOnce() {
        try (ModuleHarness h = ModuleHarness.of(new HoldReleaseModule())) {
            HarnessConnection c = h.attach();
            c.recv("now").send("later");
            assertEquals("now", c.receivedText());
            assertEquals("", c.sentText());
            c.advance(Duration.ofMillis(100));
            assertEquals("later", c.sentText());
        }
    }

    @Test
    void bothDirectionsAreDelayedIndependently() {
        try (ModuleHarness h = ModuleHarness.of(new HoldReleaseModule()).param("direction", "both").param("delay", Duration.ofSeconds(1))) {
            HarnessConnection c = h.attach();
            c.send("s");
            c.advance(Duration.ofMillis(500));
            c.recv("r");
            c.advance(Duration.ofMillis(500));
            assertEquals("s", c.sentText());
            assertEquals("", c.receivedText());
            c.advance(Duration.ofMillis(500));
            assertEquals("r", c.receivedText());
        }
    }

    @Test
    void manyChunksKeepTheirOrderAndTheEndComesAfterThem() {
        try (ModuleHarness h = ModuleHarness.of(new HoldReleaseModule()).param("delay", "10ms")) {
            HarnessConnection c = h.attach();
            StringBuilder expect = new StringBuilder();
            for (int i = 0; i < 500; i++) {
                c.send(i + ";");
                expect.append(i).append(';');
                c.advance(Duration.ofNanos(37_000));
            }
            c.end(Direction.SEND);
            assertFalse(c.ended(Direction.SEND));
            c.advance(Duration.ofMillis(10));
            assertEquals(expect.toString(), c.sentText());
            assertTrue(c.ended(Direction.SEND));
        }
    }

    @Test
    void heldBytesAreReleasedWhenTheConnectionClosesEarly() {
        try (ModuleHarness h = ModuleHarness.of(new HoldReleaseModule())) {
            HarnessConnection c = h.attach();
            c.send("never");
            c.close();
            assertEquals(0, c.heldBytes());
            assertEquals(0, c.pendingTimers("hold-release"));
            h.advance(Duration.ofSeconds(1));
            assertEquals("", c.sentText());
        }
    }
}
