package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.agent.Agent;
import dev.interlayer.api.TlsTicketKey;
import dev.interlayer.engine.testing.TestServer;
import io.netty.handler.ssl.JdkSslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.io.IOException;
import java.io.StringWriter;
import java.math.BigInteger;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509CRL;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.CRLReason;
import org.bouncycastle.cert.X509v2CRLBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CRLConverter;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * TLS operations on a running agent, with real peers and certificates made here: revocation lists, certificates replaced
 * while handshakes run, session resumption with rotating ticket keys.
 */
class TlsOpsTest {

    @TempDir
    Path tmp;

    private TlsCerts pki;
    private TlsCerts.Issued server;
    private final LogCapture capture = new LogCapture();
    private final List<String> log = capture.lines();

    @BeforeEach
    void setUp() throws Exception {
        pki = TlsCerts.newCa(tmp.resolve("pki"), "ops-ca");
        server = pki.issue("default", "localhost", "default.test");
        capture.start("interlayer.engine");
    }

    @AfterEach
    void tearDown() {
        capture.stop();
    }

    private static final java.util.concurrent.atomic.AtomicInteger NAMES = new java.util.concurrent.atomic.AtomicInteger();
    private final String web = "ops" + NAMES.incrementAndGet();

    private String agent(String tls, InetSocketAddress upstream) {
        return Agents.terminating(web, upstream.getPort(), tls);
    }

    // ---- CRLs -----------------------------------------------------------------------------------------

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void aRevokedClientCertificateIsRefusedAndAGoodOneAccepted(String provider) throws Exception {
        TlsCerts.Issued good = pki.issue("client-good", "client.test");
        TlsCerts.Issued revoked = pki.issue("client-revoked", "client.test");
        Path crl = crl(pki, tmp.resolve("ca.crl"), Duration.ofDays(1), revoked.cert().getSerialNumber());
        String tls = "{provider: %s, cert: %s, key: %s, ca: %s, client-auth: required, crl: %s}"
                .formatted(provider, server.certFile(), server.keyFile(), pki.ca().certFile(), crl);
        try (TestServer echo = TestServer.echo(); Agent agent = Agents.start(tmp.resolve("agent"), agent(tls, echo.address()))) {
            InetSocketAddress at = agent.listeners().get(web);
            assertThatThrownBy(() -> {
                try (SSLSocket s = TlsTest.connect(client(revoked), at, "localhost")) {
                    TlsTest.roundTrip(s, "let me in");
                }
            }).isInstanceOf(IOException.class);
            try (SSLSocket s = TlsTest.connect(client(good), at, "localhost")) {
                TlsTest.roundTrip(s, "a good certificate");
            }
            String serial = revoked.cert().getSerialNumber().toString(16).toUpperCase();
            Agents.waitFor("the refusal is logged", () -> log.stream().anyMatch(l -> l.contains("its certificate is revoked (serial " + serial)));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void aClientCertificateInAnExpiredCrlStaysRefused(String provider) throws Exception {
        TlsCerts.Issued good = pki.issue("client-good", "client.test");
        TlsCerts.Issued revoked = pki.issue("client-revoked", "client.test");
        Path crl = crl(pki, tmp.resolve("old.crl"), Duration.ofHours(-1), revoked.cert().getSerialNumber());
        String tls = "{provider: %s, cert: %s, key: %s, ca: %s, client-auth: required, crl: [%s]}"
                .formatted(provider, server.certFile(), server.keyFile(), pki.ca().certFile(), crl);
        try (TestServer echo = TestServer.echo(); Agent agent = Agents.start(tmp.resolve("agent"), agent(tls, echo.address()))) {
            assertThat(log).anyMatch(l -> l.contains("crl " + crl) && l.contains("expired") && l.contains("stay refused"));
            InetSocketAddress at = agent.listeners().get(web);
            assertThatThrownBy(() -> {
                try (SSLSocket s = TlsTest.connect(client(revoked), at, "localhost")) {
                    TlsTest.roundTrip(s, "let me in");
                }
            }).isInstanceOf(IOException.class);
            try (SSLSocket s = TlsTest.connect(client(good), at, "localhost")) {
                TlsTest.roundTrip(s, "a good certificate");
            }
            Agents.waitFor("the refusal is logged", () -> log.stream().anyMatch(l -> l.contains("its certificate is revoked (serial")));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void aRevokedUpstreamCertificateIsRefused(String provider) throws Exception {
        TlsCerts.Issued good = pki.issue("upstream-good", "upstream.test");
        TlsCerts.Issued revoked = pki.issue("upstream-revoked", "upstream.test");
        Path crl = crl(pki, tmp.resolve("ca.crl"), Duration.ofDays(1), revoked.cert().getSerialNumber());
        try (TlsTest.TlsEcho ok = new TlsTest.TlsEcho(good); TlsTest.TlsEcho bad = new TlsTest.TlsEcho(revoked)) {
            for (TlsTest.TlsEcho up : List.of(ok, bad)) {
                String yaml = """
                        agent:
                          control: {enabled: false}
                          io-threads: 2
                        listeners:
                          - name: %s
                            listen: 127.0.0.1:0
                            upstream: {address: 127.0.0.1:%d, tls: {provider: %s, ca: %s, crl: %s, server-name: upstream.test}}
                            role: client
                        """.formatted(web, up.port(), provider, pki.ca().certFile(), crl);
                try (Agent agent = Agents.start(tmp.resolve("agent" + up.port()), yaml); Socket s = new Socket("127.0.0.1", agent.listeners().get(web).getPort())) {
                    s.setSoTimeout(10_000);
                    if (up == ok) {
                        TlsTest.roundTrip(s, "plain in, TLS out");
                    } else {
                        s.getOutputStream().write("hello".getBytes(StandardCharsets.US_ASCII));
                        assertThat(TlsTest.readToEnd(s)).isTrue();
                        String serial = revoked.cert().getSerialNumber().toString(16).toUpperCase();
                        Agents.waitFor("the refusal is logged", () -> log.stream().anyMatch(l -> l.contains("upstream") && l.contains("revoked (serial " + serial)));
                    }
                }
            }
            assertThat(ok.served()).isEqualTo(1);
            assertThat(bad.served()).isZero();
        }
    }

    @org.junit.jupiter.api.Test
    void aCrlNotSignedByTheCaOrUnreadableRefusesTheListener() throws Exception {
        TlsCerts other = TlsCerts.newCa(tmp.resolve("other"), "other-ca");
        Path foreign = crl(other, tmp.resolve("foreign.crl"), Duration.ofDays(1), BigInteger.TEN);
        Path junk = Files.writeString(tmp.resolve("junk.crl"), "not a crl");
        for (Path[] c : new Path[][] {{foreign, Path.of("is not signed by a CA in ca")}, {junk, Path.of("holds no readable CRL")}}) {
            String tls = "{cert: %s, key: %s, ca: %s, client-auth: required, crl: %s}".formatted(server.certFile(), server.keyFile(), pki.ca().certFile(), c[0]);
            try (TestServer echo = TestServer.echo()) {
                assertThatThrownBy(() -> Agents.start(tmp.resolve("agent-" + c[0].getFileName()), agent(tls, echo.address())).close())
                        .hasMessageContaining("crl " + c[0]).hasMessageContaining(c[1].toString());
            }
        }
    }

    // ---- reload ---------------------------------------------------------------------------------------

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void certificatesReplacedSixTimesUnderLoadFailNoHandshakeAndAnOpenConnectionKeepsWorking(String provider) throws Exception {
        Path live = Files.createDirectories(tmp.resolve("live"));
        Path cert = live.resolve("server.crt");
        Path key = live.resolve("server.key");
        install(server, cert, key);
        String yaml = """
                agent:
                  control: {socket: control.sock}
                  io-threads: 2
                listeners:
                  - name: %s
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:%d
                    role: server
                    tls: {provider: %s, cert: %s, key: %s}
                """;
        try (TestServer echo = TestServer.echo();
             Agent agent = Agents.start(tmp.resolve("agent"), yaml.formatted(web, echo.address().getPort(), provider, cert, key))) {
            InetSocketAddress at = agent.listeners().get(web);
            SSLContext ctx = client(null);
            SSLSocket held = TlsTest.connect(ctx, at, "localhost");
            TlsTest.roundTrip(held, "before");
            java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
            java.util.concurrent.atomic.AtomicInteger ok = new java.util.concurrent.atomic.AtomicInteger();
            List<String> failures = new CopyOnWriteArrayList<>();
            List<Thread> clients = new java.util.ArrayList<>();
            for (int t = 0; t < 4; t++) {
                clients.add(Thread.ofPlatform().start(() -> {
                    while (!stop.get()) {
                        try (SSLSocket s = TlsTest.connect(ctx, at, "localhost")) {
                            TlsTest.roundTrip(s, "during");
                            s.getSession().invalidate(); // the next handshake is a full one, with the certificate current then
                            ok.incrementAndGet();
                        } catch (Exception | AssertionError e) {
                            failures.add(e.toString());
                        }
                    }
                }));
            }
            Path sock = tmp.resolve("agent").resolve("control.sock");
            for (int i = 1; i <= 6; i++) {
                Thread.sleep(250);
                TlsCerts.Issued next = pki.issue("default-" + i, "localhost");
                install(next, cert, key);
                if (i % 2 == 0) {
                    java.io.StringWriter out = new java.io.StringWriter();
                    java.io.StringWriter err = new java.io.StringWriter();
                    int code = dev.interlayer.cli.Main.execute(new java.io.PrintWriter(out, true), new java.io.PrintWriter(err, true),
                            "tls", "reload", web, "--socket", sock.toString());
                    assertThat(code).as("interlayer tls reload: %s %s", out, err).isZero();
                    assertThat(out.toString()).contains(web + ": reloaded CN=default-" + i + " (server) until ");
                } else {
                    List<dev.interlayer.engine.Engine.TlsReload> r = agent.engine().reloadTls(web);
                    assertThat(r).singleElement().satisfies(x -> assertThat(x.error()).isNull());
                }
                assertThat(subject(ctx, at)).isEqualTo("CN=default-" + i);
            }
            // a key that does not belong to the certificate: refused, the last good certificate stays
            TlsCerts.Issued other = pki.issue("other", "localhost");
            Files.copy(other.keyFile(), key, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            List<dev.interlayer.engine.Engine.TlsReload> bad = agent.engine().reloadTls(web);
            assertThat(bad).singleElement().satisfies(x -> assertThat(x.error()).contains("does not belong to the certificate", "old certificates stay"));
            assertThat(subject(ctx, at)).isEqualTo("CN=default-6");
            assertThat(log).anyMatch(l -> l.contains("listener " + web + ": TLS not reloaded: key " + key + " does not belong")
                    && l.contains("the old certificates stay in use"));
            java.io.StringWriter out = new java.io.StringWriter();
            int code = dev.interlayer.cli.Main.execute(new java.io.PrintWriter(out, true), new java.io.PrintWriter(new java.io.StringWriter(), true),
                    "tls", "reload", "--json", "--socket", sock.toString());
            assertThat(code).isEqualTo(1);
            assertThat(out.toString()).contains("\"listener\":\"" + web + "\"", "does not belong to the certificate");
            // replaced on disk, nobody asks: the agent sees it
            TlsCerts.Issued seventh = pki.issue("default-7", "localhost");
            install(seventh, cert, key);
            Agents.waitFor("the watch reloads", () -> {
                try {
                    return subject(ctx, at).equals("CN=default-7");
                } catch (IOException e) {
                    return false;
                }
            });
            stop.set(true);
            for (Thread t : clients) t.join();
            assertThat(failures).as("handshakes that failed while the certificates were replaced").isEmpty();
            assertThat(ok.get()).isGreaterThan(20);
            System.out.println(provider + ": " + ok.get() + " handshakes by 4 clients while the certificate was replaced 7 times, 0 failed");
            TlsTest.roundTrip(held, "after seven reloads"); // the connection opened first still runs on its first certificate
            assertThat(((java.security.cert.X509Certificate) held.getSession().getPeerCertificates()[0]).getSubjectX500Principal().getName())
                    .isEqualTo("CN=default");
            held.close();
        }
    }

    @org.junit.jupiter.api.Test
    void reloadingAListenerWithoutTlsOrAnUnknownOneSaysSo() throws Exception {
        String yaml = """
                agent:
                  control: {enabled: false}
                  io-threads: 1
                listeners:
                  - {name: %s, listen: 127.0.0.1:0, upstream: 127.0.0.1:9, role: server}
                """.formatted(web);
        try (Agent agent = Agents.start(tmp.resolve("agent"), yaml)) {
            assertThatThrownBy(() -> agent.engine().reloadTls(web)).hasMessageContaining("has no TLS");
            assertThatThrownBy(() -> agent.engine().reloadTls("nope")).hasMessageContaining("no listener named 'nope'");
            assertThat(agent.engine().reloadTls(null)).isEmpty();
        }
    }

    /** Puts {@code c}'s files at {@code cert} and {@code key}, each replaced in one step (as a deploy tool's rename does). */
    private static void install(TlsCerts.Issued c, Path cert, Path key) throws IOException {
        for (Path[] f : new Path[][] {{c.certFile(), cert}, {c.keyFile(), key}}) {
            Path t = f[1].resolveSibling(f[1].getFileName() + ".new");
            Files.copy(f[0], t, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            Files.move(t, f[1], java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        }
    }

    /**
     * The subject of the certificate a new full handshake gets: a client context of its own, as the loop's shared one may
     * resume a session (tickets) whose certificate is the one it started with.
     */
    private String subject(SSLContext ignored, InetSocketAddress at) throws IOException {
        SSLContext ctx;
        try {
            ctx = client(null);
        } catch (Exception e) {
            throw new IOException(e);
        }
        try (SSLSocket s = TlsTest.connect(ctx, at, "localhost")) {
            String subject = ((java.security.cert.X509Certificate) s.getSession().getPeerCertificates()[0]).getSubjectX500Principal().getName();
            s.getSession().invalidate();
            return subject;
        }
    }

    // ---- session resumption ---------------------------------------------------------------------------

    @ParameterizedTest
    @ValueSource(strings = {"-tls1_2", "-tls1_3"})
    void openSslResumesWithATicketAndTheListingSaysResumed(String version) throws Exception {
        String tls = "{cert: %s, key: %s}".formatted(server.certFile(), server.keyFile());
        try (TestServer echo = TestServer.echo(); Agent agent = Agents.start(tmp.resolve("agent"), agent(tls, echo.address()))) {
            int port = agent.listeners().get(web).getPort();
            Path sess = tmp.resolve("session.pem");
            SClient first = sClient(agent, port, version, "-sess_out", sess.toString());
            assertThat(first.out()).as(first.out()).contains("New, TLSv1.");
            assertThat(first.listing()).contains("in: TLSv1.").doesNotContain("resumed");
            SClient second = sClient(agent, port, version, "-sess_in", sess.toString());
            assertThat(second.out()).as(second.out()).contains("Reused, TLSv1.");
            assertThat(second.listing()).contains("in: TLSv1.", " resumed");
        }
    }

    @org.junit.jupiter.api.Test
    void withSessionTicketsOffNothingIsResumedAndOnTls13ItIsAStartError() throws Exception {
        String tls = "{cert: %s, key: %s, session-tickets: false, protocols: [TLSv1.2]}".formatted(server.certFile(), server.keyFile());
        try (TestServer echo = TestServer.echo(); Agent agent = Agents.start(tmp.resolve("agent"), agent(tls, echo.address()))) {
            int port = agent.listeners().get(web).getPort();
            Path sess = tmp.resolve("session.pem");
            SClient first = sClient(agent, port, "-tls1_2", "-sess_out", sess.toString());
            assertThat(first.out()).contains("New, TLSv1.2");
            // no ticket and no session id (the session cache is off): s_client has no session to save, or one that does not resume
            if (Files.exists(sess)) {
                SClient second = sClient(agent, port, "-tls1_2", "-sess_in", sess.toString());
                assertThat(second.out()).as(second.out()).contains("New, TLSv1.2").doesNotContain("Reused");
                assertThat(second.listing()).doesNotContain("resumed");
            }
            assertThat(first.out()).doesNotContain("TLS session ticket:");
        }
        String tls13 = "{cert: %s, key: %s, session-tickets: false}".formatted(server.certFile(), server.keyFile());
        try (TestServer echo = TestServer.echo()) {
            assertThatThrownBy(() -> Agents.start(tmp.resolve("agent13"), agent(tls13, echo.address())).close())
                    .hasMessageContaining("session-tickets: false works with protocols: [TLSv1.2] only");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"-tls1_2", "-tls1_3"})
    void aTicketFromThePreviousKeyPeriodResumesAndOneFromTwoPeriodsAgoDoesNot(String version) throws Exception {
        long period = 3000;
        String tls = "{cert: %s, key: %s, ticket-key-rotation: 3s}".formatted(server.certFile(), server.keyFile());
        try (TestServer echo = TestServer.echo(); Agent agent = Agents.start(tmp.resolve("agent"), agent(tls, echo.address()))) {
            int port = agent.listeners().get(web).getPort();
            // the keys rotate at multiples of the period on the wall clock: start just after one
            sleepUntilPeriodStart(period);
            Path old = tmp.resolve("old.pem");
            assertThat(sClient(agent, port, version, "-sess_out", old.toString()).out()).contains("New, TLSv1.");
            sleepUntilPeriodStart(period); // the key that encrypted it is now the previous one
            Path fresh = tmp.resolve("fresh.pem");
            SClient previous = sClient(agent, port, version, "-sess_in", old.toString());
            assertThat(previous.out()).as(previous.out()).contains("Reused, TLSv1.");
            sClient(agent, port, version, "-sess_out", fresh.toString());
            sleepUntilPeriodStart(period); // two periods after the first ticket's: its key is gone
            SClient tooOld = sClient(agent, port, version, "-sess_in", old.toString());
            assertThat(tooOld.out()).as(tooOld.out()).contains("New, TLSv1.").doesNotContain("Reused");
            SClient lastPeriods = sClient(agent, port, version, "-sess_in", fresh.toString());
            assertThat(lastPeriods.out()).as(lastPeriods.out()).contains("Reused, TLSv1.");
        }
    }

    @org.junit.jupiter.api.Test
    void sessionTicketsOffOnTheJdkProviderIsAConfigError() throws Exception {
        String tls = "{provider: jdk, cert: %s, key: %s, session-tickets: false}".formatted(server.certFile(), server.keyFile());
        try (TestServer echo = TestServer.echo()) {
            assertThatThrownBy(() -> Agents.start(tmp.resolve("agent"), agent(tls, echo.address())).close())
                    .hasMessageContaining("session-tickets: false needs provider: openssl");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"-tls1_2", "-tls1_3"})
    void agentsSharingTicketKeyFilesResumeEachOthersSessionsAndAnotherAgentDoesNot(String version) throws Exception {
        Path older = tmp.resolve("older.key");
        Path newer = tmp.resolve("newer.key");
        Files.write(older, TlsTicketKey.random().encoded());
        Files.write(newer, TlsTicketKey.random().encoded());
        String shared = "{cert: %s, key: %s, ticket-keys: [%s]}".formatted(server.certFile(), server.keyFile(), older);
        String own = "{cert: %s, key: %s}".formatted(server.certFile(), server.keyFile());
        try (TestServer echo = TestServer.echo();
             Agent a = Agents.start(tmp.resolve("a"), agent(shared, echo.address()));
             Agent b = Agents.start(tmp.resolve("b"), agent(shared, echo.address()));
             Agent c = Agents.start(tmp.resolve("c"), agent(own, echo.address()))) {
            Path sess = tmp.resolve("session.pem");
            assertThat(sClient(a, a.listeners().get(web).getPort(), version, "-sess_out", sess.toString()).out()).contains("New, TLSv1.");
            SClient onB = sClient(b, b.listeners().get(web).getPort(), version, "-sess_in", sess.toString());
            assertThat(onB.out()).as(onB.out()).contains("Reused, TLSv1.");
            assertThat(onB.listing()).contains(" resumed");
            SClient onC = sClient(c, c.listeners().get(web).getPort(), version, "-sess_in", sess.toString());
            assertThat(onC.out()).as(onC.out()).contains("New, TLSv1.").doesNotContain("Reused");
            // an agent whose first key is newer encrypts with it and still decrypts with the older one, second in its list
            String rotated = "{cert: %s, key: %s, ticket-keys: [%s, %s]}".formatted(server.certFile(), server.keyFile(), newer, older);
            try (Agent b2 = Agents.start(tmp.resolve("b2"), agent(rotated, echo.address()))) {
                int port = b2.listeners().get(web).getPort();
                SClient old = sClient(b2, port, version, "-sess_in", sess.toString());
                assertThat(old.out()).as("a ticket of the older key still decrypts").contains("Reused, TLSv1.");
                Path fresh = tmp.resolve("fresh.pem");
                sClient(b2, port, version, "-sess_out", fresh.toString());
                SClient onA = sClient(a, a.listeners().get(web).getPort(), version, "-sess_in", fresh.toString());
                assertThat(onA.out()).as("a, which lacks the newer key, cannot decrypt its tickets").contains("New, TLSv1.")
                        .doesNotContain("Reused");
            }
        }
    }

    @org.junit.jupiter.api.Test
    void aTicketKeyFileOfTheWrongSizeIsAConfigErrorThatSaysHowToMakeOne() throws Exception {
        Path bad = tmp.resolve("short.key");
        Files.write(bad, new byte[32]);
        String tls = "{cert: %s, key: %s, ticket-keys: %s}".formatted(server.certFile(), server.keyFile(), bad);
        try (TestServer echo = TestServer.echo()) {
            assertThatThrownBy(() -> Agents.start(tmp.resolve("agent"), agent(tls, echo.address())).close())
                    .hasMessageContaining("ticket-keys file " + bad + " is 32 bytes")
                    .hasMessageContaining("openssl rand 48");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"-tls1_2", "-tls1_3"})
    void keyLogWritesTheSecretsTheClientDerivedToAFileOnlyTheAgentsUserReads(String version) throws Exception {
        Path keys = tmp.resolve("keys.log");
        Path clientKeys = tmp.resolve("client-keys.log");
        String tls = "{cert: %s, key: %s, key-log: %s}".formatted(server.certFile(), server.keyFile(), keys);
        try (TestServer echo = TestServer.echo(); Agent agent = Agents.start(tmp.resolve("agent"), agent(tls, echo.address()))) {
            assertThat(log).anyMatch(l -> l.contains("are written to " + keys) && l.contains("decrypt"));
            sClient(agent, agent.listeners().get(web).getPort(), version, "-keylogfile", clientKeys.toString());
            List<String> client = Files.readAllLines(clientKeys).stream().filter(l -> !l.isBlank() && !l.startsWith("#")).toList();
            assertThat(client).as("openssl logged the handshake's secrets").isNotEmpty();
            assertThat(Files.readAllLines(keys)).containsAll(client);
            assertThat(java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(keys))).isEqualTo("rw-------");
        }
    }

    @org.junit.jupiter.api.Test
    void keyLogOnTheJdkProviderIsAConfigError() throws Exception {
        String tls = "{provider: jdk, cert: %s, key: %s, key-log: %s}".formatted(server.certFile(), server.keyFile(), tmp.resolve("k.log"));
        try (TestServer echo = TestServer.echo()) {
            assertThatThrownBy(() -> Agents.start(tmp.resolve("agent"), agent(tls, echo.address())).close())
                    .hasMessageContaining("key-log needs provider: openssl");
        }
    }

    private static void sleepUntilPeriodStart(long period) throws InterruptedException {
        Thread.sleep(period - System.currentTimeMillis() % period + 400);
    }

    /** What {@code openssl s_client} printed, and the agent's connection listing while it was connected. */
    record SClient(String out, String listing) {}

    /** Connects with {@code openssl s_client}, sends a line, reads the connection listing, and closes. */
    private SClient sClient(Agent agent, int port, String version, String... args) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of("/usr/bin/openssl", "s_client", "-connect", "127.0.0.1:" + port, "-servername", "localhost",
                version, "-CAfile", pki.ca().certFile().toString()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try {
            p.getOutputStream().write("ping\n".getBytes(StandardCharsets.US_ASCII));
            p.getOutputStream().flush();
            String[] listing = {""};
            long deadline = System.nanoTime() + 15_000_000_000L;
            while (agent.engine().connections().stream().noneMatch(c -> c.tls() != null && c.tls().contains("in: TLSv1") && (listing[0] = c.tls()) != null)) {
                if (System.nanoTime() > deadline || !p.isAlive()) {
                    if (p.isAlive()) p.destroy();
                    p.waitFor(5, java.util.concurrent.TimeUnit.SECONDS);
                    throw new AssertionError("no TLS connection listed; s_client said: " + new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8)
                            + "; listing: " + agent.engine().connections());
                }
                Thread.sleep(20);
            }
            Thread.sleep(200); // TLS 1.3 tickets come after the handshake
            p.getOutputStream().close();
            assertThat(p.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)).as("s_client exits").isTrue();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            Agents.waitFor("connection closed", () -> agent.engine().connectionCount() == 0);
            return new SClient(out, listing[0]);
        } finally {
            p.destroyForcibly();
        }
    }

    // ---- helpers ---------------------------------------------------------------------------------------

    /** A CRL of {@code ca}'s listing {@code revoked}, its next update {@code valid} from now (negative: already expired). */
    static Path crl(TlsCerts ca, Path file, Duration valid, BigInteger... revoked) throws Exception {
        Instant now = Instant.now();
        X509v2CRLBuilder b = new X509v2CRLBuilder(new X500Name(ca.ca().cert().getSubjectX500Principal().getName()),
                Date.from(now.minus(Duration.ofDays(2))));
        b.setNextUpdate(Date.from(now.plus(valid)));
        for (BigInteger r : revoked) b.addCRLEntry(r, Date.from(now.minus(Duration.ofHours(1))), CRLReason.keyCompromise);
        X509CRL crl = new JcaX509CRLConverter().getCRL(b.build(new JcaContentSignerBuilder("SHA256withECDSA").build(ca.ca().key())));
        StringWriter sw = new StringWriter();
        try (JcaPEMWriter w = new JcaPEMWriter(sw)) {
            w.writeObject(crl);
        }
        Files.writeString(file, sw.toString());
        return file;
    }

    /** A client context of the JDK's that trusts the test CA and shows {@code cert} (null: none). */
    private SSLContext client(TlsCerts.Issued cert) throws Exception {
        SslContextBuilder b = SslContextBuilder.forClient().sslProvider(SslProvider.JDK).trustManager(pki.ca().certFile().toFile());
        if (cert != null) b.keyManager(cert.certFile().toFile(), cert.keyFile().toFile());
        return ((JdkSslContext) b.build()).context();
    }
}
