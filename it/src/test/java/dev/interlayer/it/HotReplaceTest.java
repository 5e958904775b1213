package dev.interlayer.it;

import static dev.interlayer.it.Agents.waitFor;
import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.agent.Agent;
import dev.interlayer.engine.ConnectionSnapshot;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleState;
import dev.interlayer.runtime.testing.TestJars;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Rolling a module by replacing and removing its jar in the watched folder while connections stream:
 * the old version keeps its connections (deprecated), new connections get the new version, nothing is lost.
 */
class HotReplaceTest {

    @TempDir
    Path tmp;

    /**
     * A module {@code marker} that XORs SEND with {@code key} and RECV back: the echo's client sees its own bytes, every
     * chunk is rewritten, and the upstream's bytes show which version ran (also OrchestratorTest's).
     */
    static Path markerJar(Path dir, String version, int key) {
        String cls = "hot.Marker" + version.replace('.', '_');
        String src = TestJars.streamModule(cls, "marker", version, """
                    private static Verdict flip(StreamContext ctx, ByteView v) {
                        byte[] b = v.copyRemaining();
                        for (int i = 0; i < b.length; i++) b[i] ^= (byte) %d;
                        ctx.replace().write(b);
                        return Verdict.PASS;
                    }
                    public Verdict onSend(Object s, StreamContext ctx, ByteView v) { return flip(ctx, v); }
                    public Verdict onRecv(Object s, StreamContext ctx, ByteView v) { return flip(ctx, v); }
                """.formatted(key));
        return TestJars.jar().source(cls, src).service(cls).write(dir.resolve("marker-" + version + ".jar"));
    }

    private static List<String> modulesOf(Agent a, long connectionId) {
        return a.engine().connections().stream().filter(c -> c.id() == connectionId).findFirst()
                .map(ConnectionSnapshot::modules).orElse(List.of());
    }

    /** Streams random bytes through the agent until stopped; checks the echo by hash. */
    private static final class Stream implements AutoCloseable {
        final Socket s;
        final AtomicBoolean stop = new AtomicBoolean();
        final AtomicLong sent = new AtomicLong();
        final CompletableFuture<String> sentHash = new CompletableFuture<>();
        final CompletableFuture<String> gotHash = new CompletableFuture<>();

        Stream(InetSocketAddress a) throws Exception {
            s = new Socket(a.getAddress(), a.getPort());
            s.setSoTimeout(30_000);
            Thread.ofVirtual().start(() -> {
                try {
                    MessageDigest md = MessageDigest.getInstance("SHA-256");
                    SplittableRandom r = new SplittableRandom(3);
                    byte[] buf = new byte[8192];
                    OutputStream out = s.getOutputStream();
                    while (!stop.get()) {
                        int n = 1 + r.nextInt(buf.length);
                        r.nextBytes(buf);
                        md.update(buf, 0, n);
                        out.write(buf, 0, n);
                        sent.addAndGet(n);
                        Thread.sleep(1);
                    }
                    s.shutdownOutput();
                    sentHash.complete(HexFormat.of().formatHex(md.digest()));
                } catch (Exception e) {
                    sentHash.completeExceptionally(e);
                }
            });
            Thread.ofVirtual().start(() -> {
                try {
                    MessageDigest md = MessageDigest.getInstance("SHA-256");
                    InputStream in = s.getInputStream();
                    byte[] buf = new byte[65536];
                    int n;
                    while ((n = in.read(buf)) > 0) md.update(buf, 0, n);
                    gotHash.complete(HexFormat.of().formatHex(md.digest()));
                } catch (Exception e) {
                    gotHash.completeExceptionally(e);
                }
            });
        }

        void finishAndCheck() throws Exception {
            stop.set(true);
            assertThat(gotHash.get(30, TimeUnit.SECONDS)).isEqualTo(sentHash.get(30, TimeUnit.SECONDS));
        }

        @Override
        public void close() throws Exception {
            s.close();
        }
    }

    @Test
    void replacingAndRemovingAJarWhileConnectionsStreamLosesNothing() throws Exception {
        Path modules = Files.createDirectories(tmp.resolve("agent/modules"));
        Path build = Files.createDirectories(tmp.resolve("build"));
        try (TestServer echo = TestServer.echo();
             Agent agent = Agents.start(tmp.resolve("agent"), """
                     agent:
                       modules-dir: modules
                       control: {socket: control.sock}
                     listeners:
                       - name: app
                         listen: 127.0.0.1:0
                         upstream: 127.0.0.1:%d
                         role: client
                     """.formatted(echo.address().getPort()))) {
            InetSocketAddress entry = agent.listeners().get("app");

            TestJars.deploy(markerJar(build, "1.0.0", 0x11), modules.resolve("marker.jar"));
            waitFor("v1 loaded", () -> agent.registry().find("marker").map(m -> m.version().equals("1.0.0")).orElse(false));
            LoadedModule v1 = agent.registry().find("marker").orElseThrow();
            LoadedModule v2;

            try (Stream c1 = new Stream(entry)) {
                waitFor("c1 streaming", () -> c1.sent.get() > 100_000);
                long c1Id = agent.engine().connections().getFirst().id();
                assertThat(modulesOf(agent, c1Id)).containsExactly("marker@1.0.0");

                TestJars.deploy(markerJar(build, "2.0.0", 0x22), modules.resolve("marker.jar"));
                waitFor("v2 loaded", () -> agent.registry().find("marker").map(m -> m.version().equals("2.0.0")).orElse(false));
                v2 = agent.registry().find("marker").orElseThrow();
                assertThat(v1.state()).isEqualTo(ModuleState.DEPRECATED);
                assertThat(v2.state()).isEqualTo(ModuleState.ACTIVE);

                try (Stream c2 = new Stream(entry)) {
                    waitFor("c2 streaming", () -> c2.sent.get() > 100_000);
                    long c2Id = agent.engine().connections().stream().mapToLong(ConnectionSnapshot::id).max().orElseThrow();
                    assertThat(modulesOf(agent, c2Id)).containsExactly("marker@2.0.0");
                    assertThat(modulesOf(agent, c1Id)).as("the deprecated version keeps its connection").containsExactly("marker@1.0.0");

                    Files.delete(modules.resolve("marker.jar"));
                    waitFor("v2 retired", () -> v2.state() == ModuleState.DEPRECATED);
                    try (Socket c3 = new Socket(entry.getAddress(), entry.getPort())) {
                        c3.getOutputStream().write("plain".getBytes());
                        assertThat(new String(c3.getInputStream().readNBytes(5))).isEqualTo("plain");
                        long c3Id = agent.engine().connections().stream().mapToLong(ConnectionSnapshot::id).max().orElseThrow();
                        assertThat(modulesOf(agent, c3Id)).as("a removed module attaches to nothing new").isEmpty();
                    }
                    long before = c2.sent.get();
                    waitFor("c2 keeps streaming", () -> c2.sent.get() > before + 100_000);
                    c2.finishAndCheck();
                }
                LoadedModule second = v2;
                waitFor("v2 unloaded after its last connection", second::isUnloaded);
                assertThat(v1.isUnloaded()).as("v1 still serves c1").isFalse();
                c1.finishAndCheck();
            }
            waitFor("v1 unloaded after its last connection", v1::isUnloaded);
            assertThat(agent.registry().modules()).isEmpty();
            assertThat(v1.stats().faults() + v2.stats().faults()).isZero();
            assertThat(Arrays.stream(v1.stats().bytesIn()).sum()).isPositive();
        }
    }
}
