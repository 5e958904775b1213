package dev.interlayer.it;

import static dev.interlayer.it.Agents.waitFor;
import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.agent.Agent;
import dev.interlayer.api.Module;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.runtime.Failure;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.testing.TestJars;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The catalogue of deliberately broken module jars, dropped into a running agent's watched folder: each is
 * refused with a clear error or contained, and a connection opened before it keeps working throughout.
 * The verifier's refusals (System.exit, an undeclared thread, an SDK call newer than declared) come with the
 * class, method and line; the whole list of refused calls is in runtime's ModuleVerifierTest.
 */
class HostileModulesTest {

    @TempDir
    Path tmp;
    private TestServer echo;
    private Agent agent;
    private Path modules;
    private Path build;
    private Socket steady;
    private InetSocketAddress entry;

    @BeforeEach
    void start() throws Exception {
        echo = TestServer.echo();
        modules = Files.createDirectories(tmp.resolve("agent/modules"));
        build = Files.createDirectories(tmp.resolve("build"));
        agent = Agents.start(tmp.resolve("agent"), """
                agent:
                  modules-dir: modules
                  control: {socket: control.sock}
                  hook-budget: 200ms
                  module-wide-budget: 500ms
                  quarantine-after: 3
                listeners:
                  - name: app
                    listen: 127.0.0.1:0
                    upstream: 127.0.0.1:%d
                    role: client
                modules:
                  - name: leaker
                    allow: [threads]
                """.formatted(echo.address().getPort()));
        entry = agent.listeners().get("app");
        steady = connect();
        assertThat(roundTrip(steady, "before")).isEqualTo("before");
    }

    @AfterEach
    void stop() throws Exception {
        assertThat(roundTrip(steady, "still here")).as("the connection opened first was never disturbed").isEqualTo("still here");
        steady.close();
        agent.close();
        echo.close();
    }

    private Socket connect() throws IOException {
        Socket s = new Socket(entry.getAddress(), entry.getPort());
        s.setSoTimeout(20_000);
        return s;
    }

    private static String roundTrip(Socket s, String text) throws IOException {
        s.getOutputStream().write(text.getBytes(StandardCharsets.US_ASCII));
        return new String(s.getInputStream().readNBytes(text.length()), StandardCharsets.US_ASCII);
    }

    private void deploy(String fileName, TestJars.Builder jar) {
        TestJars.deploy(jar.write(build.resolve(fileName)), modules.resolve(fileName));
    }

    private Failure failureFor(String fileName) throws InterruptedException {
        waitFor("a failure for " + fileName, () -> agent.registry().failures().stream().anyMatch(f -> f.source().contains(fileName)
                || f.error().contains(fileName)));
        return agent.registry().failures().stream().filter(f -> f.source().contains(fileName) || f.error().contains(fileName))
                .findFirst().orElseThrow();
    }

    private void assertServesNewConnections() throws IOException {
        try (Socket s = connect()) {
            assertThat(roundTrip(s, "fresh")).isEqualTo("fresh");
        }
    }

    @Test
    void aModuleThatThrowsInAHookIsContainedAndQuarantined() throws Exception {
        String cls = "hostile.Thrower";
        deploy("thrower.jar", TestJars.jar().source(cls, TestJars.streamModule(cls, "thrower", "1.0.0",
                "public Verdict onSend(Object s, StreamContext c, ByteView v) { throw new IllegalStateException(\"hostile\"); }"))
                .service(cls));
        waitFor("loaded", () -> agent.registry().find("thrower").isPresent());
        LoadedModule m = agent.registry().find("thrower").orElseThrow();
        for (int i = 0; i < 3; i++) {
            assertServesNewConnections();
        }
        waitFor("quarantined", () -> m.state() == dev.interlayer.runtime.ModuleState.INACTIVE);
        assertThat(m.lastFault()).contains("onSend").contains("hostile");
        assertServesNewConnections();
    }

    @Test
    void aModuleThatThrowsInInitFailsWithItsReason() throws Exception {
        String cls = "hostile.BadInit";
        deploy("badinit.jar", TestJars.jar().source(cls, TestJars.streamModule(cls, "bad-init", "1.0.0",
                "public void init(ModuleEnv env) throws Exception { throw new java.io.IOException(\"no licence file\"); }"))
                .service(cls));
        Failure f = failureFor("badinit.jar");
        assertThat(f.error()).contains("init failed").contains("no licence file");
        assertThat(agent.registry().find("bad-init")).isEmpty();
        assertServesNewConnections();
    }

    @Test
    void aModuleThatBlocksTooLongIsInterruptedAndOtherConnectionsFlow() throws Exception {
        String cls = "hostile.Sleeper";
        deploy("sleeper.jar", TestJars.jar().source(cls, TestJars.streamModule(cls, "sleeper", "1.0.0",
                """
                public Verdict onSend(Object s, StreamContext c, ByteView v) {
                    try { Thread.sleep(60_000); } catch (InterruptedException e) { throw new IllegalStateException("interrupted", e); }
                    return Verdict.PASS;
                }
                """)).service(cls));
        waitFor("loaded", () -> agent.registry().find("sleeper").isPresent());
        long t0 = System.nanoTime();
        try (Socket s = connect()) {
            assertThat(roundTrip(s, "slow")).isEqualTo("slow"); // fail-open after the watchdog interrupt
        }
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(5));
        assertThat(agent.registry().find("sleeper").orElseThrow().faults()).isGreaterThanOrEqualTo(1);
    }

    @Test
    void aModuleSpinningInAHookIsStoppedCountedAndQuarantinedWhileOtherConnectionsFlow() throws Exception {
        String cls = "hostile.Spinner";
        deploy("spinner.jar", TestJars.jar().source(cls, TestJars.streamModule(cls, "spinner", "1.0.0", """
                static volatile long sink;
                public Verdict onSend(Object s, StreamContext c, ByteView v) {
                    while (true) { try { sink++; } catch (Throwable t) { sink--; } }
                }
                """)).service(cls));
        waitFor("loaded", () -> agent.registry().find("spinner").isPresent());
        LoadedModule m = agent.registry().find("spinner").orElseThrow();
        for (int i = 0; i < 3; i++) {
            long t0 = System.nanoTime();
            try (Socket s = connect()) {
                String text = "spin " + i;
                s.getOutputStream().write(text.getBytes(StandardCharsets.US_ASCII));
                assertThat(roundTrip(steady, "during " + i)).as("the first connection while the hook spins").isEqualTo("during " + i);
                assertThat(new String(s.getInputStream().readNBytes(text.length()), StandardCharsets.US_ASCII))
                        .as("stopped, the module detached (fail-open): the bytes go on").isEqualTo(text);
            }
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(5));
        }
        waitFor("quarantined", () -> m.state() == dev.interlayer.runtime.ModuleState.INACTIVE);
        assertThat(m.faults()).isEqualTo(3);
        assertThat(m.lastFault()).contains("HookPreempted").contains("spinner@1.0.0's hook onSend ran longer than the hook budget (200 ms)")
                .contains("it was stopped at hostile.Spinner.onSend");
        assertThat(agent.engine().stuckCalls()).isEmpty();
        assertServesNewConnections();
    }

    @Test
    void anAllocationBombIsStoppedAtTheLimitWhileOtherConnectionsFlow() throws Exception {
        String cls = "hostile.Hoarder";
        deploy("hoarder.jar", TestJars.jar().source(cls, TestJars.streamModule(cls, "hoarder", "1.0.0", """
                public Verdict onSend(Object s, StreamContext c, ByteView v) {
                    java.util.List<long[]> kept = new java.util.ArrayList<>();
                    while (true) kept.add(new long[1 << 20]); // 8 MiB each: allocated as fast as memory is zeroed
                }
                """)).service(cls));
        waitFor("loaded", () -> agent.registry().find("hoarder").isPresent());
        LoadedModule m = agent.registry().find("hoarder").orElseThrow();
        long t0 = System.nanoTime();
        try (Socket s = connect()) {
            s.getOutputStream().write("bomb".getBytes(StandardCharsets.US_ASCII));
            assertThat(roundTrip(steady, "during")).as("the first connection while the module allocates").isEqualTo("during");
            assertThat(new String(s.getInputStream().readNBytes(4), StandardCharsets.US_ASCII)).isEqualTo("bomb");
        }
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(5));
        assertThat(m.faults()).isEqualTo(1);
        assertThat(m.lastFault()).contains("hoarder@1.0.0's hook onSend allocated more than 64MiB in one call (agent.alloc-limit)");
        assertServesNewConnections();
    }

    @Test
    void aModuleSpinningInInitIsStoppedAndRefusedWhileTheAgentServes() throws Exception {
        String cls = "hostile.SlowStart";
        deploy("slowstart.jar", TestJars.jar().source(cls, TestJars.streamModule(cls, "slow-start", "1.0.0", """
                static volatile long sink;
                public void init(ModuleEnv env) { while (true) sink++; }
                """)).service(cls));
        assertThat(roundTrip(steady, "while init spins")).isEqualTo("while init spins");
        Failure f = failureFor("slowstart.jar");
        assertThat(f.error()).contains("init failed").contains("slow-start@1.0.0's init ran longer than the module-wide budget (500 ms)")
                .contains("it was stopped at hostile.SlowStart.init");
        assertThat(agent.registry().find("slow-start")).isEmpty();
        assertServesNewConnections();
    }

    @Test
    void aModuleThatFloodsTimersFaultsWithTheLimitAndTheFix() throws Exception {
        String cls = "hostile.Timers";
        deploy("timers.jar", TestJars.jar().source(cls, TestJars.streamModule(cls, "timers", "1.0.0", """
                public Verdict onSend(Object s, StreamContext c, ByteView v) {
                    while (true) c.attachment().schedule(java.time.Duration.ofHours(1), () -> { });
                }
                """)).service(cls));
        waitFor("loaded", () -> agent.registry().find("timers").isPresent());
        LoadedModule m = agent.registry().find("timers").orElseThrow();
        try (Socket s = connect()) {
            assertThat(roundTrip(s, "tick")).isEqualTo("tick");
        }
        waitFor("a fault", () -> m.faults() == 1);
        assertThat(m.lastFault()).contains("timers pending on connection").contains("cancel the timers it no longer needs");
        waitFor("its timers cancelled at detach", () -> m.liveAttachments() == 0);
        assertServesNewConnections();
    }

    @Test
    void aJarThatBundlesTheSdkIsRefusedWithTheFix() throws Exception {
        String cls = "hostile.Bundler";
        deploy("bundler.jar", TestJars.jar().source(cls, TestJars.streamModule(cls, "bundler", "1.0.0")).service(cls)
                .entry(TestJars.entryName(Module.class), TestJars.classBytes(Module.class)));
        Failure f = failureFor("bundler.jar");
        assertThat(f.error()).contains("SDK").contains("provided");
        assertServesNewConnections();
    }

    @Test
    void aModuleBuiltForAnotherMajorVersionIsRefused() throws Exception {
        String src = """
                package hostile;
                import dev.interlayer.api.*;
                public class Future implements StreamModule<Object> {
                    public ModuleDescriptor descriptor() {
                        return ModuleDescriptor.builder("future", "9.0.0").implement(InterfaceType.STREAM, 2, 0).build();
                    }
                }
                """;
        deploy("future.jar", TestJars.jar().source("hostile.Future", src).service("hostile.Future"));
        Failure f = failureFor("future.jar");
        assertThat(f.error()).contains("stream 2.0").contains("major version must match");
        assertServesNewConnections();
    }

    @Test
    void aModuleWithoutADescriptorIsRefused() throws Exception {
        String src = """
                package hostile;
                import dev.interlayer.api.*;
                public class Nameless implements StreamModule<Object> {
                    public ModuleDescriptor descriptor() { return null; }
                }
                """;
        deploy("nameless.jar", TestJars.jar().source("hostile.Nameless", src).service("hostile.Nameless"));
        Failure f = failureFor("nameless.jar");
        assertThat(f.error()).contains("descriptor");
        assertServesNewConnections();
    }

    @Test
    void aJarWithoutAServiceFileIsRefusedWithTheFix() throws Exception {
        String cls = "hostile.Unlisted";
        deploy("unlisted.jar", TestJars.jar().source(cls, TestJars.streamModule(cls, "unlisted", "1.0.0")));
        Failure f = failureFor("unlisted.jar");
        assertThat(f.error()).contains("META-INF/services/dev.interlayer.api.Module");
        assertServesNewConnections();
    }

    @Test
    void aModuleThatCallsSystemExitInAHookIsRefusedAtLoadAndTheAgentKeepsServing() throws Exception {
        String cls = "hostile.Quitter";
        deploy("quitter.jar", TestJars.jar().source(cls, TestJars.streamModule(cls, "quitter", "1.0.0",
                "public Verdict onSend(Object s, StreamContext c, ByteView v) { System.exit(43); return Verdict.PASS; }"))
                .service(cls));
        Failure f = failureFor("quitter.jar");
        assertThat(f.error()).contains("was refused before any of its code ran")
                .contains("hostile.Quitter.onSend(Object, StreamContext, ByteView) (Quitter.java:7): calls java.lang.System.exit(int)")
                .contains("return Verdict.error(code, reason)");
        assertThat(agent.registry().find("quitter")).isEmpty();
        assertServesNewConnections();
    }

    @Test
    void aModuleThatCallsSystemExitInInitIsRefusedBeforeInitRuns() throws Exception {
        String cls = "hostile.InitQuitter";
        deploy("init-quitter.jar", TestJars.jar().source(cls, TestJars.streamModule(cls, "init-quitter", "1.0.0",
                "public void init(ModuleEnv env) { System.exit(43); }")).service(cls));
        Failure f = failureFor("init-quitter.jar");
        assertThat(f.error()).contains("hostile.InitQuitter.init(ModuleEnv) (InitQuitter.java:7): calls java.lang.System.exit(int)");
        assertServesNewConnections();
    }

    @Test
    void aModuleThatStartsAThreadItDoesNotDeclareIsRefusedBeforeInitRuns() throws Exception {
        String cls = "hostile.Spawner";
        deploy("spawner.jar", TestJars.jar().source(cls, TestJars.streamModule(cls, "spawner", "1.0.0",
                "public void init(ModuleEnv env) { new Thread(() -> {}, \"spawner\").start(); }")).service(cls));
        Failure f = failureFor("spawner.jar");
        assertThat(f.module()).isEqualTo("spawner");
        assertThat(f.error()).contains("hostile.Spawner.init(ModuleEnv) (Spawner.java:7): new java.lang.Thread(Runnable, String), which creates"
                + " a thread, which needs capability threads, and module spawner does not declare it: add .capability(Capability.THREADS)");
        assertThat(Thread.getAllStackTraces().keySet()).noneMatch(t -> t.getName().equals("spawner"));
        assertServesNewConnections();
    }

    @Test
    void aStream11ModuleCallingRewriteOfStream12IsRefused() throws Exception {
        String cls = "hostile.Rewriter";
        deploy("rewriter.jar", TestJars.jar().source(cls, TestJars.streamModule(cls, "rewriter", "1.0.0",
                "public Verdict onSend(Object s, StreamContext c, ByteView v) { c.rewrite(); return Verdict.PASS; }")
                .replace("InterfaceType.STREAM, 1, 0", "InterfaceType.STREAM, 1, 1")).service(cls));
        Failure f = failureFor("rewriter.jar");
        assertThat(f.error()).contains("calls dev.interlayer.api.StreamContext.rewrite(), which is stream 1.2, but module rewriter declares stream 1.1");
        assertServesNewConnections();
    }

    @Test
    void twoJarsDeclaringOneModuleRunTheHigherVersionWhicheverArrivedFirstAndTrafficFlows() throws Exception {
        deploy("twin-b.jar", TestJars.jar().source("hostile.TwinTwo", TestJars.streamModule("hostile.TwinTwo", "twin", "2.0.0"))
                .service("hostile.TwinTwo"));
        waitFor("twin 2.0.0 loaded", () -> agent.registry().find("twin").isPresent());
        deploy("twin-a.jar", TestJars.jar().source("hostile.TwinOne", TestJars.streamModule("hostile.TwinOne", "twin", "1.0.0"))
                .service("hostile.TwinOne"));
        waitFor("the clash is seen", () -> agent.autoload().clashes().size() == 1);
        assertThat(agent.registry().find("twin")).get().extracting(LoadedModule::version).isEqualTo("2.0.0");
        assertThat(agent.autoload().clashes()).singleElement().asString()
                .contains("twin-b.jar (2.0.0), twin-a.jar (1.0.0); twin-b.jar wins (higher version)");
        assertThat(agent.registry().failures()).isEmpty();
        assertServesNewConnections();

        Files.delete(modules.resolve("twin-b.jar"));
        waitFor("twin 1.0.0 takes over", () -> agent.registry().find("twin").map(m -> m.version().equals("1.0.0")).orElse(false));
        assertServesNewConnections();
    }

    @Test
    void aModuleThatLeaksAThreadPastUnloadStillUnloadsAndTheAgentCarriesOn() throws Exception {
        String cls = "hostile.Leaker";
        deploy("leaker.jar", TestJars.jar().source(cls, TestJars.streamModule(cls, "leaker", "1.0.0", """
                public void init(ModuleEnv env) {
                    Thread t = new Thread(() -> { while (true) { try { Thread.sleep(50); } catch (InterruptedException e) { return; } } }, "leaker-spinner");
                    t.setDaemon(true);
                    t.start();
                }
                """).replace(".build();", ".capability(Capability.THREADS).build();")).service(cls));
        waitFor("loaded", () -> agent.registry().find("leaker").isPresent());
        LoadedModule m = agent.registry().find("leaker").orElseThrow();
        assertServesNewConnections();
        Files.delete(modules.resolve("leaker.jar"));
        waitFor("unloaded", m::isUnloaded);
        assertThat(agent.registry().find("leaker")).isEmpty();
        assertServesNewConnections();
        // the left thread is reported by name in the agent log ("left thread 'leaker-spinner' running after fini")
        assertThat(Thread.getAllStackTraces().keySet()).anyMatch(t -> t.getName().equals("leaker-spinner"));
    }
}
