package dev.interlayer.modules.tag;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.interlayer.api.Direction;
import dev.interlayer.api.Role;
import dev.interlayer.api.Verdict;
import dev.interlayer.testkit.DescriptorCheck;
import dev.interlayer.testkit.FakeConnection;
import dev.interlayer.testkit.HarnessConnection;
import dev.interlayer.testkit.ModuleHarness;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class TagModuleTest {

    @Test
    void theDefaultTagIs32Bytes() {
        assertEquals(32, TagModule.DEFAULT_TAG.getBytes(StandardCharsets.UTF_8).length);
        assertEquals(List.of(), DescriptorCheck.problems(new TagModule()));
    }

    @Test
    void sendInsertsTheTagAfterEveryNPayloadBytes() {
        try (ModuleHarness h = ModuleHarness.of(new TagModule()).param("every", "4").param("tag", "#")) {
            HarnessConnection c = h.attach();
            c.send("ab").send("cdefghij");
            assertEquals("abcd#efgh#ij", c.sentText());
            assertEquals(List.of(Verdict.PASS, Verdict.PASS), c.verdicts("tag"));
        }
    }

    @Test
    void recvRemovesATagSplitAcrossOneByteChunks() {
        try (ModuleHarness h = ModuleHarness.of(new TagModule()).param("every", 3).param("tag", "<T>")) {
            HarnessConnection c = h.attach();
            for (byte b : "abc<T>def<T>g".getBytes(StandardCharsets.UTF_8)) {
                c.recv(new byte[] {b});
            }
            assertEquals("abcdefg", c.receivedText());
            assertTrue(c.isOpen());
        }
    }

    @Test
    void aRecvByteThatIsNotTheExpectedTagResetsTheConnectionWithTheStreamOffset() {
        try (ModuleHarness h = ModuleHarness.of(new TagModule()).param("every", 4).param("tag", "TAG")) {
            HarnessConnection c = h.attach();
            c.recv("abcdTAGefgh").recv("TAX");
            assertTrue(c.isReset());
            assertEquals("abcdefgh", c.receivedText());
            assertTrue(c.closeReason().contains("tag mismatch at stream offset 13: peer is not running tag with the same every/tag"),
                    c.closeReason());
            assertEquals(TagModule.TAG_MISMATCH, c.verdicts("tag").get(1).value());
        }
    }

    @Test
    void twoAgentsBackToBackDeliverTheOriginalBytesForRandomChunkSizes() throws Exception {
        Random rnd = new Random(4242);
        byte[] original = new byte[12 << 20];
        rnd.nextBytes(original);
        try (ModuleHarness client = ModuleHarness.of(new TagModule());
             ModuleHarness server = ModuleHarness.of(new TagModule())) {
            HarnessConnection out = client.attach(new FakeConnection().role(Role.CLIENT));
            HarnessConnection in = server.attach(new FakeConnection().role(Role.SERVER));
            MessageDigest sent = MessageDigest.getInstance("SHA-256");
            MessageDigest got = MessageDigest.getInstance("SHA-256");
            long wire = 0;
            int pos = 0;
            while (pos < original.length) {
                // chunk sizes from 1 byte to 1 MiB, mostly small, as a transport delivers them
                int n = Math.min(original.length - pos, switch (rnd.nextInt(4)) {
                    case 0 -> 1 + rnd.nextInt(3);
                    case 1 -> 1 + rnd.nextInt(2000);
                    case 2 -> 1 + rnd.nextInt(65536);
                    default -> 1 << 20;
                });
                sent.update(original, pos, n);
                out.send(original, pos, n);
                pos += n;
                byte[] onWire = out.take(Direction.SEND);
                wire += onWire.length;
                // the network re-chunks what it carries
                for (int off = 0; off < onWire.length; ) {
                    int m = Math.min(onWire.length - off, 1 + rnd.nextInt(70000));
                    in.recv(onWire, off, m);
                    off += m;
                }
                got.update(in.take(Direction.RECV));
            }
            assertEquals(original.length + (long) (original.length / 1000) * 32, wire);
            assertArrayEquals(sent.digest(), got.digest());
            assertTrue(in.isOpen());
        }
    }

    @Test
    void theReplyDirectionRoundTripsToo() {
        try (ModuleHarness server = ModuleHarness.of(new TagModule()).param("every", 5);
             ModuleHarness client = ModuleHarness.of(new TagModule()).param("every", 5)) {
            HarnessConnection s = server.attach(new FakeConnection().role(Role.SERVER));
            HarnessConnection c = client.attach(new FakeConnection().role(Role.CLIENT));
            s.send("the reply, longer than five bytes");
            c.recv(s.sent());
            assertEquals("the reply, longer than five bytes", c.receivedText());
            c.end(Direction.RECV);
            assertTrue(c.ended(Direction.RECV));
        }
    }
}
