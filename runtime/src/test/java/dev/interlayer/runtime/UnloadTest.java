package dev.interlayer.runtime;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.api.DetachReason;
import dev.interlayer.runtime.testing.TestJars;
import java.lang.ref.WeakReference;
import java.nio.file.Path;
import java.util.List;
import java.util.logging.Level;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** After unload nothing of a jar stays behind: its loader is collectable, and a module that leaks a thread is named. */
class UnloadTest {

    @TempDir
    Path dir;

    private ModuleRegistry registry;

    @BeforeEach
    void setUp() {
        registry = new ModuleRegistry(dir.resolve("cache"));
    }

    @AfterEach
    void tearDown() {
        registry.close();
    }

    /**
     * A module that exercises what usually pins a loader: a lambda, a module-wide timer far in the future
     * (cancelled at fini), per-connection state of its own class, and a class loaded lazily on first use.
     */
    private static final String BUSY_MODULE = """
            package t;
            import dev.interlayer.api.*;
            import java.time.Duration;
            public class Busy implements StreamModule<Busy.State> {
                public static final class State { final byte[] buffer = new byte[1 << 20]; }
                private Cancellable timer;
                public ModuleDescriptor descriptor() {
                    return ModuleDescriptor.builder("busy", "1.0.0").implement(InterfaceType.STREAM, 1, 1).build();
                }
                public void init(ModuleEnv env) {
                    Runnable tick = () -> env.log().info("tick %s", new State().buffer.length);
                    timer = env.schedule(Duration.ofHours(1), tick);
                }
                public Attach<State> attach(Attachment a) { return Attach.with(new State()); }
            }
            """;

    @Test
    void theClassLoaderIsCollectableAfterUnload() throws Exception {
        Path jar = TestJars.jar().source("t.Busy", BUSY_MODULE).service("t.Busy").write(dir.resolve("busy.jar"));

        WeakReference<ClassLoader> loader = loadAttachAndUnload(jar);

        long deadline = System.nanoTime() + 10_000_000_000L;
        while (loader.get() != null && System.nanoTime() < deadline) {
            System.gc();
            Thread.sleep(50);
        }
        assertThat(loader.get()).as("the module's class loader was garbage-collected after unload").isNull();
    }

    /** Every strong reference to the module stays in this frame, which is gone when it returns. */
    private WeakReference<ClassLoader> loadAttachAndUnload(Path jar) throws Exception {
        LoadedModule m = registry.loadJar(jar, name -> null).getFirst();
        RecordingSite site = new RecordingSite(1);
        assertThat(m.registerSite(site)).isTrue();
        Object state = m.module().attach(null).state(); // what the engine would keep for the connection
        assertThat(state.getClass().getClassLoader()).isSameAs(m.loader());
        m.attached();

        m.unregister();
        assertThat(site.requests()).containsExactly(DetachReason.UNREGISTERED);
        m.module().detach(state, DetachReason.UNREGISTERED);
        m.siteDetached(site);

        assertThat(m.isUnloaded()).isTrue();
        JarPackage pkg = (JarPackage) m.pkg();
        assertThat(pkg.isClosed()).isTrue();
        assertThat(registry.modules()).isEmpty();
        return new WeakReference<>(m.loader());
    }

    /** The config of a module allowed to start threads (both modules below declare Capability.THREADS). */
    private static final java.util.function.Function<String, ModuleConfig> ALLOW_THREADS =
            name -> ModuleConfig.defaults(name).withAllow(java.util.Set.of(dev.interlayer.api.Capability.THREADS));

    @Test
    void aModuleThatLeavesThreadsRunningIsNamedAndTheRegistryKeepsWorking() throws Exception {
        Path hostile = TestJars.jar()
                .source("t.Hostile", """
                        package t;
                        import dev.interlayer.api.*;
                        public class Hostile implements StreamModule<Object> {
                            public static final class Spinner extends Thread {
                                Spinner() { super("hostile-subclass"); setDaemon(true); setContextClassLoader(null); }
                                @Override public void run() { Hostile.spin(); }
                            }
                            static void spin() {
                                try { while (true) Thread.sleep(50); } catch (InterruptedException stop) { }
                            }
                            public ModuleDescriptor descriptor() {
                                return ModuleDescriptor.builder("hostile", "1.0.0").implement(InterfaceType.STREAM, 1, 1)
                                        .capability(Capability.THREADS).build();
                            }
                            public void init(ModuleEnv env) {
                                Thread t = new Thread(Hostile::spin, "hostile-spinner"); // inherits the module's context loader
                                t.setDaemon(true);
                                t.start();
                                new Spinner().start();
                            }
                            // no fini: the threads are never stopped
                        }
                        """)
                .service("t.Hostile")
                .write(dir.resolve("hostile.jar"));

        try (LogCapture log = LogCapture.start()) {
            LoadedModule m = registry.loadJar(hostile, ALLOW_THREADS).getFirst();
            m.unregister();
            assertThat(m.isUnloaded()).as("unload completes although threads are left").isTrue();

            long deadline = System.nanoTime() + 10_000_000_000L;
            while (log.at(Level.WARNING).stream().filter(l -> l.contains("left thread")).count() < 2 && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            List<String> warnings = log.at(Level.WARNING).stream().filter(l -> l.contains("left thread")).toList();
            assertThat(warnings).anySatisfy(w -> assertThat(w)
                    .contains("module hostile@1.0.0")
                    .contains("left thread 'hostile-spinner' running after fini; it pins the module's class loader"));
            assertThat(warnings).anySatisfy(w -> assertThat(w).contains("left thread 'hostile-subclass' running after fini"));
        } finally {
            for (Thread t : Thread.getAllStackTraces().keySet()) {
                if (t.getName().startsWith("hostile-")) {
                    t.interrupt();
                }
            }
        }

        Path next = TestJars.jar().source(TestJars.streamModule("t.Next", "next", "1.0.0")).service("t.Next").write(dir.resolve("next.jar"));
        assertThat(registry.loadJar(next, name -> null)).extracting(LoadedModule::state).containsExactly(ModuleState.ACTIVE);
    }

    @Test
    void aModuleThatStopsItsThreadInFiniIsNotReported() throws Exception {
        Path polite = TestJars.jar()
                .source("t.Polite", """
                        package t;
                        import dev.interlayer.api.*;
                        public class Polite implements StreamModule<Object> {
                            private Thread worker;
                            public ModuleDescriptor descriptor() {
                                return ModuleDescriptor.builder("polite", "1.0.0").implement(InterfaceType.STREAM, 1, 1)
                                        .capability(Capability.THREADS).build();
                            }
                            public void init(ModuleEnv env) {
                                worker = new Thread(() -> {
                                    try { while (true) Thread.sleep(50); } catch (InterruptedException stop) { }
                                }, "polite-worker");
                                worker.setDaemon(true);
                                worker.start();
                            }
                            public void fini() {
                                worker.interrupt();
                                try { worker.join(); } catch (InterruptedException e) { Thread.currentThread().interrupt(); }
                            }
                        }
                        """)
                .service("t.Polite")
                .write(dir.resolve("polite.jar"));

        try (LogCapture log = LogCapture.start()) {
            registry.loadJar(polite, ALLOW_THREADS).getFirst().unregister();
            Thread.sleep(1000); // longer than the grace period before a report

            assertThat(log.lines()).noneMatch(l -> l.contains("left thread"));
        }
    }
}
