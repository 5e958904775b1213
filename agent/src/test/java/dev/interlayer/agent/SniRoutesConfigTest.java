package dev.interlayer.agent;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.agent.ConfigException.Problem;
import dev.interlayer.engine.ListenerSpec;
import dev.interlayer.engine.SniRoutes;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code sni-routes:} and {@code sni-timeout:} of a listener: what parses, and what is refused with which message. */
class SniRoutesConfigTest {

    @TempDir
    Path dir;

    private static final String PASS = """
            agent:
              control: {enabled: false}
            listeners:
              - name: edge
                listen: 127.0.0.1:8443
                role: server
                upstream: 127.0.0.1:9000
                sni-routes:
                  api.example.com: 127.0.0.1:9001
                  "*.Example.com": 127.0.0.1:9002
                sni-timeout: 3s
            """;

    private AgentConfig load(String yaml) throws Exception {
        Path f = dir.resolve("agent.yaml");
        Files.writeString(f, yaml);
        return AgentConfig.load(f);
    }

    private List<Problem> problems(String yaml) throws IOException {
        Path f = dir.resolve("agent.yaml");
        Files.writeString(f, yaml);
        try {
            AgentConfig.load(f);
        } catch (ConfigException e) {
            return e.problems();
        }
        throw new AssertionError("expected problems in:\n" + yaml);
    }

    @Test
    void routesParseLowerCasedInOrderWithTheUpstreamAsTheDefault() throws Exception {
        AgentConfig.Listener l = load(PASS).listeners().getFirst();
        assertThat(l.sni().routes()).containsExactly(
                java.util.Map.entry("api.example.com", new InetSocketAddress("127.0.0.1", 9001)),
                java.util.Map.entry("*.example.com", new InetSocketAddress("127.0.0.1", 9002)));
        assertThat(l.sni().timeout()).isEqualTo(Duration.ofSeconds(3));
        assertThat(l.upstream()).isEqualTo(new InetSocketAddress("127.0.0.1", 9000));
        assertThat(l.target()).isEqualTo("sni-routes (2), default 127.0.0.1:9000");
        ListenerSpec spec = Agent.spec(load(PASS), l);
        assertThat(spec.sni()).isEqualTo(l.sni());
        assertThat(spec.hasTls()).as("passthrough decrypts nothing").isFalse();
    }

    @Test
    void withoutUpstreamThereIsNoDefaultAndTheTimeoutDefaultsToTenSeconds() throws Exception {
        AgentConfig.Listener l = load(PASS.replace("    upstream: 127.0.0.1:9000\n", "").replace("    sni-timeout: 3s\n", ""))
                .listeners().getFirst();
        assertThat(l.upstream()).isNull();
        assertThat(l.sni().timeout()).isEqualTo(SniRoutes.DEFAULT_TIMEOUT).isEqualTo(Duration.ofSeconds(10));
        assertThat(l.target()).isEqualTo("sni-routes (2), default none: unknown names refused");
        assertThat(Agent.spec(load(PASS.replace("    upstream: 127.0.0.1:9000\n", "")), l).upstream()).isNull();
    }

    @Test
    void badNamesAreReportedAtTheirLineWithTheFix() throws Exception {
        List<Problem> p = problems(PASS.replace("      api.example.com: 127.0.0.1:9001\n", """
                      api.example.com.: 127.0.0.1:9001
                      "a.*.example.com": 127.0.0.1:9001
                      "*.com": 127.0.0.1:9001
                      10.0.0.1: 127.0.0.1:9001
                      bad_label-.example.com: 127.0.0.1:9001
                      "sp ace.example.com": 127.0.0.1:9001
                      API.example.com: 127.0.0.1:9003
                      api.EXAMPLE.com: 127.0.0.1:9004
                """));
        assertThat(p).extracting(Problem::line).containsExactly(9, 10, 11, 12, 13, 14, 16);
        assertThat(p.get(0).path()).isEqualTo("listeners[0].sni-routes.api.example.com.");
        assertThat(p.get(0).message()).contains("ends with a dot; write it without");
        assertThat(p.get(1).message()).contains("a wildcard is a whole first label, as in *.example.com");
        assertThat(p.get(2).message()).contains("every name of a top-level domain");
        assertThat(p.get(3).message()).contains("is an IP address", "take the listener's upstream");
        assertThat(p.get(4).message()).contains("is not a server name", "up to 63 each");
        assertThat(p.get(5).message()).contains("is not a server name");
        assertThat(p.get(6).message()).contains("'api.EXAMPLE.com' is listed twice (also on line 15", "case-insensitive); keep one");
    }

    @Test
    void badAddressesEmptyRoutesAndATimeoutWithoutRoutesAreReported() throws Exception {
        List<Problem> p = problems(PASS.replace("127.0.0.1:9001", "127.0.0.1").replace("127.0.0.1:9002", "127.0.0.1:0")
                .replace("sni-timeout: 3s", "sni-timeout: 3"));
        assertThat(p).extracting(Problem::path).containsExactly("listeners[0].sni-routes.api.example.com",
                "listeners[0].sni-routes.*.Example.com", "listeners[0].sni-timeout");
        assertThat(p.get(0).message()).contains("is not HOST:PORT");
        assertThat(p.get(1).message()).contains("port 0 is out of range; expected 1..65535");
        assertThat(p.get(2).message()).contains("is not a duration", "a bare number has no unit");

        Problem empty = problems(PASS.replaceAll("(?s)    sni-routes:.*", "    sni-routes: {}\n")).getFirst();
        assertThat(empty.path()).isEqualTo("listeners[0].sni-routes");
        assertThat(empty.message()).contains("no routes; list at least one server name with its HOST:PORT");

        Problem list = problems(PASS.replaceAll("(?s)    sni-routes:.*", "    sni-routes: [api.example.com]\n")).getFirst();
        assertThat(list.message()).contains("expected a mapping of server name to HOST:PORT", "quote names that start with *");

        Problem alone = problems(PASS.replaceAll("(?s)    sni-routes:.*", "    sni-timeout: 3s\n")).getFirst();
        assertThat(alone.path()).isEqualTo("listeners[0].sni-timeout");
        assertThat(alone.message()).contains("sni-timeout applies to sni-routes only");
    }

    @Test
    void routingAndTerminatingOrOriginatingOrUdpTogetherAreRefused() throws Exception {
        Path cert = Files.writeString(dir.resolve("c.pem"), "x");
        Problem tls = problems(PASS + "    tls: {cert: %s, key: %s}\n".formatted(cert, cert)).stream()
                .filter(x -> x.message().contains("not both")).findFirst().orElseThrow();
        assertThat(tls.path()).isEqualTo("listeners[0]");
        assertThat(tls.message()).contains("either passes TLS through by its server name (sni-routes) or terminates it (tls:)");

        List<Problem> up = problems(PASS.replace("upstream: 127.0.0.1:9000", "upstream: {address: 127.0.0.1:9000, tls: {verify: false}}"));
        assertThat(up).hasSize(1);
        assertThat(up.getFirst().path()).isEqualTo("listeners[0].upstream");
        assertThat(up.getFirst().message()).contains("cannot originate TLS to the upstream as well; write upstream: HOST:PORT");

        List<Problem> udp = problems(PASS.replace("role: server", "role: server\n    protocol: udp"));
        assertThat(udp).extracting(Problem::message).anyMatch(m -> m.contains("sni-routes route TLS connections by their server name: tcp only"));
    }

    @Test
    void theEngineSpecRefusesPassthroughWithTlsOrUdp() {
        SniRoutes r = new SniRoutes(java.util.Map.of("a.test", new InetSocketAddress("127.0.0.1", 1)), null);
        InetSocketAddress at = new InetSocketAddress("127.0.0.1", 0);
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> new ListenerSpec("x", dev.interlayer.api.Protocol.UDP,
                        dev.interlayer.api.Role.SERVER, at, null, null, null, null, null, null, r))
                .hasMessageContaining("tcp only");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> new ListenerSpec("x", dev.interlayer.api.Protocol.TCP,
                        dev.interlayer.api.Role.SERVER, at, null, null, null, null, null, null, null))
                .hasMessageContaining("listen and upstream are required");
        assertThat(new ListenerSpec("x", dev.interlayer.api.Protocol.TCP, dev.interlayer.api.Role.SERVER, at, null, null, null, null, null,
                null, r).upstream()).isNull();
    }
}
