package dev.interlayer.it;

import static dev.interlayer.it.TlsTest.connect;
import static dev.interlayer.it.TlsTest.readToEnd;
import static dev.interlayer.it.TlsTest.roundTrip;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.agent.Agent;
import dev.interlayer.engine.ConnectionSnapshot;
import io.netty.handler.ssl.JdkSslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.io.BufferedReader;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.cert.X509Certificate;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS passthrough ({@code sni-routes}): three real TLS backends, each with its own certificate made here, behind one
 * listener that reads only the client hello and forwards the encrypted bytes. Which backend a client reached is told by
 * the certificate it was shown (the agent has none) and by the echo of its data.
 */
class SniPassthroughTest {

    @TempDir
    Path tmp;
    @TempDir
    static Path certs;

    /** Made once for the class: the first certificates of a JVM take seconds on a loaded machine. */
    private static TlsCerts pki;
    private static TlsCerts.Issued certA;
    private static TlsCerts.Issued certB;
    private static TlsCerts.Issued certDefault;
    private TlsTest.TlsEcho a;
    private TlsTest.TlsEcho b;
    private TlsTest.TlsEcho fallback;
    private final LogCapture capture = new LogCapture();
    private final List<String> log = capture.lines();

    /** A listener name of its own per test: log lines are rate-limited per listener. */
    private static final java.util.concurrent.atomic.AtomicInteger NAMES = new java.util.concurrent.atomic.AtomicInteger();
    private final String edge = "edge" + NAMES.incrementAndGet();

    @org.junit.jupiter.api.BeforeAll
    static void certificates() throws Exception {
        pki = TlsCerts.newCa(certs.resolve("pki"), "test-ca");
        certA = pki.issue("a", "a.test");
        certB = pki.issue("b", "b.test", "*.b.test");
        certDefault = pki.issue("default", "default.test");
    }

    @BeforeEach
    void setUp() throws Exception {
        a = new TlsTest.TlsEcho(certA);
        b = new TlsTest.TlsEcho(certB);
        fallback = new TlsTest.TlsEcho(certDefault);
        capture.start("interlayer.engine");
    }

    @AfterEach
    void tearDown() throws IOException {
        capture.stop();
        a.close();
        b.close();
        fallback.close();
    }

    private String agent(boolean withDefault, String timeout) {
        return """
                agent:
                  control: {enabled: false}
                  io-threads: 2
                listeners:
                  - name: %s
                    listen: 127.0.0.1:0
                    role: server
                %s    sni-routes:
                      a.test: 127.0.0.1:%d
                      b.test: 127.0.0.1:%d
                      "*.B.test": 127.0.0.1:%d
                    sni-timeout: %s
                """.formatted(edge, withDefault ? "    upstream: 127.0.0.1:" + fallback.port() + "\n" : "", a.port(), b.port(), b.port(), timeout);
    }

    private SSLContext client() throws Exception {
        return ((JdkSslContext) SslContextBuilder.forClient().sslProvider(SslProvider.JDK).trustManager(pki.ca().certFile().toFile()).build())
                .context();
    }

    private static String subject(SSLSocket s) throws IOException {
        return ((X509Certificate) s.getSession().getPeerCertificates()[0]).getSubjectX500Principal().getName();
    }

    /** A TLS client that sends no server name at all. */
    private SSLSocket connectWithoutSni(InetSocketAddress at) throws Exception {
        SSLSocket s = (SSLSocket) client().getSocketFactory().createSocket(at.getAddress(), at.getPort());
        s.setSoTimeout(10_000);
        SSLParameters p = s.getSSLParameters();
        p.setServerNames(List.of());
        s.setSSLParameters(p);
        s.startHandshake();
        return s;
    }

    @Test
    void eachNameReachesItsBackendAWildcardItsOwnAndNoOrAnUnknownNameTheDefault() throws Exception {
        Logger engineLog = Logger.getLogger("interlayer.engine");
        java.util.logging.Level level = engineLog.getLevel();
        engineLog.setLevel(java.util.logging.Level.INFO); // the listener's start line
        try (Agent agent = Agents.start(tmp.resolve("agent"), agent(true, "10s"))) {
            engineLog.setLevel(level);
            InetSocketAddress at = agent.listeners().get(edge);
            String[][] cases = {{"a.test", "CN=a", "a.test", String.valueOf(a.port())}, {"B.Test", "CN=b", "b.test", String.valueOf(b.port())},
                    {"x.b.test", "CN=b", "*.b.test", String.valueOf(b.port())}, {"y.x.b.test", "CN=default", "default", String.valueOf(fallback.port())},
                    {"other.test", "CN=default", "default", String.valueOf(fallback.port())}};
            for (String[] c : cases) {
                try (SSLSocket s = connect(client(), at, c[0])) { // a new client each time: no session to resume
                    assertThat(subject(s)).as("the backend %s reached", c[0]).isEqualTo(c[1]);
                    roundTrip(s, "hello " + c[0]);
                    ConnectionSnapshot snap = agent.engine().connections().getFirst();
                    assertThat(snap.tls()).isEqualTo("passthrough sni=" + c[0].toLowerCase() + " route=" + c[2]);
                    assertThat(snap.local().getPort()).as("the route's upstream (server role: the local end)").isEqualTo(Integer.parseInt(c[3]));
                }
                Agents.waitFor("connection closed", () -> agent.engine().connectionCount() == 0);
            }
            try (SSLSocket s = connectWithoutSni(at)) {
                assertThat(subject(s)).isEqualTo("CN=default");
                roundTrip(s, "no name at all");
                assertThat(agent.engine().connections().getFirst().tls()).isEqualTo("passthrough sni=(none) route=default");
            }
            assertThat(a.served()).isEqualTo(1);
            assertThat(b.served()).isEqualTo(2);
            assertThat(fallback.served()).isEqualTo(3);
            assertThat(agent.engine().directConnections()).as("the hello is read in a channel").isZero();
            assertThat(log).anyMatch(l -> l.contains("listener " + edge) && l.contains("sni passthrough (a.test -> ")
                    && l.contains("*.b.test -> ") && l.contains("no or another name -> /127.0.0.1:" + fallback.port()));
        }
    }

    @Test
    void opensslSClientReachesTheBackendOfItsName() throws Exception {
        try (Agent agent = Agents.start(tmp.resolve("agent"), agent(true, "10s"))) {
            InetSocketAddress at = agent.listeners().get(edge);
            Process p = new ProcessBuilder("openssl", "s_client", "-connect", "127.0.0.1:" + at.getPort(), "-servername", "x.b.test",
                    "-CAfile", pki.ca().certFile().toString()).redirectErrorStream(true).start();
            try {
                p.getOutputStream().write("echo through openssl\n".getBytes(StandardCharsets.US_ASCII));
                p.getOutputStream().flush();
                List<String> lines = new java.util.ArrayList<>();
                CompletableFuture<Boolean> echoed = CompletableFuture.supplyAsync(() -> {
                    try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.US_ASCII))) {
                        String line;
                        while ((line = r.readLine()) != null) {
                            lines.add(line);
                            if (line.equals("echo through openssl")) return true;
                        }
                        return false;
                    } catch (IOException e) {
                        return false;
                    }
                });
                assertThat(echoed.get(20, TimeUnit.SECONDS)).as("openssl's output: %s", lines).isTrue();
                assertThat(lines).as("the certificate openssl was shown").anyMatch(l -> l.matches("subject=\\s*CN\\s*=\\s*b\\s*"));
                assertThat(lines).anyMatch(l -> l.contains("Verify return code: 0 (ok)"));
            } finally {
                p.destroy();
                p.waitFor(5, TimeUnit.SECONDS);
            }
            assertThat(b.served()).isEqualTo(1);
        }
    }

    @Test
    void withoutADefaultNoAndUnknownNamesAreRefusedWithALineAndKnownNamesStillWork() throws Exception {
        try (Agent agent = Agents.start(tmp.resolve("agent"), agent(false, "10s"))) {
            InetSocketAddress at = agent.listeners().get(edge);
            assertThatThrownBy(() -> connect(client(), at, "other.test").close()).isInstanceOf(IOException.class);
            assertThatThrownBy(() -> connectWithoutSni(at).close()).isInstanceOf(IOException.class);
            try (SSLSocket s = connect(client(), at, "a.test")) {
                assertThat(subject(s)).isEqualTo("CN=a");
                roundTrip(s, "a known name");
            }
            Agents.waitFor("both refusals logged", () -> log.stream().filter(l -> l.contains("(" + edge + "): the client")).count() >= 2);
            assertThat(log).anyMatch(l -> l.contains("no route for the server name 'other.test' and the listener has no default route")
                    && l.contains("add the name to sni-routes, or set upstream:"));
            assertThat(log).anyMatch(l -> l.contains("names no server (no SNI)") && l.contains("set upstream: for such clients"));
            assertThat(fallback.served()).isZero();
            Agents.waitFor("refused connections are gone", () -> agent.engine().connectionCount() == 0);
        }
    }

    @Test
    void aHelloInFragmentedRecordsWrittenByteByByteStillRoutes() throws Exception {
        try (Agent agent = Agents.start(tmp.resolve("agent"), agent(true, "10s"));
             Fragmenter f = new Fragmenter(agent.listeners().get(edge), 64, 3)) {
            try (SSLSocket s = connect(client(), f.address(), "a.test")) {
                assertThat(subject(s)).isEqualTo("CN=a");
                roundTrip(s, "a hello in pieces");
            }
            assertThat(f.records()).as("the hello went out as several records").isGreaterThan(3);
            assertThat(f.writes()).as("and many TCP writes").isGreaterThan(50);
            assertThat(a.served()).isEqualTo(1);
        }
    }

    @Test
    void garbageATooLongHelloAndAStalledClientAreClosedWithALineWhileAnotherConnectionWorks() throws Exception {
        try (Agent agent = Agents.start(tmp.resolve("agent"), agent(true, "1s"))) {
            InetSocketAddress at = agent.listeners().get(edge);
            try (SSLSocket good = connect(client(), at, "a.test");
                 Socket garbage = new Socket(at.getAddress(), at.getPort());
                 Socket tooLong = new Socket(at.getAddress(), at.getPort());
                 Socket stalled = new Socket(at.getAddress(), at.getPort())) {
                roundTrip(good, "before");
                garbage.setSoTimeout(10_000);
                garbage.getOutputStream().write("GET / HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
                assertThat(readToEnd(garbage)).as("the garbage connection is closed").isTrue();
                tooLong.setSoTimeout(10_000);
                // a handshake record holding the start of a client hello that claims 20000 bytes
                tooLong.getOutputStream().write(new byte[] {0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00, 0x4e, 0x20, 0x03, 0x03, 0, 0});
                assertThat(readToEnd(tooLong)).as("the too long hello is refused").isTrue();
                stalled.setSoTimeout(10_000);
                stalled.getOutputStream().write(new byte[] {0x16, 0x03, 0x01}); // the start of a record, then nothing
                Agents.waitFor("the stalled one is listed", () -> agent.engine().connections().stream()
                        .anyMatch(c -> "passthrough: reading the client hello".equals(c.tls())));
                long t0 = System.nanoTime();
                assertThat(readToEnd(stalled)).as("the stalled connection is closed").isTrue();
                assertThat((System.nanoTime() - t0) / 1_000_000).as("closed by the 1 s sni-timeout").isBetween(200L, 8_000L);
                roundTrip(good, "after: the other connection still works");
            }
            try (SSLSocket again = connect(client(), at, "b.test")) {
                roundTrip(again, "and new ones are served");
            }
            assertThat(log).anyMatch(l -> l.contains("sent bytes that are not a TLS client hello (it began with 474554")
                    && l.contains("clients must connect with TLS"));
            assertThat(log).anyMatch(l -> l.contains("client hello longer than 16384 bytes"));
            assertThat(log).anyMatch(l -> l.contains("sent no complete TLS client hello within 1000 ms (3 bytes so far)")
                    && l.contains("raise the listener's sni-timeout"));
            assertThat(fallback.served()).as("nothing unrouted reached the default").isZero();
        }
    }

    @Test
    void eightMiBBothWaysAreByteExactAndTheBulkIsSpliced() throws Exception {
        long total = 8L << 20;
        try (Agent agent = Agents.start(tmp.resolve("agent"), agent(true, "10s"));
             SSLSocket s = connect(client(), agent.listeners().get(edge), "b.test")) {
            MessageDigest sent = MessageDigest.getInstance("SHA-256");
            MessageDigest got = MessageDigest.getInstance("SHA-256");
            CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
                try {
                    java.util.SplittableRandom r = new java.util.SplittableRandom(5);
                    byte[] data = new byte[100_000];
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
            writer.get(1, TimeUnit.MINUTES);
            assertThat(received).isEqualTo(total);
            assertThat(HexFormat.of().formatHex(got.digest())).isEqualTo(HexFormat.of().formatHex(sent.digest()));
            assertThat(subject(s)).isEqualTo("CN=b");
            assertThat(agent.engine().splicedConnections()).as("the encrypted bulk moved in the kernel").isEqualTo(1);
            assertThat(agent.engine().splicedBytes()).isGreaterThan(total);
        }
    }

    /**
     * A relay for one client that cuts its first TLS record (the client hello) into records of {@code fragment} bytes of
     * payload each, written {@code chunk} bytes at a time, then relays everything else untouched both ways.
     */
    static final class Fragmenter implements AutoCloseable {
        private final ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
        private final java.util.concurrent.atomic.AtomicInteger records = new java.util.concurrent.atomic.AtomicInteger();
        private final java.util.concurrent.atomic.AtomicInteger writes = new java.util.concurrent.atomic.AtomicInteger();
        private final List<Socket> open = new CopyOnWriteArrayList<>();

        Fragmenter(InetSocketAddress target, int fragment, int chunk) throws IOException {
            Thread.ofVirtual().start(() -> {
                try (Socket c = server.accept(); Socket t = new Socket(target.getAddress(), target.getPort())) {
                    open.add(c);
                    open.add(t);
                    t.setTcpNoDelay(true);
                    DataInputStream in = new DataInputStream(c.getInputStream());
                    byte[] header = new byte[5];
                    in.readFully(header);
                    byte[] body = new byte[((header[3] & 0xff) << 8) | (header[4] & 0xff)];
                    in.readFully(body);
                    OutputStream out = t.getOutputStream();
                    for (int off = 0; off < body.length; off += fragment) {
                        int len = Math.min(fragment, body.length - off);
                        byte[] rec = new byte[5 + len];
                        System.arraycopy(header, 0, rec, 0, 3);
                        rec[3] = (byte) (len >> 8);
                        rec[4] = (byte) len;
                        System.arraycopy(body, off, rec, 5, len);
                        for (int p = 0; p < rec.length; p += chunk) {
                            out.write(rec, p, Math.min(chunk, rec.length - p));
                            out.flush();
                            writes.incrementAndGet();
                            if (p % (chunk * 8) == 0) Thread.sleep(1); // separate segments, read one by one
                        }
                        records.incrementAndGet();
                    }
                    Thread back = Thread.ofVirtual().start(() -> pipe(t, c));
                    pipe(c, t);
                    back.join();
                } catch (IOException | InterruptedException e) {
                    // the test ended
                }
            });
        }

        private static void pipe(Socket from, Socket to) {
            try {
                from.getInputStream().transferTo(to.getOutputStream());
                to.shutdownOutput();
            } catch (IOException e) {
                // closed
            }
        }

        InetSocketAddress address() {
            return new InetSocketAddress(InetAddress.getLoopbackAddress(), server.getLocalPort());
        }

        int records() {
            return records.get();
        }

        int writes() {
            return writes.get();
        }

        @Override
        public void close() throws IOException {
            server.close();
            for (Socket s : open) s.close();
        }
    }
}
