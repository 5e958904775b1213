package dev.interlayer.modules.tcplog;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.interlayer.api.AppInfo;
import dev.interlayer.api.ControlResponse;
import dev.interlayer.api.Direction;
import dev.interlayer.api.Role;
import dev.interlayer.api.Side;
import dev.interlayer.testkit.FakeConnection;
import dev.interlayer.testkit.FakeTls;
import dev.interlayer.testkit.HarnessConnection;
import dev.interlayer.testkit.ModuleHarness;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

class TcpLogModuleTest {

    private static List<String> dump(ModuleHarness h) {
        ControlResponse r = h.control("dump", "");
        assertTrue(r.ok());
        String text = r.bodyText();
        return text.isEmpty() ? List.of() : List.of(text.split("\n"));
    }

    @Test
    void aClosedConnectionIsRecordedWithAddressesAppDurationAndBytesEachWay() {
        try (ModuleHarness h = ModuleHarness.of(new TcpLogModule())) {
            HarnessConnection c = h.attach(new FakeConnection().id(7).listener("web").local("127.0.0.1", 8080)
                    .remote("198.51.100.7", 51234).app(new AppInfo(1234, 1200, "curl")).startedAt(Instant.parse("2026-01-02T03:04:05Z")));
            c.send("12345").recv("1234567890");
            c.advance(Duration.ofMillis(1500));
            c.close();
            List<String> lines = dump(h);
            assertEquals(1, lines.size());
            assertEquals("{\"id\":7,\"listener\":\"web\",\"local\":\"127.0.0.1:8080\",\"remote\":\"198.51.100.7:51234\",\"app\":\"curl\","
                    + "\"pid\":1234,\"tgid\":1200,\"start\":\"2026-01-02T03:04:05Z\",\"durationMs\":1500.000,"
                    + "\"bytesSent\":5,\"bytesReceived\":10,\"reason\":\"closed\"}", lines.get(0));
            assertEquals(List.of(), c.calls(), "tcplog has no data hooks");
        }
    }

    @Test
    void aTlsConnectionsRecordHasWhatEachTlsSocketNegotiated() {
        try (ModuleHarness h = ModuleHarness.of(new TcpLogModule())) {
            HarnessConnection c = h.attach(new FakeConnection().id(8).listener("tls-in").role(Role.SERVER)
                    .tls(Side.REMOTE, new FakeTls().serverName("a.example.com").alpn("h2").peerSubject("CN=alice, O=Example").identity("alice"))
                    .tls(Side.LOCAL, new FakeTls().protocol("TLSv1.2").cipherSuite("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
                            .serverName("backend.internal").resumed(true)));
            c.close();
            String line = dump(h).getFirst();
            assertTrue(line.endsWith(",\"reason\":\"closed\",\"tls\":{"
                    + "\"remote\":{\"protocol\":\"TLSv1.3\",\"cipher\":\"TLS_AES_128_GCM_SHA256\",\"sni\":\"a.example.com\",\"alpn\":\"h2\","
                    + "\"resumed\":false,\"peer\":\"CN=alice,O=Example\",\"identity\":\"alice\"},"
                    + "\"local\":{\"protocol\":\"TLSv1.2\",\"cipher\":\"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\",\"sni\":\"backend.internal\","
                    + "\"alpn\":null,\"resumed\":true,\"peer\":null,\"identity\":null}}}"), line);

            h.attach(new FakeConnection().id(9).tls(Side.LOCAL, new FakeTls().serverName("only.local"))).close();
            assertTrue(dump(h).get(1).contains(",\"tls\":{\"local\":{\"protocol\":\"TLSv1.3\","), dump(h).get(1));
            h.attach(new FakeConnection().id(10)).close();
            assertTrue(dump(h).get(2).endsWith("\"reason\":\"closed\"}"), "a plain connection's record has no tls: " + dump(h).get(2));
        }
    }

    @Test
    void theRingKeepsTheNewestRecordsNewestLast() {
        try (ModuleHarness h = ModuleHarness.of(new TcpLogModule()).param("capacity", "3")) {
            for (int i = 1; i <= 5; i++) {
                h.attach(new FakeConnection().id(i).app(null)).close();
            }
            List<String> lines = dump(h);
            assertEquals(3, lines.size());
            assertTrue(lines.get(0).startsWith("{\"id\":3,"));
            assertTrue(lines.get(2).startsWith("{\"id\":5,"));
            assertTrue(lines.get(2).contains("\"app\":null"));
            assertEquals("{\"enabled\":true,\"capacity\":3,\"records\":3,\"overwritten\":2}\n", h.control("status", "").bodyText());
        }
    }

    @Test
    void offStopsRecordingOnResumesAndClearEmptiesTheRing() {
        try (ModuleHarness h = ModuleHarness.of(new TcpLogModule()).param("enabled", false)) {
            h.attach().close();
            assertEquals(List.of(), dump(h));
            HarnessConnection open = h.attach(new FakeConnection().id(99));
            assertTrue(h.control("on", "").ok());
            open.close();
            assertEquals(1, dump(h).size());
            h.control("off", "");
            h.attach().close();
            assertEquals(1, dump(h).size());
            h.control("clear", "");
            assertEquals(List.of(), dump(h));
            ControlResponse bad = h.control("rewind", "");
            assertFalse(bad.ok());
            assertTrue(bad.bodyText().contains("dump, on, off, clear, status"));
        }
    }

    @Test
    void aResetConnectionIsRecordedWithItsReasonAndEndedDirectionsDoNotMatter() {
        try (ModuleHarness h = ModuleHarness.of(new TcpLogModule())) {
            HarnessConnection c = h.attach();
            c.send("x").end(Direction.SEND);
            c.close();
            assertTrue(dump(h).get(0).contains("\"bytesSent\":1,"));
        }
    }

    @Test
    void controlMayRunOnAnotherThreadWhileConnectionsDetach() throws Exception {
        try (ModuleHarness h = ModuleHarness.of(new TcpLogModule()).param("capacity", 64)) {
            AtomicBoolean stop = new AtomicBoolean();
            List<Throwable> errors = new ArrayList<>();
            Thread reader = new Thread(() -> {
                try {
                    while (!stop.get()) {
                        for (String line : h.control("dump", "").bodyText().split("\n")) {
                            if (!line.isEmpty() && !(line.startsWith("{") && line.endsWith("}"))) {
                                throw new AssertionError("torn line: " + line);
                            }
                        }
                    }
                } catch (Throwable t) {
                    synchronized (errors) {
                        errors.add(t);
                    }
                }
            });
            reader.start();
            for (int i = 0; i < 2000; i++) {
                h.attach().send("abc").close();
            }
            stop.set(true);
            reader.join();
            assertEquals(List.of(), errors);
            assertEquals(64, dump(h).size());
        }
    }
}
