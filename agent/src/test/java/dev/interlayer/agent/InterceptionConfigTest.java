package dev.interlayer.agent;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.agent.ConfigException.Problem;
import dev.interlayer.api.Protocol;
import dev.interlayer.engine.Interception;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The {@code interception:} block: what it gives the engine, and every mistake named with where and what to do. */
class InterceptionConfigTest {

    private static AgentConfig parse(String yaml) throws ConfigException {
        return AgentConfig.parse(yaml, Path.of("/nonexistent/agent.yaml"));
    }

    private static List<Problem> problems(String yaml) {
        try {
            parse(yaml);
        } catch (ConfigException e) {
            return e.problems();
        }
        throw new AssertionError("expected problems in:\n" + yaml);
    }

    @Test
    void rulesBecomeTheEngineSettingsAndTheInterceptListenerCanBeSelected() throws Exception {
        AgentConfig c = parse("""
                interception:
                  listen: 127.0.0.1:15002
                  mark: 0x2a
                  failure: fail-open
                  outbound:
                    - to: [10.0.0.0/8, 192.0.2.7]
                      ports: [80, 8000-8100]
                      uid: [1000]
                    - gid: [100]
                modules:
                  - name: tag
                    selector: {listener: [intercept], uid: [1000], exe: [/usr/bin/curl]}
                """);
        Interception i = c.interception().orElseThrow();
        assertThat(i.listen().getPort()).isEqualTo(15002);
        assertThat(i.mark()).isEqualTo(0x2a);
        assertThat(i.failure()).isEqualTo(Interception.FailureMode.FAIL_OPEN);
        assertThat(i.outbound()).hasSize(2);
        assertThat(i.outbound().get(0).to()).extracting(Object::toString).containsExactly("10.0.0.0/8", "192.0.2.7");
        assertThat(i.outbound().get(0).uids()).containsExactly(1000);
        assertThat(i.outbound().get(1).gids()).containsExactly(100);
        assertThat(i.describe(15002, 15002)).anySatisfy(r -> assertThat(r).contains("meta skgid 100").contains("redirect to :15002"));
        var selector = c.module("tag").orElseThrow().config().selector();
        assertThat(selector.uids()).containsExactly(1000);
        assertThat(selector.exes()).containsExactly("/usr/bin/curl");
    }

    @Test
    void udpRulesDrawTheirProtocolsAndTheirListenerCanBeSelected() throws Exception {
        AgentConfig c = parse("""
                interception:
                  listen6: off
                  outbound:
                    - {protocol: udp, ports: [53]}
                    - {protocol: [tcp, udp], ports: [443, 8000-8100]}
                    - {to: [10.0.0.0/8]}
                modules:
                  - name: dns-tag
                    selector: {listener: [intercept-udp]}
                """);
        Interception i = c.interception().orElseThrow();
        assertThat(i.outbound().get(0).protocols()).containsExactly(Protocol.UDP);
        assertThat(i.outbound().get(2).protocols()).containsExactly(Protocol.TCP);
        assertThat(i.listeners()).extracting(Interception.Listener::name).containsExactly("intercept", "intercept-udp");
        List<String> rules = i.describe(15001, 0);
        assertThat(rules.get(1)).contains("meta l4proto udp udp dport 53 redirect");
        assertThat(rules.get(2)).contains("meta l4proto { tcp, udp }").contains("th dport { 443, 8000-8100 }");
        assertThat(rules.get(3)).contains("meta l4proto tcp ip daddr 10.0.0.0/8 redirect");
        assertThat(problems("interception: {outbound: [{protocol: sctp}]}\n")).anySatisfy(x -> assertThat(x.message()).contains("tcp, udp"));
        assertThat(problems("interception: {outbound: [{protocol: []}]}\n")).anySatisfy(x -> assertThat(x.message()).contains("no protocol"));
        // the UDP listener's name is known only where a rule has udp
        assertThat(problems("""
                interception: {outbound: [{ports: [80]}]}
                modules: [{name: dns-tag, selector: {listener: [intercept-udp]}}]
                """)).anySatisfy(x -> assertThat(x.message()).contains("intercept-udp"));
    }

    @Test
    void inboundRulesAloneAreEnoughAndDrawAPreroutingChain() throws Exception {
        Interception i = parse("""
                interception:
                  inbound-listen: 0.0.0.0:15010
                  inbound:
                    - {from: [192.0.2.0/24], ports: [8080, 9000-9010]}
                modules:
                  - name: tag
                    selector: {listener: [intercept-in]}
                """).interception().orElseThrow();
        assertThat(i.outbound()).isEmpty();
        assertThat(i.inboundListen().getPort()).isEqualTo(15010);
        assertThat(i.inbound().getFirst().from()).extracting(Object::toString).containsExactly("192.0.2.0/24");
        assertThat(i.describe(15001, 0)).contains("table inet interlayer, chain prerouting (type nat hook prerouting priority -100)")
                .anySatisfy(r -> assertThat(r).contains("iifname != \"lo\" fib daddr type local meta l4proto tcp ip saddr 192.0.2.0/24"
                        + " tcp dport { 8080, 9000-9010 } redirect to :15010"));
        assertThat(problems("interception: {inbound: [{ports: [0], to: [10.0.0.0/8]}]}\n")).extracting(Problem::path)
                .contains("interception.inbound[0].ports", "interception.inbound[0].to");
        assertThat(problems("interception: {inbound-listen: 0.0.0.0:0, inbound: [{ports: [80]}]}\n"))
                .anySatisfy(x -> assertThat(x.message()).contains("port 0 is out of range"));
    }

    @Test
    void ipv6RulesRedirectToListen6AndInboundRulesForAnySourceCoverBothFamilies() throws Exception {
        AgentConfig c = parse("""
                interception:
                  listen6: '[::1]:15003'
                  outbound:
                    - {protocol: [tcp, udp], to: [10.0.0.0/8, 'fd00::/8'], ports: [53]}
                    - {ports: [80]}
                    - {to: ['2001:db8::/32']}
                  inbound-listen: '[::]:15010'
                  inbound:
                    - {protocol: udp, ports: [53]}
                    - {from: ['2001:db8::/32'], ports: [8080]}
                modules:
                  - name: dns-tag
                    selector: {listener: [intercept-udp6, intercept-in-udp]}
                """);
        Interception i = c.interception().orElseThrow();
        assertThat(i.listen6().getPort()).isEqualTo(15003);
        assertThat(i.listeners()).extracting(l -> l.name() + " " + l.protocol() + " " + l.role() + " " + l.address().getAddress().getHostAddress())
                .containsExactly("intercept TCP CLIENT 127.0.0.1", "intercept-udp UDP CLIENT 127.0.0.1", "intercept6 TCP CLIENT 0:0:0:0:0:0:0:1",
                        "intercept-udp6 UDP CLIENT 0:0:0:0:0:0:0:1", "intercept-in TCP SERVER 0:0:0:0:0:0:0:0", "intercept-in-udp UDP SERVER 0:0:0:0:0:0:0:0");
        List<String> rules = i.describe(15001, 15003);
        assertThat(rules.get(0)).startsWith("table inet interlayer, chain output");
        assertThat(rules.get(1)).endsWith("ip daddr != 127.0.0.0/8 meta l4proto { tcp, udp } ip daddr 10.0.0.0/8 th dport 53 redirect to :15001");
        assertThat(rules.get(2)).endsWith("ip6 daddr != ::1 meta l4proto { tcp, udp } ip6 daddr fd00::/8 th dport 53 redirect to :15003");
        assertThat(rules.get(3)).endsWith("ip daddr != 127.0.0.0/8 meta l4proto tcp tcp dport 80 redirect to :15001");
        assertThat(rules.get(4)).endsWith("ip6 daddr != ::1 meta l4proto tcp tcp dport 80 redirect to :15003");
        assertThat(rules.get(5)).endsWith("ip6 daddr != ::1 meta l4proto tcp ip6 daddr 2001:db8::/32 redirect to :15003");
        // IPv4 TCP is intercepted: the uid chain marks its redirected SYNs (IPv6 connections' uids are looked up)
        assertThat(rules.get(6)).startsWith("table inet interlayer, chain uid").contains("ip daddr 127.0.0.1 tcp dport 15001");
        assertThat(rules.get(7)).startsWith("table inet interlayer, chain prerouting");
        assertThat(rules.get(8)).endsWith("fib daddr type local meta nfproto ipv4 meta l4proto udp udp dport 53 redirect to :15010");
        assertThat(rules.get(9)).endsWith("fib daddr type local meta nfproto ipv6 meta l4proto udp udp dport 53 redirect to :15010");
        assertThat(rules.get(10)).endsWith("fib daddr type local meta l4proto tcp ip6 saddr 2001:db8::/32 tcp dport 8080 redirect to :15010");
        assertThat(rules).hasSize(11);
        // an IPv4 inbound listener: rules for any source are IPv4 only
        assertThat(parse("interception: {inbound-listen: 0.0.0.0:15002, inbound: [{ports: [80]}]}\n").interception().orElseThrow()
                .describe(15001, 0)).noneMatch(r -> r.contains("ipv6")).anySatisfy(r -> assertThat(r).contains("meta nfproto ipv4"));
    }

    @Test
    void ipv6WhereItIsNotInterceptedIsRefusedSayingWhatToSet() {
        assertThat(problems("interception: {listen6: off, outbound: [{to: ['fd00::/8']}]}\n")).anySatisfy(x -> assertThat(x.message())
                .contains("outbound rule 1 names IPv6 destinations").contains("listen6: '[::1]:15001'"));
        assertThat(problems("interception: {inbound-listen: 0.0.0.0:15002, inbound: [{from: ['fd00::/8']}]}\n")).anySatisfy(x -> assertThat(x.message())
                .contains("inbound rule 1 names IPv6 sources").contains("inbound-listen: '[::]:15002'"));
        assertThat(problems("interception: {listen6: '[fd00::1]:15001', outbound: [{}]}\n")).anySatisfy(x -> assertThat(x.message())
                .contains("[::1]").contains("fd00:0:0:0:0:0:0:1"));
        assertThat(problems("interception: {inbound-listen: '[fd00::1]:15002', inbound: [{}]}\n")).anySatisfy(x -> assertThat(x.message())
                .contains("[::]:15002"));
        assertThat(problems("interception: {inbound: [{protocol: sctp}]}\n")).extracting(Problem::path).contains("interception.inbound[0].protocol");
    }

    @Test
    void withoutInterceptionThereIsNone() throws Exception {
        assertThat(parse("modules: []\n").interception()).isEmpty();
    }

    @Test
    void mistakesAreNamedWithWhatToDo() {
        List<Problem> p = problems("""
                interception:
                  listen: 10.0.0.1:15001
                  failure: sometimes
                  outbound:
                    - to: [10.0.0.0/8, nonsense]
                      ports: [0]
                      uid: [-1]
                      user: [x]
                """);
        assertThat(p).extracting(Problem::path).contains("interception.failure", "interception.outbound[0].to", "interception.outbound[0].ports",
                "interception.outbound[0].uid", "interception.outbound[0].user");
        assertThat(p).anySatisfy(x -> assertThat(x.message()).contains("fail-closed").contains("fail-open"));
        assertThat(p).anySatisfy(x -> assertThat(x.message()).contains("id -u"));
        assertThat(problems("interception: {outbound: []}\n")).anySatisfy(x -> assertThat(x.message()).contains("no rules"));
        assertThat(problems("interception: {}\n")).anySatisfy(x -> assertThat(x.message()).contains("missing 'outbound'"));
        assertThat(problems("interception: {listen: 10.0.0.1:15001, outbound: [{}]}\n"))
                .anySatisfy(x -> assertThat(x.message()).contains("loopback").contains("127.0.0.1:PORT"));
        assertThat(problems("interception: {mark: 0, outbound: [{}]}\n")).anySatisfy(x -> assertThat(x.path()).isEqualTo("interception.mark"));
    }

    @Test
    void aListenerMayNotTakeTheInterceptingListenersName() {
        assertThat(problems("""
                interception: {outbound: [{}]}
                listeners:
                  - {name: intercept, listen: 127.0.0.1:8080, upstream: 127.0.0.1:80, role: client}
                """)).anySatisfy(x -> assertThat(x.message()).contains("intercepting listener").contains("rename"));
    }

    @Test
    void exeSelectorsAreAbsolutePaths() {
        assertThat(problems("""
                modules:
                  - name: tag
                    selector: {exe: [curl]}
                """)).anySatisfy(x -> assertThat(x.message()).contains("absolute path").contains("readlink"));
    }

    @Test
    void cgroupRulesNameExistingCgroupsAndASelectorTakesCgroupPaths() throws Exception {
        java.nio.file.Path mount = dev.interlayer.engine.Cgroup2.mount();
        org.junit.jupiter.api.Assumptions.assumeTrue(mount != null && mount.startsWith("/sys/fs/cgroup"), "no cgroup2 mounted under /sys/fs/cgroup here");
        // a cgroup of its own (a directory made in the tree is a cgroup), removed at the end
        java.nio.file.Path dir = mount.resolve("interlayer-config-test-" + ProcessHandle.current().pid());
        try {
            java.nio.file.Files.createDirectory(dir);
        } catch (java.io.IOException e) {
            org.junit.jupiter.api.Assumptions.abort("cannot make a cgroup here (" + e + "): run as root");
        }
        try {
            cgroupRules("/" + dir.getFileName(), mount);
        } finally {
            java.nio.file.Files.delete(dir);
        }
    }

    private static void cgroupRules(String existing, java.nio.file.Path mount) throws Exception {
        AgentConfig c = parse("""
                interception:
                  outbound:
                    - cgroup: [%s]
                modules:
                  - name: tag
                    selector: {cgroup: [/system.slice/]}
                """.formatted(existing));
        Interception i = c.interception().orElseThrow();
        assertThat(i.outbound().getFirst().cgroups()).containsExactly(existing);
        assertThat(i.describe(15001, 15001)).anySatisfy(r -> assertThat(r).contains("socket cgroupv2 level 1 \"")
                .contains(mount.toString().substring("/sys/fs/cgroup".length()).replaceFirst("^/", "") + existing + "\""));
        assertThat(c.module("tag").orElseThrow().config().selector().cgroups()).containsExactly("/system.slice");

        assertThat(problems("interception: {outbound: [{cgroup: [/no-such-cgroup-here]}]}\n")).anySatisfy(x -> assertThat(x.message())
                .contains("does not exist").contains(mount.resolve("no-such-cgroup-here").toString()).contains("must exist before the agent starts"));
        assertThat(problems("interception: {outbound: [{cgroup: [system.slice]}]}\n")).anySatisfy(x -> assertThat(x.message())
                .contains("not a cgroup path").contains("0::"));
        assertThat(problems("modules: [{name: tag, selector: {cgroup: [/]}}]\n")).anySatisfy(x -> assertThat(x.message())
                .contains("not the root"));
    }
}
