package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.control.testing.TempDirs;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.it.ControlCliTest.Run;
import dev.interlayer.runtime.testing.TestJars;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A module stuck where the agent cannot stop it (blocked in {@code ReentrantLock.lock()}, which ignores interrupts),
 * in a real agent process ({@code interlayer run}) driven by the real CLI: {@code status} says "degraded" and where,
 * {@code modules list} marks the module, new connections are still served, a revoke resets the module's connections on
 * the other event loop, and SIGTERM stops the agent within its {@code stop-timeout}.
 */
class StuckModuleTest {

    private static final Duration STOP_TIMEOUT = Duration.ofSeconds(3);

    /** Blocks in ReentrantLock.lock() on a SEND chunk holding a '!': a thread of the module holds the lock for good. */
    private static final String STUCK = """
            package hostile;
            import dev.interlayer.api.*;
            import java.util.concurrent.CountDownLatch;
            import java.util.concurrent.locks.ReentrantLock;
            public class Stuck implements StreamModule<Object> {
                static final ReentrantLock GATE = new ReentrantLock();
                public ModuleDescriptor descriptor() {
                    return ModuleDescriptor.builder("stuck", "1.0.0").implement(InterfaceType.STREAM, 1, 0)
                            .capability(Capability.THREADS).build(); // init starts the thread that holds the lock
                }
                public void init(ModuleEnv env) throws Exception {
                    CountDownLatch held = new CountDownLatch(1);
                    Thread holder = new Thread(() -> {
                        GATE.lock();
                        held.countDown();
                        while (true) { try { Thread.sleep(60_000); } catch (InterruptedException e) { } }
                    }, "stuck-gate-holder");
                    holder.setDaemon(true);
                    holder.start();
                    held.await();
                }
                public Verdict onSend(Object s, StreamContext c, ByteView v) {
                    if (v.indexOf((byte) '!') >= 0) { GATE.lock(); GATE.unlock(); }
                    return Verdict.PASS;
                }
            }
            """;

    private Path dir;
    private Path jar;
    private Path socket;
    private Process agent;
    private TestServer echo;
    private final List<Socket> sockets = new ArrayList<>();

    @BeforeEach
    void start() throws Exception {
        dir = Files.createTempDirectory("interlayer-stuck-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        jar = Files.copy(Path.of(System.getProperty("interlayer.distJar", "../cli/target/interlayer.jar")), dir.resolve("interlayer.jar"));
        TestJars.jar().source("hostile.Stuck", STUCK).service("hostile.Stuck").write(dir.resolve("modules/stuck.jar"));
        echo = TestServer.echo();
        socket = dir.resolve("control.sock");
        Files.writeString(dir.resolve("agent.yaml"), """
                agent:
                  control: {socket: control.sock}
                  io-threads: 2
                  hook-budget: 200ms
                  stop-timeout: %ds
                listeners:
                  - name: app
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:%d
                    role: client
                modules:
                  - name: stuck
                    allow: [threads]
                """.formatted(STOP_TIMEOUT.toSeconds(), echo.address().getPort()));
        agent = new ProcessBuilder(ControlCliTest.java(), "--sun-misc-unsafe-memory-access=allow", "--enable-native-access=ALL-UNNAMED",
                "-Dio.netty.leakDetection.level=paranoid", "-jar", jar.toString(), "run", "--config", dir.resolve("agent.yaml").toString())
                .redirectErrorStream(true).redirectOutput(dir.resolve("agent.log").toFile()).start();
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (cli("status").code() != 0 || !cli("modules", "list").out().contains("stuck")) {
            assertThat(agent.isAlive()).as("agent exited: " + Files.readString(dir.resolve("agent.log"))).isTrue();
            assertThat(System.nanoTime()).as("agent did not answer within 30 s").isLessThan(deadline);
            Thread.sleep(200);
        }
    }

    @AfterEach
    void stop() throws Exception {
        for (Socket s : sockets) {
            s.close();
        }
        if (agent != null && agent.isAlive()) {
            agent.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
        if (echo != null) {
            echo.close();
        }
        TempDirs.delete(dir);
    }

    private Run cli(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(ControlCliTest.java(), "--sun-misc-unsafe-memory-access=allow", "--enable-native-access=ALL-UNNAMED",
                "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-jar", jar.toString()));
        cmd.addAll(List.of(args));
        cmd.add("--socket");
        cmd.add(socket.toString());
        return ControlCliTest.run(cmd);
    }

    private Run ok(String... args) throws Exception {
        Run r = cli(args);
        assertThat(r.code()).as(String.join(" ", args) + "\nstdout: " + r.out() + "\nstderr: " + r.err()).isZero();
        return r;
    }

    private InetSocketAddress listener() throws Exception {
        String listen = ok("listeners", "list", "--json").out().replaceAll("(?s).*\"listen\":\"([^\"]+)\".*", "$1").strip();
        int colon = listen.lastIndexOf(':');
        return new InetSocketAddress(listen.substring(0, colon), Integer.parseInt(listen.substring(colon + 1)));
    }

    private Socket connect(InetSocketAddress a) throws IOException {
        Socket s = new Socket(a.getAddress(), a.getPort());
        s.setSoTimeout(5_000);
        sockets.add(s);
        return s;
    }

    private static String roundTrip(Socket s, String text) throws IOException {
        s.getOutputStream().write(text.getBytes(StandardCharsets.US_ASCII));
        return new String(s.getInputStream().readNBytes(text.length()), StandardCharsets.US_ASCII);
    }

    @Test
    void aStuckModuleShowsInStatusRevokeEndsItsConnectionsAndSigtermStopsInTime() throws Exception {
        InetSocketAddress entry = listener();
        Socket victim = connect(entry);
        assertThat(roundTrip(victim, "before")).isEqualTo("before");
        victim.getOutputStream().write('!');

        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        Run status = cli("status");
        while (!status.out().contains("degraded")) {
            assertThat(System.nanoTime()).as("status says degraded within 10 s: " + status.out()).isLessThan(deadline);
            Thread.sleep(200);
            status = cli("status");
        }
        assertThat(status.code()).isZero();
        assertThat(status.out()).contains("stuck: 1 event loop held by a module call that did not stop when asked")
                .contains("module stuck@1.0.0 onSend on connection").contains("java.util.concurrent.locks.")
                .contains("called from hostile.Stuck.onSend");
        Run list = ok("modules", "list");
        assertThat(list.out()).contains("ACTIVE, STUCK").contains("STUCK module stuck@1.0.0 onSend");

        // new connections are served, by the event loop that is not stuck; they get the module too
        List<Socket> others = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            Socket s = connect(entry);
            assertThat(roundTrip(s, "other " + i)).as("new connection " + i + " while a loop is stuck").isEqualTo("other " + i);
            others.add(s);
        }

        Run revoke = ok("modules", "state", "stuck", "revoke");
        assertThat(revoke.out()).contains("ACTIVE -> REVOKED").contains("its connections on the other event loops are reset");
        for (Socket s : others) {
            assertThatThrownBy(() -> {
                InputStream in = s.getInputStream();
                while (in.read() >= 0) {
                    // until the reset
                }
            }).as("a connection of the revoked module on the other event loop is reset").isInstanceOf(SocketException.class);
        }
        Socket after = connect(entry);
        assertThat(roundTrip(after, "after revoke")).isEqualTo("after revoke");

        long t0 = System.nanoTime();
        agent.destroy(); // SIGTERM
        assertThat(agent.waitFor(STOP_TIMEOUT.toSeconds() + 10, TimeUnit.SECONDS)).as("the agent exited").isTrue();
        Duration took = Duration.ofNanos(System.nanoTime() - t0);
        String log = Files.readString(dir.resolve("agent.log"));
        assertThat(took).as("SIGTERM to exit, with a stuck event loop; log:\n" + log).isLessThan(STOP_TIMEOUT.plusSeconds(2));
        assertThat(agent.exitValue()).isEqualTo(143);
        // (log lines written while the JVM shuts down are lost: java.util.logging closes its handlers in a shutdown hook of its own)
        assertThat(log).contains("interlayer: agent stopped").doesNotContain("LEAK:");
    }
}
