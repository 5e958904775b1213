package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.agent.Agent;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.natives.CBuild;
import dev.interlayer.runtime.Hooks;
import dev.interlayer.runtime.LoadedModule;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code tls} interface in C, against a real agent and {@code openssl s_client}: the sample {@code sni-cert-c} shows the
 * same certificates as the Java {@code sni-cert}, and a probe module compiled here overrides every step (tls 1.1) with the
 * agent's defaults at hand, an older minor gets only the steps it knows, and another major is refused.
 */
class CTlsModuleTest {

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
        capture.start("interlayer");
    }

    @AfterEach
    void tearDown() {
        capture.stop();
    }

    /** What {@code openssl s_client} printed for one connection ({@code name} null: no SNI), stdin closed after the handshake. */
    private static String sClient(InetSocketAddress at, String name, String... args) throws Exception {
        return sClient(at, name, () -> true, args);
    }

    /** As above, keeping the connection open until {@code open} says the agent has seen what the test looks for (15 s at most). */
    private static String sClient(InetSocketAddress at, String name, java.util.function.BooleanSupplier until, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("openssl", "s_client", "-connect", "127.0.0.1:" + at.getPort()));
        if (name == null) cmd.add("-noservername");
        else cmd.addAll(List.of("-servername", name));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        for (long end = System.nanoTime() + 15_000_000_000L; !until.getAsBoolean() && p.isAlive() && System.nanoTime() < end; ) {
            Thread.sleep(20);
        }
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(10, TimeUnit.SECONDS)).isTrue();
        return out;
    }

    private static String subject(String sClientOutput) {
        for (String line : sClientOutput.split("\n")) {
            if (line.startsWith("subject=")) return line.substring("subject=".length()).replace(" ", "");
        }
        throw new AssertionError("openssl s_client showed no subject:\n" + sClientOutput);
    }

    private void moveIssued(String name, Path folder) throws Exception {
        pki.issue(name, name);
        Files.move(tmp.resolve("pki").resolve(name + ".key"), folder.resolve(name.replace("*", "_") + ".key"));
        Files.move(tmp.resolve("pki").resolve(name + ".crt"), folder.resolve(name.replace("*", "_") + ".crt"));
    }

    @Test
    void sniCertCShowsTheSameCertificatesAsTheJavaSniCertForTheSameNames() throws Exception {
        Path folder = Files.createDirectories(tmp.resolve("certs"));
        for (String n : new String[] {"a.test", "b.test", "*.wild.test"}) moveIssued(n, folder);
        String yaml = """
                agent:
                  control: {enabled: false}
                  io-threads: 2
                listeners:
                  - name: java
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:%1$d
                    role: server
                    tls: {cert: %2$s, key: %3$s, module: sni-cert}
                  - name: c
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:%1$d
                    role: server
                    tls: {cert: %2$s, key: %3$s, module: sni-cert-c}
                modules:
                  - name: sni-cert
                    jar: %4$s
                    params: {folder: %6$s, rescan: 50ms}
                  - name: sni-cert-c
                    jar: %5$s
                    params: {folder: %6$s, rescan: 50ms}
                """;
        try (TestServer echo = TestServer.echo();
             Agent agent = Agents.start(tmp.resolve("agent"), yaml.formatted(echo.address().getPort(), server.certFile(), server.keyFile(),
                     Agents.sampleModules().resolve("module-sni-cert.jar"), Agents.sampleModules().resolve("module-sni-cert-c.so"), folder))) {
            InetSocketAddress java = agent.listeners().get("java");
            InetSocketAddress c = agent.listeners().get("c");
            List<String> names = new ArrayList<>(List.of("a.test", "b.test", "x.wild.test", "wild.test", "d.test", "other.test", "x_y.test"));
            names.add(null);
            for (String n : names) {
                String byJava = subject(sClient(java, n));
                assertThat(subject(sClient(c, n))).as("certificate for %s", n).isEqualTo(byJava);
            }
            assertThat(subject(sClient(c, "a.test"))).isEqualTo("CN=a.test");
            assertThat(subject(sClient(c, "x.wild.test"))).isEqualTo("CN=*.wild.test");
            assertThat(subject(sClient(c, "d.test"))).as("no files: the listener's own").isEqualTo("CN=default");
            moveIssued("d.test", folder); // dropped in while the agent runs
            Thread.sleep(100); // past the rescan
            assertThat(subject(sClient(c, "d.test"))).isEqualTo("CN=d.test").isEqualTo(subject(sClient(java, "d.test")));
            LoadedModule m = agent.registry().find("sni-cert-c").orElseThrow();
            assertThat(m.faults()).isZero();
            assertThat(m.liveAttachments()).as("a tls-only C module never attaches to connections").isZero();
            assertThat(Hooks.names(m.hooks())).contains("selectCertificate").doesNotContain("onSend", "verifyPeer", "keyLog");
        }
    }

    @Test
    void sniCertCWithoutItsFolderDoesNotStartAndTheListenerServesItsOwnCertificate() throws Exception {
        String yaml = Agents.terminating("c", 9, "{cert: %s, key: %s, module: sni-cert-c}".formatted(server.certFile(), server.keyFile()))
                + "modules:\n  - name: sni-cert-c\n    jar: " + Agents.sampleModules().resolve("module-sni-cert-c.so")
                + "\n    params: {folder: " + tmp.resolve("nowhere") + "}\n";
        try (Agent agent = Agents.start(tmp.resolve("agent"), yaml)) {
            assertThat(agent.registry().find("sni-cert-c").filter(m -> m.state() == dev.interlayer.runtime.ModuleState.ACTIVE)).isEmpty();
            assertThat(log).anyMatch(l -> l.contains("folder " + tmp.resolve("nowhere") + " is not a folder; create it, or set param folder"));
            assertThat(subject(sClient(agent.listeners().get("c"), "a.test"))).isEqualTo("CN=default");
        }
    }

    /**
     * A probe overriding every tls step: certificate by the default (through a copy of the hello), the default verification
     * then a refusal of chains whose DER names {@code deny}, the last ALPN protocol offered, TLS 1.2 only, an identity from
     * what was negotiated, a log line per failed handshake, ticket keys from a seed, and the key log into a file.
     */
    private static final String PROBE = """
            #include <interlayer/module.h>
            #include <pthread.h>
            #include <stdio.h>
            #include <string.h>
            #ifndef PROBE_MAJOR
            #define PROBE_MAJOR 1
            #endif
            #ifndef PROBE_MINOR
            #define PROBE_MINOR 1
            #endif
            #define STR2(x) #x
            #define STR(x) STR2(x)
            static const il_host *host;
            static const char *deny;
            static const char *key_log_file;
            static const char *failures_file;
            static int64_t seed;
            static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
            static const char *const tls12[] = {"TLSv1.2"};

            static int init(il_ctx *ctx, void **module) {
                size_t n;
                deny = host->param_string(ctx, "deny", &n);
                key_log_file = host->param_string(ctx, "key-log", &n);
                failures_file = host->param_string(ctx, "failures", &n);
                seed = host->param_int(ctx, "ticket-seed");
                *module = NULL;
                return IL_OK;
            }
            static il_cert *select_certificate(void *m, il_call *call, const il_client_hello *h, const il_tls_functions *d) {
                il_client_hello copy = *h;  /* the module's copy: the default reads its server_name */
                (void) m;
                return d->select_certificate(call, &copy);
            }
            static int verify_peer(void *m, il_call *call, const il_tls_peer *p, const il_tls_functions *d) {
                int rc = d->verify_peer(call, p);
                (void) m;
                if (rc != IL_ALLOW) return rc;
                if (p->chain_count > 0 && deny[0] != 0 && memmem(p->chain[0], p->chain_len[0], deny, strlen(deny)) != NULL) {
                    char why[128];
                    snprintf(why, sizeof why, "certificate names %s", deny);
                    return host->deny(call, why);
                }
                return IL_ALLOW;
            }
            static const char *select_alpn(void *m, il_call *call, const il_client_hello *h, const il_tls_functions *d) {
                (void) m; (void) call; (void) d;
                return h->alpn[h->alpn_count - 1];
            }
            static int configure(void *m, il_call *call, il_tls_params *p, const il_tls_functions *d) {
                (void) m;
                int rc = d->configure(call, p);
                if (p->terminating) {
                    p->protocols = tls12;
                    p->protocol_count = 1;
                }
                return rc;
            }
            static int completed(void *m, il_call *call, const il_tls_handshake *hs, char *id, size_t cap, const il_tls_functions *d) {
                (void) m;
                int rc = d->handshake_completed(call, hs, id, cap);
                snprintf(id, cap, "probe:%s:%s:%s:%s", hs->server_name ? hs->server_name : "-", hs->protocol, hs->alpn ? hs->alpn : "-",
                         hs->peer_subject ? hs->peer_subject : "-");
                return rc;
            }
            static void failed(void *m, il_call *call, const il_tls_handshake *hs, const char *reason, const il_tls_functions *d) {
                (void) m;
                d->handshake_failed(call, hs, reason);
                pthread_mutex_lock(&lock);
                FILE *f = fopen(failures_file, "a");
                if (f != NULL) {
                    fprintf(f, "probe saw a failed handshake of connection %llu: %s%c", (unsigned long long) hs->connection_id, reason, 10);
                    fclose(f);
                }
                pthread_mutex_unlock(&lock);
            }
            static int ticket_keys(void *m, il_call *call, const uint8_t *cur, uint32_t n, uint8_t *keys, uint32_t *count,
                                   const il_tls_functions *d) {
                (void) m;
                if (seed == 0) return d->session_ticket_keys(call, cur, n, keys, count);
                for (int i = 0; i < IL_TLS_TICKET_KEY_SIZE; i++) keys[i] = (uint8_t) (seed + i);
                *count = 1;
                return IL_OK;
            }
            static void key_log(void *m, il_call *call, const il_tls_handshake *hs, const char *line, const il_tls_functions *d) {
                (void) m; (void) hs;
                d->key_log(call, hs, line);
                pthread_mutex_lock(&lock);
                FILE *f = fopen(key_log_file, "a");
                if (f != NULL) {
                    fprintf(f, "%s%c", line, 10);
                    fclose(f);
                }
                pthread_mutex_unlock(&lock);
            }
            int tls_tls_probe_initvt(il_ctx *ctx, int major, int minor, void *vtable) {
                il_tls_vtable *vt = vtable;
                (void) ctx; (void) minor;
                if (major != IL_TLS_MAJOR) return IL_ERR_VERSION;
                vt->minor = PROBE_MINOR;
                vt->select_certificate = select_certificate;
                vt->verify_peer = verify_peer;
                vt->select_alpn = select_alpn;
                vt->configure = configure;
                vt->handshake_completed = completed;
                vt->handshake_failed = failed;
                vt->session_ticket_keys = ticket_keys; /* 1.1: filled even when built for 1.0, never called then */
                vt->key_log = key_log;
                return IL_OK;
            }
            static const il_param params[] = {
                {"deny", "string", "", "refuse peers whose leaf's DER holds this text"},
                {"key-log", "string", "/dev/null", "where to append key log lines"},
                {"ticket-seed", "int", "0", "ticket key bytes seed, seed+1, ...; 0: the agent's keys"},
                {"failures", "string", "/dev/null", "where to append a line per failed handshake"},
            };
            static const il_module_info modules[] = {{
                .size = sizeof(il_module_info), .name = "tls-probe", .version = "1.0.0",
                .interfaces = "tls " STR(PROBE_MAJOR) "." STR(PROBE_MINOR), .priority = 100,
                .params = params, .param_count = 4, .init = init,
            }};
            uint32_t interlayer_plugin_get_version(void) { return IL_ABI_VERSION; }
            const il_module_info *interlayer_module_list(uint32_t *count) { *count = 1; return modules; }
            int interlayer_plugin_init(const il_host *h) { host = h; return IL_OK; }
            void interlayer_plugin_fini(void) { host = NULL; }
            """;

    private Path probe(String name, String... defines) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("c"));
        List<String> args = new ArrayList<>(List.of(defines));
        args.add("-D_GNU_SOURCE");
        return CBuild.so(dir, name, PROBE, args.toArray(String[]::new));
    }

    private String probeAgent(String listener, Path so, String params, TestServer upstream) {
        String tls = "{cert: %s, key: %s, ca: %s, client-auth: required, alpn: [h2, http/1.1], module: tls-probe}".formatted(
                server.certFile(), server.keyFile(), pki.ca().certFile());
        return Agents.terminating(listener, upstream.address().getPort(), tls)
                + "modules:\n  - name: tls-probe\n    jar: " + so + "\n    params: " + params + "\n";
    }

    private String[] clientCert(TlsCerts.Issued c) {
        return new String[] {"-cert", c.certFile().toString(), "-key", c.keyFile().toString(), "-CAfile", pki.ca().certFile().toString()};
    }

    @Test
    void aCTlsModuleRunsEveryStepWithTheAgentsDefaultsAtHand() throws Exception {
        TlsCerts.Issued alice = pki.issue("alice", "client.test");
        TlsCerts.Issued mallory = pki.issue("mallory", "client.test");
        Path keys = tmp.resolve("keys.log");
        Path failures = tmp.resolve("failures.log");
        try (TestServer echo = TestServer.echo();
             Agent agent = Agents.start(tmp.resolve("agent"), probeAgent("web", probe("probe"), "{deny: mallory, key-log: " + keys
                     + ", failures: " + failures + "}", echo))) {
            InetSocketAddress at = agent.listeners().get("web");
            List<String> cmd = new ArrayList<>(List.of(clientCert(alice)));
            cmd.addAll(List.of("-alpn", "h2,http/1.1"));
            String identity = "identity=probe:localhost:TLSv1.2:http/1.1:CN=alice";
            List<String> listing = new java.util.concurrent.CopyOnWriteArrayList<>();
            String out = sClient(at, "localhost", () -> {
                agent.engine().connections().forEach(c -> listing.add(String.valueOf(c.tls())));
                return listing.stream().anyMatch(l -> l.contains(identity));
            }, cmd.toArray(String[]::new));
            assertThat(listing).as("handshake_completed's identity in the connection listing; s_client: " + out).anyMatch(l -> l.contains(identity));
            assertThat(subject(out)).as("the default certificate, chosen through the module's copy of the hello").isEqualTo("CN=default");
            assertThat(out).as("configure: TLS 1.2 only").contains("Protocol  : TLSv1.2");
            assertThat(out).as("select_alpn: the last offered, not the listener's first").contains("ALPN protocol: http/1.1");
            assertThat(log).noneMatch(l -> l.contains("failed in"));
            Agents.waitFor("key log lines", () -> Files.exists(keys) && read(keys).contains("CLIENT_RANDOM "));

            sClient(at, "localhost", clientCert(mallory));
            Agents.waitFor("the refusal is logged", () -> log.stream().anyMatch(l -> l.contains("refused the client's certificate (CN=mallory)")
                    && l.contains("certificate names mallory")));
            String tls13 = sClient(at, "localhost", cmdWith(clientCert(alice), "-tls1_3"));
            assertThat(tls13).as("configure left TLS 1.2 only").doesNotContain("Protocol  : TLSv1.3");
            Agents.waitFor("handshake_failed saw the TLS 1.3 client fail", () -> Files.exists(failures)
                    && read(failures).contains("probe saw a failed handshake of connection"));

            LoadedModule m = agent.registry().find("tls-probe").orElseThrow();
            assertThat(Hooks.names(m.hooks())).contains("selectCertificate", "verifyPeer", "selectAlpn", "configure", "handshakeCompleted",
                    "handshakeFailed", "sessionTicketKeys", "keyLog");
            assertThat(m.faults()).as("a refusal is no fault").isZero();
        }
    }

    private static String[] cmdWith(String[] a, String... more) {
        List<String> l = new ArrayList<>(List.of(a));
        l.addAll(List.of(more));
        return l.toArray(String[]::new);
    }

    private static String read(Path p) {
        try {
            return Files.readString(p);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void ticketKeysFromACModuleLetASessionResumeOnAnotherAgent() throws Exception {
        TlsCerts.Issued alice = pki.issue("alice", "client.test");
        Path so = probe("probe");
        Path sess = tmp.resolve("session.pem");
        try (TestServer echo = TestServer.echo();
             Agent a = Agents.start(tmp.resolve("a"), probeAgent("web", so, "{ticket-seed: 7}", echo));
             Agent b = Agents.start(tmp.resolve("b"), probeAgent("web", so, "{ticket-seed: 7}", echo));
             Agent other = Agents.start(tmp.resolve("c"), probeAgent("web", so, "{ticket-seed: 8}", echo))) {
            assertThat(sClient(a.listeners().get("web"), "localhost", cmdWith(clientCert(alice), "-sess_out", sess.toString())))
                    .contains("New, TLSv1.2");
            assertThat(sClient(b.listeners().get("web"), "localhost", cmdWith(clientCert(alice), "-sess_in", sess.toString())))
                    .as("same seed: same keys").contains("Reused, TLSv1.2");
            assertThat(sClient(other.listeners().get("web"), "localhost", cmdWith(clientCert(alice), "-sess_in", sess.toString())))
                    .as("another seed").contains("New, TLSv1.2").doesNotContain("Reused");
        }
    }

    @Test
    void aCTlsModuleBuiltForTls10GetsOnlyThe10StepsAndOneForTls20IsRefused() throws Exception {
        TlsCerts.Issued alice = pki.issue("alice", "client.test");
        Path keys = tmp.resolve("keys.log");
        try (TestServer echo = TestServer.echo();
             Agent agent = Agents.start(tmp.resolve("agent"), probeAgent("web", probe("probe10", "-DPROBE_MINOR=0"), "{key-log: " + keys + "}",
                     echo))) {
            String out = sClient(agent.listeners().get("web"), "localhost", clientCert(alice));
            assertThat(out).contains("Protocol  : TLSv1.2");
            LoadedModule m = agent.registry().find("tls-probe").orElseThrow();
            assertThat(Hooks.names(m.hooks())).contains("selectCertificate", "handshakeFailed").doesNotContain("sessionTicketKeys", "keyLog");
            assertThat(m.hookNotes()).anyMatch(n -> n.contains("key_log needs tls 1.1"));
            assertThat(keys).doesNotExist();
        }
        Path major2 = probe("probe20", "-DPROBE_MAJOR=2", "-DPROBE_MINOR=0");
        try (TestServer echo = TestServer.echo()) {
            try (Agent agent = Agents.start(tmp.resolve("agent2"), probeAgent("web", major2, "{}", echo))) {
                assertThat(agent.registry().find("tls-probe")).isEmpty();
                assertThat(log).anyMatch(l -> l.contains("built against tls 2.0") && l.contains("the major version must match"));
            }
        }
    }
}
