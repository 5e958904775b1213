package dev.interlayer.it;

import static dev.interlayer.it.TlsTest.connect;
import static dev.interlayer.it.TlsTest.readToEnd;
import static dev.interlayer.it.TlsTest.roundTrip;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.agent.Agent;
import dev.interlayer.agent.AgentException;
import dev.interlayer.agent.ConfigException;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.runtime.Hooks;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.testing.TestJars;
import io.netty.handler.ssl.JdkSslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.cert.X509Certificate;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The {@code tls} interface with real peers (JDK TLS sockets and {@code openssl s_client}), certificates made here, the
 * sample modules' jars as the build made them and test modules compiled here: a module's steps replace the defaults,
 * steps it does not override keep them, and a module that fails fails only its handshake.
 */
class TlsModuleTest {

    @TempDir
    Path tmp;

    private TlsCerts pki;
    private TlsCerts.Issued server;
    private final LogCapture capture = new LogCapture();
    private final List<String> log = capture.lines();

    private static final java.util.concurrent.atomic.AtomicInteger NAMES = new java.util.concurrent.atomic.AtomicInteger();
    private final String web = "tlsmod" + NAMES.incrementAndGet();


    @BeforeEach
    void setUp() throws Exception {
        pki = TlsCerts.newCa(tmp.resolve("pki"), "test-ca");
        server = pki.issue("default", "localhost", "default.test");
        capture.start("interlayer.engine", "interlayer.runtime");
    }

    @AfterEach
    void tearDown() {
        capture.stop();
    }

    private static Path sample(String name) {
        return Agents.sampleModules().resolve("module-" + name + ".jar").toAbsolutePath();
    }

    private SSLContext client(TlsCerts.Issued cert) throws Exception {
        SslContextBuilder b = SslContextBuilder.forClient().sslProvider(SslProvider.JDK).trustManager(pki.ca().certFile().toFile());
        if (cert != null) b.keyManager(cert.certFile().toFile(), cert.keyFile().toFile());
        return ((JdkSslContext) b.build()).context();
    }

    private static String subject(SSLSocket s) throws IOException {
        return ((X509Certificate) s.getSession().getPeerCertificates()[0]).getSubjectX500Principal().getName();
    }

    /** The subject {@code openssl s_client} is shown for {@code name}. */
    private static String opensslSubject(InetSocketAddress at, String name) throws Exception {
        Process p = new ProcessBuilder("openssl", "s_client", "-connect", "127.0.0.1:" + at.getPort(), "-servername", name)
                .redirectErrorStream(true).start();
        p.getOutputStream().close(); // end of input: s_client quits after the handshake
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(10, TimeUnit.SECONDS)).isTrue();
        for (String line : out.split("\n")) {
            if (line.startsWith("subject=")) return line.substring("subject=".length()).replace(" ", "");
        }
        throw new AssertionError("openssl s_client showed no subject:\n" + out);
    }

    @Test
    void sniCertServesThreeNamesFromItsFolderAndPicksUpAFourthDroppedInWhileRunning() throws Exception {
        Path folder = tmp.resolve("certs");
        Files.createDirectories(folder);
        for (String n : new String[] {"a.test", "b.test", "c.test"}) pki.issue(n, n);
        for (String n : new String[] {"a.test", "b.test", "c.test"}) {
            Files.move(tmp.resolve("pki").resolve(n + ".crt"), folder.resolve(n + ".crt"));
            Files.move(tmp.resolve("pki").resolve(n + ".key"), folder.resolve(n + ".key"));
        }
        String yaml = """
                agent:
                  control: {enabled: false}
                  io-threads: 2
                listeners:
                  - name: %s
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:%d
                    role: server
                    tls: {cert: %s, key: %s, module: sni-cert}
                modules:
                  - name: sni-cert
                    jar: %s
                    params: {folder: %s, rescan: 50ms}
                """;
        try (TestServer echo = TestServer.echo();
             Agent agent = Agents.start(tmp.resolve("agent"), yaml.formatted(web, echo.address().getPort(), server.certFile(), server.keyFile(),
                     sample("sni-cert"), folder))) {
            InetSocketAddress at = agent.listeners().get(web);
            for (String n : new String[] {"a.test", "b.test", "c.test", "d.test", "other.test"}) {
                try (SSLSocket s = connect(client(null), at, n)) {
                    assertThat(subject(s)).as("certificate for %s", n).isEqualTo(n.equals("a.test") || n.equals("b.test") || n.equals("c.test")
                            ? "CN=" + n : "CN=default");
                    roundTrip(s, "hello " + n);
                }
            }
            assertThat(opensslSubject(at, "b.test")).contains("CN=b.test").doesNotContain("default");
            // a fourth certificate dropped into the folder while the agent runs
            pki.issue("d.test", "d.test");
            Files.move(tmp.resolve("pki").resolve("d.test.key"), folder.resolve("d.test.key"));
            Files.move(tmp.resolve("pki").resolve("d.test.crt"), folder.resolve("d.test.crt"));
            Thread.sleep(100); // past the rescan
            assertThat(opensslSubject(at, "d.test")).contains("CN=d.test");
            try (SSLSocket s = connect(client(null), at, "d.test")) {
                assertThat(subject(s)).isEqualTo("CN=d.test");
                roundTrip(s, "new name");
            }
            LoadedModule m = agent.registry().find("sni-cert").orElseThrow();
            assertThat(m.faults()).isZero();
            assertThat(m.liveAttachments()).as("a tls-only module never attaches as a stream module").isZero();
            assertThat(Hooks.names(m.hooks())).containsExactly("selectCertificate");
        }
    }

    private static String pin(X509Certificate c) throws Exception {
        return Base64.getEncoder().encodeToString(MessageDigest.getInstance("SHA-256").digest(c.getPublicKey().getEncoded()));
    }

    @ParameterizedTest
    @ValueSource(strings = {"openssl", "jdk"})
    void certPinningAcceptsTheUpstreamWithThePinnedKeyAndRefusesAnotherWithAClearLine(String provider) throws Exception {
        TlsCerts.Issued pinned = pki.issue("upstream", "upstream.test");
        TlsCerts.Issued other = pki.issue("impostor", "upstream.test"); // chains to the same CA and names the same host: only the key differs
        try (TlsTest.TlsEcho good = new TlsTest.TlsEcho(pinned); TlsTest.TlsEcho bad = new TlsTest.TlsEcho(other)) {
            String yaml = """
                    agent:
                      control: {enabled: false}
                      io-threads: 2
                    listeners:
                      - name: %1$s-good
                        listen: 127.0.0.1:0
                        upstream: {address: 127.0.0.1:%2$d, tls: {provider: %7$s, ca: %4$s, server-name: upstream.test, module: cert-pinning}}
                        role: client
                      - name: %1$s-bad
                        listen: 127.0.0.1:0
                        upstream: {address: 127.0.0.1:%3$d, tls: {provider: %7$s, ca: %4$s, server-name: upstream.test, module: cert-pinning}}
                        role: client
                    modules:
                      - name: cert-pinning
                        jar: %5$s
                        params: {pins: "%6$s"}
                    """.formatted(web, good.port(), bad.port(), pki.ca().certFile(), sample("cert-pinning"), pin(pinned.cert()), provider);
            try (Agent agent = Agents.start(tmp.resolve("agent"), yaml)) {
                try (Socket s = new Socket("127.0.0.1", agent.listeners().get(web + "-good").getPort())) {
                    s.setSoTimeout(10_000);
                    roundTrip(s, "pinned upstream");
                }
                try (Socket s = new Socket("127.0.0.1", agent.listeners().get(web + "-bad").getPort())) {
                    s.setSoTimeout(10_000);
                    s.getOutputStream().write("hello".getBytes(StandardCharsets.US_ASCII));
                    assertThat(readToEnd(s)).as("the impostor upstream is refused").isTrue();
                }
                Agents.waitFor("the refusal is logged", () -> log.stream().anyMatch(l -> l.contains("refused the upstream's certificate")));
                assertThat(log).anyMatch(l -> l.contains("tls module cert-pinning@1.0.0 refused the upstream's certificate (CN=impostor)")
                        && l.contains("no key of its chain is pinned") && l.contains("add that pin"));
                assertThat(good.served()).isEqualTo(1);
                assertThat(bad.served()).isZero();
                assertThat(agent.registry().find("cert-pinning").orElseThrow().faults()).as("a refusal is not a fault").isZero();
            }
        }
    }

    /** A stream module that answers every chunk from the client with the identity its TLS handshake gave it. */
    private static final String WHOAMI = """
            package probe;
            import dev.interlayer.api.*;
            public class WhoAmI implements StreamModule<Object> {
                public ModuleDescriptor descriptor() {
                    return ModuleDescriptor.builder("whoami", "1.0.0").implement(InterfaceType.STREAM, 1, 0).build();
                }
                public Verdict onRecv(Object s, StreamContext c, ByteView v) {
                    TlsInfo t = c.attachment().connection().tls(Side.REMOTE);
                    c.replace().write(("identity=" + (t == null ? "none" : t.identity()) + "\\n").getBytes());
                    return Verdict.PASS;
                }
                public Verdict onSend(Object s, StreamContext c, ByteView v) {
                    TlsInfo t = c.attachment().connection().tls(Side.REMOTE);
                    c.replace().write(("identity=" + (t == null ? "none" : t.identity()) + "\\n").getBytes());
                    return Verdict.PASS;
                }
            }
            """;

    @Test
    void mtlsIdentityGivesTheClientItsCertificatesNameSeenByAStreamModuleAndTheListing() throws Exception {
        TlsCerts.Issued alice = pki.issue("alice", "client.test");
        Path jars = tmp.resolve("jars");
        Path whoami = TestJars.jar().source("probe.WhoAmI", WHOAMI).service("probe.WhoAmI").write(jars.resolve("whoami.jar"));
        String yaml = """
                agent:
                  control: {enabled: false}
                  io-threads: 2
                listeners:
                  - name: %s
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:%d
                    role: server
                    tls: {cert: %s, key: %s, ca: %s, client-auth: required, module: mtls-identity}
                modules:
                  - name: mtls-identity
                    jar: %s
                    params: {from: cn, prefix: "user:"}
                  - name: whoami
                    jar: %s
                """;
        try (TestServer echo = TestServer.echo();
             Agent agent = Agents.start(tmp.resolve("agent"), yaml.formatted(web, echo.address().getPort(), server.certFile(), server.keyFile(),
                     pki.ca().certFile(), sample("mtls-identity"), whoami))) {
            InetSocketAddress at = agent.listeners().get(web);
            try (SSLSocket s = connect(client(alice), at, "localhost")) {
                s.getOutputStream().write("who am i?".getBytes(StandardCharsets.US_ASCII));
                s.getOutputStream().flush();
                String line = new String(s.getInputStream().readNBytes("identity=user:alice\n".length()), StandardCharsets.US_ASCII);
                assertThat(line).isEqualTo("identity=user:alice\n");
                assertThat(agent.engine().connections().getFirst().tls()).contains("peer=CN=alice", "identity=user:alice");
            }
            LoadedModule m = agent.registry().find("mtls-identity").orElseThrow();
            assertThat(Hooks.names(m.hooks())).containsExactly("handshakeCompleted");
            assertThat(m.liveAttachments()).isZero();
        }
    }

    /** A tls module that throws in selectCertificate for one name, and in verifyPeer always; everything else is the default. */
    private static final String THROWER = """
            package probe;
            import dev.interlayer.api.*;
            public class Thrower implements TlsModule<Object> {
                public ModuleDescriptor descriptor() {
                    return ModuleDescriptor.builder("tls-thrower", "1.0.0").implement(InterfaceType.TLS, 1, 0).build();
                }
                public TlsCertificate selectCertificate(ClientHello hello, TlsFunctions d) {
                    if ("boom.test".equals(hello.serverName())) throw new IllegalStateException("no certificate for boom");
                    return d.selectCertificate(hello);
                }
                public TlsVerdict verifyPeer(TlsPeer peer, TlsFunctions d) {
                    throw new IllegalStateException("verifier broke");
                }
            }
            """;

    @Test
    void aTlsModuleThatThrowsFailsOnlyItsHandshakeCountsAFaultAndTheAgentKeepsServing() throws Exception {
        Path jars = tmp.resolve("jars");
        Path thrower = TestJars.jar().source("probe.Thrower", THROWER).service("probe.Thrower").write(jars.resolve("thrower.jar"));
        TlsCerts.Issued up = pki.issue("upstream", "upstream.test");
        try (TestServer echo = TestServer.echo(); TlsTest.TlsEcho tlsUp = new TlsTest.TlsEcho(up)) {
            String yaml = """
                    agent:
                      control: {enabled: false}
                      io-threads: 2
                    listeners:
                      - name: %1$s
                        listen: 127.0.0.1:0
                        upstream: 127.0.0.1:%2$d
                        role: server
                        tls: {cert: %3$s, key: %4$s, module: tls-thrower}
                      - name: %1$s-plain
                        listen: 127.0.0.1:0
                        upstream: 127.0.0.1:%2$d
                        role: server
                      - name: %1$s-out
                        listen: 127.0.0.1:0
                        upstream: {address: 127.0.0.1:%5$d, tls: {ca: %6$s, server-name: upstream.test, module: tls-thrower}}
                        role: client
                    modules:
                      - name: tls-thrower
                        jar: %7$s
                    """.formatted(web, echo.address().getPort(), server.certFile(), server.keyFile(), tlsUp.port(), pki.ca().certFile(), thrower);
            try (Agent agent = Agents.start(tmp.resolve("agent"), yaml)) {
                InetSocketAddress at = agent.listeners().get(web);
                LoadedModule m = agent.registry().find("tls-thrower").orElseThrow();
                try (Socket plain = new Socket("127.0.0.1", agent.listeners().get(web + "-plain").getPort())) {
                    plain.setSoTimeout(10_000);
                    roundTrip(plain, "before");
                    assertThatThrownBy(() -> connect(client(null), at, "boom.test")).as("the module's failure fails this handshake")
                            .isInstanceOf(IOException.class);
                    roundTrip(plain, "a parallel plain connection is not disturbed");
                    try (SSLSocket s = connect(client(null), at, "fine.test")) {
                        assertThat(subject(s)).as("a name the module does not fail on: the default certificate").isEqualTo("CN=default");
                        roundTrip(s, "a later handshake works");
                    }
                    Agents.waitFor("the failure is logged", () -> log.stream().anyMatch(l -> l.contains("failed in selectCertificate")));
                    assertThat(log).anyMatch(l -> l.contains("tls module tls-thrower@1.0.0 failed in selectCertificate")
                            && l.contains("no certificate for boom") && l.contains("only this handshake fails")
                            && l.contains("remove module: tls-thrower"));
                    assertThat(m.faults()).isEqualTo(1);
                    assertThat(m.lastFault()).contains("selectCertificate");

                    try (Socket s = new Socket("127.0.0.1", agent.listeners().get(web + "-out").getPort())) {
                        s.setSoTimeout(10_000);
                        s.getOutputStream().write("hello".getBytes(StandardCharsets.US_ASCII));
                        assertThat(readToEnd(s)).as("verifyPeer threw: the upstream handshake fails").isTrue();
                    }
                    Agents.waitFor("the verifyPeer failure is logged", () -> log.stream().anyMatch(l -> l.contains("failed in verifyPeer")
                            && l.contains("verifier broke") && l.contains("TLS handshake with the upstream")));
                    assertThat(m.faults()).isEqualTo(2);
                    assertThat(tlsUp.served()).isZero();
                    roundTrip(plain, "after");
                }
                try (SSLSocket s = connect(client(null), at, "localhost")) {
                    roundTrip(s, "and still serving");
                }
            }
        }
    }

    @Test
    void aModuleDeclaringTls2IsRefusedAtLoadAndTls1LoadsWithItsHooks() throws Exception {
        String future = """
                package probe;
                import dev.interlayer.api.*;
                public class Future implements TlsModule<Object> {
                    public ModuleDescriptor descriptor() {
                        return ModuleDescriptor.builder("tls-future", "1.0.0").implement(InterfaceType.TLS, 2, 0).build();
                    }
                    public String handshakeCompleted(TlsHandshake h, TlsFunctions d) { return "x"; }
                }
                """;
        Path jars = tmp.resolve("jars");
        Path futureJar = TestJars.jar().source("probe.Future", future).service("probe.Future").write(jars.resolve("future.jar"));
        Path thrower = TestJars.jar().source("probe.Thrower", THROWER).service("probe.Thrower").write(jars.resolve("thrower.jar"));
        String yaml = """
                agent:
                  control: {enabled: false}
                listeners: []
                modules:
                  - name: tls-future
                    jar: %s
                  - name: tls-thrower
                    jar: %s
                """.formatted(futureJar, thrower);
        try (Agent agent = Agents.start(tmp.resolve("agent"), yaml)) {
            assertThat(agent.registry().find("tls-future")).isEmpty();
            assertThat(agent.registry().failures()).anyMatch(f -> f.error().contains("tls 2.0") && f.error().contains("major version must match"));
            LoadedModule ok = agent.registry().find("tls-thrower").orElseThrow();
            assertThat(ok.descriptor().interfaces()).containsKey(dev.interlayer.api.InterfaceType.TLS);
            assertThat(Hooks.names(ok.hooks())).containsExactlyInAnyOrder("selectCertificate", "verifyPeer");
        }
    }

    /** A tls module of {@code minor} whose keyLog appends to param {@code log} and whose ticket key comes from param {@code secret}. */
    private Path secretsModule(String name, int minor) throws IOException {
        String src = """
                package probe;
                import dev.interlayer.api.*;
                import java.nio.charset.StandardCharsets;
                import java.nio.file.*;
                import java.security.MessageDigest;
                import java.util.*;
                public class Secrets implements TlsModule<Object> {
                    private Path log;
                    private TlsTicketKey key;
                    public ModuleDescriptor descriptor() {
                        return ModuleDescriptor.builder("%s", "1.0.0").implement(InterfaceType.TLS, 1, %d)
                                .param(Param.ofString("log", "", "key log file"))
                                .param(Param.ofString("secret", "", "the shared secret the ticket key derives from"))
                                .build();
                    }
                    public void init(ModuleEnv env) {
                        log = Path.of(env.params().getString("log"));
                        try {
                            byte[] h = MessageDigest.getInstance("SHA-512").digest(env.params().getString("secret").getBytes(StandardCharsets.UTF_8));
                            key = TlsTicketKey.of(Arrays.copyOf(h, TlsTicketKey.SIZE));
                        } catch (Exception e) {
                            throw new IllegalStateException(e);
                        }
                    }
                    public List<TlsTicketKey> sessionTicketKeys(List<TlsTicketKey> current, TlsFunctions d) {
                        return List.of(key);
                    }
                    public void keyLog(TlsHandshake hs, String line, TlsFunctions d) {
                        try {
                            Files.writeString(log, hs.connectionId() + " " + line + "\\n", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
                        } catch (java.io.IOException e) {
                            throw new java.io.UncheckedIOException(e);
                        }
                    }
                }
                """.formatted(name, minor);
        return TestJars.jar().source("probe.Secrets", src).service("probe.Secrets").write(tmp.resolve("jars").resolve(name + ".jar"));
    }

    private String secretsAgent(String module, Path jar, Path log, String secret, InetSocketAddress upstream) {
        return Agents.terminating(web, upstream.getPort(), "{cert: %s, key: %s, module: %s}".formatted(server.certFile(), server.keyFile(), module))
                + "modules:\n  - name: %s\n    jar: %s\n    params: {log: %s, secret: %s}\n".formatted(module, jar, log, secret);
    }

    /** Runs {@code openssl s_client} with {@code args} against {@code port}, sending one line; returns what it printed. */
    private String sClient(int port, String... args) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of("openssl", "s_client", "-connect", "127.0.0.1:" + port, "-servername", "localhost",
                "-CAfile", pki.ca().certFile().toString()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try {
            p.getOutputStream().write("ping\n".getBytes(StandardCharsets.US_ASCII));
            p.getOutputStream().flush();
            Thread.sleep(300); // TLS 1.3 tickets come after the handshake
            p.getOutputStream().close();
            assertThat(p.waitFor(10, TimeUnit.SECONDS)).as("s_client exits").isTrue();
            return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        } finally {
            p.destroyForcibly();
        }
    }

    @Test
    void aModulesTicketKeysLetTwoAgentsResumeEachOthersSessionsAndItsKeyLogSeesTheClientsSecrets() throws Exception {
        Path jar = secretsModule("secrets", 1);
        Path logA = tmp.resolve("a-keys.log");
        Path logC = tmp.resolve("c-keys.log");
        Path clientKeys = tmp.resolve("client-keys.log");
        Path sess = tmp.resolve("session.pem");
        try (TestServer echo = TestServer.echo();
             Agent a = Agents.start(tmp.resolve("a"), secretsAgent("secrets", jar, logA, "shared", echo.address()));
             Agent b = Agents.start(tmp.resolve("b"), secretsAgent("secrets", jar, tmp.resolve("b-keys.log"), "shared", echo.address()));
             Agent c = Agents.start(tmp.resolve("c"), secretsAgent("secrets", jar, logC, "another", echo.address()))) {
            assertThat(Hooks.names(a.registry().find("secrets").orElseThrow().hooks())).contains("sessionTicketKeys", "keyLog");
            String first = sClient(a.listeners().get(web).getPort(), "-sess_out", sess.toString(), "-keylogfile", clientKeys.toString());
            assertThat(first).as(first).contains("New, TLSv1.3");
            List<String> client = Files.readAllLines(clientKeys).stream().filter(l -> !l.isBlank() && !l.startsWith("#")).toList();
            assertThat(client).isNotEmpty();
            List<String> seen = Files.readAllLines(logA);
            long id = Long.parseLong(seen.getFirst().split(" ", 2)[0]);
            assertThat(id).as("the handshake's connection").isPositive();
            assertThat(seen).as("the module saw every secret the client derived, with its connection")
                    .containsAll(client.stream().map(l -> id + " " + l).toList());
            assertThat(sClient(b.listeners().get(web).getPort(), "-sess_in", sess.toString())).as("b shares the secret")
                    .contains("Reused, TLSv1.3");
            assertThat(sClient(c.listeners().get(web).getPort(), "-sess_in", sess.toString())).as("c's key is another")
                    .contains("New, TLSv1.3").doesNotContain("Reused");
        }
    }

    @Test
    void aModuleBuiltForTls10GetsNeitherNewStepEvenIfItHasMethodsOfThatName() throws Exception {
        Path jar = secretsModule("secrets10", 0);
        Path log10 = tmp.resolve("keys10.log");
        Path sess = tmp.resolve("session.pem");
        try (TestServer echo = TestServer.echo();
             Agent a = Agents.start(tmp.resolve("a"), secretsAgent("secrets10", jar, log10, "shared", echo.address()));
             Agent b = Agents.start(tmp.resolve("b"), secretsAgent("secrets10", jar, log10, "shared", echo.address()))) {
            LoadedModule m = a.registry().find("secrets10").orElseThrow();
            assertThat(Hooks.names(m.hooks())).doesNotContain("sessionTicketKeys", "keyLog");
            assertThat(sClient(a.listeners().get(web).getPort(), "-sess_out", sess.toString())).contains("New, TLSv1.3");
            assertThat(sClient(b.listeners().get(web).getPort(), "-sess_in", sess.toString()))
                    .as("each agent keeps its own random keys: the module's are never asked for").contains("New, TLSv1.3").doesNotContain("Reused");
            assertThat(log10).as("keyLog is never called").doesNotExist();
        }
    }

    @Test
    void aModuleChoosingAlpnOverridesTheListenersPreferenceKeepsTheDefaultCertificateAndFallsBackWhenUnloaded() throws Exception {
        String picker = """
                package probe;
                import dev.interlayer.api.*;
                import java.util.List;
                public class Picker implements TlsModule<Object> {
                    public ModuleDescriptor descriptor() {
                        return ModuleDescriptor.builder("alpn-picker", "1.0.0").implement(InterfaceType.TLS, 1, 0).build();
                    }
                    public String selectAlpn(ClientHello hello, List<String> offered, TlsFunctions d) {
                        return offered.contains("http/1.1") ? "http/1.1" : d.selectAlpn(hello, offered);
                    }
                }
                """;
        Path jar = TestJars.jar().source("probe.Picker", picker).service("probe.Picker").write(tmp.resolve("jars").resolve("picker.jar"));
        String yaml = """
                agent:
                  control: {enabled: false}
                  io-threads: 2
                listeners:
                  - name: %s
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:%d
                    role: server
                    tls: {cert: %s, key: %s, alpn: [h2, http/1.1], module: alpn-picker}
                modules:
                  - name: alpn-picker
                    jar: %s
                """;
        try (TestServer echo = TestServer.echo();
             Agent agent = Agents.start(tmp.resolve("agent"), yaml.formatted(web, echo.address().getPort(), server.certFile(), server.keyFile(), jar))) {
            InetSocketAddress at = agent.listeners().get(web);
            for (int i = 0; i < 2; i++) { // the second handshake reuses the context built for the first choice
                try (SSLSocket s = connect(client(null), at, "localhost", "h2", "http/1.1")) {
                    assertThat(s.getApplicationProtocol()).as("the module's choice over the listener's preference").isEqualTo("http/1.1");
                    assertThat(subject(s)).as("selectCertificate not overridden: the listener's certificate").isEqualTo("CN=default");
                    roundTrip(s, "alpn " + i);
                }
            }
            try (SSLSocket s = connect(client(null), at, "localhost", "h2")) {
                assertThat(s.getApplicationProtocol()).as("the module delegates to the default").isEqualTo("h2");
            }
            LoadedModule m = agent.registry().find("alpn-picker").orElseThrow();
            m.unregister();
            Agents.waitFor("unloaded", m::isUnloaded);
            try (SSLSocket s = connect(client(null), at, "localhost", "h2", "http/1.1")) {
                assertThat(s.getApplicationProtocol()).as("without the module: the listener's own preference").isEqualTo("h2");
                roundTrip(s, "defaults");
            }
            assertThat(log).anyMatch(l -> l.contains("listener " + web + ": tls module alpn-picker is not loaded")
                    && l.contains("new client handshakes use the agent's own TLS steps"));
        }
    }

    @Test
    void aTlsModuleRunningPastTheHookBudgetFailsItsHandshakeAndCountsAFault() throws Exception {
        String sleeper = """
                package probe;
                import dev.interlayer.api.*;
                public class Sleeper implements TlsModule<Object> {
                    public ModuleDescriptor descriptor() {
                        return ModuleDescriptor.builder("tls-sleeper", "1.0.0").implement(InterfaceType.TLS, 1, 0).build();
                    }
                    public TlsCertificate selectCertificate(ClientHello hello, TlsFunctions d) {
                        if ("slow.test".equals(hello.serverName())) {
                            try { Thread.sleep(5000); } catch (InterruptedException e) { Thread.currentThread().interrupt(); }
                        }
                        return d.selectCertificate(hello);
                    }
                }
                """;
        Path jar = TestJars.jar().source("probe.Sleeper", sleeper).service("probe.Sleeper").write(tmp.resolve("jars").resolve("sleeper.jar"));
        String yaml = """
                agent:
                  control: {enabled: false}
                  io-threads: 2
                  hook-budget: 100ms
                listeners:
                  - name: %s
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:%d
                    role: server
                    tls: {cert: %s, key: %s, module: tls-sleeper}
                modules:
                  - name: tls-sleeper
                    jar: %s
                """;
        try (TestServer echo = TestServer.echo();
             Agent agent = Agents.start(tmp.resolve("agent"), yaml.formatted(web, echo.address().getPort(), server.certFile(), server.keyFile(), jar))) {
            InetSocketAddress at = agent.listeners().get(web);
            long t0 = System.nanoTime();
            assertThatThrownBy(() -> connect(client(null), at, "slow.test")).isInstanceOf(IOException.class);
            assertThat(System.nanoTime() - t0).as("stopped by the watchdog, long before the module's 5 s").isLessThan(4_000_000_000L);
            Agents.waitFor("the overrun is logged", () -> log.stream().anyMatch(l -> l.contains("tls module tls-sleeper@1.0.0 failed in selectCertificate")));
            assertThat(agent.registry().find("tls-sleeper").orElseThrow().faults()).isEqualTo(1);
            try (SSLSocket s = connect(client(null), at, "fast.test")) {
                roundTrip(s, "the next handshake is served");
            }
        }
    }

    @Test
    void configureSetsTheListenersProtocolsAndHandshakeFailedSeesAFailedHandshake() throws Exception {
        String tls12 = """
                package probe;
                import dev.interlayer.api.*;
                import java.util.List;
                public class Tls12 implements TlsModule<Object> {
                    public ModuleDescriptor descriptor() {
                        return ModuleDescriptor.builder("tls12", "1.0.0").implement(InterfaceType.TLS, 1, 0).build();
                    }
                    public TlsParameters configure(TlsParameters configured, TlsFunctions d) {
                        return new TlsParameters(configured.terminating(), List.of("TLSv1.2"), configured.ciphers());
                    }
                    public void handshakeFailed(TlsHandshake h, String reason, TlsFunctions d) {
                        // seen: a fault here is counted, which is what the test can observe from outside
                        throw new IllegalStateException("saw " + (h.terminating() ? "client" : "upstream") + " failure: " + reason);
                    }
                }
                """;
        Path jar = TestJars.jar().source("probe.Tls12", tls12).service("probe.Tls12").write(tmp.resolve("jars").resolve("tls12.jar"));
        String yaml = """
                agent:
                  control: {enabled: false}
                  io-threads: 2
                listeners:
                  - name: %s
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:%d
                    role: server
                    tls: {cert: %s, key: %s, module: tls12}
                modules:
                  - name: tls12
                    jar: %s
                """;
        try (TestServer echo = TestServer.echo();
             Agent agent = Agents.start(tmp.resolve("agent"), yaml.formatted(web, echo.address().getPort(), server.certFile(), server.keyFile(), jar))) {
            InetSocketAddress at = agent.listeners().get(web);
            try (SSLSocket s = connect(client(null), at, "localhost")) {
                assertThat(s.getSession().getProtocol()).as("the module's configure").isEqualTo("TLSv1.2");
                roundTrip(s, "tls 1.2 only");
            }
            LoadedModule m = agent.registry().find("tls12").orElseThrow();
            assertThat(m.faults()).isZero();
            assertThatThrownBy(() -> {
                SSLSocket s = (SSLSocket) client(null).getSocketFactory().createSocket(at.getAddress(), at.getPort());
                try (s) {
                    s.setSoTimeout(10_000);
                    s.setEnabledProtocols(new String[] {"TLSv1.3"});
                    s.startHandshake();
                }
            }).as("a TLS 1.3-only client").isInstanceOf(IOException.class);
            Agents.waitFor("handshakeFailed was called", () -> m.lastFault() != null); // the count goes up just before the description
            assertThat(m.faults()).isEqualTo(1);
            assertThat(m.lastFault()).contains("handshakeFailed", "saw client failure: TLS");
        }
    }

    @Test
    void aTlsBlockNamingNoModuleEntryOrANonTlsModuleIsAConfigError() throws Exception {
        String missing = """
                agent:
                  control: {enabled: false}
                listeners:
                  - name: %s
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:9
                    role: server
                    tls: {cert: %s, key: %s, module: nowhere}
                """.formatted(web, server.certFile(), server.keyFile());
        assertThatThrownBy(() -> Agents.start(tmp.resolve("a1"), missing)).isInstanceOf(ConfigException.class)
                .hasMessageContaining("tls.module").hasMessageContaining("no module entry named 'nowhere'");
        String stream = missing.replace("module: nowhere", "module: tag") + """
                modules:
                  - name: tag
                    jar: %s
                """.formatted(sample("tag"));
        assertThatThrownBy(() -> Agents.start(tmp.resolve("a2"), stream)).isInstanceOf(AgentException.class)
                .hasMessageContaining("does not implement the tls interface").hasMessageContaining("name a module that declares the tls interface");
        assertThat(Agent.checkModules(dev.interlayer.agent.AgentConfig.load(tmp.resolve("a2").resolve("agent.yaml"))).problems())
                .as("run --check says the same").anyMatch(p -> p.contains("tls.module names tag@") && p.contains("does not implement the tls interface"));
    }
}
