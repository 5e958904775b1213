package dev.interlayer.modules.dnstag;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.api.AppInfo;
import dev.interlayer.api.Protocol;
import dev.interlayer.api.Role;
import dev.interlayer.testkit.DescriptorCheck;
import dev.interlayer.testkit.FakeConnection;
import dev.interlayer.testkit.HarnessConnection;
import dev.interlayer.testkit.ModuleHarness;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** dns-tag and dns-untag with the testkit: tag, untag byte for byte, counts, and the stated rules for bad input. */
class DnsTagModuleTest {

    /** A DNS query for {@code name} type A; {@code opt} appends an OPT RR with these raw options (null = no OPT RR). */
    static byte[] query(int id, String name, byte[] opt) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        o.write(id >> 8);
        o.write(id);
        o.write(0x01); // RD
        o.write(0x20); // AD
        o.writeBytes(new byte[] {0, 1, 0, 0, 0, 0, 0, (byte) (opt == null ? 0 : 1)});
        for (String label : name.split("\\.")) {
            o.write(label.length());
            o.writeBytes(label.getBytes(StandardCharsets.US_ASCII));
        }
        o.write(0);
        o.writeBytes(new byte[] {0, 1, 0, 1}); // A, IN
        if (opt != null) {
            o.writeBytes(new byte[] {0, 0, 41, 0x04, (byte) 0xD0, 0, 0, 0, 0, (byte) (opt.length >> 8), (byte) opt.length}); // 1232 payload
            o.writeBytes(opt);
        }
        return o.toByteArray();
    }

    /** An EDNS cookie option (code 10) with an 8-byte client cookie, as dig sends by default. */
    static final byte[] COOKIE = {0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};

    private static FakeConnection udp(Role role) {
        return new FakeConnection().protocol(Protocol.UDP).role(role);
    }

    /** Runs {@code q} through dns-tag (client agent) and then dns-untag (server agent); returns what the server gets. */
    private static byte[] roundTrip(ModuleHarness tag, ModuleHarness untag, byte[] q) {
        HarnessConnection c = tag.attach(udp(Role.CLIENT).app(new AppInfo(10, 10, "dig")));
        c.send(q);
        byte[] wire = c.sentDatagrams().get(0);
        HarnessConnection s = untag.attach(udp(Role.SERVER));
        s.recv(wire);
        return s.receivedDatagrams().get(0);
    }

    @Test
    void theDescriptorsLoadAsTheAgentWouldLoadThem() {
        assertThat(DescriptorCheck.problems(new DnsTagModule())).isEmpty();
        assertThat(DescriptorCheck.problems(new DnsUntagModule())).isEmpty();
    }

    @Test
    void aQueryWithoutEdnsGetsAnOptRecordWithTheTagAndTheServerSideRestoresItExactly() {
        try (ModuleHarness tag = ModuleHarness.of(new DnsTagModule()).param("app-id", "billing");
             ModuleHarness untag = ModuleHarness.of(new DnsUntagModule())) {
            byte[] q = query(0x1234, "www.example.com", null);
            HarnessConnection c = tag.attach(udp(Role.CLIENT));
            c.send(q);
            byte[] wire = c.sentDatagrams().get(0);
            assertThat(wire.length).isEqualTo(q.length + 11 + 4 + 1 + "billing".length());
            assertThat(wire[11]).as("ARCOUNT").isEqualTo((byte) 1);
            assertThat(new String(wire, wire.length - 7, 7, StandardCharsets.UTF_8)).isEqualTo("billing");
            HarnessConnection s = untag.attach(udp(Role.SERVER));
            s.recv(wire);
            assertThat(s.receivedDatagrams()).containsExactly(q);
            assertThat(untag.control("counts", "").bodyText()).isEqualTo("billing 1\n");
            assertThat(tag.control("status", "").bodyText()).startsWith("tagged 1\n");
        }
    }

    @Test
    void aQueryWithEdnsOptionsGetsTheTagAppendedAndKeepsItsOtherOptions() {
        try (ModuleHarness tag = ModuleHarness.of(new DnsTagModule()).param("app-id", "a");
             ModuleHarness untag = ModuleHarness.of(new DnsUntagModule())) {
            byte[] q = query(7, "example.org", COOKIE);
            HarnessConnection c = tag.attach(udp(Role.CLIENT));
            c.send(q);
            byte[] wire = c.sentDatagrams().get(0);
            assertThat(wire.length).isEqualTo(q.length + 6);
            assertThat(wire[11]).as("ARCOUNT unchanged").isEqualTo((byte) 1);
            assertThat(roundTrip(tag, untag, q)).isEqualTo(q);
        }
    }

    @Test
    void withoutAnAppIdParameterTheLocalProcessNameIsTheTag() {
        try (ModuleHarness tag = ModuleHarness.of(new DnsTagModule()); ModuleHarness untag = ModuleHarness.of(new DnsUntagModule())) {
            roundTrip(tag, untag, query(1, "a.test", null));
            HarnessConnection unknown = tag.attach(udp(Role.CLIENT));
            unknown.send(query(2, "b.test", null));
            untag.attach(udp(Role.SERVER)).recv(unknown.sentDatagrams().get(0));
            assertThat(untag.control("counts", "").bodyText()).isEqualTo("dig 1\nunknown 1\n");
        }
    }

    @Test
    void manyRandomQueriesRoundTripByteForByte() {
        SplittableRandom rnd = new SplittableRandom(42);
        try (ModuleHarness tag = ModuleHarness.of(new DnsTagModule()).param("app-id", "ü-app");
             ModuleHarness untag = ModuleHarness.of(new DnsUntagModule())) {
            for (int i = 0; i < 200; i++) {
                String name = "h" + rnd.nextInt(1000) + ".zone" + rnd.nextInt(50) + ".example";
                byte[] q = query(rnd.nextInt(65536), name, rnd.nextBoolean() ? null : COOKIE);
                assertThat(roundTrip(tag, untag, q)).isEqualTo(q);
            }
            assertThat(untag.control("counts", "").bodyText()).isEqualTo("ü-app 200\n");
        }
    }

    @Test
    void answersPassUnchanged() {
        try (ModuleHarness tag = ModuleHarness.of(new DnsTagModule()).param("app-id", "x")) {
            HarnessConnection c = tag.attach(udp(Role.CLIENT));
            byte[] answer = query(9, "x.test", null);
            answer[2] |= (byte) 0x80;
            c.recv(answer);
            assertThat(c.receivedDatagrams()).containsExactly(answer);
        }
    }

    @Test
    void aNonDnsDatagramPassesUntouchedAndIsCountedOrIsDroppedWhenSoConfigured() {
        byte[] junk = "hello, not dns".getBytes(StandardCharsets.UTF_8);
        try (ModuleHarness tag = ModuleHarness.of(new DnsTagModule()).param("app-id", "x")) {
            HarnessConnection c = tag.attach(udp(Role.CLIENT));
            c.send(junk).send(new byte[3]);
            assertThat(c.sentDatagrams()).containsExactly(junk, new byte[3]);
            assertThat(tag.control("status", "").bodyText()).isEqualTo("tagged 0\nuntagged 2\nmalformed 2\ndropped 0\n");
        }
        try (ModuleHarness tag = ModuleHarness.of(new DnsTagModule()).param("app-id", "x").param("on-malformed", "drop")) {
            HarnessConnection c = tag.attach(udp(Role.CLIENT));
            c.send(junk);
            assertThat(c.sentDatagrams()).isEmpty();
            assertThat(tag.control("status", "").bodyText()).isEqualTo("tagged 0\nuntagged 0\nmalformed 1\ndropped 1\n");
        }
    }

    @Test
    void theServerSidePassesUntaggedQueriesAndStatesItsRuleForAMalformedTag() {
        try (ModuleHarness untag = ModuleHarness.of(new DnsUntagModule())) {
            HarnessConnection s = untag.attach(udp(Role.SERVER));
            byte[] plain = query(5, "plain.test", COOKIE);
            s.recv(plain);
            // a tag option with unknown flags and an app id that is not UTF-8
            byte[] badFlags = query(6, "bad.test", new byte[] {(byte) 0xFD, (byte) 0xE9, 0, 2, (byte) 0x80, 'x'});
            byte[] badUtf8 = query(7, "bad.test", new byte[] {(byte) 0xFD, (byte) 0xE9, 0, 3, 0, (byte) 0xC3, (byte) 0x28});
            byte[] truncated = java.util.Arrays.copyOf(plain, plain.length - 3);
            s.recv(badFlags).recv(badUtf8).recv(truncated);
            assertThat(s.receivedDatagrams()).containsExactly(plain, badFlags, badUtf8, truncated);
            assertThat(untag.control("status", "").bodyText()).isEqualTo("removed 0\nuntagged 1\nmalformed 3\ndropped 0\n");
        }
        try (ModuleHarness untag = ModuleHarness.of(new DnsUntagModule()).param("on-malformed", "drop")) {
            HarnessConnection s = untag.attach(udp(Role.SERVER));
            s.recv(new byte[] {1, 2, 3});
            assertThat(s.receivedDatagrams()).isEmpty();
        }
    }

    @Test
    void aQueryAlreadyCarryingTheOptionIsNotTaggedTwice() {
        try (ModuleHarness tag = ModuleHarness.of(new DnsTagModule()).param("app-id", "x")) {
            HarnessConnection c = tag.attach(udp(Role.CLIENT));
            byte[] q = query(1, "a.test", DnsTag.option(65001, "y".getBytes(StandardCharsets.UTF_8), false));
            c.send(q);
            assertThat(c.sentDatagrams()).containsExactly(q);
            assertThat(tag.control("status", "").bodyText()).contains("malformed 1");
        }
    }

    @Test
    void anOptionCodeOutsideTheExperimentalRangeOrABadRuleRefusesToLoad() {
        assertThatThrownBy(() -> ModuleHarness.of(new DnsTagModule()).param("option-code", 10).start())
                .hasMessageContaining("outside the local/experimental EDNS range 65001..65534");
        assertThatThrownBy(() -> ModuleHarness.of(new DnsUntagModule()).param("on-malformed", "explode").start())
                .hasMessageContaining("must be pass or drop");
    }

    @Test
    void theTwoSidesMustUseTheSameOptionCode() {
        try (ModuleHarness tag = ModuleHarness.of(new DnsTagModule()).param("app-id", "x").param("option-code", 65010);
             ModuleHarness untag = ModuleHarness.of(new DnsUntagModule())) {
            byte[] q = query(1, "a.test", null);
            byte[] got = roundTrip(tag, untag, q);
            assertThat(got).isNotEqualTo(q); // the server side did not recognise the option
            assertThat(untag.control("status", "").bodyText()).contains("untagged 1");
            assertThat(List.of(untag.control("nope", "").ok())).containsExactly(false);
        }
    }
}
