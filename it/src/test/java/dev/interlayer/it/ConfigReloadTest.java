package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.control.ControlClient;
import dev.interlayer.control.testing.TempDirs;
import dev.interlayer.control.v1.Connection;
import dev.interlayer.control.v1.HealthRequest;
import dev.interlayer.control.v1.ListConnectionsRequest;
import dev.interlayer.engine.testing.TestServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.ConnectException;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@code interlayer reload} and SIGHUP on a real agent process ({@code interlayer run}): listeners added, removed and
 * changed, module settings applied to new connections, connections of unchanged listeners untouched, and bad configs and
 * failing steps refused with the running config unchanged.
 */
class ConfigReloadTest {

    Path dir;
    Path jar;
    Path socket;
    Process agent;
    Upstream one;
    Upstream two;
    /** Free ports for the listeners keep, gone, moved, tagged and fresh. */
    int keep;
    int gone;
    int moved;
    int tagged;
    int fresh;

    /** An echo server that keeps what it receives (what connections send it one at a time). */
    static final class Upstream implements AutoCloseable {
        final ByteArrayOutputStream got = new ByteArrayOutputStream();
        final TestServer server = TestServer.echo(got);

        Upstream() throws IOException {}

        /** What it received, and forgets it. */
        byte[] take() {
            synchronized (got) {
                byte[] b = got.toByteArray();
                got.reset();
                return b;
            }
        }

        String hostPort() {
            return ControlCliTest.hostPort(server.address());
        }

        @Override
        public void close() throws IOException {
            server.close();
        }
    }

    @BeforeEach
    void start() throws Exception {
        dir = Files.createTempDirectory("interlayer-reload-");
        jar = Path.of(System.getProperty("interlayer.distJar", "../cli/target/interlayer.jar"));
        Agents.deploySample("tag", dir.resolve("modules"));
        one = new Upstream();
        two = new Upstream();
        int[] ports = freePorts(5);
        keep = ports[0];
        gone = ports[1];
        moved = ports[2];
        tagged = ports[3];
        fresh = ports[4];
        socket = dir.resolve("control.sock");
        writeConfig(v1());
        agent = Agents.runProcess(jar, dir);
        Agents.awaitAnswer(agent, dir, this::serving);
    }

    @AfterEach
    void stop() throws Exception {
        if (agent != null) {
            Agents.stopProcess(agent, dir);
        }
        one.close();
        two.close();
        TempDirs.delete(dir);
    }

    private boolean serving() {
        try (ControlClient c = ControlClient.unix(socket)) {
            return c.health().check(HealthRequest.getDefaultInstance()).getStatus().equals("serving");
        } catch (RuntimeException e) {
            return false;
        }
    }

    private static int[] freePorts(int n) throws IOException {
        ServerSocket[] held = new ServerSocket[n];
        try {
            for (int i = 0; i < n; i++) held[i] = new ServerSocket(0);
            return Arrays.stream(held).mapToInt(ServerSocket::getLocalPort).toArray();
        } finally {
            for (ServerSocket s : held) if (s != null) s.close();
        }
    }

    private void writeConfig(String yaml) throws IOException {
        Files.writeString(dir.resolve("agent.yaml"), yaml);
    }

    /** The first config: keep, gone, moved and tagged to upstream one; tag on tagged with tag text {@code <one>}. */
    private String v1() {
        return config("<one>", "keep", keep, one, "gone", gone, one, "moved", moved, one, "tagged", tagged, one);
    }

    /** The second: gone removed, moved to upstream two, tag text {@code <two>}, fresh added on {@code freshPort}. */
    private String v2(int freshPort) {
        return config("<two>", "keep", keep, one, "moved", moved, two, "tagged", tagged, one, "fresh", freshPort, two);
    }

    /** A config with client-role listeners (name, port, upstream; in threes) and tag, with tag text {@code tag}, on tagged. */
    private static String config(String tag, Object... listeners) {
        StringBuilder b = new StringBuilder("agent:\n  control: {socket: control.sock}\n  io-threads: 2\nlisteners:\n");
        for (int i = 0; i < listeners.length; i += 3) {
            b.append("  - {name: %s, listen: 127.0.0.1:%d, upstream: %s, role: client}\n"
                    .formatted(listeners[i], listeners[i + 1], ((Upstream) listeners[i + 2]).hostPort()));
        }
        return b.append("""
                modules:
                  - name: tag
                    mode: programmatic
                    listeners: [tagged]
                    params: {every: 100, tag: "%s"}
                """.formatted(tag)).toString();
    }

    /** A client connection; {@link #roundTrip} checks that what comes back is exactly what went out. */
    static final class Client implements AutoCloseable {
        final Socket s;
        final Random random = new Random(7);

        Client(int port) throws IOException {
            s = new Socket("127.0.0.1", port);
            s.setSoTimeout(20_000);
        }

        /** Sends {@code n} random bytes and reads the echo back; returns what was sent. */
        byte[] roundTrip(int n) throws IOException {
            byte[] sent = new byte[n];
            random.nextBytes(sent);
            s.getOutputStream().write(sent);
            byte[] back = s.getInputStream().readNBytes(n);
            assertThat(back).as("the echo through the agent").isEqualTo(sent);
            return sent;
        }

        @Override
        public void close() throws IOException {
            s.close();
        }
    }

    /** The ids of the agent's open connections on {@code listener}. */
    private List<Long> connections(String listener) {
        try (ControlClient c = ControlClient.unix(socket)) {
            return c.connections().list(ListConnectionsRequest.newBuilder().setListener(listener).build()).getConnectionsList().stream()
                    .map(Connection::getId).toList();
        }
    }

    /** What upstream {@code u} received from one new connection through {@code port} that sent 150 bytes. */
    private static byte[] throughNew(int port, Upstream u) throws Exception {
        u.take();
        try (Client c = new Client(port)) {
            c.roundTrip(150);
        }
        byte[] got = u.take();
        assertThat(got.length).as("the connection reached this upstream").isGreaterThanOrEqualTo(150);
        return got;
    }

    private static String tagAt100(byte[] upstreamSaw) {
        return new String(upstreamSaw, 100, 5, StandardCharsets.ISO_8859_1);
    }

    private static void refused(int port) {
        assertThatThrownBy(() -> new Socket("127.0.0.1", port).close()).as("port " + port + " accepts no connection").isInstanceOf(ConnectException.class);
    }

    @Test
    void reloadAppliesListenersAndModuleSettingsAndLeavesTheUnchangedListenersConnectionAlone() throws Exception {
        try (Client longLived = new Client(keep); Client draining = new Client(gone)) {
            longLived.roundTrip(64 * 1024);
            draining.roundTrip(1000);
            List<Long> keepIds = connections("keep");
            assertThat(keepIds).hasSize(1);
            assertThat(tagAt100(throughNew(tagged, one))).isEqualTo("<one>");

            writeConfig(v2(fresh));
            ControlCliTest.Run r = cli("reload");
            assertThat(r.code()).as(r.out() + r.err()).isZero();
            assertThat(r.out()).contains("config " + dir.resolve("agent.yaml") + " reloaded:")
                    .contains("listener gone: removed: stopped accepting; its 1 open connection(s) go on until they end")
                    .contains("listener moved: changed (upstream): now 127.0.0.1:" + moved + " -> " + two.hostPort())
                    .contains("listener fresh: added on 127.0.0.1:" + fresh + " -> " + two.hostPort())
                    .containsPattern("module tag@[0-9.]+: settings changed \\(ACTIVE, priority -?\\d+, params \\{every=100, tag=<two>\\}\\)")
                    .doesNotContain("listener keep").doesNotContain("listener tagged");

            longLived.roundTrip(64 * 1024); // byte-exact across the reload, on the same connection
            assertThat(connections("keep")).isEqualTo(keepIds);
            draining.roundTrip(1000); // the removed listener's open connection drains
            refused(gone);
            throughNew(moved, two);
            throughNew(fresh, two);
            assertThat(tagAt100(throughNew(tagged, one))).isEqualTo("<two>");
            longLived.roundTrip(1000);
        }
        ControlCliTest.Run status = cli("status");
        assertThat(status.out()).contains("config: " + dir.resolve("agent.yaml") + ", loaded at ").doesNotContain("REFUSED");
    }

    /**
     * A listener changed in place (its upstream) goes on accepting from the same listening sockets: the kernel's inodes of
     * the port's listening sockets are the same after the reload, and connects in a loop all through it are never refused.
     */
    @Test
    void aListenerChangedOnTheSameAddressKeepsItsListeningSocketsAndRefusesNoConnect() throws Exception {
        Set<String> before = listeningInodes(moved);
        assertThat(before).as("io-threads 2: a listening socket per event loop").hasSize(2);
        AtomicBoolean stop = new AtomicBoolean();
        AtomicInteger connects = new AtomicInteger();
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        Thread prober = Thread.ofPlatform().start(() -> {
            while (!stop.get()) {
                try (Socket s = new Socket("127.0.0.1", moved)) {
                    connects.incrementAndGet();
                } catch (IOException e) {
                    failures.add(e);
                }
                // about 2,000 connects a second: a refused window of a millisecond shows, and the agent's connections to the
                // upstream (which must each see the upstream's end before they close) do not pile up faster than they end
                java.util.concurrent.locks.LockSupport.parkNanos(500_000);
            }
        });
        try {
            writeConfig(v2(fresh));
            ControlCliTest.Run r = cli("reload");
            assertThat(r.code()).as(r.out() + r.err()).isZero();
            assertThat(r.out()).contains("listener moved: changed (upstream)");
            int after = connects.get();
            while (connects.get() < after + 100) {
                Thread.sleep(10); // connects after the change, too
            }
        } finally {
            stop.set(true);
            prober.join();
        }
        assertThat(failures).as("connects to the changed listener that failed").isEmpty();
        assertThat(listeningInodes(moved)).as("the same listening sockets").isEqualTo(before);
        throughNew(moved, two);
    }

    /** The inodes of the listening TCP sockets on {@code port} (IPv4, this network namespace), from /proc/net/tcp. */
    private static Set<String> listeningInodes(int port) throws IOException {
        String local = ":%04X".formatted(port);
        return Files.readAllLines(Path.of("/proc/net/tcp")).stream().skip(1).map(l -> l.strip().split("\\s+"))
                .filter(f -> f[1].endsWith(local) && f[3].equals("0A")).map(f -> f[9]).collect(Collectors.toSet());
    }

    @Test
    void aConfigWithProblemsIsRefusedWithEveryProblemAndTheAgentServesOnWithTheOldOne() throws Exception {
        try (Client longLived = new Client(keep)) {
            longLived.roundTrip(10_000);
            writeConfig(v1().replace("role: client}\n  - {name: gone", "role: sideways}\n  - {name: gone")
                    .replace("127.0.0.1:" + moved, "127.0.0.1:99999").replace("mode: programmatic", "mode: sometimes"));
            ControlCliTest.Run r = cli("reload");
            assertThat(r.code()).isEqualTo(1);
            String file = dir.resolve("agent.yaml").toString();
            assertThat(r.out()).contains("config " + file + " NOT reloaded: 3 problems; the running config is unchanged:")
                    .contains(file + ":5: listeners[0].role:").contains(file + ":7: listeners[2].listen:").contains(file + ":11: modules[0].mode:");

            longLived.roundTrip(10_000);
            throughNew(gone, one);
            assertThat(tagAt100(throughNew(tagged, one))).isEqualTo("<one>");

            // a setting that needs a restart is refused too, naming it
            writeConfig(v1().replace("io-threads: 2", "io-threads: 3"));
            r = cli("reload");
            assertThat(r.code()).isEqualTo(1);
            assertThat(r.out()).contains("agent.io-threads: changed (2 -> 3), which needs a restart");
            longLived.roundTrip(10_000);
        }
        ControlCliTest.Run status = cli("status");
        assertThat(status.out()).contains("config reload REFUSED at ").contains("agent.io-threads: changed (2 -> 3)");
    }

    @Test
    void sighupReloadsAsTheCommandDoes() throws Exception {
        try (Client longLived = new Client(keep)) {
            longLived.roundTrip(10_000);
            writeConfig(v2(fresh));
            hangUp();
            awaitLog("reloaded (SIGHUP)");
            assertThat(accepts(fresh)).as("listener fresh started after SIGHUP").isTrue();
            refused(gone);
            assertThat(tagAt100(throughNew(tagged, one))).isEqualTo("<two>");
            longLived.roundTrip(10_000);

            writeConfig(v2(fresh).replace("role: client}\n  - {name: fresh", "role: sideways}\n  - {name: fresh"));
            hangUp();
            awaitLog("NOT reloaded (SIGHUP)");
            assertThat(Files.readString(dir.resolve("agent.log"))).contains("listeners[2].role:");
            throughNew(fresh, two);
            longLived.roundTrip(10_000);
        }
        assertThat(agent.isAlive()).isTrue();
    }

    @Test
    void aListenerThatCannotBindFailsTheReloadAndNothingOfItStays() throws Exception {
        try (ServerSocket taken = new ServerSocket(0); Client longLived = new Client(keep)) {
            longLived.roundTrip(10_000);
            writeConfig(v2(taken.getLocalPort()));
            ControlCliTest.Run r = cli("reload");
            assertThat(r.code()).isEqualTo(1);
            assertThat(r.out()).contains("NOT reloaded").contains(":8: listener fresh did not start:")
                    .contains("undone: listener gone started again; listener moved back to its old settings");

            throughNew(gone, one);
            throughNew(moved, one);
            assertThat(tagAt100(throughNew(tagged, one))).isEqualTo("<one>");
            longLived.roundTrip(10_000);
        }
        ControlCliTest.Run status = cli("status");
        assertThat(status.out()).contains("config reload REFUSED at ").contains("listener fresh did not start");
    }

    @Test
    void aModuleWhoseInitFailsUndoesTheListenerChangesBeforeIt() throws Exception {
        writeConfig(v2(fresh).replace("every: 100", "every: 0"));
        ControlCliTest.Run r = cli("reload");
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.out()).contains("NOT reloaded").containsPattern(":10: module tag did not load from .* init failed: .*every must be at least 1, got 0.*; tag@[0-9.]+ keeps serving")
                .contains("undone: listener gone started again; listener moved back to its old settings; listener fresh stopped");

        refused(fresh);
        throughNew(gone, one);
        throughNew(moved, one);
        assertThat(tagAt100(throughNew(tagged, one))).isEqualTo("<one>");
    }

    private boolean accepts(int port) {
        try (Socket s = new Socket("127.0.0.1", port)) {
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** Waits until the agent's log has {@code text}. */
    private void awaitLog(String text) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!Files.readString(dir.resolve("agent.log")).contains(text)) {
            assertThat(System.nanoTime()).as("the agent logged '" + text + "' within 20 s").isLessThan(deadline);
            Thread.sleep(100);
        }
    }

    private void hangUp() throws Exception {
        Process kill = new ProcessBuilder("kill", "-HUP", Long.toString(agent.pid())).start();
        assertThat(kill.waitFor(10, TimeUnit.SECONDS)).isTrue();
        assertThat(kill.exitValue()).isZero();
    }

    private ControlCliTest.Run cli(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(ControlCliTest.java(), "--sun-misc-unsafe-memory-access=allow", "--enable-native-access=ALL-UNNAMED",
                "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-jar", jar.toString()));
        cmd.addAll(List.of(args));
        cmd.addAll(List.of("--socket", socket.toString()));
        return ControlCliTest.run(cmd);
    }
}
