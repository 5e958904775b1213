package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.control.testing.TempDirs;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * The network namespaces of the interception tests: a client namespace, where the agent and the unmodified clients run,
 * and a server namespace, where the receivers run, joined by a veth pair ({@value #SUBNET}1 and {@link #SERVER}, and over
 * IPv6 {@value #SUBNET6}1 and {@link #SERVER6}); both
 * deleted by {@link #close}, with what still runs in them. Each test class makes its own (named by {@code tag} and the
 * JVM's pid) through an {@link Extension}, which also stops the agents started here after each test.
 *
 * <p>Needs root; installs nftables with apt-get when missing. Skips, saying so, where the kernel has no nftables.
 */
final class InterceptionLab implements AutoCloseable {

    static final String SUBNET = "10.231.7.";
    static final String SERVER = SUBNET + "2";
    /** The IPv6 prefix of the veth pair: {@value #SUBNET6}1 in the client namespace, {@link #SERVER6} in the server's. */
    static final String SUBNET6 = "fd00:231:7::";
    static final String SERVER6 = SUBNET6 + "2";

    final String clientNs;
    final String serverNs;
    final Path dir;
    private final List<Process> servers = new ArrayList<>();
    private final List<Process> agents = new ArrayList<>();
    private final List<Path> agentLogs = new ArrayList<>();

    /**
     * A test class's lab: made before its {@code @BeforeAll} methods run, agents stopped after each test, closed after all.
     * Register it as a static field: {@code @RegisterExtension static final InterceptionLab.Extension LAB = new Extension("u")}.
     */
    static final class Extension implements BeforeAllCallback, AfterEachCallback, AfterAllCallback {
        private final String tag;
        private InterceptionLab lab;

        Extension(String tag) {
            this.tag = tag;
        }

        InterceptionLab lab() {
            return lab;
        }

        @Override
        public void beforeAll(ExtensionContext context) throws Exception {
            lab = create(tag);
        }

        @Override
        public void afterEach(ExtensionContext context) throws Exception {
            if (lab != null) lab.stopAgents();
        }

        @Override
        public void afterAll(ExtensionContext context) throws Exception {
            if (lab != null) lab.close();
        }
    }

    private InterceptionLab(String clientNs, String serverNs, Path dir) {
        this.clientNs = clientNs;
        this.serverNs = serverNs;
        this.dir = dir;
    }

    /** Creates the namespaces and the veth pair; {@code tag} (one letter) tells this test class's apart from another's. */
    private static InterceptionLab create(String tag) throws Exception {
        Assumptions.assumeTrue("root".equals(System.getProperty("user.name")) || run(List.of("id", "-u")).out.strip().equals("0"),
                "transparent interception needs root to create network namespaces and nftables rules; run the it module as root");
        install("nft", "nftables");
        long pid = ProcessHandle.current().pid();
        Path dir = Files.createTempDirectory("interlayer-intercept-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x")); // the unprivileged agent reads its config
        InterceptionLab lab = new InterceptionLab("ilx-c" + tag + "-" + pid, "ilx-s" + tag + "-" + pid, dir);
        must("ip", "netns", "add", lab.clientNs);
        must("ip", "netns", "add", lab.serverNs);
        String c = "ilx-c" + tag + pid % 100000;
        String s = "ilx-s" + tag + pid % 100000;
        must("ip", "link", "add", c, "type", "veth", "peer", "name", s);
        must("ip", "link", "set", c, "netns", lab.clientNs);
        must("ip", "link", "set", s, "netns", lab.serverNs);
        must("ip", "-n", lab.clientNs, "addr", "add", SUBNET + "1/24", "dev", c);
        must("ip", "-n", lab.serverNs, "addr", "add", SERVER + "/24", "dev", s);
        // nodad: usable at once, without the seconds of duplicate address detection
        must("ip", "-n", lab.clientNs, "addr", "add", SUBNET6 + "1/64", "dev", c, "nodad");
        must("ip", "-n", lab.serverNs, "addr", "add", SERVER6 + "/64", "dev", s, "nodad");
        for (String[] l : new String[][] {{lab.clientNs, c}, {lab.serverNs, s}, {lab.clientNs, "lo"}, {lab.serverNs, "lo"}}) {
            must("ip", "-n", l[0], "link", "set", l[1], "up");
        }
        Run nft = run(List.of("ip", "netns", "exec", lab.clientNs, "nft", "list", "ruleset"));
        Assumptions.assumeTrue(nft.code == 0, "this kernel has no nftables (nft list ruleset in a new namespace: " + nft.out.strip() + ")");
        return lab;
    }

    /** Starts {@code cmd} in the server namespace (output to {@code log}, or read by the caller if null); ended by {@link #close}. */
    Process startServer(Path log, String... cmd) throws IOException {
        List<String> c = new ArrayList<>(List.of("ip", "netns", "exec", serverNs));
        c.addAll(List.of(cmd));
        ProcessBuilder pb = new ProcessBuilder(c).redirectErrorStream(true);
        if (log != null) pb.redirectOutput(log.toFile());
        Process p = pb.start();
        servers.add(p);
        return p;
    }

    /**
     * Starts, in the server namespace, dnsmasq on 127.0.0.1:{@code dnsmasqPort} answering from {@code hosts} (hosts file
     * lines, written to {@code hosts} in the lab's folder; dnsmasq and dig installed when missing) and the Python relay in front of it on {@code ports} (IPv4 and IPv6), which records each query's name, the
     * {@code dns-tag} app id and the peer: the relay's record, empty so far.
     */
    Path startDnsRelay(String hostsLines, int dnsmasqPort, String... ports) throws Exception {
        DnsServer.ensureInstalled();
        Path hosts = dir.resolve("hosts");
        Files.writeString(hosts, hostsLines);
        startServer(dir.resolve("dnsmasq.log"), "/usr/sbin/dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=" + dnsmasqPort,
                "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts", "--addn-hosts=" + hosts, "--pid-file=",
                "--user=root", "--cache-size=0");
        Path received = dir.resolve("received.log");
        Files.writeString(received, "");
        List<String> cmd = new ArrayList<>(List.of(python(), resource("intercept-dns.py").toString(), received.toString(), String.valueOf(dnsmasqPort)));
        cmd.addAll(List.of(ports));
        Process relay = startServer(null, cmd.toArray(String[]::new));
        assertThat(new String(relay.getInputStream().readNBytes(6), StandardCharsets.UTF_8)).as("the Python relay starts").isEqualTo("ready\n");
        return received;
    }

    /** Makes {@code p}, started by the test, ended by {@link #close}. */
    void own(Process p) {
        servers.add(p);
    }

    /**
     * Starts an agent in the client namespace from {@code interception} and modules YAML (control on a socket in its folder
     * {@code name}, the {@code samples} modules in its modules folder) and waits until it runs.
     */
    Process startAgent(String name, String yaml, String... samples) throws Exception {
        Path d = dir.resolve(name);
        for (String sample : samples) Agents.deploySample(sample, d.resolve("modules"));
        Files.createDirectories(d.resolve("modules"));
        Files.writeString(d.resolve("agent.yaml"), """
                agent:
                  io-threads: 2
                  control: {socket: %s}
                  metrics: {listen: 127.0.0.1:0}
                """.formatted(d.resolve("control.sock")) + yaml);
        Path log = d.resolve("agent.log");
        // Netty's leak detection at its strictest, as in the in-process tests: a leak is reported in the agent's log. nsenter
        // (the network namespace only), not ip netns exec, which mounts a sysfs of its own: the agent sees the host's cgroup2 tree
        Process p = new ProcessBuilder("nsenter", "--net=/run/netns/" + clientNs, System.getProperty("interlayer.java"), "--enable-native-access=ALL-UNNAMED",
                "--sun-misc-unsafe-memory-access=allow", "-Dio.netty.leakDetection.level=paranoid", "-jar", distJar(), "run", "--config",
                d.resolve("agent.yaml").toString()).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        agents.add(p);
        agentLogs.add(log);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!Files.readString(log).contains("agent running from")) {
            if (!p.isAlive() || System.nanoTime() > deadline) {
                throw new AssertionError("the agent did not start:\n" + Files.readString(log));
            }
            Thread.sleep(50);
        }
        return p;
    }

    /**
     * The metrics of the agent {@code name} started, as its endpoint serves them (read with curl in the client namespace,
     * where it listens on a port it logged).
     */
    String metrics(String name) throws IOException {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("metrics on (http://\\S+)").matcher(Files.readString(dir.resolve(name).resolve("agent.log")));
        if (!m.find()) throw new AssertionError("the agent " + name + " logged no metrics address");
        return client(-1, "curl", "-sS", "-m", "5", m.group(1)).out();
    }

    /** Kills the agents still running, deletes a table a killed one left (the next test starts from none), checks their logs for leaks. */
    void stopAgents() throws Exception {
        for (Process a : agents) {
            if (a.isAlive()) {
                a.destroyForcibly();
                a.waitFor(10, TimeUnit.SECONDS);
            }
        }
        agents.clear();
        run(List.of("ip", "netns", "exec", clientNs, "nft", "delete", "table", "inet", "interlayer"));
        for (Path log : agentLogs) {
            assertThat(Files.readString(log)).as("agent log " + log).doesNotContain("LEAK:");
        }
        agentLogs.clear();
    }

    @Override
    public void close() throws Exception {
        for (Process p : servers) {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
        for (String ns : List.of(clientNs, serverNs)) {
            // what still runs in a namespace would keep it: end it first (only processes of this lab's namespaces)
            for (String pid : run(List.of("ip", "netns", "pids", ns)).out.strip().split("\\s+")) {
                if (!pid.isEmpty()) ProcessHandle.of(Long.parseLong(pid)).ifPresent(ProcessHandle::destroyForcibly);
            }
            run(List.of("ip", "netns", "del", ns));
        }
        assertThat(run(List.of("ip", "netns", "list")).out).doesNotContain(clientNs).doesNotContain(serverNs);
        TempDirs.delete(dir);
    }

    /** The nftables tables of the client namespace. */
    String tables() {
        return run(List.of("ip", "netns", "exec", clientNs, "nft", "list", "tables")).out;
    }

    /** Runs {@code cmd} in the client namespace, as {@code uid} (-1: as root). */
    Run client(int uid, String... cmd) {
        List<String> c = new ArrayList<>(List.of("ip", "netns", "exec", clientNs));
        if (uid >= 0) c.addAll(List.of("setpriv", "--reuid", String.valueOf(uid), "--regid", String.valueOf(uid), "--clear-groups"));
        c.addAll(List.of(cmd));
        return run(c);
    }

    /** Runs {@code cmd} in the client namespace as root, in the cgroup2 directory {@code cgroup} (it joins it first). */
    Run clientInCgroup(Path cgroup, String... cmd) {
        List<String> c = new ArrayList<>(List.of("nsenter", "--net=/run/netns/" + clientNs, "sh", "-c",
                "echo $$ > \"$0\"/cgroup.procs && exec \"$@\"", cgroup.toString()));
        c.addAll(List.of(cmd));
        return run(c);
    }

    /** Runs {@code cmd} in the server namespace. */
    Run server(String... cmd) {
        List<String> c = new ArrayList<>(List.of("ip", "netns", "exec", serverNs));
        c.addAll(List.of(cmd));
        return run(c);
    }

    /** The interlayer CLI (short calls) in the client namespace (as the agent: with the host's cgroup2 tree). */
    Run cli(String... args) {
        List<String> c = new ArrayList<>(List.of("nsenter", "--net=/run/netns/" + clientNs, System.getProperty("interlayer.java"), "--enable-native-access=ALL-UNNAMED",
                "--sun-misc-unsafe-memory-access=allow", "-jar", distJar()));
        c.addAll(List.of(args));
        return run(c);
    }

    static String distJar() {
        return System.getProperty("interlayer.distJar");
    }

    /** The system's python3 (the tests' receivers and one client), installed with apt-get when missing. */
    static String python() {
        if (!Files.isExecutable(Path.of("/usr/bin/python3"))) install("/usr/bin/python3", "python3");
        return "/usr/bin/python3";
    }

    /** Copies the test resource {@code name} into the lab's folder: its path. */
    Path resource(String name) throws IOException {
        Path script = dir.resolve(name);
        try (var in = InterceptionLab.class.getResourceAsStream("/" + name)) {
            Files.write(script, in.readAllBytes());
        }
        return script;
    }

    static void install(String probe, String... packages) {
        if (run(List.of("sh", "-c", "command -v " + probe)).code == 0) return;
        run(List.of("apt-get", "update", "-qq"));
        List<String> cmd = new ArrayList<>(List.of("apt-get", "install", "-y", "-qq"));
        cmd.addAll(List.of(packages));
        Run r = run(cmd);
        assertThat(r.code).as("apt-get install " + String.join(" ", packages) + ": " + r.out).isZero();
    }

    private static void must(String... cmd) {
        Run r = run(List.of(cmd));
        assertThat(r.code).as(String.join(" ", cmd) + ": " + r.out).isZero();
    }

    record Run(int code, String out) {}

    static Run run(List<String> cmd) {
        try {
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
            pb.environment().put("DEBIAN_FRONTEND", "noninteractive");
            Process p = pb.start();
            p.getOutputStream().close();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return new Run(-1, out + " (timed out)");
            }
            return new Run(p.exitValue(), out);
        } catch (IOException e) {
            return new Run(-1, e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Run(-1, "interrupted");
        }
    }
}
