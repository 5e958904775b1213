package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.agent.Agent;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.runtime.HookTimes;
import dev.interlayer.runtime.ModuleStats;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.time.Duration;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.LongStream;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent's Prometheus endpoint scraped by a real Prometheus server (Debian's {@code prometheus}, installed with apt-get
 * when missing): traffic through the agent shows up in the series Prometheus stores, and the endpoint answers scrapers
 * in both text formats.
 */
class MetricsTest {

    private static final Path PROMETHEUS = Path.of("/usr/bin/prometheus");
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    @TempDir
    Path tmp;

    private static String yaml(InetSocketAddress upstream, int deadPort) {
        return """
                agent:
                  modules-dir: modules
                  control: {enabled: false}
                  io-threads: 2
                  metrics: {listen: 127.0.0.1:0}
                listeners:
                  - name: web
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:%d
                    role: client
                  - name: tagged
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:%d
                    role: client
                  - name: dead
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:%d
                    role: client
                modules:
                  - name: tcplog
                    selector: {listener: [web]}
                  - name: tag
                    selector: {listener: [tagged]}
                    params: {every: 1000}
                """.formatted(upstream.getPort(), upstream.getPort(), deadPort);
    }

    @Test
    void prometheusScrapesTheAgentAndSeesItsTraffic() throws Exception {
        ensurePrometheus();
        Agents.deploySample("tcplog", tmp.resolve("agent/modules"));
        Agents.deploySample("tag", tmp.resolve("agent/modules"));
        int dead;
        try (ServerSocket s = new ServerSocket(0)) {
            dead = s.getLocalPort(); // closed again: connecting there is refused
        }
        int conns = 3;
        int perConn = 200_000 + new SplittableRandom().nextInt(100_000);
        int tagged = 8_000_000 + new SplittableRandom().nextInt(100_000); // enough chunks for the sampled hook times
        try (TestServer app = TestServer.echo();
             Agent agent = Agents.start(tmp.resolve("agent"), yaml(app.address(), dead))) {
            InetSocketAddress metrics = agent.metrics().orElseThrow().address();
            for (int i = 0; i < conns; i++) {
                echo(agent.listeners().get("web"), perConn);
                echo(agent.listeners().get("tagged"), tagged); // tagged on the way to the echo, the tags removed on the way back
            }
            try (Socket s = new Socket()) {
                s.connect(agent.listeners().get("dead"));
                assertThat(s.getInputStream().read()).as("a connection whose upstream refuses is closed").isEqualTo(-1);
            } catch (IOException reset) {
                // reset instead of closed: the same failure
            }
            Agents.waitFor("the connections to end", () -> agent.engine().connectionCount() == 0);
            long bytes = (long) conns * perConn;
            ModuleStats.Snapshot tag = agent.registry().find("tag").orElseThrow().stats();
            long timed = LongStream.of(tag.hookTimes()).sum();
            long calls = tag.chunks()[0] + tag.chunks()[1];
            assertThat(timed).as("one data hook call in %d timed, per attachment", HookTimes.SAMPLE)
                    .isPositive().isBetween(calls / HookTimes.SAMPLE - conns, calls / HookTimes.SAMPLE);

            try (PrometheusServer prom = PrometheusServer.start(tmp.resolve("prometheus"), metrics)) {
                prom.waitForValue("interlayer_listener_bytes_total{listener=\"web\",direction=\"send\"}", bytes);
                prom.waitForValue("interlayer_listener_bytes_total{listener=\"web\",direction=\"recv\"}", bytes);
                prom.waitForValue("interlayer_listener_connections_accepted_total{listener=\"web\"}", conns);
                prom.waitForValue("interlayer_listener_connections_active{listener=\"web\"}", 0);
                prom.waitForValue("interlayer_listener_connect_failures_total{listener=\"dead\"}", 1);
                prom.waitForValue("interlayer_module_in_bytes_total{module=\"tag\",direction=\"send\"}", (long) conns * tagged);
                prom.waitForValue("interlayer_module_out_bytes_total{module=\"tag\",direction=\"recv\"}", (long) conns * tagged);
                prom.waitForValue("interlayer_module_data_hook_duration_seconds_count{module=\"tag\"}", timed);
                prom.waitForValue("interlayer_module_data_hook_duration_seconds_bucket{module=\"tag\",le=\"+Inf\"}", timed);
                prom.waitForValue("interlayer_module_data_hook_duration_seconds_sum{module=\"tag\"} > 0", tag.hookNanos() / 1e9);
                prom.waitForValue("interlayer_module_attachments_total{module=\"tag\"}", conns);
                prom.waitForValue("interlayer_module_attachments_total{module=\"tcplog\"}", conns);
                prom.waitForValue("interlayer_module_attachments_active{module=\"tcplog\"}", 0);
                prom.waitForValue("interlayer_module_state{module=\"tcplog\",state=\"active\"}", 1);
                prom.waitForValue("count(interlayer_event_loop_lag_seconds)", 2);
                prom.waitForValue("interlayer_udp_flows", 0);
                prom.waitForValue("up{job=\"interlayer\"}", 1);
            }
        }
    }

    @Test
    void scrapersGetTheFormatTheyAskForAndOtherPathsAClearAnswer() throws Exception {
        Agents.deploySample("tcplog", tmp.resolve("agent/modules"));
        Agents.deploySample("tag", tmp.resolve("agent/modules"));
        try (TestServer app = TestServer.echo();
             Agent agent = Agents.start(tmp.resolve("agent"), yaml(app.address(), 1))) {
            echo(agent.listeners().get("web"), 5000);
            String base = "http://" + hostPort(agent.metrics().orElseThrow().address());
            HttpResponse<String> text = HTTP.send(HttpRequest.newBuilder(URI.create(base + "/metrics")).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(text.statusCode()).isEqualTo(200);
            assertThat(text.headers().firstValue("content-type").orElse("")).startsWith("text/plain; version=0.0.4");
            assertThat(text.body()).contains("# TYPE interlayer_listener_bytes_total counter")
                    .containsPattern("interlayer_listener_bytes_total\\{direction=\"send\",listener=\"web\"} 5000(\\.0)?\\n")
                    .contains("jvm_memory_used_bytes");
            HttpResponse<String> om = HTTP.send(HttpRequest.newBuilder(URI.create(base + "/metrics"))
                    .header("Accept", "application/openmetrics-text; version=1.0.0").build(), HttpResponse.BodyHandlers.ofString());
            assertThat(om.headers().firstValue("content-type").orElse("")).startsWith("application/openmetrics-text");
            assertThat(om.body()).endsWith("# EOF\n").contains("# TYPE interlayer_listener_bytes counter");
            HttpResponse<String> other = HTTP.send(HttpRequest.newBuilder(URI.create(base + "/")).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(other.statusCode()).isEqualTo(404);
            assertThat(other.body()).contains("the metrics are at /metrics");
            HttpResponse<String> post = HTTP.send(HttpRequest.newBuilder(URI.create(base + "/metrics")).POST(HttpRequest.BodyPublishers.ofString("x")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(post.statusCode()).isEqualTo(405);
        }
    }

    @Test
    void offTheHostOnlyCallersThePolicyGrantsModulesStatsMayScrape() throws Exception {
        Path dir = tmp.resolve("agent");
        TlsCerts pki = TlsCerts.newCa(dir.resolve("pki"), "metrics-ca");
        TlsCerts.Issued server = pki.issue("agent", "localhost");
        Files.writeString(dir.resolve("policy.yaml"), """
                rules:
                  - {name: scrapers, caller: {cn: [prometheus]}, endpoint: Modules, method: Stats, decision: granted, reason: the monitoring may read counters}
                """);
        try (Agent agent = Agents.start(dir, """
                agent:
                  control:
                    socket: control.sock
                    policy: policy.yaml
                    audit-file: audit.jsonl
                    tls: {listen: 127.0.0.1:0, cert: %s, key: %s, client-ca: %s}
                  metrics: {listen: 0.0.0.0:0}
                """.formatted(server.certFile(), server.keyFile(), pki.ca().certFile()))) {
            URI uri = URI.create("https://127.0.0.1:" + agent.metrics().orElseThrow().address().getPort() + "/metrics");
            HttpResponse<String> granted = client(pki, pki.issue("prometheus")).send(HttpRequest.newBuilder(uri).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(granted.statusCode()).isEqualTo(200);
            assertThat(granted.body()).contains("interlayer_connections_open 0");
            HttpResponse<String> denied = client(pki, pki.issue("intruder")).send(HttpRequest.newBuilder(uri).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(denied.statusCode()).isEqualTo(403);
            assertThat(denied.body()).contains("metrics denied", "Modules.Stats", "CN=intruder").doesNotContain("interlayer_");
            assertThat(agent.control().orElseThrow().audit().query(10, "denied", "", 0)).anySatisfy(e -> {
                assertThat(e.caller().toString()).contains("CN=intruder");
                assertThat(e.decision()).isEqualTo("denied");
                assertThat(e.reason()).startsWith("metrics scrape:");
            });
            assertThatThrownBy(() -> HttpClient.newBuilder().sslContext(trusting(pki, null)).build()
                    .send(HttpRequest.newBuilder(uri).build(), HttpResponse.BodyHandlers.ofString()))
                    .as("no client certificate: the handshake fails").isInstanceOf(IOException.class);
        }
    }

    private static HttpClient client(TlsCerts pki, TlsCerts.Issued me) throws Exception {
        return HttpClient.newBuilder().sslContext(trusting(pki, me)).build();
    }

    /** A TLS client context that trusts {@code pki}'s CA and presents {@code me} (null: no certificate). */
    private static SSLContext trusting(TlsCerts pki, TlsCerts.Issued me) throws Exception {
        KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        trust.setCertificateEntry("ca", pki.ca().cert());
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        KeyStore keys = KeyStore.getInstance("PKCS12");
        keys.load(null, null);
        if (me != null) keys.setKeyEntry("me", me.key(), new char[0], new Certificate[] {me.cert()});
        kmf.init(keys, new char[0]);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        return ctx;
    }

    @Test
    void anAddressInUseStopsTheStartSayingWhatToDoAndLeavesNothingBound() throws Exception {
        int listen;
        try (ServerSocket s = new ServerSocket(0)) {
            listen = s.getLocalPort();
        }
        Files.createDirectories(tmp.resolve("agent"));
        try (ServerSocket taken = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
            assertThatThrownBy(() -> Agents.start(tmp.resolve("agent"), """
                    agent:
                      control: {socket: control.sock}
                      metrics: {listen: 127.0.0.1:%d}
                    listeners:
                      - {name: web, listen: 127.0.0.1:%d, upstream: 127.0.0.1:9, role: client}
                    """.formatted(taken.getLocalPort(), listen)))
                    .isInstanceOf(dev.interlayer.agent.AgentException.class)
                    .hasMessageContaining("agent.metrics: the metrics endpoint did not start: cannot listen on")
                    .hasMessageContaining("pick another address or port, or stop what holds it");
        }
        try (ServerSocket again = new ServerSocket(listen, 50, java.net.InetAddress.getLoopbackAddress())) {
            assertThat(again.getLocalPort()).as("the listener's port is free again").isEqualTo(listen);
        }
        assertThat(tmp.resolve("agent/control.sock")).as("the control socket is gone").doesNotExist();
    }

    /** Sends {@code n} random bytes through {@code at} (an echo behind it) and reads them back. */
    private static void echo(InetSocketAddress at, int n) throws IOException {
        byte[] data = new byte[n];
        new SplittableRandom(n).nextBytes(data);
        try (Socket s = new Socket()) {
            s.connect(at);
            s.setSoTimeout(10_000);
            OutputStream out = s.getOutputStream();
            InputStream in = s.getInputStream();
            Thread writer = Thread.ofVirtual().start(() -> {
                try {
                    out.write(data);
                    s.shutdownOutput();
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            byte[] back = in.readAllBytes();
            writer.join();
            assertThat(back).as("the echo through the agent").isEqualTo(data);
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }

    private static String hostPort(InetSocketAddress a) {
        return a.getAddress().getHostAddress() + ":" + a.getPort();
    }

    private static synchronized void ensurePrometheus() throws IOException, InterruptedException {
        if (Files.isExecutable(PROMETHEUS)) return;
        for (List<String> cmd : List.of(List.of("apt-get", "update", "-qq"), List.of("apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"))) {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            if (!p.waitFor(10, TimeUnit.MINUTES) || p.exitValue() != 0) {
                throw new IllegalStateException(String.join(" ", cmd) + " failed; install Prometheus by hand: apt-get install prometheus (as root)");
            }
        }
    }

    /** A Prometheus server on loopback that scrapes one target every second, with its data in a folder of the test. */
    private record PrometheusServer(Process process, String api) implements AutoCloseable {

        static PrometheusServer start(Path dir, InetSocketAddress target) throws Exception {
            Files.createDirectories(dir);
            Path config = dir.resolve("prometheus.yml");
            Files.writeString(config, """
                    global: {scrape_interval: 1s, evaluation_interval: 1s}
                    scrape_configs:
                      - job_name: interlayer
                        static_configs: [{targets: ['%s']}]
                    """.formatted(hostPort(target)));
            int port;
            try (ServerSocket s = new ServerSocket(0)) {
                port = s.getLocalPort();
            }
            Process p = new ProcessBuilder(PROMETHEUS.toString(), "--config.file=" + config, "--storage.tsdb.path=" + dir.resolve("data"),
                    "--web.listen-address=127.0.0.1:" + port)
                    .redirectErrorStream(true).redirectOutput(dir.resolve("prometheus.log").toFile()).start();
            return new PrometheusServer(p, "http://127.0.0.1:" + port + "/api/v1/query?query=");
        }

        /** Waits until Prometheus's instant query {@code promql} returns one sample equal to {@code expected}. */
        void waitForValue(String promql, double expected) throws Exception {
            Pattern value = Pattern.compile("\"value\":\\[[0-9.]+,\"([^\"]+)\"]");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            String last = "";
            while (System.nanoTime() < deadline) {
                assertThat(process.isAlive()).as("prometheus is running").isTrue();
                try {
                    last = HTTP.send(HttpRequest.newBuilder(URI.create(api + URLEncoder.encode(promql, StandardCharsets.UTF_8))).build(),
                            HttpResponse.BodyHandlers.ofString()).body();
                    Matcher m = value.matcher(last);
                    if (m.find() && Double.parseDouble(m.group(1)) == expected) return;
                } catch (IOException notYet) {
                    last = notYet.toString();
                }
                Thread.sleep(250);
            }
            throw new AssertionError("Prometheus did not return " + expected + " for " + promql + " within 60 s; last answer: " + last);
        }

        @Override
        public void close() throws InterruptedException {
            process.destroy();
            if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly();
        }
    }
}
