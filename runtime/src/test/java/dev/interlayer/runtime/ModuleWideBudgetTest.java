package dev.interlayer.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.api.ControlRequest;
import dev.interlayer.api.ControlResponse;
import dev.interlayer.api.SocketModule;
import dev.interlayer.runtime.testing.TestJars;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The module calls no event loop makes — init, control, module-wide timers, fini — from real jars: one that spins or
 * sleeps past the module-wide budget is stopped, counted as a fault and named; module-wide timers are limited in number
 * and a timer that throws is a fault. The registry goes on loading and serving other modules.
 */
class ModuleWideBudgetTest {

    private static final Duration BUDGET = Duration.ofMillis(300);

    @TempDir
    Path dir;
    private ModuleRegistry registry;

    @BeforeEach
    void start() {
        registry = new ModuleRegistry(3, dir.resolve("cache"));
        registry.moduleWideBudget(BUDGET);
    }

    @AfterEach
    void stop() {
        registry.close();
        assertThat(Preemption.pendingRequests()).as("every stop request withdrawn").isZero();
    }

    /** Misbehaves where its {@code where} parameter says. */
    private static final String WIDE = """
            package w;
            import dev.interlayer.api.*;
            import java.time.Duration;
            public class Wide implements SocketModule<Object> {
                static volatile long sink;
                private String where;
                private ModuleEnv env;
                public ModuleDescriptor descriptor() {
                    return ModuleDescriptor.builder("wide", "1.0.0").implement(InterfaceType.SOCKET, 1, 0)
                            .param(Param.ofString("where", "nowhere", "where it misbehaves")).build();
                }
                public void init(ModuleEnv env) throws Exception {
                    this.env = env;
                    where = env.params().getString("where");
                    if (where.equals("init")) spin();
                    if (where.equals("init-sleep")) Thread.sleep(60_000);
                    if (where.equals("timer")) env.schedule(Duration.ofMillis(10), Wide::spin);
                    if (where.equals("timer-throws")) env.schedule(Duration.ofMillis(10), () -> { throw new IllegalStateException("boom"); });
                }
                public ControlResponse control(ControlRequest r) {
                    if (where.equals("control")) spin();
                    if (r.command().equals("timers")) {
                        int n = 0;
                        try {
                            while (n < 100_000) { env.schedule(Duration.ofHours(1), () -> { }); n++; }
                        } catch (IllegalStateException e) {
                            return ControlResponse.ok((n + " " + e.getMessage()).getBytes());
                        }
                        return ControlResponse.ok(String.valueOf(n).getBytes());
                    }
                    return ControlResponse.ok("pong".getBytes());
                }
                public void fini() { if (where.equals("fini")) spin(); }
                static void spin() { while (true) { sink++; } }
            }
            """;

    private Path jar(String name) {
        return TestJars.jar().source("w.Wide", WIDE).service("w.Wide").write(dir.resolve(name + ".jar"));
    }

    private List<LoadedModule> load(String where) throws ModuleLoadException {
        return registry.loadJar(jar(where), n -> new ModuleConfig("wide", null, null, null, null, null, null, Map.of("where", where)));
    }

    private static ControlResponse control(LoadedModule m, String command) {
        return m.callModuleWide("control", () -> ((SocketModule<?>) m.module()).control(new ControlRequest(command, new byte[0], "test")));
    }

    /** Waits for the module's first fault (a timer's, on the registry's timer thread), then checks there is exactly one. */
    private static void awaitFault(LoadedModule m) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while (m.faults() == 0 && System.nanoTime() < deadline) Thread.sleep(10);
        assertThat(m.faults()).isEqualTo(1);
    }

    @Test
    void anInitThatSpinsIsStoppedAndTheLoadFailsSayingWhy() throws Exception {
        long t0 = System.nanoTime();
        assertThatThrownBy(() -> load("init")).isInstanceOf(ModuleLoadException.class)
                .hasMessageContaining("init failed")
                .hasMessageContaining("wide@1.0.0's init ran longer than the module-wide budget (300 ms)")
                .hasMessageContaining("it was stopped at w.Wide.spin");
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(BUDGET.multipliedBy(10));
        assertThat(registry.modules()).isEmpty();
        assertThat(load("nowhere")).as("the registry loads the next module").hasSize(1);
    }

    @Test
    void anInitThatSleepsIsInterruptedAndTheLoadFails() throws Exception {
        assertThatThrownBy(() -> load("init-sleep")).isInstanceOf(ModuleLoadException.class)
                .hasMessageContaining("init failed").hasMessageContaining("Interrupted");
        assertThat(Thread.currentThread().isInterrupted()).as("the interrupt stays with the module's call").isFalse();
    }

    @Test
    void aControlCallThatSpinsIsStoppedAndCountedAsAFault() throws Exception {
        LoadedModule m = load("control").getFirst();
        assertThatThrownBy(() -> control(m, "ping")).isInstanceOf(ModuleCallException.class)
                .hasMessageContaining("failed in control").hasMessageContaining("ran longer than the module-wide budget (300 ms)");
        assertThat(m.faults()).isEqualTo(1);
        assertThat(m.lastFault()).contains("control").contains("it was stopped at w.Wide.spin");
    }

    @Test
    void aModuleWideTimerThatSpinsIsStoppedAndCounted() throws Exception {
        LoadedModule m = load("timer").getFirst();
        awaitFault(m);
        assertThat(m.lastFault()).startsWith("timer: ").contains("ran longer than the module-wide budget");
        LoadedModule other = load("nowhere").getFirst();
        assertThat(control(other, "ping").body()).as("the timer thread and the registry serve on").isEqualTo("pong".getBytes());
    }

    @Test
    void aModuleWideTimerThatThrowsIsAFault() throws Exception {
        LoadedModule m = load("timer-throws").getFirst();
        awaitFault(m);
        assertThat(m.lastFault()).contains("timer").contains("boom");
    }

    @Test
    void moduleWideTimersAreLimitedWithAMessageThatSaysWhatToDo() throws Exception {
        LoadedModule m = load("nowhere").getFirst();
        String answer = new String(control(m, "timers").body());
        assertThat(answer).startsWith(RealModuleEnv.TIMER_LIMIT + " ")
                .contains("wide@1.0.0 has " + RealModuleEnv.TIMER_LIMIT + " module-wide timers pending")
                .contains("cancel the timers it no longer needs");
    }

    @Test
    void aFiniThatSpinsIsStoppedAndTheModuleIsUnloadedAllTheSame() throws Exception {
        LoadedModule m = load("fini").getFirst();
        long t0 = System.nanoTime();
        m.revoke();
        assertThat(m.isUnloaded()).isTrue();
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(BUDGET.multipliedBy(10));
    }
}
