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
 * Transparent interception of inbound TCP end to end, in the namespaces of {@link InterceptionLab} turned around: the
 * server, a small Python HTTP server, runs in the client namespace beside the agent, and the clients connect from the
 * server namespace. The clients send their requests tagged as the {@code tag} module tags (what a tagging agent on their
 * host would send); the agent, server role on the way in, with {@code tag} attached to its inbound listener, removes the tags before the local server reads, and tags the
 * answer on its way out. A port no rule names is not intercepted: its server reads the tags.
 */
class InterceptionInboundTest {

    private static final String TAG = "<interlayer-layer4.5-sample-tag>";
    private static final String LOCAL = InterceptionLab.SUBNET + "1";
    private static final int[] PORTS = {9090, 9091, 9092};

    @RegisterExtension
    static final InterceptionLab.Extension LAB = new InterceptionLab.Extension("i");
    private static InterceptionLab lab;
    private static Path serverLog;
    private static Path script;

    @BeforeAll
    static void namespaces() throws Exception {
        lab = LAB.lab();
        script = lab.resource("intercept-server.py");
        serverLog = lab.dir.resolve("server.log");
        Files.writeString(serverLog, "");
        Process server = new ProcessBuilder("ip", "netns", "exec", lab.clientNs, InterceptionLab.python(), script.toString(), TAG, "16",
                serverLog.toString(), "9090", "9091", "9092").redirectErrorStream(true).start();
        lab.own(server);
        assertThat(new String(server.getInputStream().readNBytes(6), StandardCharsets.UTF_8)).as("the Python server starts").isEqualTo("ready\n");
    }

    @Test
    void connectionsToTheSelectedLocalPortsGoThroughTheAgentToTheServerTheyWereFor() throws Exception {
        lab.startAgent("in", """
                interception:
                  inbound:
                    - from: [%s/32]
                      ports: [9090, 9092]
                modules:
                  - name: tag
                    params: {every: 16}
                    mode: programmatic
                    listeners: [intercept-in]
                """.formatted(InterceptionLab.SERVER), "tag");
        for (int port : PORTS) {
            String path = "/in-" + port;
            Run r = request(port, path);
            assertThat(r.code()).as(r.out()).isZero();
            boolean intercepted = port != 9091;
            // the server the client asked for answered (the original destination kept), and its answer came back tagged:
            // by the agent on the way out, or by the server itself when it read tags (not intercepted)
            assertThat(r.out()).contains("port=" + port + " path=" + path).doesNotContain("tags=0 ");
            // intercepted, the agent removed the tags on the way in, and the server's peer is the agent on this host
            assertThat(received(path)).contains("tagged=" + (intercepted ? "False" : "True"))
                    .contains("peer=" + (intercepted ? LOCAL : InterceptionLab.SERVER) + ":");
        }
        Run status = lab.cli("status", "--socket", lab.dir.resolve("in/control.sock").toString());
        assertThat(status.out()).contains("chain prerouting").contains("fib daddr type local").contains("redirect to :15002");
    }

    @Test
    void aKilledAgentsInboundRulesRefuseConnectionsAtOnceAndTheTableGoesWithAStop() throws Exception {
        String yaml = """
                interception:
                  inbound:
                    - ports: [9090]
                """;
        Process agent = lab.startAgent("in-killed", yaml);
        agent.destroyForcibly();
        assertThat(agent.waitFor(20, TimeUnit.SECONDS)).isTrue();
        long t0 = System.nanoTime();
        Run refused = request(9090, "/in-after-kill");
        assertThat(refused.code()).as(refused.out()).isNotZero();
        assertThat(refused.out()).contains("refused");
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0)).isLessThan(2000);
        agent = lab.startAgent("in-killed", yaml);
        assertThat(request(9090, "/in-after-restart").out()).contains("port=9090 path=/in-after-restart");
        agent.destroy();
        assertThat(agent.waitFor(20, TimeUnit.SECONDS)).isTrue();
        assertThat(lab.tables()).doesNotContain("interlayer");
    }

    @Test
    void aKilledFailOpenAgentsInboundConnectionsReachTheServerDirectlyAfterTheLease() throws Exception {
        Process agent = lab.startAgent("in-open", """
                interception:
                  failure: fail-open
                  inbound:
                    - ports: [9091]
                """);
        // an inbound-only agent's one intercepting listener is intercept-in, on its own address
        assertThat(Files.readString(lab.dir.resolve("in-open/agent.log"))).contains("listener intercept-in on [0:0:0:0:0:0:0:0]:15002")
                .doesNotContain("listener intercept on");
        assertThat(request(9091, "/in-open-alive").out()).contains("port=9091 path=/in-open-alive");
        assertThat(received("/in-open-alive")).contains("peer=" + LOCAL + ":"); // through the agent, the server's peer
        agent.destroyForcibly();
        assertThat(agent.waitFor(20, TimeUnit.SECONDS)).isTrue();
        long killed = System.nanoTime();
        for (int attempt = 0; ; attempt++) {
            String path = "/in-open-after-kill-" + attempt;
            Run r = request(9091, path);
            if (r.code() == 0) {
                // directly: the server's peer is the client
                assertThat(r.out()).contains("port=9091 path=" + path);
                assertThat(received(path)).contains("peer=" + InterceptionLab.SERVER + ":");
                break;
            }
            // refused while the alive element lives, never a hang
            assertThat(r.out()).contains("refused");
            assertThat(TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - killed)).as("seconds until connections go directly").isLessThan(8);
            Thread.sleep(200);
        }
    }

    /** One tagged request from the server namespace to this host's {@code port}. */
    private static Run request(int port, String path) {
        return lab.server(InterceptionLab.python(), script.toString(), TAG, "16", "--client", LOCAL, String.valueOf(port), path);
    }

    /** The local server's record of the request with {@code path}. */
    private static String received(String path) throws Exception {
        List<String> lines = Files.readAllLines(serverLog).stream().filter(l -> l.contains("path=" + path + " ")).toList();
        assertThat(lines).as("the server's record of " + path).hasSize(1);
        return lines.getFirst();
    }
}
