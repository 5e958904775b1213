package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.agent.Agent;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.runtime.RegistryListener;
import dev.interlayer.runtime.testing.TestJars;
import io.netty.handler.ssl.JdkSslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.MessageDigest;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Stream modules on a listener that terminates TLS: they attach once the client's handshake has completed, see what it
 * negotiated ({@code connection().tls(side)}), and are chosen by selectors over it ({@code tls-sni}, {@code tls-subject});
 * a handshake that fails attaches nothing and opens no upstream connection. Real agents, module jars, certificates made
 * here, JDK and {@code openssl s_client} clients; with each provider where the handshake is the agent's.
 */
class TlsModulesTest {

    @TempDir
    Path tmp;

    private TlsCerts pki;
    private TlsCerts.Issued a;
    private TlsCerts.Issued b;
    private TlsCerts.Issued c;
    private Path modules;

    /** A listener name of its own per test: log lines are rate-limited per listener. */
    private static final AtomicInteger NAMES = new AtomicInteger();
    private final String web = "tlsweb" + NAMES.incrementAndGet();

    @BeforeEach
    void setUp() throws Exception {
        pki = TlsCerts.newCa(tmp.resolve("pki"), "test-ca");
        a = pki.issue("a", "a.test");
        b = pki.issue("b", "b.test");
        c = pki.issue("c", "c.test", "localhost");
        modules = Files.createDirectories(tmp.resolve("agent/modules"));
        for (Path jar : RECORDERS) {
            TestJars.deploy(jar, modules.resolve(jar.getFileName()));
        }
    }

    /** The recorders' jars, compiled once for every test (each agent loads its own copy of the classes). */
    private static List<Path> RECORDERS;

    @BeforeAll
    static void compileRecorders(@TempDir Path build) {
        // three recording modules: one for every connection, one for a.test only, one for clients of O=Example only
        RECORDERS = List.of(recorder(build, "rec.Any", "seen-any"), recorder(build, "rec.OnlyA", "seen-a"),
                recorder(build, "rec.OnlyExample", "seen-example"));
    }

    /**
     * A stream module {@code name} that records, in its public static {@code SEEN}, what each attach saw of the client's TLS
     * ({@code sni|peer subject|protocol}, or {@code plain}), and counts in {@code BYTES} every byte its data hooks see.
     */
    private static Path recorder(Path build, String cls, String name) {
        String body = """
                    public static final java.util.List<String> SEEN = new java.util.concurrent.CopyOnWriteArrayList<>();
                    public static final java.util.concurrent.atomic.AtomicLong BYTES = new java.util.concurrent.atomic.AtomicLong();
                    public Attach<Object> attach(Attachment a) {
                        ConnectionInfo c = a.connection();
                        TlsInfo t = c.tls(c.role() == Role.SERVER ? Side.REMOTE : Side.LOCAL);
                        SEEN.add(t == null ? "plain" : t.serverName() + "|" + t.peerSubject() + "|" + t.protocol());
                        return Attach.stateless();
                    }
                    public Verdict onSend(Object s, StreamContext ctx, ByteView v) { BYTES.addAndGet(v.length()); return Verdict.PASS; }
                    public Verdict onRecv(Object s, StreamContext ctx, ByteView v) { BYTES.addAndGet(v.length()); return Verdict.PASS; }
                """;
        return TestJars.jar().source(cls, TestJars.streamModule(cls, name, "1.0.0", body)).service(cls).write(build.resolve(name + ".jar"));
    }

    @SuppressWarnings("unchecked")
    private static List<String> seen(Agent agent, String module) throws Exception {
        Object m = agent.registry().find(module).orElseThrow().module();
        return (List<String>) m.getClass().getField("SEEN").get(null);
    }

    private static long bytes(Agent agent, String module) throws Exception {
        Object m = agent.registry().find(module).orElseThrow().module();
        return ((AtomicLong) m.getClass().getField("BYTES").get(null)).get();
    }

    /** An agent with the listener {@code web} (server role) terminating {@code tls} to {@code upstream}, and the recorders' selectors. */
    private Agent agent(String tls, InetSocketAddress upstream) throws Exception {
        return agent(tls, upstream, "200ms");
    }

    /** {@link #agent(String, InetSocketAddress)} with the hook budget {@code hookBudget}. */
    private Agent agent(String tls, InetSocketAddress upstream, String hookBudget) throws Exception {
        return Agents.start(tmp.resolve("agent"), """
                agent:
                  modules-dir: modules
                  control: {enabled: false}
                  io-threads: 2
                  hook-budget: %s
                listeners:
                  - name: %s
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:%d
                    role: server
                    tls: %s
                modules:
                  - name: seen-a
                    selector: {tls-sni: [A.test]}
                  - name: seen-example
                    selector: {tls-subject: ['O=Example']}
                """.formatted(hookBudget, web, upstream.getPort(), tls));
    }

    /** The listener's TLS: a.test, b.test and c.test each with its certificate, client certificates optional ({@code auth}). */
    private String tls(String provider, String auth) {
        return ("{provider: %s, cert: %s, key: %s, ca: %s, client-auth: %s, sni: [{names: [a.test], cert: %s, key: %s},"
                + " {names: [b.test], cert: %s, key: %s}]}").formatted(provider, c.certFile(), c.keyFile(), pki.ca().certFile(), auth,
                a.certFile(), a.keyFile(), b.certFile(), b.keyFile());
    }

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void attachSeesTheSniAndClientCertificateAndSelectorsChooseBySniAndSubject(String provider) throws Exception {
        TlsCerts.Issued alice = clientCert("alice", "CN=alice,OU=Eng,O=Example");
        TlsCerts.Issued bob = clientCert("bob", "CN=bob,O=Other");
        try (TestServer echo = TestServer.echo(); Agent agent = agent(tls(provider, "optional"), echo.address())) {
            InetSocketAddress at = agent.listeners().get(web);
            try (SSLSocket s = TlsTest.connect(client(alice), at, "a.test")) {
                TlsTest.roundTrip(s, "alice to a");
                String proto = s.getSession().getProtocol();
                assertThat(seen(agent, "seen-any")).containsExactly("a.test|CN=alice,OU=Eng,O=Example|" + proto);
                assertThat(seen(agent, "seen-a")).containsExactly("a.test|CN=alice,OU=Eng,O=Example|" + proto);
                assertThat(seen(agent, "seen-example")).containsExactly("a.test|CN=alice,OU=Eng,O=Example|" + proto);
                assertThat(agent.engine().connections().getFirst().modules()).containsExactlyInAnyOrder("seen-any@1.0.0", "seen-a@1.0.0",
                        "seen-example@1.0.0");
            }
            try (SSLSocket s = TlsTest.connect(client(bob), at, "b.test")) {
                TlsTest.roundTrip(s, "bob to b");
            }
            try (SSLSocket s = TlsTest.connect(client(null), at, "c.test")) {
                TlsTest.roundTrip(s, "nobody to c");
            }
            try (SSLSocket s = TlsTest.connect(client(alice), at, "b.test")) {
                TlsTest.roundTrip(s, "alice to b");
            }
            // openssl's client, no certificate, asks for A.TEST: the name is matched without regard to case
            String out = sClient(at, "A.TEST", "ping from openssl\n");
            assertThat(out).contains("ping from openssl");
            Agents.waitFor("five connections seen", () -> seenUnchecked(agent, "seen-any").size() == 5);
            assertThat(seen(agent, "seen-any")).extracting(l -> l.substring(0, l.lastIndexOf('|'))).containsExactly(
                    "a.test|CN=alice,OU=Eng,O=Example", "b.test|CN=bob,O=Other", "c.test|null", "b.test|CN=alice,OU=Eng,O=Example",
                    "a.test|null");
            assertThat(seen(agent, "seen-a")).extracting(l -> l.substring(0, l.lastIndexOf('|')))
                    .containsExactly("a.test|CN=alice,OU=Eng,O=Example", "a.test|null");
            assertThat(seen(agent, "seen-example")).extracting(l -> l.substring(0, l.lastIndexOf('|')))
                    .containsExactly("a.test|CN=alice,OU=Eng,O=Example", "b.test|CN=alice,OU=Eng,O=Example");
        }
    }

    private static List<String> seenUnchecked(Agent agent, String module) {
        try {
            return seen(agent, module);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void aFailedHandshakeAttachesNothingAndOpensNoUpstreamConnection(String provider) throws Exception {
        AtomicInteger upstreamAccepted = new AtomicInteger();
        TlsCerts.Issued stranger = TlsCerts.newCa(tmp.resolve("other"), "other-ca").issue("stranger", "client.test");
        try (TestServer upstream = new TestServer(s -> {
                upstreamAccepted.incrementAndGet();
                s.getInputStream().transferTo(s.getOutputStream());
            });
             Agent agent = agent(tls(provider, "required"), upstream.address())) {
            InetSocketAddress at = agent.listeners().get(web);
            // no client certificate, an untrusted one, not TLS at all, and a client that stops halfway
            for (TlsCerts.Issued refused : new TlsCerts.Issued[] {null, stranger}) {
                assertThatThrownBy(() -> {
                    try (SSLSocket s = TlsTest.connect(client(refused), at, "a.test")) {
                        TlsTest.roundTrip(s, "let me in");
                    }
                }).isInstanceOf(IOException.class);
            }
            try (Socket s = new Socket(at.getAddress(), at.getPort())) {
                s.setSoTimeout(10_000);
                s.getOutputStream().write("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
                assertThat(TlsTest.readToEnd(s)).isTrue();
            }
            Agents.waitFor("every failed connection gone", () -> agent.engine().connectionCount() == 0);
            assertThat(seen(agent, "seen-any")).as("modules attached to failed handshakes").isEmpty();
            assertThat(upstreamAccepted.get()).as("upstream connections opened for failed handshakes").isZero();

            TlsCerts.Issued alice = clientCert("alice", "CN=alice,O=Example");
            try (SSLSocket s = TlsTest.connect(client(alice), at, "a.test")) {
                TlsTest.roundTrip(s, "a good one");
            }
            assertThat(seen(agent, "seen-any")).hasSize(1);
            assertThat(upstreamAccepted.get()).isEqualTo(1);
        }
    }

    @Test
    void nothingAttachesWhileTheHandshakeRunsAndTheModulesAreChosenWhenItCompletes() throws Exception {
        try (TestServer echo = TestServer.echo(); Agent agent = agent(tls("jdk", "optional"), echo.address())) {
            InetSocketAddress at = agent.listeners().get(web);
            // connected, but the client has not sent its hello yet: the connection is open and handshaking
            try (SSLSocket s = (SSLSocket) client(null).getSocketFactory().createSocket(at.getAddress(), at.getPort())) {
                s.setSoTimeout(10_000);
                Agents.waitFor("the connection accepted", () -> agent.engine().connectionCount() == 1);
                var snap = agent.engine().connections().getFirst();
                assertThat(snap.tls()).isEqualTo("in: handshaking");
                assertThat(snap.modules()).isEmpty();
                assertThat(agent.engine().attach(snap.id(), "seen-example")).as("a programmatic attach while handshaking").isFalse();
                assertThat(seen(agent, "seen-example")).isEmpty();
                javax.net.ssl.SSLParameters p = s.getSSLParameters();
                p.setServerNames(List.of(new javax.net.ssl.SNIHostName("a.test")));
                s.setSSLParameters(p);
                s.startHandshake();
                TlsTest.roundTrip(s, "now");
                assertThat(seen(agent, "seen-any")).hasSize(1);
                assertThat(agent.engine().connections().getFirst().modules()).containsExactlyInAnyOrder("seen-any@1.0.0", "seen-a@1.0.0");
                assertThat(agent.engine().attach(snap.id(), "seen-example")).as("once the handshake completed").isTrue();
                assertThat(seen(agent, "seen-example")).containsExactly("a.test|null|" + s.getSession().getProtocol());
                TlsTest.roundTrip(s, "still byte-exact");
            }
        }
    }

    @Test
    void onAPlainListenerModulesStillAttachAtAcceptAndTheUpstreamConnectsBeforeAByteArrives() throws Exception {
        AtomicInteger upstreamAccepted = new AtomicInteger();
        try (TestServer upstream = new TestServer(s -> {
                upstreamAccepted.incrementAndGet();
                s.getInputStream().transferTo(s.getOutputStream());
            });
             Agent agent = Agents.start(tmp.resolve("agent"), """
                     agent:
                       modules-dir: modules
                       control: {enabled: false}
                     listeners:
                       - name: %s
                         listen: 127.0.0.1:0
                         upstream: 127.0.0.1:%d
                         role: server
                     """.formatted(web, upstream.address().getPort()));
             Socket s = new Socket(agent.listeners().get(web).getAddress(), agent.listeners().get(web).getPort())) {
            s.setSoTimeout(10_000);
            Agents.waitFor("attached and connected with no byte sent", () -> seenUnchecked(agent, "seen-any").size() == 1
                    && upstreamAccepted.get() == 1);
            assertThat(seen(agent, "seen-any")).containsExactly("plain");
            TlsTest.roundTrip(s, "plain as before");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void fourMibEchoByteExactThroughAModuleWithTheClientSendingRightAfterTheHandshake(String provider) throws Exception {
        int size = 4 << 20;
        byte[] data = new byte[size];
        new java.util.Random(17).nextBytes(data);
        ByteArrayOutputStream atUpstream = new ByteArrayOutputStream();
        try (TestServer echo = TestServer.echo(atUpstream); Agent agent = agent(tls(provider, "optional"), echo.address());
             SSLSocket s = TlsTest.connect(client(null), agent.listeners().get(web), "a.test")) {
            s.setSoTimeout(30_000);
            Thread writer = Thread.ofVirtual().start(() -> {
                try {
                    OutputStream out = s.getOutputStream();
                    for (int off = 0; off < size; off += 100_000) {
                        out.write(data, off, Math.min(100_000, size - off));
                    }
                    out.flush();
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            byte[] back = s.getInputStream().readNBytes(size);
            writer.join(TimeUnit.SECONDS.toMillis(30));
            assertThat(back.length).isEqualTo(size);
            assertThat(sha256(back)).as("the echo, byte for byte").isEqualTo(sha256(data));
            synchronized (atUpstream) {
                assertThat(sha256(atUpstream.toByteArray())).as("what the upstream received").isEqualTo(sha256(data));
            }
            assertThat(bytes(agent, "seen-any")).as("every byte went through the module, both ways").isEqualTo(2L * size);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void tcplogRecordsWhatTheHandshakeNegotiated(String provider) throws Exception {
        Agents.deploySample("tcplog", modules);
        List<String> records = new CopyOnWriteArrayList<>();
        TlsCerts.Issued alice = clientCert("alice", "CN=alice,O=Example");
        // tcplog's detach asks for the local application (connection().app()), which in the server role scans /proc for
        // the upstream socket's owner: on a machine busy with many processes that takes longer than the default budget
        try (TestServer echo = TestServer.echo(); Agent agent = agent(tls(provider, "optional"), echo.address(), "5s")) {
            agent.registry().addListener(new RegistryListener() {
                @Override
                public void moduleEvent(String module, String version, String kind, String text) {
                    if (module.equals("tcplog") && kind.equals("record")) records.add(text);
                }
            });
            String protocol;
            String cipher;
            try (SSLSocket s = TlsTest.connect(client(alice), agent.listeners().get(web), "a.test", "h2")) {
                TlsTest.roundTrip(s, "log me");
                protocol = s.getSession().getProtocol();
                cipher = s.getSession().getCipherSuite();
            }
            Agents.waitFor("tcplog's record", () -> !records.isEmpty());
            assertThat(records.getFirst()).contains(",\"bytesSent\":6,\"bytesReceived\":6,", ",\"tls\":{\"remote\":{\"protocol\":\"" + protocol
                    + "\",\"cipher\":\"" + cipher + "\",\"sni\":\"a.test\",\"alpn\":null,\"resumed\":false,\"peer\":\"CN=alice,O=Example\","
                    + "\"identity\":null}}}");
        }
    }

    // ---- peers and certificates -------------------------------------------------------------------

    /** A client context of the JDK's that trusts the test CA and shows {@code cert} (null: none). */
    private SSLContext client(TlsCerts.Issued cert) throws Exception {
        SslContextBuilder sb = SslContextBuilder.forClient().sslProvider(SslProvider.JDK).trustManager(pki.ca().certFile().toFile());
        if (cert != null) sb.keyManager(cert.certFile().toFile(), cert.keyFile().toFile());
        return ((JdkSslContext) sb.build()).context();
    }

    /** Runs {@code openssl s_client} asking for {@code sni}, sends {@code text} right after the handshake; its output. */
    private String sClient(InetSocketAddress at, String sni, String text) throws Exception {
        Process p = new ProcessBuilder("openssl", "s_client", "-connect", "127.0.0.1:" + at.getPort(), "-servername", sni, "-CAfile",
                pki.ca().certFile().toString(), "-verify_return_error", "-quiet").redirectErrorStream(true).start();
        try (OutputStream in = p.getOutputStream(); InputStream out = p.getInputStream()) {
            in.write(text.getBytes(StandardCharsets.US_ASCII));
            in.flush();
            // the echo of text proves the handshake, the attach and the chain; then the client is stopped (-quiet ignores the end of stdin)
            byte[] buf = new byte[8192];
            StringBuilder seen = new StringBuilder();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (!seen.toString().contains(text.strip()) && System.nanoTime() < deadline) {
                int n = out.read(buf);
                if (n < 0) break;
                seen.append(new String(buf, 0, n, StandardCharsets.US_ASCII));
            }
            return seen.toString();
        } finally {
            p.destroy();
            if (!p.waitFor(5, TimeUnit.SECONDS)) p.destroyForcibly();
        }
    }

    /** A client certificate with the subject {@code subject}, signed by the test CA, written as {@code name}.crt and .key. */
    private TlsCerts.Issued clientCert(String name, String subject) throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(256);
        KeyPair kp = g.generateKeyPair();
        Instant now = Instant.now();
        var builder = new JcaX509v3CertificateBuilder(new X500Name(pki.ca().cert().getSubjectX500Principal().getName()),
                java.math.BigInteger.valueOf(System.nanoTime()), Date.from(now.minus(Duration.ofHours(1))), Date.from(now.plus(Duration.ofDays(1))),
                // through the JDK's principal: its encoding keeps the RFC 2253 order (BouncyCastle's string parser would reverse it)
                X500Name.getInstance(new javax.security.auth.x500.X500Principal(subject).getEncoded()), kp.getPublic());
        builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
        X509Certificate cert = new JcaX509CertificateConverter().getCertificate(
                builder.build(new JcaContentSignerBuilder("SHA256withECDSA").build(pki.ca().key())));
        Path dir = Files.createDirectories(tmp.resolve("clients"));
        Path certFile = dir.resolve(name + ".crt");
        Path keyFile = dir.resolve(name + ".key");
        Files.writeString(certFile, pem(cert));
        Files.writeString(keyFile, pem(new JcaPKCS8Generator(kp.getPrivate(), null).generate()));
        return new TlsCerts.Issued(cert, kp.getPrivate(), certFile, keyFile);
    }

    private static String pem(Object o) throws IOException {
        java.io.StringWriter w = new java.io.StringWriter();
        try (JcaPEMWriter pw = new JcaPEMWriter(w)) {
            pw.writeObject(o);
        }
        return w.toString();
    }

    private static String sha256(byte[] b) throws Exception {
        return java.util.HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }
}
