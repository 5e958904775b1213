package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.agent.Agent;
import dev.interlayer.engine.ConnectionSnapshot;
import dev.interlayer.engine.testing.TestServer;
import io.netty.handler.ssl.JdkSslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.List;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * An agent terminating and originating TLS with real peers (JDK TLS sockets) and certificates made here, once with each
 * provider: the results must be the same.
 */
class TlsTest {

    @TempDir
    Path tmp;

    private TlsCerts pki;
    private TlsCerts.Issued server;
    private final LogCapture capture = new LogCapture();
    private final List<String> log = capture.lines();


    @BeforeEach
    void setUp() throws Exception {
        pki = TlsCerts.newCa(tmp.resolve("pki"), "test-ca");
        server = pki.issue("default", "localhost", "default.test");
        capture.start("interlayer.engine");
    }

    @AfterEach
    void tearDown() {
        capture.stop();
    }

    @org.junit.jupiter.api.Test
    void theOpensslRunsRunOnBoringSsl() {
        // the native library ships with the build for linux-x86_64: if it did not load, the openssl cases above would
        // silently run on the JDK's TLS and prove nothing about BoringSSL
        assertThat(dev.interlayer.engine.TlsProvider.describe()).startsWith("openssl (BoringSSL");
    }

    /** A listener name of its own per test: log lines are rate-limited per listener, and these tests count them. */
    private static final java.util.concurrent.atomic.AtomicInteger NAMES = new java.util.concurrent.atomic.AtomicInteger();
    private final String web = "web" + NAMES.incrementAndGet();

    private String agent(String tls, InetSocketAddress upstream) {
        return Agents.terminating(web, upstream.getPort(), tls);
    }

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void sniChoosesAmongThreeCertificatesAndTheListingShowsWhatWasNegotiated(String provider) throws Exception {
        TlsCerts.Issued a = pki.issue("a", "a.test");
        TlsCerts.Issued b = pki.issue("b", "b.test", "*.b.test");
        String tls = "{provider: %s, cert: %s, key: %s, sni: [{names: [a.test], cert: %s, key: %s}, {names: [b.test, '*.b.test'], cert: %s, key: %s}]}"
                .formatted(provider, server.certFile(), server.keyFile(), a.certFile(), a.keyFile(), b.certFile(), b.keyFile());
        try (TestServer echo = TestServer.echo(); Agent agent = Agents.start(tmp.resolve("agent"), agent(tls, echo.address()))) {
            InetSocketAddress at = agent.listeners().get(web);
            for (String[] c : new String[][] {{"a.test", "CN=a"}, {"b.test", "CN=b"}, {"x.b.test", "CN=b"}, {"other.test", "CN=default"}}) {
                try (SSLSocket s = connect(client(null), at, c[0])) { // a new client each time: no session to resume
                    assertThat(((X509Certificate) s.getSession().getPeerCertificates()[0]).getSubjectX500Principal().getName())
                            .as("certificate for %s", c[0]).isEqualTo(c[1]);
                    roundTrip(s, "hello " + c[0]);
                    ConnectionSnapshot snap = agent.engine().connections().getFirst();
                    assertThat(snap.tls()).contains("in: " + s.getSession().getProtocol(), s.getSession().getCipherSuite(), "sni=" + c[0]);
                }
                Agents.waitFor("connection closed", () -> agent.engine().connectionCount() == 0);
            }
            assertThat(agent.engine().directConnections()).as("TLS connections never take the direct path").isZero();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void mutualTlsAcceptsAGoodClientCertificateAndRefusesNoneAnExpiredOneAndAnUntrustedOne(String provider) throws Exception {
        TlsCerts.Issued good = pki.issue("client-good", "client.test");
        TlsCerts.Issued expired = pki.expired("client-expired", "client.test");
        TlsCerts.Issued stranger = TlsCerts.newCa(tmp.resolve("other"), "other-ca").issue("client-stranger", "client.test");
        String tls = "{provider: %s, cert: %s, key: %s, ca: %s, client-auth: required}"
                .formatted(provider, server.certFile(), server.keyFile(), pki.ca().certFile());
        try (TestServer echo = TestServer.echo(); Agent agent = Agents.start(tmp.resolve("agent"), agent(tls, echo.address()))) {
            InetSocketAddress at = agent.listeners().get(web);
            for (TlsCerts.Issued refused : new TlsCerts.Issued[] {null, expired, stranger}) {
                assertThatThrownBy(() -> {
                    try (SSLSocket s = connect(client(refused), at, "localhost")) {
                        roundTrip(s, "let me in");
                    }
                }).as("client certificate %s", refused == null ? "none" : refused.cert().getSubjectX500Principal()).isInstanceOf(IOException.class);
            }
            try (SSLSocket s = connect(client(good), at, "localhost")) {
                roundTrip(s, "a good certificate");
            }
            Agents.waitFor("three refusals logged", () -> log.stream().filter(l -> l.contains("TLS handshake with the client")).count() >= 3);
            assertThat(log).anyMatch(l -> l.contains("sent no client certificate") && l.contains("give the client a certificate"));
            assertThat(log).anyMatch(l -> l.contains("expired") || l.contains("not trusted"));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void alpnNegotiatesH2AndHttp11(String provider) throws Exception {
        String tls = "{provider: %s, cert: %s, key: %s, alpn: [h2, http/1.1]}".formatted(provider, server.certFile(), server.keyFile());
        try (TestServer echo = TestServer.echo(); Agent agent = Agents.start(tmp.resolve("agent"), agent(tls, echo.address()))) {
            InetSocketAddress at = agent.listeners().get(web);
            for (String offered : new String[] {"h2", "http/1.1"}) {
                try (SSLSocket s = connect(client(null), at, "localhost", offered)) {
                    assertThat(s.getApplicationProtocol()).isEqualTo(offered);
                    roundTrip(s, "alpn " + offered);
                    assertThat(agent.engine().connections().getFirst().tls()).contains("alpn=" + offered);
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void aGarbageClientHelloAndAStalledHandshakeFailOnlyTheirConnection(String provider) throws Exception {
        String tls = "{provider: %s, cert: %s, key: %s, handshake-timeout: 1s}".formatted(provider, server.certFile(), server.keyFile());
        try (TestServer echo = TestServer.echo(); Agent agent = Agents.start(tmp.resolve("agent"), agent(tls, echo.address()))) {
            InetSocketAddress at = agent.listeners().get(web);
            try (SSLSocket good = connect(client(null), at, "localhost");
                 Socket garbage = new Socket(at.getAddress(), at.getPort())) {
                roundTrip(good, "before");
                garbage.setSoTimeout(10_000);
                garbage.getOutputStream().write("GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(20).getBytes(StandardCharsets.US_ASCII));
                assertThat(readToEnd(garbage)).as("the garbage connection is closed").isTrue();
                // the handshake timer starts when the agent accepts: timed from the connect, which comes before
                long t0 = System.nanoTime();
                try (Socket stalled = new Socket(at.getAddress(), at.getPort())) {
                    stalled.setSoTimeout(10_000);
                    stalled.getOutputStream().write(new byte[] {0x16, 0x03, 0x01}); // the start of a record, then nothing
                    assertThat(readToEnd(stalled)).as("the stalled connection is closed").isTrue();
                }
                assertThat((System.nanoTime() - t0) / 1_000_000).as("closed by the 1 s handshake timeout").isBetween(900L, 8_000L);
                roundTrip(good, "after: the other connection still works");
            }
            try (SSLSocket again = connect(client(null), at, "localhost")) {
                roundTrip(again, "and new ones are served");
            }
            assertThat(log).anyMatch(l -> l.contains("did not send TLS") && l.contains("must connect with TLS"));
            assertThat(log).anyMatch(l -> l.contains("not done within 1000 ms") && l.contains("handshake-timeout"));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void originatesToATlsServerVerifyingItsName(String provider) throws Exception {
        TlsCerts.Issued up = pki.issue("upstream", "upstream.test");
        TlsCerts.Issued old = pki.expired("upstream-old", "upstream.test");
        try (TlsEcho good = new TlsEcho(up); TlsEcho expired = new TlsEcho(old)) {
            String[][] cases = {{"upstream.test", "ok", String.valueOf(good.port())}, {"wrong.test", "does not name wrong.test", String.valueOf(good.port())},
                    {"upstream.test", "expired", String.valueOf(expired.port())}};
            for (String[] c : cases) {
                String yaml = """
                        agent:
                          control: {enabled: false}
                          io-threads: 2
                        listeners:
                          - name: %s
                            listen: 127.0.0.1:0
                            upstream: {address: 127.0.0.1:%s, tls: {provider: %s, ca: %s, server-name: %s}}
                            role: client
                        """.formatted(web, c[2], provider, pki.ca().certFile(), c[0]);
                try (Agent agent = Agents.start(tmp.resolve("agent-" + c[0] + c[2]), yaml);
                     Socket s = new Socket("127.0.0.1", agent.listeners().get(web).getPort())) {
                    s.setSoTimeout(10_000);
                    if (c[1].equals("ok")) {
                        roundTrip(s, "plain in, TLS out");
                        assertThat(agent.engine().connections().getFirst().tls()).startsWith("out: TLS").contains("sni=upstream.test");
                    } else {
                        try {
                            s.getOutputStream().write("hello".getBytes(StandardCharsets.US_ASCII));
                        } catch (java.net.SocketException e) {
                            // the upstream's handshake failed and the agent reset this connection before the client wrote
                        }
                        assertThat(readToEnd(s)).as("refused: %s", c[1]).isTrue();
                        Agents.waitFor("the refusal is logged", () -> log.stream().anyMatch(l -> l.contains(c[1])));
                    }
                }
            }
            assertThat(good.served()).isEqualTo(1);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void tagOverReEncryptingAgentsIsByteExactFor64MiB(String provider) throws Exception {
        Agents.deploySample("tag", tmp.resolve("b/modules"));
        Agents.deploySample("tag", tmp.resolve("a/modules"));
        String tls = "{provider: %s, cert: %s, key: %s}".formatted(provider, server.certFile(), server.keyFile());
        String b = """
                agent:
                  control: {enabled: false}
                  io-threads: 2
                listeners:
                  - name: %s-in
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:%%d
                    role: server
                    tls: %s
                modules:
                  - name: tag
                    params: {every: 1000}
                """.formatted(web, tls);
        String a = """
                agent:
                  control: {enabled: false}
                  io-threads: 2
                listeners:
                  - name: %s-out
                    listen: 127.0.0.1:0
                    upstream: {address: 127.0.0.1:%%d, tls: {provider: %s, ca: %s, server-name: localhost}}
                    role: client
                    tls: %s
                modules:
                  - name: tag
                    params: {every: 1000}
                """.formatted(web, provider, pki.ca().certFile(), tls);
        long total = 64L << 20;
        try (TestServer echo = TestServer.echo();
             Agent in = Agents.start(tmp.resolve("b"), b.formatted(echo.address().getPort()));
             Agent out = Agents.start(tmp.resolve("a"), a.formatted(in.listeners().get(web + "-in").getPort()));
             SSLSocket s = connect(client(null), out.listeners().get(web + "-out"), "localhost")) {
            java.security.MessageDigest sent = java.security.MessageDigest.getInstance("SHA-256");
            java.security.MessageDigest got = java.security.MessageDigest.getInstance("SHA-256");
            java.util.concurrent.CompletableFuture<Void> writer = java.util.concurrent.CompletableFuture.runAsync(() -> {
                try {
                    java.util.SplittableRandom r = new java.util.SplittableRandom(17);
                    byte[] data = new byte[200_000];
                    r.nextBytes(data);
                    OutputStream o = s.getOutputStream();
                    for (long left = total; left > 0; ) {
                        int n = (int) Math.min(left, 1 + r.nextInt(data.length));
                        sent.update(data, 0, n);
                        o.write(data, 0, n);
                        left -= n;
                    }
                    o.flush();
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            InputStream i = s.getInputStream();
            byte[] buf = new byte[128 * 1024];
            long received = 0;
            while (received < total) {
                int n = i.read(buf, 0, (int) Math.min(buf.length, total - received));
                if (n < 0) break;
                got.update(buf, 0, n);
                received += n;
            }
            writer.get(1, java.util.concurrent.TimeUnit.MINUTES);
            assertThat(received).isEqualTo(total);
            assertThat(java.util.HexFormat.of().formatHex(got.digest())).isEqualTo(java.util.HexFormat.of().formatHex(sent.digest()));
            // the wire between the agents carried the tags: the modules saw plaintext on both TLS connections
            assertThat(out.registry().find("tag").orElseThrow().stats().bytesOut()[0]).isGreaterThan(total);
            assertThat(out.engine().connections().getFirst().tls()).contains("in: TLS", "; out: TLS");
            assertThat(out.engine().splicedConnections() + in.engine().splicedConnections()).as("no splice for TLS").isZero();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void aBadKeyOrPassphraseRefusesTheListenerNamingTheFileAndTheFix(String provider) throws Exception {
        TlsCerts.Issued locked = pki.encrypted("locked", "right horse battery", "localhost");
        TlsCerts.Issued other = pki.issue("other", "localhost");
        java.nio.file.Files.writeString(tmp.resolve("right.txt"), "right horse battery\n");
        java.nio.file.Files.writeString(tmp.resolve("wrong.txt"), "wrong horse\n");
        String[][] cases = {
                {"cert: %s, key: %s, key-password-file: %s".formatted(locked.certFile(), locked.keyFile(), tmp.resolve("wrong.txt")),
                        "cannot be decrypted with the passphrase in " + tmp.resolve("wrong.txt"), locked.keyFile().toString()},
                {"cert: %s, key: %s".formatted(locked.certFile(), locked.keyFile()), "is encrypted; set key-password-file", locked.keyFile().toString()},
                {"cert: %s, key: %s".formatted(server.certFile(), other.keyFile()), "does not belong to the certificate in " + server.certFile(),
                        other.keyFile().toString()},
                {"cert: %s, key: %s".formatted(server.certFile(), tmp.resolve("nowhere.key")), "does not exist", tmp.resolve("nowhere.key").toString()},
        };
        for (String[] c : cases) {
            Path dir = tmp.resolve("bad-" + NAMES.incrementAndGet());
            java.nio.file.Files.createDirectories(dir);
            Path yaml = dir.resolve("agent.yaml");
            java.nio.file.Files.writeString(yaml, agent("{provider: %s, %s}".formatted(provider, c[0]), new InetSocketAddress("127.0.0.1", 9)));
            java.io.StringWriter out = new java.io.StringWriter();
            java.io.StringWriter err = new java.io.StringWriter();
            int code = dev.interlayer.cli.Main.execute(new java.io.PrintWriter(out, true), new java.io.PrintWriter(err, true),
                    "run", "--config", yaml.toString(), "--check");
            assertThat(code).as(err.toString()).isNotZero();
            assertThat(err.toString()).contains(yaml + ":9: listeners[0].tls", c[1], c[2]);
            assertThatThrownBy(() -> Agents.start(dir, java.nio.file.Files.readString(yaml))).hasMessageContaining(c[1]).hasMessageContaining(c[2]);
        }
        String good = "{provider: %s, cert: %s, key: %s, key-password-file: %s}".formatted(provider, locked.certFile(), locked.keyFile(),
                tmp.resolve("right.txt"));
        try (TestServer echo = TestServer.echo(); Agent agent = Agents.start(tmp.resolve("good"), agent(good, echo.address()));
             SSLSocket s = connect(client(null), agent.listeners().get(web), "localhost")) {
            roundTrip(s, "the right passphrase");
            assertThat(((X509Certificate) s.getSession().getPeerCertificates()[0]).getSubjectX500Principal().getName()).isEqualTo("CN=locked");
        }
    }

    // ---- peers ----------------------------------------------------------------------------------------

    /** A client context of the JDK's that trusts the test CA and shows {@code cert} (null: none). */
    private SSLContext client(TlsCerts.Issued cert) throws Exception {
        SslContextBuilder b = SslContextBuilder.forClient().sslProvider(SslProvider.JDK).trustManager(pki.ca().certFile().toFile());
        if (cert != null) b.keyManager(cert.certFile().toFile(), cert.keyFile().toFile());
        return ((JdkSslContext) b.build()).context();
    }

    static SSLSocket connect(SSLContext ctx, InetSocketAddress at, String sni, String... alpn) throws IOException {
        SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(at.getAddress(), at.getPort());
        s.setSoTimeout(10_000);
        SSLParameters p = s.getSSLParameters();
        p.setServerNames(List.of(new SNIHostName(sni)));
        if (alpn.length > 0) p.setApplicationProtocols(alpn);
        s.setSSLParameters(p);
        s.startHandshake();
        return s;
    }

    /** Writes {@code text} and reads the same bytes back (the upstream echoes). */
    static void roundTrip(Socket s, String text) throws IOException {
        byte[] out = text.getBytes(StandardCharsets.UTF_8);
        s.getOutputStream().write(out);
        s.getOutputStream().flush();
        byte[] in = s.getInputStream().readNBytes(out.length);
        assertThat(new String(in, StandardCharsets.UTF_8)).isEqualTo(text);
    }

    /** Reads until the peer closes (end of stream or a reset); true if it did. */
    static boolean readToEnd(Socket s) {
        try {
            InputStream in = s.getInputStream();
            byte[] buf = new byte[4096];
            while (in.read(buf) >= 0) {
                // what comes before the close does not matter
            }
            return true;
        } catch (java.net.SocketTimeoutException e) {
            return false;
        } catch (IOException e) {
            return true; // reset
        }
    }

    /** A TLS echo server of the JDK's with {@code cert}. */
    static final class TlsEcho implements AutoCloseable {
        private final SSLServerSocket server;
        private final java.util.concurrent.atomic.AtomicInteger served = new java.util.concurrent.atomic.AtomicInteger();

        TlsEcho(TlsCerts.Issued cert) throws Exception {
            SSLContext ctx = ((JdkSslContext) SslContextBuilder.forServer(cert.certFile().toFile(), cert.keyFile().toFile())
                    .sslProvider(SslProvider.JDK).build()).context();
            server = (SSLServerSocket) ctx.getServerSocketFactory().createServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress());
            Thread.ofVirtual().start(() -> {
                while (!server.isClosed()) {
                    try {
                        Socket s = server.accept();
                        Thread.ofVirtual().start(() -> echo(s));
                    } catch (IOException e) {
                        return;
                    }
                }
            });
        }

        private void echo(Socket s) {
            try (s) {
                InputStream in = s.getInputStream();
                OutputStream out = s.getOutputStream();
                byte[] buf = new byte[64 * 1024];
                int n;
                boolean counted = false;
                while ((n = in.read(buf)) > 0) {
                    if (!counted) {
                        served.incrementAndGet();
                        counted = true;
                    }
                    out.write(buf, 0, n);
                    out.flush();
                }
            } catch (IOException e) {
                // a refused handshake: the agent's side gave up
            }
        }

        int port() {
            return server.getLocalPort();
        }

        int served() {
            return served.get();
        }

        @Override
        public void close() throws IOException {
            server.close();
        }
    }
}
