package dev.interlayer.agent;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import dev.interlayer.runtime.testing.TestJars;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AgentTest {

    @TempDir
    Path dir;

    private ServerSocket echo;
    private Thread echoThread;

    @BeforeEach
    void startEchoServer() throws IOException {
        echo = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress());
        echoThread = Thread.ofVirtual().start(() -> {
            while (!echo.isClosed()) {
                try {
                    Socket s = echo.accept();
                    Thread.ofVirtual().start(() -> {
                        try (s; InputStream in = s.getInputStream(); OutputStream out = s.getOutputStream()) {
                            in.transferTo(out);
                            s.shutdownOutput();
                        } catch (IOException ignored) {
                            // the test that opened it reports what it saw
                        }
                    });
                } catch (IOException e) {
                    return;
                }
            }
        });
    }

    @AfterEach
    void stopEchoServer() throws Exception {
        echo.close();
        echoThread.join(2000);
    }

    private AgentConfig config(String extra) throws Exception {
        Path f = dir.resolve("agent.yaml");
        Files.writeString(f, """
                agent: {control: {socket: control.sock}}
                listeners:
                  - name: web
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:%d
                    role: client
                    options: {tcp-nodelay: true}
                """.formatted(echo.getLocalPort()) + extra);
        return AgentConfig.load(f);
    }

    private static byte[] roundTrip(InetSocketAddress at, byte[] data) throws Exception {
        try (Socket s = new Socket()) {
            s.connect(at, 5000);
            s.setSoTimeout(10_000);
            CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
                try {
                    s.getOutputStream().write(data);
                    s.shutdownOutput();
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            byte[] back = s.getInputStream().readAllBytes();
            writer.get(10, TimeUnit.SECONDS);
            return back;
        }
    }

    private static String sha256(byte[] b) throws Exception {
        return java.util.HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }

    @Test
    void bytesSentThroughAListenerReachTheUpstreamAndTheReplyComesBackIntact() throws Exception {
        byte[] data = new byte[4 << 20];
        new Random(42).nextBytes(data);
        try (Agent agent = Agent.start(config(""))) {
            InetSocketAddress at = agent.listeners().get("web");
            assertThat(at.getPort()).isPositive();
            byte[] back = roundTrip(at, data);
            assertThat(back.length).isEqualTo(data.length);
            assertThat(sha256(back)).isEqualTo(sha256(data));
        }
    }

    @Test
    void aShortMessageFollowedAtOnceByHalfCloseComesBack() throws Exception {
        try (Agent agent = Agent.start(config(""))) {
            byte[] back = roundTrip(agent.listeners().get("web"), "hello".getBytes());
            assertThat(new String(back)).isEqualTo("hello");
        }
    }

    @Test
    void aBrokenJarInTheModulesFolderIsRecordedAndTheAgentKeepsServing() throws Exception {
        Path modules = Files.createDirectories(dir.resolve("modules"));
        Files.writeString(modules.resolve("broken.jar"), "this is not a zip file");
        try (Agent agent = Agent.start(config(""))) {
            assertThat(agent.registry().failures()).anySatisfy(f -> {
                assertThat(f.source()).endsWith("broken.jar");
                assertThat(f.error()).isNotBlank();
            });
            byte[] back = roundTrip(agent.listeners().get("web"), "hello".getBytes());
            assertThat(new String(back)).isEqualTo("hello");
        }
    }

    @Test
    void theDefaultModulesFolderIsCreatedBesideTheConfig() throws Exception {
        try (Agent agent = Agent.start(config(""))) {
            assertThat(dir.resolve("modules")).isDirectory();
            assertThat(agent.config().agent().modulesDirSet()).isFalse();
        }
    }

    @Test
    void aListenerThatCannotBindStopsTheStartAndNamesTheConfigLine() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            Path f = dir.resolve("agent.yaml");
            Files.writeString(f, """
                    listeners:
                      - name: web
                        listen: 127.0.0.1:%d
                        upstream: 127.0.0.1:%d
                        role: client
                    """.formatted(taken.getLocalPort(), echo.getLocalPort()));
            AgentConfig c = AgentConfig.load(f);
            assertThatThrownBy(() -> Agent.start(c))
                    .isInstanceOf(AgentException.class)
                    .hasMessageStartingWith(f + ":2: listener web did not start: ");
        }
    }

    @Test
    void checkingModulesReportsAConfiguredModuleThatIsNowhereWithItsLine() throws Exception {
        AgentConfig c = config("modules:\n  - name: ghost\n");
        Agent.ModuleCheck check = Agent.checkModules(c);
        assertThat(check.loaded()).isEmpty();
        assertThat(check.problems()).singleElement().asString()
                .startsWith(c.source() + ":9: modules[0].name: no module named 'ghost' was found in the modules folder")
                .contains("put the jar that contains it into the modules folder");
    }

    @Test
    void checkingModulesReportsABrokenJarInTheModulesFolder() throws Exception {
        Path modules = Files.createDirectories(dir.resolve("modules"));
        Files.writeString(modules.resolve("broken.jar"), "not a zip");
        Agent.ModuleCheck check = Agent.checkModules(config(""));
        assertThat(check.problems()).singleElement().asString().contains("broken.jar");
    }

    /** A jar with stream module {@code t.<Cls>} named {@code name} at {@code version}, with {@code builder} calls and {@code body}. */
    private static Path moduleJar(Path target, String cls, String name, String version, String builder, String body) {
        String src = """
                package t;
                import dev.interlayer.api.*;
                public class %s implements StreamModule<Object> {
                    public ModuleDescriptor descriptor() {
                        return ModuleDescriptor.builder("%s", "%s").implement(InterfaceType.STREAM, 1, 2)%s.build();
                    }
                %s
                }
                """.formatted(cls, name, version, builder, body);
        return TestJars.jar().source("t." + cls, src).service("t." + cls).write(target);
    }

    @Test
    void checkingModulesRefusesAModuleThatWouldStopTheAgentFromInitWithItsClassAndLine() throws Exception {
        Path modules = Files.createDirectories(dir.resolve("modules"));
        moduleJar(modules.resolve("quitter.jar"), "Quitter", "quitter", "1.0.0", "",
                "    public void init(ModuleEnv env) { System.exit(43); }");

        Agent.ModuleCheck check = Agent.checkModules(config(""));

        assertThat(check.loaded()).isEmpty();
        assertThat(check.problems()).singleElement().asString()
                .contains("quitter.jar was refused before any of its code ran")
                .contains("t.Quitter.init(ModuleEnv) (Quitter.java:7): calls java.lang.System.exit(int)");
    }

    @Test
    void aModuleDeclaringACapabilityLoadsOnlyWhereItsConfigEntryAllowsIt() throws Exception {
        Path modules = Files.createDirectories(dir.resolve("modules"));
        moduleJar(modules.resolve("worker.jar"), "Worker", "worker", "1.0.0", ".capability(Capability.THREADS)", """
                    private Thread t;
                    public void init(ModuleEnv env) { t = new Thread(() -> {}, "worker"); }
                """);

        Agent.ModuleCheck refused = Agent.checkModules(config("modules:\n  - name: worker\n"));
        assertThat(refused.problems()).singleElement().asString()
                .startsWith(dir.resolve("agent.yaml") + ":9: modules[0] (worker): module worker 1.0.0 from")
                .contains("declares capability threads (used at t.Worker.init(ModuleEnv) (Worker.java:8)) but the agent's config does not"
                        + " allow it: add 'allow: [threads]' to the module's entry");

        Agent.ModuleCheck allowed = Agent.checkModules(config("modules:\n  - name: worker\n    allow: [threads]\n"));
        assertThat(allowed.problems()).isEmpty();
        assertThat(allowed.loaded()).containsExactly("worker@1.0.0 (worker.jar)");
    }

    @Test
    void checkingModulesWarnsAboutTwoJarsOfTheFolderDeclaringOneModule() throws Exception {
        Path modules = Files.createDirectories(dir.resolve("modules"));
        moduleJar(modules.resolve("tag-new.jar"), "TagNew", "tag", "1.1.0", "", "");
        moduleJar(modules.resolve("tag-old.jar"), "TagOld", "tag", "1.0.0", "", "");

        Agent.ModuleCheck check = Agent.checkModules(config(""));

        assertThat(check.problems()).isEmpty();
        assertThat(check.loaded()).containsExactly("tag@1.1.0 (tag-new.jar)");
        assertThat(check.warnings()).singleElement().asString()
                .contains("module tag is declared by 2 jars of " + modules + ": tag-new.jar (1.1.0), tag-old.jar (1.0.0); tag-new.jar wins (higher version)");
    }
}
