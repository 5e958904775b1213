package dev.interlayer.control;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.interlayer.control.testing.Certs;
import dev.interlayer.control.testing.ControlFixture;
import dev.interlayer.control.testing.LogLines;
import dev.interlayer.control.testing.TempDirs;
import dev.interlayer.control.v1.AuditEntry;
import dev.interlayer.control.v1.AuditQuery;
import dev.interlayer.control.v1.HealthRequest;
import dev.interlayer.control.v1.ListModulesRequest;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Handshakes the mutual-TLS listener refuses, with real certificates: each leaves one log line and an audit
 * entry on the agent, and the client is told why (the words the CLI prints).
 */
class TlsHandshakeTest {

    static Path dir;
    static Certs ca;
    static Certs.Issued server;
    static Certs.Issued good;
    static Certs.Issued expired;
    static Certs.Issued rogue;
    static Certs rogueCa;

    @BeforeAll
    static void setUp() throws Exception {
        dir = Files.createTempDirectory("interlayer-tls-");
        ca = Certs.newCa(dir.resolve("pki"), "test-ca");
        server = ca.server(dir.resolve("pki"), "agent");
        good = ca.client(dir.resolve("pki"), "admin");
        expired = ca.expiredClient(dir.resolve("pki"), "old");
        rogueCa = Certs.newCa(dir.resolve("rogue"), "rogue-ca");
        rogue = rogueCa.client(dir.resolve("rogue"), "admin");
    }

    @AfterAll
    static void tearDown() {
        TempDirs.delete(dir);
    }

    private static ControlFixture agent() throws Exception {
        return new ControlFixture(s -> s.withTls(new ControlSettings.Tls(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), server.certFile(),
                server.keyFile(), ca.ca().certFile())));
    }

    @Test
    void aRuleOnSubjectAttributesMatchesACertificateWhateverOrderItsToolWroteThemIn() throws Exception {
        Instant now = Instant.now();
        Certs.Issued orchestrator = ca.client(dir.resolve("pki"), "orchestrator", "CN=orchestrator,O=n4", now.minusSeconds(60), now.plusSeconds(3600));
        Certs.Issued other = ca.client(dir.resolve("pki"), "n5", "CN=orchestrator,O=n5", now.minusSeconds(60), now.plusSeconds(3600));
        Path policy = dir.resolve("policy.yaml");
        Files.writeString(policy, """
                rules:
                  - {name: health, endpoint: Health, decision: granted}
                  - {name: orchestrator, caller: {transport: tls, cn: orchestrator, o: n4}, decision: granted}
                  - {name: responses, on: response, decision: granted}
                """);
        try (ControlFixture f = new ControlFixture(s -> s.withPolicy(policy).withTls(new ControlSettings.Tls(
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), server.certFile(), server.keyFile(), ca.ca().certFile())))) {
            int port = f.server.tlsAddress().getPort();
            try (ControlClient c = ControlClient.tls("localhost", port, orchestrator.certFile(), orchestrator.keyFile(), ca.ca().certFile())) {
                // made as openssl req -subj "/CN=orchestrator/O=n4" makes it; the JDK writes it the other way round
                assertThat(c.health().check(HealthRequest.getDefaultInstance()).getCaller().getSubject()).isEqualTo("O=n4,CN=orchestrator");
                assertThat(c.modules().list(ListModulesRequest.getDefaultInstance())).isNotNull();
            }
            try (ControlClient c = ControlClient.tls("localhost", port, other.certFile(), other.keyFile(), ca.ca().certFile())) {
                assertThat(catchThrowableOfType(StatusRuntimeException.class, () -> c.modules().list(ListModulesRequest.getDefaultInstance()))
                        .getStatus().getCode()).isEqualTo(Status.Code.PERMISSION_DENIED);
            }
        }
    }

    /** Calls Health.Check with {@code cert} trusting {@code trusted} for the agent's certificate; returns what the client is told. */
    private static String refusedAs(ControlFixture f, Certs.Issued cert, Path trusted) throws IOException {
        String where = "127.0.0.1:" + f.server.tlsAddress().getPort();
        try (ControlClient c = ControlClient.tls("127.0.0.1", f.server.tlsAddress().getPort(), cert.certFile(), cert.keyFile(), trusted)) {
            StatusRuntimeException e = catchThrowableOfType(StatusRuntimeException.class, () -> c.health().check(HealthRequest.getDefaultInstance()));
            assertThat(e).as("the handshake was refused").isNotNull();
            assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
            return TlsProblems.seenByClient(e, where, cert.certFile(), trusted);
        }
    }

    /** The agent's audit entries of refused TLS handshakes, waiting for {@code n} (the agent learns of a refusal a moment after the client). */
    private static List<AuditEntry> refusals(ControlFixture f, int n) throws InterruptedException {
        long deadline = System.nanoTime() + 5_000_000_000L;
        List<AuditEntry> out;
        do {
            out = f.server.audit().query(1000, AuditLog.DENIED, Rejections.ENDPOINT, 0).stream()
                    .filter(e -> e.rule().equals(Rejections.TLS_HANDSHAKE)).map(AuditLog.Entry::toProto).toList();
        } while (out.size() < n && System.nanoTime() < deadline && sleep());
        return out;
    }

    private static boolean sleep() throws InterruptedException {
        Thread.sleep(50);
        return true;
    }

    @Test
    void anExpiredClientCertificateIsReportedAsExpiredOnBothSides() throws Exception {
        try (LogLines log = new LogLines(); ControlFixture f = agent()) {
            assertThat(refusedAs(f, expired, ca.ca().certFile())).startsWith("certificate expired: your client certificate " + expired.certFile()
                    + " expired on ");
            assertThat(refusals(f, 1)).as("one audit entry per attempt: gRPC may connect again after a refusal").isNotEmpty().allSatisfy(e -> {
                assertThat(e.getCaller().getTransport()).isEqualTo("tls");
                assertThat(e.getReason()).startsWith("TLS handshake from 127.0.0.1 refused: the client certificate CN=old has expired");
            });
            // one line per attempt, like the audit: a loaded machine lets gRPC connect again before the channel gives up
            assertThat(log.lines()).filteredOn(l -> l.message().contains("TLS handshake")).isNotEmpty()
                    .allSatisfy(l -> assertThat(l.printedLines()).as("one line per attempt").isBetween(1, 3))
                    .allSatisfy(l -> assertThat(l.message()).startsWith("control: refused a connection: TLS handshake from 127.0.0.1 refused: the client"
                            + " certificate CN=old has expired"));
        }
    }

    @Test
    void aClientCertificateOfAnotherCaIsNotOfferedAndTheClientIsToldTheAgentRequiresOne() throws Exception {
        try (ControlFixture f = agent()) {
            assertThat(refusedAs(f, rogue, ca.ca().certFile())).isEqualTo("the agent requires a client certificate signed by its client-ca"
                    + " (agent.control.tls.client-ca); yours (" + rogue.certFile() + ", issued by CN=rogue-ca) is not signed by it (unknown CA),"
                    + " so it was not offered");
            assertThat(refusals(f, 1)).as("one audit entry per attempt: gRPC may connect again after a refusal").isNotEmpty().allSatisfy(e -> assertThat(e.getReason())
                    .isEqualTo("TLS handshake from 127.0.0.1 refused: the client sent no certificate (it has none signed by"
                            + " agent.control.tls.client-ca, or none at all)"));
        }
    }

    @Test
    void anAgentCertificateTheClientDoesNotTrustIsAnUnknownCaOnTheClientAndARefusalOnTheAgent() throws Exception {
        try (ControlFixture f = agent()) {
            assertThat(refusedAs(f, good, rogueCa.ca().certFile())).isEqualTo("unknown CA: the agent's certificate is not signed by "
                    + rogueCa.ca().certFile() + " (--ca); give the CA that signed the agent's certificate");
            assertThat(refusals(f, 1)).as("one audit entry per attempt: gRPC may connect again after a refusal").isNotEmpty().allSatisfy(e -> assertThat(e.getReason())
                    .startsWith("TLS handshake from 127.0.0.1 refused: the client refused the agent's certificate (alert "));
        }
    }

    @Test
    void clearTextOnTheTlsPortIsRefusedAsNotTls() throws Exception {
        try (ControlFixture f = agent(); Socket s = new Socket(InetAddress.getLoopbackAddress(), f.server.tlsAddress().getPort())) {
            OutputStream out = s.getOutputStream();
            out.write("GET / HTTP/1.1\r\nHost: agent\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            assertThat(refusals(f, 1)).as("one audit entry per attempt: gRPC may connect again after a refusal").isNotEmpty().allSatisfy(e -> assertThat(e.getReason())
                    .isEqualTo("TLS handshake from 127.0.0.1 refused: not TLS: the client sent clear text to the TLS listener"));
        }
    }

    @Test
    void aGoodCertificateStillCallsAndIsNotReported() throws Exception {
        try (ControlFixture f = agent();
             ControlClient c = ControlClient.tls("localhost", f.server.tlsAddress().getPort(), good.certFile(), good.keyFile(), ca.ca().certFile())) {
            assertThat(c.health().check(HealthRequest.getDefaultInstance()).getCaller().getSubject()).isEqualTo("CN=admin");
            assertThat(f.server.audit().query(1000, null, Rejections.ENDPOINT, 0)).isEmpty();
        }
    }
}
