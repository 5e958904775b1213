package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.agent.Agent;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleStats;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent's warm-up ({@code agent.warm-up.before-start}) with the real sample jars: {@code tag} allows warm-up and
 * runs on the made-up traffic, {@code tcplog} (it records connections) does not and never sees it; when the
 * listeners open, the counters show users' traffic only, and a user's bytes come back as sent.
 */
class WarmUpTest {

    private static final Pattern SUMMARY = Pattern.compile("warm-up before the listeners open: ([\\d,]+) exchanges through (\\d+) chain\\(s\\)"
            + " of 4 listeners \\(modules tag\\) in [\\d,]+ ms");

    @TempDir
    Path tmp;

    private final LogCapture log = new LogCapture();
    /** Held: JUL keeps loggers weakly, and the level set here must stay until the test ends. */
    private final java.util.logging.Logger agentLog = java.util.logging.Logger.getLogger("interlayer.agent");
    private java.util.logging.Level level;

    @BeforeEach
    void capture() {
        level = agentLog.getLevel();
        agentLog.setLevel(java.util.logging.Level.INFO); // the warm-up's summary line
        log.start("interlayer.agent", "interlayer.engine");
    }

    @AfterEach
    void release() {
        log.stop();
        agentLog.setLevel(level);
    }

    private static String yaml(InetSocketAddress upstream, String warmUp) {
        return """
                agent:
                  modules-dir: modules
                  control: {socket: control.sock}
                  io-threads: 2
                  warm-up: %s
                listeners:
                  - {name: out, listen: 127.0.0.1:0, upstream: 127.0.0.1:%d, role: client}
                modules:
                  - {name: tag, params: {every: 100}}
                  - {name: tcplog}
                """.formatted(warmUp, upstream.getPort());
    }

    /** An agent with tag and tcplog on one client-role listener to {@code echo}, with {@code warmUp} as its agent.warm-up. */
    private Agent start(TestServer echo, String warmUp) throws Exception {
        Agents.deploySample("tag", tmp.resolve("modules"));
        Agents.deploySample("tcplog", tmp.resolve("modules"));
        return Agents.start(tmp, yaml(echo.address(), warmUp));
    }

    @Test
    void theWarmUpRunsTheModulesThatAllowItAndLeavesNoCountersBehind() throws Exception {
        try (TestServer echo = TestServer.echo(); Agent agent = start(echo, "{before-start: 600ms}")) {
            String line = log.lines().stream().filter(l -> l.startsWith("warm-up ")).findFirst().orElseThrow();
            Matcher m = SUMMARY.matcher(line);
            assertThat(m.find()).as(line).isTrue();
            assertThat(Long.parseLong(m.group(1).replace(",", ""))).as("exchanges checked through tag on both sides").isPositive();
            assertThat(line).as("every warm-up exchange came back as the backend sent it").doesNotContain("failed");
            assertThat(log.lines()).as("warm-up listeners start and stop without a line each").noneMatch(l -> l.contains("listener warm-up-"));

            LoadedModule tag = agent.registry().find("tag").orElseThrow();
            LoadedModule tcplog = agent.registry().find("tcplog").orElseThrow();
            assertThat(tag.stats().attaches()).as("tag's warm-up attachments are not counted").isZero();
            assertThat(tag.stats().chunks()).containsExactly(0, 0);
            assertThat(tcplog.stats().attaches()).as("tcplog does not allow warm-up: it never saw a made-up connection").isZero();
            assertThat(agent.engine().listenerStats().keySet()).containsExactly("out");
            assertThat(agent.engine().listenerStats().get("out").accepted()).isZero();
            assertThat(agent.engine().directConnections()).isZero();
            assertThat(agent.engine().connections()).isEmpty();

            // a user's connection: tag inserts on SEND, the echo sends the tagged bytes back, tag takes them out on RECV
            byte[] sent = new byte[50_000];
            new SplittableRandom(7).nextBytes(sent);
            assertThat(exchange(agent.listeners().get("out"), sent)).isEqualTo(sent);
            Agents.waitFor("the connection ended", () -> tag.liveAttachments() == 0 && tcplog.liveAttachments() == 0);
            ModuleStats.Snapshot s = tag.stats();
            assertThat(s.attaches()).isEqualTo(1);
            assertThat(s.bytesIn()[0]).isEqualTo(sent.length);
            assertThat(tcplog.stats().attaches()).isEqualTo(1);
            assertThat(agent.engine().listenerStats().get("out").accepted()).isEqualTo(1);
        }
    }

    @Test
    void withoutWarmUpTheListenersOpenAtOnceAndNothingIsLogged() throws Exception {
        try (TestServer echo = TestServer.echo(); Agent agent = start(echo, "{before-start: 0}")) {
            assertThat(log.lines()).noneMatch(l -> l.startsWith("warm-up"));
            byte[] sent = "no warm-up".getBytes();
            assertThat(exchange(agent.listeners().get("out"), sent)).isEqualTo(sent);
        }
    }

    @Test
    void aConfigWithOnlyListenersTheWarmUpCannotServeSaysSoAndStarts() throws Exception {
        try (TestServer echo = TestServer.echo();
             Agent agent = Agents.start(tmp, """
                     agent:
                       control: {socket: control.sock}
                       warm-up: {before-start: 300ms}
                     listeners:
                       - {name: dns, listen: 127.0.0.1:0, upstream: 127.0.0.1:%d, protocol: udp, role: client}
                     """.formatted(echo.address().getPort()))) {
            assertThat(log.lines()).anyMatch(l -> l.startsWith("warm-up skipped: no plain TCP listener to warm"));
            assertThat(agent.listeners()).containsKey("dns");
        }
    }

    private static byte[] exchange(InetSocketAddress to, byte[] sent) throws Exception {
        try (Socket s = new Socket(to.getAddress(), to.getPort())) {
            s.setSoTimeout(10_000);
            OutputStream o = s.getOutputStream();
            o.write(sent);
            o.flush();
            s.shutdownOutput();
            InputStream in = s.getInputStream();
            return in.readAllBytes();
        }
    }
}
