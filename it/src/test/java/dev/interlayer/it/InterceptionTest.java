package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.it.InterceptionLab.Run;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Transparent interception end to end, in two network namespaces this test creates and deletes: unmodified {@code curl},
 * {@code redis-cli} and a Python client in the client namespace talk to servers in the server namespace through a veth
 * pair, and a real agent process ({@code java -jar interlayer.jar run}) in the client namespace intercepts them with its
 * nftables table ({@link InterceptionLab} makes the namespaces). The receiver, a small Python server, records whether each request carries the {@code tag} module's tag
 * (and tags its reply the same way, so the agent's tag module can remove it): only the selected uid's, application's or
 * executable's connections are tagged.
 *
 * <p>Needs root (namespaces, nftables); installs nftables and redis with apt-get when missing, as the other end-to-end
 * tests install their servers. Skips, saying so, only where the kernel has no nftables.
 */
class InterceptionTest {

    private static final String TAG = "<interlayer-layer4.5-sample-tag>";
    private static final String SERVER = InterceptionLab.SERVER;
    private static final int[] PORTS = {8081, 8082, 8083};
    private static final int USER = 1234;
    private static final int OTHER_USER = 1235;

    @RegisterExtension
    static final InterceptionLab.Extension LAB = new InterceptionLab.Extension("t");
    private static InterceptionLab lab;
    private static Path dir;
    private static Path serverLog;

    @BeforeAll
    static void namespaces() throws Exception {
        lab = LAB.lab();
        InterceptionLab.install("redis-server", "redis-server", "redis-tools");
        dir = lab.dir;
        Path script = lab.resource("intercept-server.py");
        serverLog = dir.resolve("server.log");
        Files.writeString(serverLog, "");
        List<String> cmd = new ArrayList<>(List.of(InterceptionLab.python(), script.toString(), TAG, "16", serverLog.toString()));
        for (int p : PORTS) cmd.add(String.valueOf(p));
        Process server = lab.startServer(null, cmd.toArray(String[]::new));
        assertThat(new String(server.getInputStream().readNBytes(6), StandardCharsets.UTF_8)).as("the Python server starts").isEqualTo("ready\n");
        lab.startServer(dir.resolve("redis.log"), "redis-server", "--port", "6379", "--bind", "0.0.0.0", "--protected-mode", "no",
                "--save", "", "--appendonly", "no");
        Agents.waitFor("redis-server answers", () -> client(-1, "redis-cli", "-h", SERVER, "PING").out().contains("PONG"));
    }

    @Test
    void onlyTheSelectedUidsConnectionsAreTaggedAndEachGoesToItsOriginalDestination() throws Exception {
        Process agent = startAgent("uid", """
                interception:
                  outbound:
                    - to: [%s/32]
                      ports: [8081-8083, 6379]
                modules:
                  - name: tag
                    params: {every: 16}
                    selector: {uid: [%d]}
                """.formatted(SERVER, USER));
        for (int port : PORTS) {
            for (int uid : new int[] {-1, USER, OTHER_USER}) {
                String path = "/uid-" + uid + "-port-" + port;
                Run r = client(uid, "curl", "-sS", "-m", "5", "http://" + SERVER + ":" + port + path);
                assertThat(r.code()).as(r.out()).isZero();
                // the body names the port the server accepted on: the agent connected to the original destination
                assertThat(r.out()).contains("port=" + port + " path=" + path);
                assertThat(received(path)).as("at the receiver, " + path).contains("tagged=" + (uid == USER ? "True" : "False"));
            }
        }
        // each uid came from the mark the table gave the connection's SYN (root's, uid 0, as well): no socket was looked up
        String metrics = lab.metrics("uid");
        assertThat(counter(metrics, "interlayer_process_lookups_total{way=\"mark\"}")).isGreaterThanOrEqualTo(3 * PORTS.length);
        assertThat(counter(metrics, "interlayer_process_lookups_total{way=\"socket\"}")).isZero();
        // the connections no module took (the other uids') ran on the direct path, to their original destinations
        assertThat(counter(metrics, "interlayer_direct_connections_total")).isGreaterThanOrEqualTo(2 * PORTS.length);
        // redis-cli, unmodified, through the agent: while its BLPOP waits, the agent holds its connection, to the original
        // destination, and knows the process behind it
        Process blpop = new ProcessBuilder("ip", "netns", "exec", lab.clientNs, "redis-cli", "-h", SERVER, "BLPOP", "nothing", "10").start();
        Run conns = null;
        // each look starts the CLI's JVM: on a loaded machine that takes seconds
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(8);
        while (System.nanoTime() < deadline) {
            conns = cli("conns", "list", "--socket", dir.resolve("uid/control.sock").toString());
            if (conns.out().contains(SERVER + ":6379")) break;
            Thread.sleep(100);
        }
        assertThat(conns.out()).as("interlayer conns list").contains("intercept").contains(SERVER + ":6379").contains("redis-cli");
        assertThat(blpop.waitFor(15, TimeUnit.SECONDS)).isTrue();
        assertThat(client(-1, "redis-cli", "-h", SERVER, "SET", "k", "through-the-agent").out()).contains("OK");
        assertThat(client(-1, "redis-cli", "-h", SERVER, "GET", "k").out()).contains("through-the-agent");
        // status shows the table as the kernel holds it
        Run status = cli("status", "--socket", dir.resolve("uid/control.sock").toString());
        assertThat(status.out()).contains("table inet interlayer").contains("redirect to :" + 15001).contains("daddr " + SERVER);
        assertThat(agent.isAlive()).isTrue();
    }

    @Test
    void appAndExeSelectorsTagOnlyThatProgramsConnections() throws Exception {
        String curl = Path.of(InterceptionLab.run(List.of("readlink", "-f", InterceptionLab.run(List.of("sh", "-c", "command -v curl")).out().strip())).out().strip()).toString();
        startAgent("exe", """
                interception:
                  outbound:
                    - to: [%s/32]
                modules:
                  - name: tag
                    params: {every: 16}
                    selector: {exe: [%s], app: [curl]}
                """.formatted(SERVER, curl));
        Run r = client(-1, "curl", "-sS", "-m", "5", "http://" + SERVER + ":8082/by-curl");
        assertThat(r.code()).as(r.out()).isZero();
        assertThat(received("/by-curl")).contains("tagged=True");
        Run py = client(-1, InterceptionLab.python(), "-c", "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://" + SERVER
                + ":8082/by-python', timeout=5).read().decode())");
        assertThat(py.code()).as(py.out()).isZero();
        assertThat(py.out()).contains("path=/by-python");
        assertThat(received("/by-python")).contains("tagged=False");
        // as root the agent found both processes in the eBPF map filled at connect(), with no socket table query; a kernel
        // that cannot load the programs says so in one line and the lookups use sock_diag
        String log = Files.readString(dir.resolve("exe/agent.log"));
        if (log.contains("process lookups use sock_diag")) return;
        assertThat(log).contains("eBPF map filled at connect()");
        String metrics = lab.metrics("exe");
        assertThat(counter(metrics, "interlayer_process_lookups_total{way=\"bpf\"}")).isGreaterThanOrEqualTo(2);
        assertThat(counter(metrics, "interlayer_process_lookups_total{way=\"socket\"}")).isZero();
    }

    @Test
    void onlyTheConnectionsOfProcessesInTheSelectedCgroupAreInterceptedOrTagged() throws Exception {
        Path mount = dev.interlayer.engine.Cgroup2.mount();
        assertThat(mount).as("a cgroup2 mount (/proc/self/mountinfo)").isNotNull();
        // the test's own cgroups, /NAME and /NAME/app below it, removed at the end (once curl, their only process, exited)
        String name = "interlayer-it-" + ProcessHandle.current().pid();
        Path group = mount.resolve(name);
        Path app = group.resolve("app");
        Files.createDirectories(app);
        try {
            // the rule intercepts only connections of processes in /NAME or below; every intercepted one is tagged
            startAgent("cgroup-rule", """
                    interception:
                      outbound:
                        - to: [%s/32]
                          cgroup: [/%s]
                    modules:
                      - name: tag
                        params: {every: 16}
                        selector: {listener: [intercept]}
                    """.formatted(SERVER, name));
            Run in = lab.clientInCgroup(app, "curl", "-sS", "-m", "5", "http://" + SERVER + ":8081/cgroup-rule-in");
            assertThat(in.code()).as(in.out()).isZero();
            assertThat(received("/cgroup-rule-in")).contains("tagged=True");
            assertThat(client(-1, "curl", "-sS", "-m", "5", "http://" + SERVER + ":8081/cgroup-rule-out").code()).isZero();
            assertThat(received("/cgroup-rule-out")).contains("tagged=False");
            Run status = cli("status", "--socket", dir.resolve("cgroup-rule/control.sock").toString());
            assertThat(status.out()).contains("socket cgroupv2 level 1 \"" + Path.of("/sys/fs/cgroup").relativize(group) + "\"");
            lab.stopAgents();

            // the selector: everything to the server intercepted, only /NAME's processes (and below) tagged
            startAgent("cgroup-selector", """
                    interception:
                      outbound:
                        - to: [%s/32]
                    modules:
                      - name: tag
                        params: {every: 16}
                        selector: {cgroup: [/%s]}
                    """.formatted(SERVER, name));
            in = lab.clientInCgroup(app, "curl", "-sS", "-m", "5", "http://" + SERVER + ":8082/cgroup-selector-in");
            assertThat(in.code()).as(in.out()).isZero();
            assertThat(received("/cgroup-selector-in")).contains("tagged=True");
            assertThat(client(-1, "curl", "-sS", "-m", "5", "http://" + SERVER + ":8082/cgroup-selector-out").code()).isZero();
            assertThat(received("/cgroup-selector-out")).contains("tagged=False");
        } finally {
            Files.deleteIfExists(app);
            Files.deleteIfExists(group);
        }
    }

    @Test
    void aMissingCgroupStopsTheAgentSayingWhichPathItChecked() throws Exception {
        Path d = dir.resolve("cgroup-missing");
        Files.createDirectories(d);
        Files.writeString(d.resolve("agent.yaml"), """
                agent:
                  control: {enabled: false}
                interception:
                  outbound:
                    - cgroup: [/interlayer-no-such-cgroup]
                """);
        Run r = cli("run", "--config", d.resolve("agent.yaml").toString(), "--check");
        assertThat(r.code()).as(r.out()).isNotZero();
        assertThat(r.out()).contains("cgroup '/interlayer-no-such-cgroup' does not exist").contains("must exist before the agent starts");
    }

    @Test
    void anAgentInterceptingAllOutboundTcpNeverInterceptsItsOwnConnections() throws Exception {
        // no destination, no port: every outbound TCP connection, the agent's own upstream connections included were they not
        // marked; a loop would bring each connection back to the agent again and again, and none would reach the server
        startAgent("all", """
                interception:
                  outbound:
                    - {}
                modules:
                  - name: tag
                    params: {every: 16}
                    selector: {app: [curl]}
                """);
        for (int port : PORTS) {
            String path = "/all-" + port;
            Run r = client(-1, "curl", "-sS", "-m", "5", "http://" + SERVER + ":" + port + path);
            assertThat(r.code()).as(r.out()).isZero();
            assertThat(r.out()).contains("port=" + port);
            // tagged (so it went through the agent) and received once: the agent's connection to the server was not intercepted
            assertThat(received(path)).contains("tagged=True");
            assertThat(Files.readAllLines(serverLog).stream().filter(l -> l.contains("path=" + path + " ")).count()).isEqualTo(1);
        }
    }

    @Test
    void theTableIsGoneAfterAStopAndAKilledAgentsTableIsReplacedOnRestart() throws Exception {
        String yaml = """
                interception:
                  outbound:
                    - to: [%s/32]
                      uid: [%d]
                modules:
                  - name: tag
                    params: {every: 16}
                """.formatted(SERVER, USER);
        // an earlier test's agent, killed, left it on: an agent turns it off on stop only if it turned it on
        client(-1, "sysctl", "-w", "net.ipv4.tcp_fwmark_accept=0");
        Process agent = startAgent("closed", yaml);
        assertThat(tables()).contains("interlayer");
        assertThat(fwmarkAccept()).as("the agent turned tcp_fwmark_accept on for the uid marks").isEqualTo("1");
        agent.destroy(); // SIGTERM: a normal stop
        assertThat(agent.waitFor(20, TimeUnit.SECONDS)).isTrue();
        assertThat(tables()).doesNotContain("interlayer");
        assertThat(fwmarkAccept()).as("and off again when it stopped").isEqualTo("0");
        assertThat(client(USER, "curl", "-sS", "-m", "5", "http://" + SERVER + ":8081/after-stop").code()).isZero();
        assertThat(received("/after-stop")).contains("tagged=False");

        agent = startAgent("closed", yaml);
        agent.destroyForcibly(); // SIGKILL: no chance to clean up
        assertThat(agent.waitFor(20, TimeUnit.SECONDS)).isTrue();
        assertThat(tables()).contains("interlayer");
        // fail-closed: refused at once (curl's exit 7), not a hang (28) and not around the agent
        long t0 = System.nanoTime();
        Run refused = client(USER, "curl", "-sS", "-m", "5", "http://" + SERVER + ":8081/after-kill");
        assertThat(refused.code()).as(refused.out()).isEqualTo(7);
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0)).isLessThan(2000);
        // another uid's traffic is not matched by the rule and flows
        assertThat(client(OTHER_USER, "curl", "-sS", "-m", "5", "http://" + SERVER + ":8081/other-after-kill").code()).isZero();

        agent = startAgent("closed", yaml);
        assertThat(Files.readString(dir.resolve("closed/agent.log"))).contains("replaced the nftables table inet interlayer");
        assertThat(client(USER, "curl", "-sS", "-m", "5", "http://" + SERVER + ":8081/after-restart").code()).isZero();
        assertThat(received("/after-restart")).contains("tagged=True");
        agent.destroy();
        assertThat(agent.waitFor(20, TimeUnit.SECONDS)).isTrue();
        assertThat(tables()).doesNotContain("interlayer");
    }

    @Test
    void aKilledFailOpenAgentsConnectionsAreRefusedBrieflyThenGoDirectly() throws Exception {
        Process agent = startAgent("open", """
                interception:
                  failure: fail-open
                  outbound:
                    - to: [%s/32]
                modules:
                  - name: tag
                    params: {every: 16}
                """.formatted(SERVER));
        Thread.sleep(4000); // past the first lifetime of the alive element: the agent renews it
        assertThat(client(-1, "curl", "-sS", "-m", "5", "http://" + SERVER + ":8083/open-alive").code()).isZero();
        assertThat(received("/open-alive")).contains("tagged=True");
        agent.destroyForcibly();
        assertThat(agent.waitFor(20, TimeUnit.SECONDS)).isTrue();
        long killed = System.nanoTime();
        int attempt = 0;
        while (true) {
            String path = "/open-after-kill-" + attempt++;
            Run r = client(-1, "curl", "-sS", "-m", "5", "http://" + SERVER + ":8083" + path);
            // refused (7) while the element lives, then through; never a timeout (28): no black hole
            assertThat(r.code()).as(r.out()).isIn(0, 7);
            if (r.code() == 0) {
                assertThat(received(path)).contains("tagged=False");
                break;
            }
            assertThat(TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - killed)).as("seconds until connections go directly").isLessThan(8);
            Thread.sleep(200);
        }
    }

    @Test
    void withoutCapNetAdminTheAgentSaysSoAndInstallsNothing() throws Exception {
        Path d = dir.resolve("unprivileged");
        Files.createDirectories(d.resolve("modules"));
        Files.setPosixFilePermissions(d, PosixFilePermissions.fromString("rwxrwxrwx"));
        Files.setPosixFilePermissions(d.resolve("modules"), PosixFilePermissions.fromString("rwxrwxrwx"));
        Files.writeString(d.resolve("agent.yaml"), """
                agent:
                  control: {enabled: false}
                  io-threads: 1
                interception:
                  outbound:
                    - to: [%s/32]
                """.formatted(SERVER));
        Process p = new ProcessBuilder("ip", "netns", "exec", lab.clientNs, "setpriv", "--reuid", String.valueOf(USER), "--regid", String.valueOf(USER),
                "--clear-groups", "env", "HOME=" + d, System.getProperty("interlayer.java"), "--enable-native-access=ALL-UNNAMED",
                "--sun-misc-unsafe-memory-access=allow", "-jar", InterceptionLab.distJar(), "run", "--config", d.resolve("agent.yaml").toString())
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(out).isNotZero();
        assertThat(out).contains("CAP_NET_ADMIN").contains("nothing of it is installed");
        assertThat(tables()).doesNotContain("interlayer");
        assertThat(client(-1, "curl", "-sS", "-m", "5", "http://" + SERVER + ":8081/unprivileged").code()).isZero();
    }

    @Test
    void runCheckPrintsTheRulesItWouldInstall() throws Exception {
        Path d = dir.resolve("check");
        Files.createDirectories(d.resolve("modules"));
        Files.writeString(d.resolve("agent.yaml"), """
                agent:
                  control: {enabled: false}
                interception:
                  listen: 127.0.0.1:15099
                  outbound:
                    - to: [192.0.2.0/24, 198.51.100.7/32]
                      ports: [80, 8000-8100]
                      uid: [1000]
                      gid: [100]
                """);
        Run r = cli("run", "--config", d.resolve("agent.yaml").toString(), "--check");
        assertThat(r.code()).as(r.out()).isZero();
        assertThat(r.out()).contains("ip daddr { 192.0.2.0/24, 198.51.100.7/32 }").contains("tcp dport { 80, 8000-8100 }")
                .contains("meta skuid 1000").contains("meta skgid 100").contains("redirect to :15099").contains("failure fail-closed");
        // nothing was installed by a check
        assertThat(tables()).doesNotContain("interlayer");
    }

    // ---- helpers ----

    private Process startAgent(String name, String yaml) throws Exception {
        return lab.startAgent(name, yaml, "tag");
    }

    /** The server's record of the request with {@code path}. */
    private static String received(String path) throws Exception {
        String[] found = new String[1];
        Agents.waitFor("the server's record of " + path, () -> {
            try {
                found[0] = Files.readAllLines(serverLog).stream().filter(l -> l.contains("path=" + path + " ")).findFirst().orElse(null);
                return found[0] != null;
            } catch (IOException e) {
                return false;
            }
        });
        return found[0];
    }

    /** The value of the sample {@code series} (name and labels) in Prometheus text; fails if it is not there. */
    private static double counter(String metrics, String series) {
        return metrics.lines().filter(l -> l.startsWith(series + " ")).mapToDouble(l -> Double.parseDouble(l.substring(series.length() + 1)))
                .findFirst().orElseThrow(() -> new AssertionError(series + " is not in the metrics:\n" + metrics));
    }

    private static String fwmarkAccept() {
        return client(-1, "cat", "/proc/sys/net/ipv4/tcp_fwmark_accept").out().strip();
    }

    private static String tables() {
        return lab.tables();
    }

    private static Run client(int uid, String... cmd) {
        return lab.client(uid, cmd);
    }

    private static Run cli(String... args) {
        return lab.cli(args);
    }
}
