package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.agent.Agent;
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
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;
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
    private final List<String> log = new CopyOnWriteArrayList<>();
    private final Handler capture = new Handler() {
        @Override
        public void publish(LogRecord r) {
            log.add(new SimpleFormatter().formatMessage(r));
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
    };

    @BeforeEach
    void setUp() throws Exception {
        pki = TlsCerts.newCa(tmp.resolve("pki"), "ops-ca");
        server = pki.issue("default", "localhost", "default.test");
        Logger.getLogger("interlayer.engine").addHandler(capture);
    }

    @AfterEach
    void tearDown() {
        Logger.getLogger("interlayer.engine").removeHandler(capture);
    }

    private static final java.util.concurrent.atomic.AtomicInteger NAMES = new java.util.concurrent.atomic.AtomicInteger();
    private final String web = "ops" + NAMES.incrementAndGet();

    private String agent(String tls, InetSocketAddress upstream) {
        return """
                agent:
                  control: {enabled: false}
                  io-threads: 2
                listeners:
                  - name: %s
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:%d
                    role: server
                    tls: %s
                """.formatted(web, upstream.getPort(), tls);
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
