package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.agent.Agent;
import dev.interlayer.api.ControlRequest;
import dev.interlayer.api.ControlResponse;
import dev.interlayer.api.SocketModule;
import dev.interlayer.engine.ConnectionSnapshot;
import dev.interlayer.runtime.LoadedModule;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Layer 4.5 DNS experiment end to end with real programs: dig → client agent (dns-tag) → server agent
 * (dns-untag) → dnsmasq. The answers must be the ones dnsmasq gives directly, and the server side counts the tags.
 */
class DnsTagEndToEndTest {

    @TempDir
    Path tmp;

    private static final String HOSTS = """
            10.1.2.3 alpha.test
            10.1.2.4 beta.test
            10.1.2.5 beta.test
            fd00::7 gamma.test
            192.0.2.9 delta.test
            """;

    private static String serverYaml(InetSocketAddress dns) {
        return """
                agent:
                  modules-dir: modules
                  io-threads: 1
                  control: {socket: control.sock}
                listeners:
                  - name: dns-in
                    protocol: udp
                    listen: 127.0.0.1:0
                    upstream: %s:%d
                    role: server
                modules:
                  - name: dns-untag
                    mode: programmatic
                    listeners: [dns-in]
                  - name: dns-tag
                    mode: programmatic
                """.formatted(dns.getAddress().getHostAddress(), dns.getPort());
    }

    private static String clientYaml(InetSocketAddress server) {
        return """
                agent:
                  modules-dir: modules
                  io-threads: 1
                  control: {socket: control.sock}
                listeners:
                  - name: dns
                    protocol: udp
                    listen: 127.0.0.1:0
                    upstream: %s:%d
                    role: client
                modules:
                  - name: dns-tag
                    mode: programmatic
                    listeners: [dns]
                    params: {app-id: it-resolver}
                  - name: dns-untag
                    mode: programmatic
                """.formatted(server.getAddress().getHostAddress(), server.getPort());
    }

    private static String control(Agent agent, String module, String command) {
        LoadedModule m = agent.registry().find(module).orElseThrow();
        ControlResponse r = m.callModuleWide("control", () -> ((SocketModule<?>) m.module()).control(new ControlRequest(command, new byte[0], "test")));
        return r.bodyText();
    }

    @Test
    void answersThroughTheTaggingAgentPairAreIdenticalToDirectAnswersFromARealDnsServer() throws Exception {
        Agents.deploySample("dns-tag", tmp.resolve("server/modules"));
        Agents.deploySample("dns-tag", tmp.resolve("client/modules"));
        try (DnsServer dns = DnsServer.start(tmp.resolve("dns"), HOSTS);
             Agent server = Agents.start(tmp.resolve("server"), serverYaml(dns.address()));
             Agent client = Agents.start(tmp.resolve("client"), clientYaml(server.listeners().get("dns-in")))) {
            InetSocketAddress entry = client.listeners().get("dns");
            int queries = 0;
            for (String name : List.of("alpha.test", "beta.test", "delta.test", "missing.test")) {
                // dig's defaults send EDNS with a cookie option (the tag is appended to the OPT record);
                // +noedns sends none (the tagger adds an OPT record and the server side removes it again)
                for (String[] opts : List.of(new String[] {}, new String[] {"+noedns"}, new String[] {"+nocookie"})) {
                    List<String> direct = DnsServer.dig(dns.address(), name, opts);
                    List<String> through = DnsServer.dig(entry, name, opts);
                    assertThat(through).as("%s %s", name, String.join(" ", opts)).isEqualTo(direct);
                    queries++;
                }
            }
            List<String> aaaaDirect = DnsServer.dig(dns.address(), "gamma.test", "AAAA");
            assertThat(aaaaDirect).hasSize(1);
            assertThat(DnsServer.dig(entry, "gamma.test", "AAAA")).isEqualTo(aaaaDirect);
            queries++;
            assertThat(DnsServer.dig(entry, "beta.test")).hasSize(2);
            queries++;

            assertThat(control(server, "dns-untag", "counts")).isEqualTo("it-resolver " + queries + "\n");
            assertThat(control(server, "dns-untag", "status")).isEqualTo("removed " + queries + "\nuntagged 0\nmalformed 0\ndropped 0\n");
            assertThat(control(client, "dns-tag", "status")).startsWith("tagged " + queries + "\n");
            // every dig run sends from its own socket, so a flow per query (two runs may draw the same port and share one)
            List<ConnectionSnapshot> flows = client.engine().connections();
            assertThat(flows).hasSizeBetween(queries - 2, queries);
            assertThat(flows).allSatisfy(f -> assertThat(f.modules()).containsExactly("dns-tag@1.0.0"));
        }
    }
}
