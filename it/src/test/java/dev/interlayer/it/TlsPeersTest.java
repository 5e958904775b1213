package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.sun.net.httpserver.HttpServer;
import dev.interlayer.agent.Agent;
import dev.interlayer.engine.testing.TestServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * An agent terminating and originating TLS with real TLS programs as its peers: {@code openssl s_client} and
 * {@code curl} in front of it, {@code openssl s_server} behind it, with certificates made here. Every case runs once
 * with each provider: the results must be the same. openssl and curl are installed with apt-get when missing (tests
 * run as root in CI).
 */
class TlsPeersTest {

    private static final String OPENSSL = "/usr/bin/openssl";
    private static final String CURL = "/usr/bin/curl";

    @TempDir
    Path tmp;

    private TlsCerts pki;
    private TlsCerts.Issued server;
    private final List<Process> started = new ArrayList<>();
    private final LogCapture capture = new LogCapture();
    private final List<String> log = capture.lines();

    /** A listener name of its own per test: log lines are rate-limited per listener, and these tests look for them. */
    private static final AtomicInteger NAMES = new AtomicInteger();
    private final String web = "peers" + NAMES.incrementAndGet();

    @BeforeEach
    void setUp() throws Exception {
        ensureInstalled();
        pki = TlsCerts.newCa(tmp.resolve("pki"), "test-ca");
        server = pki.issue("default", "localhost", "default.test");
        capture.start("interlayer.engine");
    }

    @AfterEach
    void tearDown() {
        capture.stop();
        for (Process p : started) {
            p.destroyForcibly();
        }
    }

    private String terminating(String tls, int upstreamPort) {
        return Agents.terminating(web, upstreamPort, tls);
    }

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void opensslSClientSeesTheCertificateSniChoosesAndTheDefaultForAnUnknownName(String provider) throws Exception {
        TlsCerts.Issued a = pki.issue("a", "a.test");
        TlsCerts.Issued b = pki.issue("b", "b.test", "*.b.test");
        String tls = "{provider: %s, cert: %s, key: %s, sni: [{names: [a.test], cert: %s, key: %s}, {names: [b.test, '*.b.test'], cert: %s, key: %s}]}"
                .formatted(provider, server.certFile(), server.keyFile(), a.certFile(), a.keyFile(), b.certFile(), b.keyFile());
        try (TestServer echo = TestServer.echo(); Agent agent = Agents.start(tmp.resolve("agent"), terminating(tls, echo.address().getPort()))) {
            int port = agent.listeners().get(web).getPort();
            for (String[] c : new String[][] {{"a.test", "a"}, {"b.test", "b"}, {"x.b.test", "b"}, {"unknown.test", "default"}}) {
                String out = sClient(List.of("-connect", "127.0.0.1:" + port, "-servername", c[0], "-CAfile", pki.ca().certFile().toString()),
                        "hello " + c[0] + "\n", true);
                assertThat(out).as("s_client -servername %s", c[0]).containsPattern("subject=\\s*CN\\s*=\\s*" + c[1] + "\\s*\n")
                        .contains("Verify return code: 0 (ok)").contains("TLSv1.3").contains("hello " + c[0]);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void mutualTlsAcceptsASignedClientCertificateAndRefusesNoneAndAnUntrustedOneSayingWhy(String provider) throws Exception {
        TlsCerts.Issued good = pki.issue("client-good", "client.test");
        TlsCerts.Issued stranger = TlsCerts.newCa(tmp.resolve("other"), "other-ca").issue("client-stranger", "client.test");
        String tls = "{provider: %s, cert: %s, key: %s, ca: %s, client-auth: required}"
                .formatted(provider, server.certFile(), server.keyFile(), pki.ca().certFile());
        try (TestServer echo = TestServer.echo(); Agent agent = Agents.start(tmp.resolve("agent"), terminating(tls, echo.address().getPort()))) {
            List<String> base = List.of("-connect", "127.0.0.1:" + agent.listeners().get(web).getPort(), "-servername", "localhost",
                    "-CAfile", pki.ca().certFile().toString());
            List<String> withGood = new ArrayList<>(base);
            withGood.addAll(List.of("-cert", good.certFile().toString(), "-key", good.keyFile().toString()));
            assertThat(sClient(withGood, "signed by the ca\n", true)).contains("Verify return code: 0 (ok)").contains("signed by the ca");

            String none = sClient(base, "no certificate\n", false);
            assertThat(none).as("no client certificate").doesNotContain("no certificate\n").containsIgnoringCase("alert");
            Agents.waitFor("the refusal is logged", () -> log.stream().anyMatch(l -> l.contains("sent no client certificate")));

            List<String> withStranger = new ArrayList<>(base);
            withStranger.addAll(List.of("-cert", stranger.certFile().toString(), "-key", stranger.keyFile().toString()));
            String untrusted = sClient(withStranger, "a stranger\n", false);
            assertThat(untrusted).as("an untrusted client certificate").doesNotContain("a stranger\n").containsIgnoringCase("alert");
            Agents.waitFor("the refusal is logged", () -> log.stream().anyMatch(l -> l.contains("certificate is not trusted")
                    && l.contains("the listener's ca")));
            assertThat(log).anyMatch(l -> l.contains("give the client a certificate signed by the listener's ca"));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void alpnH2WithSClientAndHttp11WithCurlThroughToAPlainHttpUpstream(String provider) throws Exception {
        String tls = "{provider: %s, cert: %s, key: %s, alpn: [h2, http/1.1]}".formatted(provider, server.certFile(), server.keyFile());
        try (Http upstream = new Http("hello from the plain upstream");
             Agent agent = Agents.start(tmp.resolve("agent"), terminating(tls, upstream.port()))) {
            int port = agent.listeners().get(web).getPort();
            for (String alpn : List.of("h2", "http/1.1")) {
                String out = sClient(List.of("-connect", "127.0.0.1:" + port, "-servername", "localhost", "-CAfile",
                        pki.ca().certFile().toString(), "-alpn", alpn), "", false);
                assertThat(out).as("s_client -alpn %s", alpn).contains("ALPN protocol: " + alpn + "\n");
            }
            Ran curl = run(List.of(CURL, "-sS", "-v", "--http1.1", "--max-time", "10", "--cacert", pki.ca().certFile().toString(),
                    "https://127.0.0.1:" + port + "/hello"));
            assertThat(curl.status()).as(curl.err()).isZero();
            assertThat(curl.out()).isEqualTo("hello from the plain upstream");
            assertThat(curl.err()).contains("ALPN: server accepted http/1.1").contains("TLSv1.3");
            assertThat(upstream.served()).isEqualTo(1);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void originatesToOpensslSServerVerifyingItAndRefusesAnExpiredAndAnUntrustedCertificate(String provider) throws Exception {
        TlsCerts.Issued up = pki.issue("upstream", "upstream.test");
        TlsCerts.Issued old = pki.expired("upstream-old", "upstream.test");
        TlsCerts.Issued stranger = TlsCerts.newCa(tmp.resolve("other"), "other-ca").issue("upstream-stranger", "upstream.test");
        String[][] cases = {{"ok", up.certFile() + " " + up.keyFile()}, {"its certificate has expired", old.certFile() + " " + old.keyFile()},
                {"its certificate is not trusted", stranger.certFile() + " " + stranger.keyFile()}};
        for (String[] c : cases) {
            String[] files = c[1].split(" ");
            int sPort = sServer(List.of("-cert", files[0], "-key", files[1], "-rev"), tmp.resolve("s_server-" + NAMES.incrementAndGet()));
            String yaml = """
                    agent:
                      control: {enabled: false}
                      io-threads: 2
                    listeners:
                      - name: %s
                        listen: 127.0.0.1:0
                        upstream: {address: 127.0.0.1:%d, tls: {provider: %s, ca: %s, server-name: upstream.test}}
                        role: client
                    """.formatted(web, sPort, provider, pki.ca().certFile());
            try (Agent agent = Agents.start(tmp.resolve("agent-" + NAMES.incrementAndGet()), yaml);
                 Socket s = new Socket("127.0.0.1", agent.listeners().get(web).getPort())) {
                s.setSoTimeout(10_000);
                s.getOutputStream().write("plain in, TLS out\n".getBytes(StandardCharsets.US_ASCII));
                if (c[0].equals("ok")) {
                    // s_server -rev sends every line back reversed
                    assertThat(new String(s.getInputStream().readNBytes(18), StandardCharsets.US_ASCII)).isEqualTo("tuo SLT ,ni nialp\n");
                    assertThat(agent.engine().connections().getFirst().tls()).startsWith("out: TLS").contains("TLSv1.3", "sni=upstream.test");
                } else {
                    assertThat(TlsTest.readToEnd(s)).as("refused: %s", c[0]).isTrue();
                    Agents.waitFor("the refusal is logged: " + c[0], () -> log.stream().anyMatch(l -> l.contains(c[0]) && l.contains("upstream")));
                }
            }
        }
    }

    @org.junit.jupiter.api.Test
    void keyLogOnTheUpstreamSideWritesTheSecretsOpensslSServerDerived() throws Exception {
        TlsCerts.Issued up = pki.issue("upstream", "upstream.test");
        Path dir = tmp.resolve("s_server-keys");
        Files.createDirectories(dir);
        Path serverKeys = dir.resolve("server-keys.log");
        Path agentKeys = tmp.resolve("agent-keys.log");
        int sPort = sServer(List.of("-cert", up.certFile().toString(), "-key", up.keyFile().toString(), "-rev", "-keylogfile",
                serverKeys.toString()), dir);
        String yaml = """
                agent:
                  control: {enabled: false}
                  io-threads: 2
                listeners:
                  - name: %s
                    listen: 127.0.0.1:0
                    upstream: {address: 127.0.0.1:%d, tls: {ca: %s, server-name: upstream.test, key-log: %s}}
                    role: client
                """.formatted(web, sPort, pki.ca().certFile(), agentKeys);
        try (Agent agent = Agents.start(tmp.resolve("agent"), yaml); Socket s = new Socket("127.0.0.1", agent.listeners().get(web).getPort())) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write("secrets\n".getBytes(StandardCharsets.US_ASCII));
            assertThat(new String(s.getInputStream().readNBytes(8), StandardCharsets.US_ASCII)).isEqualTo("sterces\n");
            List<String> server = Files.readAllLines(serverKeys).stream().filter(l -> !l.isBlank() && !l.startsWith("#")).toList();
            assertThat(server).as("s_server logged the handshake's secrets").isNotEmpty();
            assertThat(Files.readAllLines(agentKeys)).containsAll(server);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void reEncryptsCurlToOpensslSServerEndToEnd(String provider) throws Exception {
        TlsCerts.Issued up = pki.issue("upstream", "upstream.test");
        Path www = tmp.resolve("www");
        Files.createDirectories(www);
        String page = "served by openssl s_server over TLS, " + "x".repeat(20_000) + ", the end\n";
        Files.writeString(www.resolve("page.txt"), page);
        // -WWW serves files from its working directory
        int sPort = sServer(List.of("-cert", up.certFile().toString(), "-key", up.keyFile().toString(), "-WWW"), www);
        String yaml = """
                agent:
                  control: {enabled: false}
                  io-threads: 2
                listeners:
                  - name: %s
                    listen: 127.0.0.1:0
                    upstream: {address: 127.0.0.1:%d, tls: {provider: %s, ca: %s, server-name: upstream.test}}
                    role: server
                    tls: {provider: %s, cert: %s, key: %s}
                """.formatted(web, sPort, provider, pki.ca().certFile(), provider, server.certFile(), server.keyFile());
        try (Agent agent = Agents.start(tmp.resolve("agent"), yaml)) {
            Ran curl = run(List.of(CURL, "-sS", "-v", "--http1.1", "--max-time", "10", "--cacert", pki.ca().certFile().toString(),
                    "https://127.0.0.1:" + agent.listeners().get(web).getPort() + "/page.txt"));
            assertThat(curl.status()).as(curl.err()).isZero();
            assertThat(curl.out()).isEqualTo(page);
            assertThat(curl.err()).contains("subject: CN=default").contains("SSL certificate verify ok");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void tagPairAcrossATlsHopIsByteExactFor256MiBEachWay(String provider) throws Exception {
        long total = 256L << 20;
        try (TestServer echo = TestServer.echo();
             Agent in = Agents.start(tmp.resolve("b"), tagHopB(provider).formatted(echo.address().getPort()));
             Agent out = Agents.start(tmp.resolve("a"), tagHopA(provider).formatted(in.listeners().get(web + "-in").getPort()));
             Socket s = new Socket(InetAddress.getLoopbackAddress(), out.listeners().get(web + "-out").getPort())) {
            s.setSoTimeout(60_000);
            // the full echo is read before the socket closes: a half-close over TLS is checked on its own below
            exchange(s, total, 256, false);
            s.close();
            // the TLS hop between the agents carried the tags (32 bytes per 1000) both ways: each module saw plaintext
            Agents.waitFor("connections closed", () -> out.engine().connectionCount() == 0 && in.engine().connectionCount() == 0);
            long tagged = total + total / 1000 * 32;
            long[] aOut = out.registry().find("tag").orElseThrow().stats().bytesOut();
            long[] bOut = in.registry().find("tag").orElseThrow().stats().bytesOut();
            assertThat(aOut).as("A tags what it sends, strips the replies").containsExactly(tagged, total);
            assertThat(bOut).as("B strips what it receives, tags the replies").containsExactly(tagged, total);
            assertThat(out.engine().splicedConnections() + in.engine().splicedConnections()).as("no splice for TLS").isZero();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void aHalfCloseCrossesTheTlsHopAndTheRestOfTheEchoStillArrives(String provider) throws Exception {
        // the client sends 16 MiB and shuts its output at once: A ends its TLS stream to B (close_notify, FIN) while the
        // echo of most of the 16 MiB has still to come back from B over the same TLS connection
        // With provider openssl at B, Netty's BoringSSL engine closes its own output when A's close_notify arrives, so the
        // rest of the echo cannot be sent: the agent resets the connection (one line says so) rather than end it early
        // and cleanly. TlsHalfCloseTest checks each provider pair; here the JDK's TLS carries the whole echo.
        org.junit.jupiter.api.Assumptions.assumeFalse(provider.equals("openssl"),
                "provider openssl cannot send after it receives close_notify: that case resets (see TlsHalfCloseTest)");
        long total = 16L << 20;
        try (TestServer echo = TestServer.echo();
             Agent in = Agents.start(tmp.resolve("b"), tagHopB(provider).formatted(echo.address().getPort()));
             Agent out = Agents.start(tmp.resolve("a"), tagHopA(provider).formatted(in.listeners().get(web + "-in").getPort()));
             Socket s = new Socket(InetAddress.getLoopbackAddress(), out.listeners().get(web + "-out").getPort())) {
            s.setSoTimeout(60_000);
            exchange(s, total, 16, true);
        }
    }

    /** Agent B of the tag pair: a server-role listener terminating TLS, tag, upstream {@code %d}. */
    private String tagHopB(String provider) {
        Agents.deploySample("tag", tmp.resolve("b/modules"));
        return """
                agent:
                  control: {enabled: false}
                  io-threads: 2
                listeners:
                  - name: %s-in
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:%%d
                    role: server
                    tls: {provider: %s, cert: %s, key: %s}
                modules:
                  - name: tag
                    params: {every: 1000}
                """.formatted(web, provider, server.certFile(), server.keyFile());
    }

    /** Agent A of the tag pair: app -> A (client role, tag, originates TLS) ==TLS==> B, whose port is {@code %d}. */
    private String tagHopA(String provider) {
        Agents.deploySample("tag", tmp.resolve("a/modules"));
        return """
                agent:
                  control: {enabled: false}
                  io-threads: 2
                listeners:
                  - name: %s-out
                    listen: 127.0.0.1:0
                    upstream: {address: 127.0.0.1:%%d, tls: {provider: %s, ca: %s, server-name: localhost}}
                    role: client
                modules:
                  - name: tag
                    params: {every: 1000}
                """.formatted(web, provider, pki.ca().certFile());
    }

    /**
     * Writes {@code total} random bytes to {@code s} in random sizes while reading the echo, and checks the echo's
     * length and SHA-256. With {@code halfClose}, the output is shut right after the last byte and the echo is read
     * to its end (the rest of it crosses the agents after the FIN); otherwise exactly {@code total} bytes are read.
     */
    private static void exchange(Socket s, long total, int seed, boolean halfClose) throws Exception {
        MessageDigest sent = MessageDigest.getInstance("SHA-256");
        MessageDigest got = MessageDigest.getInstance("SHA-256");
        long[] received = new long[1];
        IOException[] failed = new IOException[1];
        Thread reader = Thread.ofVirtual().start(() -> {
            try {
                InputStream i = s.getInputStream();
                byte[] buf = new byte[256 * 1024];
                while (halfClose || received[0] < total) {
                    int n = i.read(buf, 0, halfClose ? buf.length : (int) Math.min(buf.length, total - received[0]));
                    if (n < 0) break;
                    got.update(buf, 0, n);
                    received[0] += n;
                }
            } catch (IOException e) {
                failed[0] = e;
            }
        });
        SplittableRandom r = new SplittableRandom(seed);
        byte[] data = new byte[1 << 20];
        r.nextBytes(data);
        OutputStream o = s.getOutputStream();
        for (long left = total; left > 0; ) {
            int n = (int) Math.min(left, 1 + r.nextInt(r.nextBoolean() ? 1500 : 300_000));
            int off = r.nextInt(data.length - n + 1);
            sent.update(data, off, n);
            o.write(data, off, n);
            left -= n;
        }
        if (halfClose) s.shutdownOutput();
        assertThat(reader.join(Duration.ofMinutes(2))).as("the echo ended").isTrue();
        assertThat(received[0]).as("bytes echoed back (the read ended by %s)", failed[0] == null ? "end of stream" : failed[0].toString())
                .isEqualTo(total);
        assertThat(HexFormat.of().formatHex(got.digest())).isEqualTo(HexFormat.of().formatHex(sent.digest()));
    }

    // ---- peers ----------------------------------------------------------------------------------------

    /** Installs openssl and curl if they are missing. */
    static synchronized void ensureInstalled() throws IOException, InterruptedException {
        if (Files.isExecutable(Path.of(OPENSSL)) && Files.isExecutable(Path.of(CURL))) {
            return;
        }
        for (List<String> cmd : List.of(List.of("apt-get", "update", "-qq"), List.of("apt-get", "install", "-y", "-qq", "openssl", "curl"))) {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            if (!p.waitFor(10, TimeUnit.MINUTES) || p.exitValue() != 0) {
                throw new IllegalStateException(String.join(" ", cmd) + " failed; install openssl and curl by hand (as root)");
            }
        }
    }

    /**
     * Runs {@code openssl s_client ARGS}, writes {@code send} to it and returns everything it printed: when
     * {@code echoed}, once the upstream's echo of {@code send} came back; otherwise once it ended by itself (a refused
     * handshake) or after 3 s (at once with nothing to send: its handshake report is all there is).
     */
    private static String sClient(List<String> args, String send, boolean echoed) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(OPENSSL, "s_client"));
        cmd.addAll(args);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        StringBuffer out = new StringBuffer();
        Thread reader = Thread.ofVirtual().start(() -> {
            try (InputStream in = p.getInputStream()) {
                byte[] buf = new byte[8192];
                for (int n; (n = in.read(buf)) > 0; ) {
                    out.append(new String(buf, 0, n, StandardCharsets.UTF_8));
                }
            } catch (IOException e) {
                // the process went away
            }
        });
        try {
            OutputStream stdin = p.getOutputStream();
            if (!send.isEmpty()) {
                stdin.write(send.getBytes(StandardCharsets.UTF_8));
                stdin.flush();
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(echoed ? 15 : send.isEmpty() ? 0 : 3);
            // s_client prints what it read after its handshake report ("---" lines); the echo comes after that
            while (p.isAlive() && System.nanoTime() < deadline && !(echoed && out.indexOf("---") >= 0
                    && out.lastIndexOf(send) > out.indexOf("Verify return code"))) {
                Thread.sleep(20);
            }
            stdin.close(); // end of input: s_client says goodbye and exits
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
            reader.join(Duration.ofSeconds(5));
            return out.toString();
        } finally {
            p.destroyForcibly();
        }
    }

    /** Starts {@code openssl s_server ARGS} in {@code dir} on a free port and returns the port once it accepts. */
    private int sServer(List<String> args, Path dir) throws Exception {
        Files.createDirectories(dir);
        int port;
        try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = probe.getLocalPort();
        }
        List<String> cmd = new ArrayList<>(List.of(OPENSSL, "s_server", "-accept", "127.0.0.1:" + port));
        cmd.addAll(args);
        Path logFile = dir.resolve("s_server.log");
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).redirectOutput(logFile.toFile()).start();
        started.add(p);
        Agents.waitFor("s_server accepts on " + port, () -> {
            try {
                return !p.isAlive() || Files.readString(logFile).contains("ACCEPT");
            } catch (IOException e) {
                return false;
            }
        });
        assertThat(p.isAlive()).as("s_server: %s", Files.readString(logFile)).isTrue();
        return port;
    }

    record Ran(int status, String out, String err) {}

    private Ran run(List<String> cmd) throws Exception {
        Path o = Files.createTempFile(tmp, "out", ".txt");
        Path e = Files.createTempFile(tmp, "err", ".txt");
        Process p = new ProcessBuilder(cmd).redirectOutput(o.toFile()).redirectError(e.toFile()).start();
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError(cmd.getFirst() + " did not finish in 30 s: " + Files.readString(e));
        }
        return new Ran(p.exitValue(), Files.readString(o), Files.readString(e));
    }

    /** A plain HTTP/1.1 upstream (the JDK's HttpServer) answering every request with {@code body}. */
    static final class Http implements AutoCloseable {
        private final HttpServer server;
        private final AtomicInteger served = new AtomicInteger();

        Http(String body) throws IOException {
            server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 50);
            byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
            server.createContext("/", x -> {
                served.incrementAndGet();
                x.getRequestBody().readAllBytes();
                x.sendResponseHeaders(200, bytes.length);
                try (OutputStream o = x.getResponseBody()) {
                    o.write(bytes);
                }
            });
            server.start();
        }

        int port() {
            return server.getAddress().getPort();
        }

        int served() {
            return served.get();
        }

        @Override
        public void close() {
            server.stop(0);
        }
    }
}
