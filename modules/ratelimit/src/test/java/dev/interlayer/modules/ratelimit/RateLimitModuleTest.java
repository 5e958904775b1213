package dev.interlayer.modules.ratelimit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.interlayer.api.Direction;
import dev.interlayer.api.Verdict;
import dev.interlayer.testkit.HarnessConnection;
import dev.interlayer.testkit.ModuleHarness;
import java.time.Duration;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

class RateLimitModuleTest {

    private static final long MIB = 1L << 20;

    @Test
    void throughputOverVirtualTimeMatchesTheRateAndNothingIsDroppedOrReordered() {
        byte[] data = new byte[(int) (8 * MIB)];
        new Random(7).nextBytes(data);
        try (ModuleHarness h = ModuleHarness.of(new RateLimitModule()).param("rate", "1MiB").param("burst", "64KiB")) {
            HarnessConnection c = h.attach();
            for (int off = 0; off < data.length; off += 16384) {
                c.send(data, off, 16384);
            }
            long maxHeld = 0;
            long at2s = -1;
            for (int ms = 10; ms <= 10_000; ms += 10) {
                c.advance(Duration.ofMillis(10));
                maxHeld = Math.max(maxHeld, c.heldBytes());
                if (ms == 2000) {
                    at2s = c.delivered(Direction.SEND);
                }
            }
            // the burst goes at once, then 1 MiB per second
            double expected2s = 64 * 1024 + 2 * MIB;
            assertTrue(Math.abs(at2s - expected2s) / expected2s < 0.03, "after 2 s: " + at2s + " bytes, expected about " + expected2s);
            assertArrayEquals(data, c.sent(), "all bytes, in order, after 10 s");
            assertTrue(maxHeld <= ModuleHarness.DEFAULT_HIGH_WATER_MARK + 16384, "held at most " + maxHeld);
        }
    }

    @Test
    void aSlowRateSpreadsSmallChunksEvenly() {
        try (ModuleHarness h = ModuleHarness.of(new RateLimitModule()).param("rate", 1000).param("burst", 100)) {
            HarnessConnection c = h.attach();
            for (int i = 0; i < 50; i++) {
                c.send(new byte[] {(byte) i, (byte) i, (byte) i, (byte) i, (byte) i, (byte) i, (byte) i, (byte) i, (byte) i, (byte) i});
            }
            assertEquals(100, c.delivered(Direction.SEND), "the burst");
            c.advance(Duration.ofMillis(200));
            assertEquals(300, c.delivered(Direction.SEND), "100 of burst, then 1000 bytes/s for 0.2 s");
            c.advance(Duration.ofMillis(200));
            assertEquals(500, c.delivered(Direction.SEND));
            byte[] out = c.sent();
            for (int i = 0; i < 50; i++) {
                byte[] expect = new byte[10];
                Arrays.fill(expect, (byte) i);
                assertArrayEquals(expect, Arrays.copyOfRange(out, i * 10, i * 10 + 10));
            }
        }
    }

    @Test
    void aChunkLargerThanTheBurstGoesWhenTheBucketIsFullAndLeavesItInDebt() {
        try (ModuleHarness h = ModuleHarness.of(new RateLimitModule()).param("rate", 1000).param("burst", 100)) {
            HarnessConnection c = h.attach();
            c.send(new byte[500]);
            assertEquals(500, c.delivered(Direction.SEND));
            c.send(new byte[10]);
            // 400 bytes of debt plus the 10 bytes of the next chunk take 410 ms at 1000 bytes/s
            c.advance(Duration.ofMillis(405));
            assertEquals(500, c.delivered(Direction.SEND), "still paying back the debt");
            c.advance(Duration.ofMillis(5));
            assertEquals(510, c.delivered(Direction.SEND));
        }
    }

    @Test
    void directionSendLeavesRecvUnlimited() {
        try (ModuleHarness h = ModuleHarness.of(new RateLimitModule()).param("rate", 100).param("burst", 10).param("direction", "send")) {
            HarnessConnection c = h.attach();
            c.recv(new byte[100_000]);
            assertEquals(100_000, c.delivered(Direction.RECV));
            c.send(new byte[20]).send(new byte[20]);
            assertEquals(20, c.delivered(Direction.SEND));
            assertEquals(Verdict.HOLD, c.verdicts("ratelimit").get(2));
        }
    }

    @Test
    void theEndOfADirectionWaitsForQueuedBytes() {
        try (ModuleHarness h = ModuleHarness.of(new RateLimitModule()).param("rate", 1000).param("burst", 100)) {
            HarnessConnection c = h.attach();
            c.send(new byte[100]).send(new byte[300]).end(Direction.SEND);
            assertTrue(!c.ended(Direction.SEND));
            c.advance(Duration.ofMillis(300));
            assertEquals(400, c.delivered(Direction.SEND));
            assertTrue(c.ended(Direction.SEND));
        }
    }

    @Test
    void aBadDirectionIsRefusedAtInit() {
        IllegalStateException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                () -> ModuleHarness.of(new RateLimitModule()).param("direction", "up").start());
        assertTrue(e.getMessage().contains("send, recv or both"), e.getMessage());
    }
}
