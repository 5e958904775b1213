package dev.interlayer.control;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.tuple;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.interlayer.control.testing.Certs;
import dev.interlayer.control.testing.ControlFixture;
import dev.interlayer.control.testing.CountingControlModule;
import dev.interlayer.control.testing.MatrixCalls;
import dev.interlayer.control.testing.OtherUser;
import dev.interlayer.control.testing.TempDirs;
import dev.interlayer.control.v1.AuditEntry;
import dev.interlayer.control.v1.AuditQuery;
import dev.interlayer.control.v1.Event;
import dev.interlayer.control.v1.HealthRequest;
import dev.interlayer.control.v1.ListModulesRequest;
import dev.interlayer.control.v1.SubscribeRequest;
import dev.interlayer.runtime.testing.TestJars;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.assertj.core.groups.Tuple;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The policy matrix: every method of the IDL, called by an allowed and a denied caller, over the Unix
 * socket with two real uids and over mutual TLS with two client certificates; and responses the policy
 * denies never reach the caller.
 */
class SecurityMatrixTest {

    static final String POLICY = """
            rules:
              - name: hide-secret-events
                on: response
                endpoint: Events
                method: Subscribe
                fields: {module: secret}
                decision: denied
                reason: events of module secret are not for this caller
              - name: root
                on: both
                caller: {transport: uds, uid: 0}
                decision: granted
              - name: tls-admin
                on: both
                caller: {transport: tls, subject: "CN=admin"}
                decision: granted
              - name: responses
                on: response
                decision: granted
            """;

    static Path dir;
    static Path victimJar;
    static Certs ca;
    static Certs.Issued server;
    static Certs.Issued admin;
    static Certs.Issued intruder;

    @BeforeAll
    static void setUp() throws Exception {
        dir = Files.createTempDirectory("interlayer-matrix-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.writeString(dir.resolve("policy.yaml"), POLICY);
        victimJar = TestJars.jar().source("m.Victim", TestJars.streamModule("m.Victim", "victim", "1.0.0")).service("m.Victim")
                .write(dir.resolve("victim.jar"));
        Files.setPosixFilePermissions(victimJar, PosixFilePermissions.fromString("rw-r--r--"));
        ca = Certs.newCa(dir.resolve("pki"), "test-ca");
        server = ca.server(dir.resolve("pki"), "agent");
        admin = ca.client(dir.resolve("pki"), "admin");
        intruder = ca.client(dir.resolve("pki"), "intruder");
    }

    @AfterAll
    static void tearDown() {
        TempDirs.delete(dir);
    }

    private ControlFixture agent() throws Exception {
        ControlFixture f = new ControlFixture(s -> s.withPolicy(dir.resolve("policy.yaml"))
                .withTls(new ControlSettings.Tls(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), server.certFile(), server.keyFile(),
                        ca.ca().certFile())));
        return f;
    }

    private static Map<String, String> parse(String out) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String line : out.split("\n")) {
            int tab = line.indexOf('\t');
            if (tab > 0) {
                m.put(line.substring(0, tab), line.substring(tab + 1));
            }
        }
        return m;
    }

    private static void assertAllDenied(Map<String, String> outcomes) {
        assertThat(outcomes.keySet()).containsExactly(MatrixCalls.ORDER);
        outcomes.forEach((method, outcome) -> assertThat(outcome).as(method)
                .startsWith("PERMISSION_DENIED denied by rule 'default': no rule of the agent's policy grants")
                .doesNotContain(dir.toString())); // where the policy lives is for the audit log, not the caller
    }

    private static void assertAllReachedTheirHandler(Map<String, String> outcomes) {
        assertThat(outcomes.keySet()).containsExactly(MatrixCalls.ORDER);
        outcomes.forEach((method, outcome) -> assertThat(outcome).as(method)
                .doesNotStartWith("PERMISSION_DENIED").doesNotStartWith("INVALID_ARGUMENT").doesNotStartWith("UNAUTHENTICATED"));
        // granted calls whose handler found nothing to act on say so: proof the handler ran
        assertThat(outcomes.get("Connections.Attach")).startsWith("NOT_FOUND no open connection 987654");
        assertThat(outcomes.get("Policy.Reload")).isEqualTo("OK"); // the policy file was read again
        assertThat(outcomes.get("Modules.Load")).isEqualTo("OK");
        assertThat(outcomes.get("Modules.Control")).isEqualTo("OK");
    }

    @Test
    void everyMethodIsDeniedToAnotherUidAndGrantedToRootOverTheUnixSocket() throws Exception {
        assumeTrue(OtherUser.available(), "needs root and runuser to call as a second real user");
        long otherUid = OtherUser.ensure();
        try (ControlFixture f = agent(); ControlClient root = f.client()) {
            CountingControlModule ctl = new CountingControlModule();
            f.engine.add(ctl);
            OtherUser.Result r = OtherUser.run(Duration.ofSeconds(90), MatrixCalls.class.getName(), f.server.socket().toString(), victimJar.toString());
            assertThat(r.code()).as(r.err()).isZero();
            assertAllDenied(parse(r.out()));
            // no handler ran for the denied caller
            assertThat(ctl.calls).hasValue(0);
            assertThat(f.engine.registry.find("victim")).isEmpty();
            List<AuditEntry> theirs = root.audit().query(AuditQuery.newBuilder().setLimit(1000).build()).getEntriesList().stream()
                    .filter(e -> e.getCaller().getUid() == otherUid).toList();
            assertThat(theirs).hasSize(MatrixCalls.ORDER.length).allSatisfy(e -> {
                assertThat(e.getDecision()).isEqualTo("denied");
                assertThat(e.getKind()).isEqualTo("request");
                assertThat(e.getCaller().getUser()).isEqualTo(OtherUser.NAME);
                assertThat(e.getCaller().getTransport()).isEqualTo("uds");
                assertThat(e.getCaller().getPid()).isPositive();
            });

            assertAllReachedTheirHandler(MatrixCalls.all(root, victimJar));
            assertThat(ctl.calls).hasValue(1);
        }
    }

    @Test
    void everyMethodIsDeniedToAnUnknownCertificateAndGrantedToTheAdminCertificateOverMutualTls() throws Exception {
        try (ControlFixture f = agent()) {
            CountingControlModule ctl = new CountingControlModule();
            f.engine.add(ctl);
            int port = f.server.tlsAddress().getPort();
            try (ControlClient c = ControlClient.tls("127.0.0.1", port, intruder.certFile(), intruder.keyFile(), ca.ca().certFile())) {
                assertAllDenied(MatrixCalls.all(c, victimJar));
            }
            assertThat(ctl.calls).hasValue(0);
            assertThat(f.engine.registry.find("victim")).isEmpty();
            try (ControlClient c = ControlClient.tls("localhost", port, admin.certFile(), admin.keyFile(), ca.ca().certFile())) {
                assertThat(c.health().check(HealthRequest.getDefaultInstance()).getCaller().getSubject()).isEqualTo("CN=admin");
                assertAllReachedTheirHandler(MatrixCalls.all(c, victimJar));
            }
            assertThat(ctl.calls).hasValue(1);
            try (ControlClient root = f.client()) {
                List<AuditEntry> tls = root.audit().query(AuditQuery.newBuilder().setLimit(1000).build()).getEntriesList().stream()
                        .filter(e -> e.getCaller().getTransport().equals("tls")).toList();
                assertThat(tls).filteredOn(e -> e.getCaller().getSubject().equals("CN=intruder")).hasSize(MatrixCalls.ORDER.length)
                        .allSatisfy(e -> assertThat(e.getDecision()).isEqualTo("denied"));
                // every request of the admin was granted by rule tls-admin and audited once, in the order it was made:
                // the subject check, then the matrix
                List<Tuple> adminRequests = Stream.concat(Stream.of("Health.Check"), Stream.of(MatrixCalls.ORDER))
                        .map(m -> tuple(m, AuditLog.GRANTED, "tls-admin")).toList();
                assertThat(tls).filteredOn(e -> e.getCaller().getSubject().equals("CN=admin") && e.getKind().equals("request"))
                        .extracting(e -> e.getEndpoint() + "." + e.getMethod(), AuditEntry::getDecision, AuditEntry::getRule)
                        .containsExactlyElementsOf(adminRequests);
            }
        }
    }

    @Test
    void aClientCertificateFromAnotherCaIsRefusedBeforeAnyCall() throws Exception {
        Path other = Files.createDirectories(dir.resolve("other-pki"));
        Certs rogue = Certs.newCa(other, "rogue-ca");
        Certs.Issued mallory = rogue.client(other, "admin"); // same subject as the admin, wrong CA
        try (ControlFixture f = agent();
             ControlClient c = ControlClient.tls("127.0.0.1", f.server.tlsAddress().getPort(), mallory.certFile(), mallory.keyFile(), ca.ca().certFile())) {
            assertThatThrownBy(() -> c.health().check(HealthRequest.getDefaultInstance()))
                    .isInstanceOfSatisfying(StatusRuntimeException.class, e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE));
            // no call was made: the only audit entry is the refused connection
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (f.server.audit().lastSeq() == 0 && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertThat(f.server.audit().query(10, null, null, 0)).singleElement().satisfies(e -> {
                assertThat(e.endpoint() + "." + e.method()).isEqualTo("Transport.Connect");
                assertThat(e.rule()).isEqualTo("tls-handshake");
            });
        }
    }

    @Test
    void aResponseThePolicyDeniesIsReplacedByPermissionDeniedAndItsDataNeverArrives() throws Exception {
        String policy = """
                rules:
                  - name: hide-modules
                    on: response
                    endpoint: Modules
                    method: List
                    decision: denied
                    reason: the module list is not for this caller
                """ + POLICY.substring(POLICY.indexOf("rules:\n") + 7);
        Path file = dir.resolve("hide.yaml");
        Files.writeString(file, policy);
        try (ControlFixture f = new ControlFixture(s -> s.withPolicy(file)); ControlClient c = f.client()) {
            f.engine.add(new CountingControlModule("visible"));
            f.engine.add(new CountingControlModule("secret"));
            assertThatThrownBy(() -> c.modules().list(ListModulesRequest.getDefaultInstance()))
                    .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                        assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.PERMISSION_DENIED);
                        assertThat(e.getStatus().getDescription()).isEqualTo("response denied by rule 'hide-modules': the module list is not for this caller")
                                .doesNotContain("visible").doesNotContain("secret");
                    });
            List<AuditEntry> list = c.audit().query(AuditQuery.newBuilder().setEndpoint("Modules").build()).getEntriesList();
            assertThat(list).extracting(AuditEntry::getKind, AuditEntry::getDecision, AuditEntry::getRule)
                    .containsExactly(org.assertj.core.groups.Tuple.tuple("request", "granted", "root"),
                            org.assertj.core.groups.Tuple.tuple("response", "denied", "hide-modules"));

            // a stream: events of module visible arrive; the first event of module secret ends the stream, unseen
            Iterator<Event> events = c.events().subscribe(SubscribeRequest.getDefaultInstance());
            assertThat(events.next().getKind()).isEqualTo("subscribed");
            f.engine.registry.find("visible").orElseThrow().setState(dev.interlayer.runtime.ModuleState.INACTIVE);
            Event seen = events.next();
            assertThat(seen.getModule()).isEqualTo("visible");
            f.engine.registry.find("secret").orElseThrow().setState(dev.interlayer.runtime.ModuleState.INACTIVE);
            f.engine.registry.find("visible").orElseThrow().setState(dev.interlayer.runtime.ModuleState.ACTIVE);
            assertThatThrownBy(events::next).isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.PERMISSION_DENIED);
                assertThat(e.getStatus().getDescription()).contains("hide-secret-events");
            });
        }
    }
}
