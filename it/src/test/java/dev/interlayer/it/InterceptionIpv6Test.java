package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.it.InterceptionLab.Run;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Transparent interception over IPv6, and of inbound UDP, end to end in the namespaces of {@link InterceptionLab}:
 * unmodified {@code curl -6} and {@code dig -6} in the client namespace reach the Python HTTP server and the DNS relay in
 * front of dnsmasq in the server namespace at {@link InterceptionLab#SERVER6}, through the agent's IPv6 listeners; and
 * queries from the server namespace to a dnsmasq beside the agent, over IPv4 and IPv6, pass the agent's inbound UDP
 * listener and come back byte for byte as dnsmasq answers, from the address and port they were sent to.
 */
class InterceptionIpv6Test {

    private static final String TAG = "<interlayer-layer4.5-sample-tag>";
    private static final String SERVER6 = InterceptionLab.SERVER6;
    private static final String LOCAL = InterceptionLab.SUBNET + "1";
    private static final String LOCAL6 = InterceptionLab.SUBNET6 + "1";
    private static final int[] PORTS = {8091, 8092, 8093};
    private static final int USER = 1234;
    private static final int DNSMASQ = 5353;
    private static final String HOSTS = """
            10.1.2.3 alpha.test
            10.1.2.4 beta.test
            fd00:1::5 beta.test
            """;
    /** Sends one DNS query for alpha.test to port 53 of each address given; prints the address and port that answered, and the answer in hex. */
    private static final String QUERY = """
            import socket, sys
            q = bytes.fromhex('00010100000100000000000005616c70686104746573740000010001')
            for host in sys.argv[1:]:
                s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
                s.sendto(q, (host, 53)); a, src = s.recvfrom(512)
                print(src[0], src[1], a.hex())
            """;

    @RegisterExtension
    static final InterceptionLab.Extension LAB = new InterceptionLab.Extension("6");
    private static InterceptionLab lab;
    private static Path serverLog;
    private static Path received;
    private static Path localDnsLog;

    @BeforeAll
    static void namespaces() throws Exception {
        lab = LAB.lab();
        serverLog = lab.dir.resolve("server.log");
        Files.writeString(serverLog, "");
        Process server = lab.startServer(null, InterceptionLab.python(), lab.resource("intercept-server.py").toString(), TAG, "16",
                serverLog.toString(), "8091", "8092", "8093");
        assertThat(new String(server.getInputStream().readNBytes(6), StandardCharsets.UTF_8)).as("the Python server starts").isEqualTo("ready\n");
        received = lab.startDnsRelay(HOSTS, DNSMASQ, "53");
        // a DNS server beside the agent, on every address of the client namespace, for the inbound queries; it logs who asked
        localDnsLog = lab.dir.resolve("local-dnsmasq.log");
        lab.own(new ProcessBuilder("ip", "netns", "exec", lab.clientNs, "/usr/sbin/dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=53",
                "--no-resolv", "--no-hosts", "--addn-hosts=" + lab.dir.resolve("hosts"), "--pid-file=", "--user=root", "--cache-size=0", "--log-queries",
                "--log-facility=" + localDnsLog).redirectErrorStream(true).redirectOutput(lab.dir.resolve("local-dnsmasq.out").toFile()).start());
        Agents.waitFor("dnsmasq answers over IPv6", () -> !direct("alpha.test").isEmpty());
        Agents.waitFor("the local dnsmasq answers", () -> lab.client(-1, "dig", "@127.0.0.1", "alpha.test", "+short", "+tries=1", "+time=1")
                .out().contains("10.1.2.3"));
    }

    @Test
    void curlAndDigOverIpv6AreInterceptedSelectedByUidAndReachTheirOriginalDestinations() throws Exception {
        lab.startAgent("v6", """
                interception:
                  outbound:
                    - to: ['%s/128']
                      ports: [8091-8093]
                    - {protocol: udp, to: ['%s/128'], ports: [53]}
                modules:
                  - name: tag
                    params: {every: 16}
                    selector: {uid: [%d]}
                  - name: dns-tag
                """.formatted(SERVER6, SERVER6, USER), "tag", "dns-tag");
        for (int port : PORTS) {
            for (int uid : new int[] {-1, USER}) {
                String path = "/v6-uid-" + uid + "-port-" + port;
                Run r = lab.client(uid, "curl", "-6", "-sS", "-m", "5", "http://[" + SERVER6 + "]:" + port + path);
                assertThat(r.code()).as(r.out()).isZero();
                // the body names the port the server accepted on: the agent connected to the original destination
                assertThat(r.out()).contains("port=" + port + " path=" + path);
                // through the agent: the server's peer is the client namespace's address, as without it; tagged only for the uid
                assertThat(received(path)).contains("tagged=" + (uid == USER ? "True" : "False")).contains("peer=" + LOCAL6 + ":");
            }
        }
        for (String name : List.of("alpha.test", "beta.test", "missing.test")) {
            assertThat(dig(USER, name)).as("%s over IPv6 through the agent", name).isEqualTo(direct(name));
            assertThat(last()).contains("name=" + name + " app=dig peer=" + LOCAL6);
        }
        Run status = lab.cli("status", "--socket", lab.dir.resolve("v6/control.sock").toString());
        assertThat(status.out()).contains("table inet interlayer").contains("ip6 daddr != ::1").contains("ip6 daddr " + SERVER6)
                .contains("redirect to :15001");
        assertThat(Files.readString(lab.dir.resolve("v6/agent.log"))).contains("listener intercept6 on [0:0:0:0:0:0:0:1]:15001")
                .contains("listener intercept-udp6 on [0:0:0:0:0:0:0:1]:15001");
    }

    @Test
    void anAgentInterceptingAllOutboundTcpAndUdpOfBothFamiliesMakesNoLoopAndAStopDeletesItsTable() throws Exception {
        Process agent = lab.startAgent("all", """
                interception:
                  outbound:
                    - protocol: [tcp, udp]
                modules:
                  - name: tag
                    params: {every: 16}
                  - name: dns-tag
                """, "tag", "dns-tag");
        Run check = lab.cli("run", "--config", lab.dir.resolve("all/agent.yaml").toString(), "--check");
        assertThat(check.out()).as(check.out()).contains("intercept6 on [0:0:0:0:0:0:0:1]:15001").contains("intercept-udp6 on udp [0:0:0:0:0:0:0:1]:15001")
                .contains("meta mark != 0x000001e5 ip6 daddr != ::1 meta l4proto { tcp, udp } redirect to :15001")
                .contains("meta mark != 0x000001e5 ip daddr != 127.0.0.0/8 meta l4proto { tcp, udp } redirect to :15001");
        // every outbound packet of either family, the agent's own upstream ones included were they not marked: a loop would
        // bring each back to the agent again and again, and none would reach the server
        for (String host : List.of("[" + SERVER6 + "]", InterceptionLab.SERVER)) {
            String path = "/all-" + (host.startsWith("[") ? "v6" : "v4");
            Run r = lab.client(-1, "curl", "-sS", "-m", "5", "http://" + host + ":8091" + path);
            assertThat(r.out()).contains("port=8091 path=" + path);
            assertThat(received(path)).contains("tagged=True");
        }
        assertThat(dig(-1, "beta.test")).isEqualTo(direct("beta.test"));
        assertThat(Files.readAllLines(received).stream().filter(l -> l.contains("name=beta.test app=dig ")).count()).isEqualTo(1);
        agent.destroy();
        assertThat(agent.waitFor(20, TimeUnit.SECONDS)).isTrue();
        assertThat(lab.tables()).doesNotContain("interlayer");
    }

    @Test
    void inboundUdpAndIpv6TcpPassTheAgentAndAnswersComeBackByteExactFromTheAddressAsked() throws Exception {
        Path script = lab.resource("intercept-server.py");
        Path localLog = lab.dir.resolve("local-server.log");
        Files.writeString(localLog, "");
        Process local = new ProcessBuilder("ip", "netns", "exec", lab.clientNs, InterceptionLab.python(), script.toString(), TAG, "16",
                localLog.toString(), "9095").redirectErrorStream(true).start();
        lab.own(local);
        assertThat(new String(local.getInputStream().readNBytes(6), StandardCharsets.UTF_8)).as("the local server starts").isEqualTo("ready\n");
        lab.startAgent("in", """
                interception:
                  inbound:
                    - {protocol: udp, ports: [53]}
                    - {from: ['%s/128'], ports: [9095]}
                """.formatted(SERVER6));
        // dnsmasq's own answer, asked on the loopback (not intercepted: the rules take what arrives from another host)
        String direct = lab.client(-1, InterceptionLab.python(), "-c", QUERY, "127.0.0.1").out().strip();
        assertThat(direct).startsWith("127.0.0.1 53 0001");
        String answer = direct.substring(direct.lastIndexOf(' ') + 1);
        Files.writeString(localDnsLog, "");
        Run asked = lab.server(InterceptionLab.python(), "-c", QUERY, LOCAL, LOCAL6);
        assertThat(asked.out().lines().toList()).as(asked.out()).containsExactly(LOCAL + " 53 " + answer, LOCAL6 + " 53 " + answer);
        assertThat(lab.server("dig", "@" + LOCAL6, "beta.test", "AAAA", "+short", "+tries=1", "+time=3").out().strip()).isEqualTo("fd00:1::5");
        // through the agent: dnsmasq was asked from this host's own addresses (the agent's upstream sockets), not the client's
        String asks = Files.readString(localDnsLog);
        assertThat(asks).contains("alpha.test from " + LOCAL).contains("alpha.test from " + LOCAL6).contains("beta.test from " + LOCAL6)
                .doesNotContain("from " + InterceptionLab.SERVER).doesNotContain("from " + SERVER6);
        Run conns = lab.cli("conns", "list", "--socket", lab.dir.resolve("in/control.sock").toString());
        assertThat(conns.out()).as("interlayer conns list").contains("intercept-in-udp").contains(InterceptionLab.SERVER + ":").contains("[fd00:231:7:0:0:0:0:2");
        // inbound TCP over IPv6: the local server's peer is the agent on this host, and it answered the port asked
        Run r = lab.server(InterceptionLab.python(), script.toString(), TAG, "16", "--client", LOCAL6, "9095", "/in-v6");
        assertThat(r.out()).as(r.out()).contains("port=9095 path=/in-v6");
        assertThat(Files.readString(localLog)).contains("path=/in-v6 peer=" + LOCAL6 + ":");
        Run status = lab.cli("status", "--socket", lab.dir.resolve("in/control.sock").toString());
        assertThat(status.out()).contains("chain prerouting").contains("meta nfproto ipv6 udp dport 53")
                .contains("ip6 saddr " + SERVER6);
    }

    // ---- helpers ----

    /** dnsmasq's answer, asked in the server namespace directly. */
    private static List<String> direct(String name) {
        return answer(lab.server("dig", "@127.0.0.1", "-p", String.valueOf(DNSMASQ), name, "+noall", "+answer", "+tries=1", "+time=3"));
    }

    /** The answer {@code dig -6} gets in the client namespace, as {@code uid} (-1: root), from the server's IPv6 address. */
    private static List<String> dig(int uid, String name) {
        return answer(lab.client(uid, "dig", "-6", "@" + SERVER6, name, "+nocookie", "+noall", "+answer", "+tries=1", "+time=3"));
    }

    private static List<String> answer(Run r) {
        assertThat(r.out()).as("dig").doesNotContain("timed out").doesNotContain("no servers could be reached").doesNotContain("refused");
        return r.out().lines().filter(l -> !l.isBlank() && !l.startsWith(";")).map(String::strip).sorted().toList();
    }

    /** The relay's record of the last query it received. */
    private static String last() throws Exception {
        List<String> lines = Files.readAllLines(received);
        return lines.isEmpty() ? "" : lines.getLast();
    }

    /** The server's record of the request with {@code path}. */
    private static String received(String path) throws Exception {
        List<String> lines = Files.readAllLines(serverLog).stream().filter(l -> l.contains("path=" + path + " ")).toList();
        assertThat(lines).as("the server's record of " + path).hasSize(1);
        return lines.getFirst();
    }
}
