package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.it.InterceptionLab.Run;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Transparent interception of outbound UDP end to end, in the namespaces of {@link InterceptionLab}: unmodified {@code dig}
 * in the client namespace asks a DNS server in the server namespace, and the agent there intercepts its queries and runs
 * the {@code dns-tag} module on them, which appends the querying application's name to each query. The receiver, a small
 * Python relay in front of a real dnsmasq, records the name and the app id each query carries, so only what the rules
 * select is tagged, and dig's answers are dnsmasq's.
 */
class InterceptionUdpTest {

    private static final String SERVER = InterceptionLab.SERVER;
    private static final int USER = 1234;
    private static final int DNSMASQ = 5353;
    private static final String HOSTS = """
            10.1.2.3 alpha.test
            10.1.2.4 beta.test
            10.1.2.5 beta.test
            192.0.2.9 delta.test
            """;

    @RegisterExtension
    static final InterceptionLab.Extension LAB = new InterceptionLab.Extension("u");
    private static InterceptionLab lab;
    private static Path received;

    @BeforeAll
    static void namespaces() throws Exception {
        lab = LAB.lab();
        received = lab.startDnsRelay(HOSTS, DNSMASQ, "53", "5300");
        Agents.waitFor("dnsmasq answers", () -> !direct("alpha.test").isEmpty());
    }

    @Test
    void digsQueriesOfTheSelectedUidAreTaggedWithItsNameAndGetDnsmasqsAnswers() throws Exception {
        lab.startAgent("uid", """
                interception:
                  outbound:
                    - protocol: udp
                      to: [%s/32]
                      ports: [53]
                      uid: [%d]
                modules:
                  - name: dns-tag
                """.formatted(SERVER, USER), "dns-tag");
        for (String name : List.of("alpha.test", "beta.test", "delta.test", "missing.test")) {
            List<String> answer = direct(name);
            // +nocookie, +noedns: the tagger appends its option to dig's OPT record, or adds the record
            for (String opt : List.of("+nocookie", "+noedns", "+edns")) {
                assertThat(dig(USER, 53, name, opt)).as("%s %s through the agent", name, opt).isEqualTo(answer);
                assertThat(last(53)).as("at the receiver").contains("name=" + name + " app=dig ");
            }
            // root's queries are not selected by the rule, nor the selected uid's to another port: not intercepted
            assertThat(dig(-1, 53, name, "+nocookie")).isEqualTo(answer);
            assertThat(last(53)).contains("name=" + name + " app=- ");
            assertThat(dig(USER, 5300, name, "+nocookie")).isEqualTo(answer);
            assertThat(last(5300)).contains("name=" + name + " app=- ");
        }
        // the flows belong to the listener intercept-udp and went to their original destination
        Run conns = lab.cli("conns", "list", "--socket", lab.dir.resolve("uid/control.sock").toString());
        assertThat(conns.out()).as("interlayer conns list").contains("intercept-udp").contains(SERVER + ":53").contains("dig");
        Run status = lab.cli("status", "--socket", lab.dir.resolve("uid/control.sock").toString());
        assertThat(status.out()).contains("udp dport 53").contains("redirect to :15001");
    }

    @Test
    void anAgentInterceptingAllOutboundTcpAndUdpNeverInterceptsItsOwnDatagrams() throws Exception {
        // no destination, no port: every outbound datagram, the agent's own upstream ones included were they not marked; a
        // loop would bring each query back to the agent again and again, and none would reach the server
        lab.startAgent("all", """
                interception:
                  outbound:
                    - protocol: [tcp, udp]
                modules:
                  - name: dns-tag
                """, "dns-tag");
        assertThat(dig(-1, 53, "beta.test", "+nocookie")).isEqualTo(direct("beta.test"));
        assertThat(last(53)).contains("name=beta.test app=dig ");
        assertThat(Files.readAllLines(received).stream().filter(l -> l.contains("name=beta.test app=dig ")).count()).isEqualTo(1);
        // one socket, two destinations: the kernel gives the second redirected flow a port of its own, and each flow still
        // goes to its own destination, knows the application, and its answer comes back to the one socket
        Run py = lab.client(-1, InterceptionLab.python(), "-c", """
                import socket
                q = bytes.fromhex('00010100000100000000000005616c70686104746573740000010001')
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
                s.sendto(q, ('%s', 53)); s.sendto(q, ('%s', 5300))
                print(sorted(s.recvfrom(512)[1][1] for _ in range(2)))
                """.formatted(SERVER, SERVER));
        assertThat(py.out()).as(py.out()).contains("[53, 5300]");
        assertThat(last(53)).contains("name=alpha.test app=python3 ");
        assertThat(last(5300)).contains("name=alpha.test app=python3 ");
    }

    @Test
    void aKilledAgentsUdpRulesRefuseQueriesAtOnceAndARestartReplacesThem() throws Exception {
        String yaml = """
                interception:
                  outbound:
                    - {protocol: udp, to: [%s/32], ports: [53]}
                modules:
                  - name: dns-tag
                """.formatted(SERVER);
        Process agent = lab.startAgent("killed", yaml, "dns-tag");
        agent.destroyForcibly();
        assertThat(agent.waitFor(20, TimeUnit.SECONDS)).isTrue();
        assertThat(lab.tables()).contains("interlayer");
        // fail-closed: the redirect meets no socket, the kernel answers port unreachable, dig reports it at once: no black hole
        long t0 = System.nanoTime();
        Run refused = lab.client(-1, "dig", "@" + SERVER, "alpha.test", "+tries=1", "+time=5");
        assertThat(refused.out()).contains("connection refused");
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0)).isLessThan(2000);
        lab.startAgent("killed", yaml, "dns-tag");
        assertThat(dig(-1, 53, "alpha.test", "+nocookie")).isEqualTo(direct("alpha.test"));
        assertThat(last(53)).contains("name=alpha.test app=dig ");
    }

    @Test
    void aKilledFailOpenAgentsQueriesAreRefusedForAtMostTheLeaseThenAnsweredDirectly() throws Exception {
        Process agent = lab.startAgent("open", """
                interception:
                  failure: fail-open
                  outbound:
                    - {protocol: udp, to: [%s/32], ports: [53]}
                modules:
                  - name: dns-tag
                """.formatted(SERVER), "dns-tag");
        assertThat(dig(-1, 53, "alpha.test", "+nocookie")).isEqualTo(direct("alpha.test"));
        assertThat(last(53)).contains("name=alpha.test app=dig ");
        agent.destroyForcibly();
        assertThat(agent.waitFor(20, TimeUnit.SECONDS)).isTrue();
        long killed = System.nanoTime();
        while (true) {
            Run r = lab.client(-1, "dig", "@" + SERVER, "beta.test", "+nocookie", "+noall", "+answer", "+tries=1", "+time=1");
            if (!r.out().contains("refused") && !r.out().contains("timed out") && !r.out().contains("no servers")) {
                // answered directly: the receiver saw the query untagged
                assertThat(answer(r)).isEqualTo(direct("beta.test"));
                assertThat(last(53)).contains("name=beta.test app=- ");
                break;
            }
            assertThat(TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - killed)).as("seconds until queries go directly").isLessThan(8);
            Thread.sleep(200);
        }
    }

    // ---- helpers ----

    /** dnsmasq's answer, asked in the server namespace directly. */
    private static List<String> direct(String name) {
        return answer(lab.server("dig", "@127.0.0.1", "-p", String.valueOf(DNSMASQ), name, "+noall", "+answer", "+tries=1", "+time=3"));
    }

    /** The answer dig gets in the client namespace, as {@code uid} (-1: root), asking the server on {@code port}. */
    private static List<String> dig(int uid, int port, String name, String option) {
        return answer(lab.client(uid, "dig", "@" + SERVER, "-p", String.valueOf(port), name, option, "+noall", "+answer", "+tries=1", "+time=3"));
    }

    private static List<String> answer(Run r) {
        assertThat(r.out()).as("dig").doesNotContain("timed out").doesNotContain("no servers could be reached").doesNotContain("refused");
        return r.out().lines().filter(l -> !l.isBlank() && !l.startsWith(";")).map(String::strip).sorted().toList();
    }

    /** The receiver's record of the last query it received on {@code port}. */
    private static String last(int port) throws Exception {
        List<String> lines = Files.readAllLines(received).stream().filter(l -> l.startsWith("port=" + port + " ")).toList();
        return lines.isEmpty() ? "" : lines.getLast();
    }
}
