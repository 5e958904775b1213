package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.agent.Agent;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.orchestrator.v1.AckState;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The orchestrator's dashboard in Debian's headless Chromium (installed with apt-get when missing; tests run as root),
 * against a real orchestrator with real agents and traffic: the page its script fills shows them, and the screenshots
 * stay in {@code it/target/dashboard/}. Also what the dashboard refuses: a caller the policy does not grant, a foreign
 * {@code Host}, a write.
 */
class DashboardTest {

    private static final Path SHOTS = Path.of("target", "dashboard");

    @TempDir
    Path tmp;

    private Fleet fleet;

    @AfterEach
    void close() {
        if (fleet != null) {
            fleet.close();
        }
    }

    /** Installs Debian's chromium when it is missing. */
    private static synchronized Path chromium() throws Exception {
        Path bin = Path.of("/usr/bin/chromium");
        if (!Files.isExecutable(bin)) {
            for (List<String> cmd : List.of(List.of("apt-get", "update", "-qq"), List.of("apt-get", "install", "-y", "-qq", "chromium"))) {
                Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
                if (!p.waitFor(15, TimeUnit.MINUTES) || p.exitValue() != 0) {
                    throw new IllegalStateException(String.join(" ", cmd) + " failed; install chromium by hand: apt-get install -y chromium (as root)");
                }
            }
        }
        return bin;
    }

    /** Runs headless Chromium on {@code url} with {@code what} (--dump-dom, --screenshot=FILE) and returns what it printed. */
    private String browse(String url, String what) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(chromium().toString(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--hide-scrollbars", "--user-data-dir=" + tmp.resolve("chromium"), "--window-size=1400,900", "--virtual-time-budget=5000", what, url));
        Process p = new ProcessBuilder(cmd).redirectError(tmp.resolve("chromium.log").toFile()).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).as("chromium finished").isTrue();
        assertThat(p.exitValue()).as("chromium: " + Files.readString(tmp.resolve("chromium.log"))).isZero();
        return out;
    }

    /** One raw HTTP/1.1 request; returns the response's status line and body. */
    private static String http(InetSocketAddress at, String method, String host, String path) throws IOException {
        try (Socket s = new Socket(at.getAddress(), at.getPort())) {
            s.setSoTimeout(10_000);
            OutputStream out = s.getOutputStream();
            out.write((method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = s.getInputStream();
            String r = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            return r.substring(0, r.indexOf("\r\n")) + "\n" + r.substring(r.indexOf("\r\n\r\n") + 4);
        }
    }

    @Test
    void thePageShowsTheRealAgentsAndTheirModules() throws Exception {
        fleet = Fleet.start(tmp, s -> s.withDashboard(new InetSocketAddress("127.0.0.1", 0)));
        InetSocketAddress at = fleet.orchestrator().dashboardAddress();
        String url = "http://127.0.0.1:" + at.getPort() + "/";
        ByteArrayOutputStream upstream = new ByteArrayOutputStream();
        try (TestServer app1 = TestServer.echo(upstream); TestServer app2 = TestServer.echo()) {
            Agent a1 = fleet.agent("edge-1", app1.address());
            fleet.agent("edge-2", app2.address());
            fleet.waitForAgents("both connected", a -> a.getConnected(), "edge-1", "edge-2");
            fleet.ok("upload", HotReplaceTest.markerJar(tmp, "1.0.0", 1).toString());
            fleet.ok("deploy", "marker@1.0.0", "--to", "label=zone=eu");
            long rev = fleet.status().getRevision();
            fleet.waitForAgents("both applied", a -> a.getAck() == AckState.APPLIED && a.getAppliedRevision() == rev, "edge-1", "edge-2");

            try (Fleets.Held held = Fleets.Held.open(a1.listeners().get("out").getPort(), upstream)) {
                held.send("abcdefghij".repeat(100));
                fleet.waitForAgents("edge-1 reports the open connection", a -> !a.getName().equals("edge-1")
                        || a.getModulesList().stream().anyMatch(m -> m.getName().equals("marker") && m.getLive() == 1), "edge-1", "edge-2");
                String dom = browse(url, "--dump-dom");
                Files.createDirectories(SHOTS);
                Files.writeString(SHOTS.resolve("fleet.html"), dom);
                browse(url, "--screenshot=" + SHOTS.resolve("fleet.png").toAbsolutePath());
                assertThat(SHOTS.resolve("fleet.png")).isNotEmptyFile();

                assertThat(dom).as("the page as its script filled it").contains("revision " + rev + " · 2 agent(s), 2 connected · 1 live deployment(s)")
                        .containsPattern("<tr data-agent=\"edge-1\"><td>edge-1</td><td class=\"yes\">yes</td>")
                        .containsPattern("<tr data-agent=\"edge-2\"><td>edge-2</td><td class=\"yes\">yes</td>")
                        .contains(rev + " / " + rev).contains("<span class=\"APPLIED\">APPLIED</span>").contains("zone=eu")
                        .contains("<tr data-agent=\"edge-1\" data-module=\"marker@1.0.0\"><td>edge-1</td><td>marker</td><td>1.0.0</td>"
                                + "<td class=\"ACTIVE\">ACTIVE</td>")
                        .containsPattern("data-module=\"marker@1.0.0\"><td>edge-1</td>.*?<td>orchestrator</td><td class=\"num\">1</td><td class=\"num\">0</td>")
                        .contains("<td>label=zone=eu</td>").contains("Rollouts").doesNotContain("cannot read the fleet");
            }

            // a change shows on the next read
            fleet.ok("toggle", "marker", "--inactive");
            long inactive = fleet.status().getRevision();
            fleet.waitForAgents("marker inactive", a -> a.getAppliedRevision() == inactive && Fleets.runs(a, "marker", "1.0.0", "INACTIVE"),
                    "edge-1", "edge-2");
            String dom = browse(url, "--dump-dom");
            assertThat(dom).contains("revision " + inactive).contains("<td class=\"INACTIVE\">INACTIVE</td>");
            browse(url, "--screenshot=" + SHOTS.resolve("fleet-inactive.png").toAbsolutePath());

            // a staged rollout with its progress, and the leader
            fleet.ok("upload", HotReplaceTest.markerJar(tmp, "2.0.0", 2).toString());
            fleet.ok("rollout", "marker@2.0.0", "--canary", "agent=edge-1", "--bake", "600");
            fleet.waitForAgents("the canary runs 2.0.0", a -> !a.getName().equals("edge-1") || Fleets.runs(a, "marker", "2.0.0", "INACTIVE")
                    || Fleets.runs(a, "marker", "2.0.0", "ACTIVE"), "edge-1", "edge-2");
            String leader = Fleets.waitForStatus(fleet.orchestrator().socket(), "a leader", st -> !st.getLeader().isEmpty()).getLeader();
            dom = browse(url, "--dump-dom");
            browse(url, "--screenshot=" + SHOTS.resolve("fleet-rollout.png").toAbsolutePath());
            assertThat(dom).as("the rollout as its script filled it").contains("leader " + leader)
                    .containsPattern("<tr data-rollout=\"1\"><td class=\"num\">1</td><td>marker@2.0.0 \\(from 1.0.0\\)</td>"
                            + "<td><span><span class=\"(CANARY|BAKING)\">(CANARY|BAKING)</span>")
                    .containsPattern("/1 applied</span></td><td class=\"num\">0 \\(0\\)</td><td>agent=edge-1, then its live deployments</td>"
                            + "<td>600 s");

            // read-only, and only for the names it has
            assertThat(http(at, "POST", "127.0.0.1:" + at.getPort(), "/api/fleet")).startsWith("HTTP/1.1 405").contains("read-only");
            assertThat(http(at, "GET", "evil.example:" + at.getPort(), "/api/fleet")).startsWith("HTTP/1.1 421")
                    .contains("not to host 'evil.example:" + at.getPort() + "'");
            assertThat(http(at, "GET", "localhost:" + at.getPort(), "/api/fleet")).startsWith("HTTP/1.1 200").contains("\"edge-1\"");
        }
    }

    @Test
    void aCallerThePolicyDoesNotGrantIsRefusedAndAudited() throws Exception {
        Path policy = Files.writeString(tmp.resolve("policy.yaml"), """
                rules:
                  - name: operators
                    caller: {transport: uds}
                    decision: granted
                  - name: responses
                    on: response
                    decision: granted
                """);
        fleet = Fleet.start(tmp, s -> s.withPolicy(policy).withDashboard(new InetSocketAddress("127.0.0.1", 0)));
        InetSocketAddress at = fleet.orchestrator().dashboardAddress();
        String host = "127.0.0.1:" + at.getPort();
        for (String path : List.of("/", "/api/fleet", "/dashboard.js")) {
            assertThat(http(at, "GET", host, path)).as(path).startsWith("HTTP/1.1 403").contains("denied by rule 'default'").contains("Dashboard.Read")
                    .contains("http:uid=" + dev.interlayer.control.Policy.processUid());
        }
        assertThat(fleet.orchestrator().audit().query(100, "denied", "Dashboard", 0)).as("the audit log").hasSizeGreaterThanOrEqualTo(3)
                .allMatch(e -> e.method().equals("Read"));
        String dom = browse("http://" + host + "/", "--dump-dom");
        assertThat(dom).contains("denied by rule 'default'");
    }
}
