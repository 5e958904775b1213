package dev.interlayer.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.example.verify.Rewriter11;
import dev.interlayer.api.Capability;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.runtime.testing.TestJars;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.jar.JarEntry;
import java.util.jar.JarInputStream;
import java.util.jar.JarOutputStream;
import org.assertj.core.api.AbstractStringAssert;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The verifier on real jars: one careless module per refused family of calls, refused at load with the class, the method,
 * the line, the capability and the fix, before any of its code ran; and what it lets through.
 */
class ModuleVerifierTest {

    @TempDir
    Path dir;

    private ModuleRegistry registry;

    @BeforeEach
    void setUp() {
        registry = new ModuleRegistry(dir.resolve("cache"));
        System.clearProperty(RAN);
    }

    @AfterEach
    void tearDown() {
        registry.close();
        System.clearProperty(RAN);
    }

    /** Set by a careless module's static initialiser, constructor or init: a refused module never sets it. */
    private static final String RAN = "interlayer.test.careless-ran";

    private static final String MARK = "System.setProperty(\"" + RAN + "\", \"yes\");";

    /** A stream module {@code t.Careless} named {@code careless}, declaring {@code declare} (builder calls), with {@code body}. */
    private static String careless(String declare, String body) {
        return """
                package t;
                import dev.interlayer.api.*;
                import java.util.*;
                import java.util.concurrent.*;
                public class Careless implements StreamModule<Object> {
                    static { %s }
                    public Careless() { %s }
                    public ModuleDescriptor descriptor() {
                        return ModuleDescriptor.builder("careless", "1.0.0").implement(InterfaceType.STREAM, 1, 2)%s.build();
                    }
                    public void init(ModuleEnv env) throws Exception { %s }
                %s
                }
                """.formatted(MARK, MARK, declare, MARK, body);
    }

    private Path jar(String source) {
        return TestJars.jar().source("t.Careless", source).service("t.Careless").write(dir.resolve("careless.jar"));
    }

    private static final java.util.function.Function<String, ModuleConfig> NOTHING_ALLOWED = name -> null;

    private static java.util.function.Function<String, ModuleConfig> allow(Capability... cs) {
        Set<Capability> set = cs.length == 0 ? Set.of() : EnumSet.copyOf(List.of(cs));
        return name -> ModuleConfig.defaults(name).withAllow(set);
    }

    /** Loads {@code jar}, expects the refusal and that no code of it ran; returns the message. */
    private AbstractStringAssert<?> refused(Path jar, java.util.function.Function<String, ModuleConfig> configs) {
        Throwable t = org.assertj.core.api.Assertions.catchThrowable(() -> registry.loadJar(jar, configs));
        assertThat(t).isInstanceOf(ModuleLoadException.class);
        assertThat(registry.modules()).isEmpty();
        assertThat(registry.failures()).isNotEmpty();
        return assertThat(t.getMessage());
    }

    private AbstractStringAssert<?> refusedBeforeAnyCodeRan(Path jar, java.util.function.Function<String, ModuleConfig> configs) {
        AbstractStringAssert<?> a = refused(jar, configs);
        assertThat(System.getProperty(RAN)).as("no static initialiser, constructor or init of a refused jar ran").isNull();
        a.contains("was refused before any of its code ran");
        return a;
    }

    private AbstractStringAssert<?> refusedBeforeInit(Path jar, java.util.function.Function<String, ModuleConfig> configs) {
        AbstractStringAssert<?> a = refused(jar, configs);
        a.contains("was refused before its init ran");
        return a;
    }

    // ---- never allowed ----

    @Test
    void systemExitInAHookIsRefusedAtLoadNamingTheClassMethodLineAndFix() {
        Path jar = jar(careless("", """
                    public Verdict onSend(Object s, StreamContext c, ByteView v) {
                        System.exit(43);
                        return Verdict.PASS;
                    }
                """));

        refusedBeforeAnyCodeRan(jar, allow(Capability.values()))
                .contains("t.Careless.onSend(Object, StreamContext, ByteView) (Careless.java:13)")
                .contains("calls java.lang.System.exit(int), which stops the JVM")
                .contains("no capability allows it")
                .contains("return Verdict.error(code, reason)");
    }

    @Test
    void aRefusedJarAlsoListsTheCapabilitiesAndVersionsItsCodeWillNeedOnceFixed() {
        Path jar = jar(careless("", """
                    public Verdict onSend(Object s, StreamContext c, ByteView v) {
                        System.exit(43);
                        new Thread(() -> {}).start();
                        c.rewrite();
                        return Verdict.PASS;
                    }
                """));

        refusedBeforeAnyCodeRan(jar, NOTHING_ALLOWED)
                .contains("(1 problem)")
                .contains("once they are fixed, its code also needs:")
                .contains("(Careless.java:14): new java.lang.Thread(Runnable), which creates a thread, which needs capability threads:"
                        + " the descriptor must declare it (.capability(Capability.THREADS)) and the agent's config allow it")
                .contains("(Careless.java:15): calls dev.interlayer.api.StreamContext.rewrite(), which is stream 1.2: the descriptor must declare"
                        + " .implement(InterfaceType.STREAM, 1, 2) or later");
    }

    @Test
    void systemExitInInitIsRefusedBeforeInitOrAnyStaticInitialiserRuns() {
        Path jar = jar(careless("", "").replace("public void init(ModuleEnv env) throws Exception { " + MARK,
                "public void init(ModuleEnv env) throws Exception { " + MARK + " System.exit(43);"));

        refusedBeforeAnyCodeRan(jar, NOTHING_ALLOWED).contains("t.Careless.init(ModuleEnv)").contains("java.lang.System.exit(int)");
    }

    @Test
    void runtimeExitAndHaltAndAMethodReferenceToExitAreAllRefusedEachWithItsLine() {
        Path jar = jar(careless("", """
                    public void fini() {
                        Runtime.getRuntime().exit(1);
                    }
                    public Verdict onRecv(Object s, StreamContext c, ByteView v) {
                        Runtime.getRuntime().halt(2);
                        return Verdict.PASS;
                    }
                    static java.util.function.IntConsumer later = System::exit;
                """));

        refusedBeforeAnyCodeRan(jar, NOTHING_ALLOWED)
                .contains("3 problems")
                .contains("t.Careless.fini() (Careless.java:13): calls java.lang.Runtime.exit(int)")
                .contains("t.Careless.onRecv(Object, StreamContext, ByteView) (Careless.java:16): calls java.lang.Runtime.halt(int)")
                .contains("t.Careless.<clinit>() (Careless.java:19): calls java.lang.System.exit(int)");
    }

    @Test
    void aClassOfTheAgentItselfIsRefusedWhetherNamedInCodeOrInAConstantForClassForName() {
        Path jar = jar(careless("", """
                    public void fini() {
                        System.out.println(ModuleRegistry.class);
                    }
                    public Verdict onRecv(Object s, StreamContext c, ByteView v) {
                        try {
                            Class.forName("dev.interlayer.runtime.LoadedModule");
                        } catch (ClassNotFoundException e) {
                            throw new IllegalStateException(e);
                        }
                        return Verdict.PASS;
                    }
                """).replace("import java.util.*;", "import java.util.*;\nimport dev.interlayer.runtime.ModuleRegistry;"));

        refusedBeforeAnyCodeRan(jar, allow(Capability.values()))
                .contains("t.Careless.fini() (Careless.java:14): uses dev.interlayer.runtime.ModuleRegistry (a class of the agent itself)")
                .contains("t.Careless.onRecv(Object, StreamContext, ByteView) (Careless.java:18): Class.forName(\"dev.interlayer.runtime.LoadedModule\")")
                .contains("a module sees only dev.interlayer.api, the classes of its own jar and the JDK");
    }

    @Test
    void aClassOfTheAgentNamedByAComputedStringIsNotFoundByTheModulesLoader() throws Exception {
        Path jar = jar(careless("", "").replace("public void init(ModuleEnv env) throws Exception { " + MARK, """
                public void init(ModuleEnv env) throws Exception {
                    String name = String.join(".", "dev", "interlayer", "runtime", "ModuleRegistry");
                    try {
                        Class.forName(name);
                        throw new IllegalStateException("the agent's class was handed out");
                    } catch (ClassNotFoundException expected) {
                        env.log().info("%s", expected.getMessage());
                    }
                """));

        assertThat(registry.loadJar(jar, NOTHING_ALLOWED)).extracting(LoadedModule::name).containsExactly("careless");
    }

    @Test
    void aJarWithItsOwnCopyOfANettyClassMayUseIt() throws Exception {
        Path jar = TestJars.jar()
                .source("io.netty.util.Own", "package io.netty.util; public class Own { public static int one() { return 1; } }")
                .source("t.Careless", careless("", """
                            public Verdict onSend(Object s, StreamContext c, ByteView v) {
                                return io.netty.util.Own.one() == 1 ? Verdict.PASS : Verdict.DROP;
                            }
                        """))
                .service("t.Careless")
                .write(dir.resolve("own-netty.jar"));

        assertThat(registry.loadJar(jar, NOTHING_ALLOWED)).extracting(LoadedModule::name).containsExactly("careless");
    }

    @Test
    void theJdksUnexportedInternalsAreRefused() {
        Path jar = jar(careless("", """
                    public void fini() {
                        sun.misc.Signal.raise(new sun.misc.Signal("TERM"));
                    }
                """));

        refusedBeforeAnyCodeRan(jar, allow(Capability.values()))
                .contains("t.Careless.fini() (Careless.java:13): uses sun.misc.Signal (a JDK internal, not exported to modules)");
    }

    @Test
    void anSdkMethodThisAgentDoesNotHaveIsRefused() throws Exception {
        // Built against an SDK with a class this agent lacks: compile with it, then ship the jar without it.
        Path built = TestJars.jar()
                .source("dev.interlayer.api.Tomorrow", "package dev.interlayer.api; public final class Tomorrow { public static int next() { return 2; } }")
                .source("t.Careless", careless("", """
                            public Verdict onSend(Object s, StreamContext c, ByteView v) {
                                return Tomorrow.next() == 2 ? Verdict.PASS : Verdict.DROP;
                            }
                        """))
                .service("t.Careless")
                .write(dir.resolve("built.jar"));
        Path jar = without(built, "dev/interlayer/api/", dir.resolve("careless.jar"));

        refusedBeforeAnyCodeRan(jar, NOTHING_ALLOWED)
                .contains("t.Careless.onSend(Object, StreamContext, ByteView) (Careless.java:13): uses dev.interlayer.api.Tomorrow,"
                        + " which this agent's SDK does not have");
    }

    // ---- capabilities ----

    @Test
    void threadAndExecutorCreationNeedsThreadsAndEveryUseIsListed() {
        Path jar = jar(careless("", """
                    private ExecutorService pool;
                    public void work() throws Exception {
                        new Thread(() -> {}).start();
                        Thread.ofVirtual().start(() -> {});
                        pool = Executors.newFixedThreadPool(2);
                        new ForkJoinPool(2).shutdown();
                        new Timer(true).cancel();
                        CompletableFuture.runAsync(() -> {}).join();
                        List.of(1, 2).parallelStream().count();
                    }
                """));

        refusedBeforeInit(jar, NOTHING_ALLOWED)
                .contains("7 problems")
                .contains("t.Careless.work() (Careless.java:14): new java.lang.Thread(Runnable), which creates a thread, which needs capability"
                        + " threads, and module careless does not declare it: add .capability(Capability.THREADS) to the module's descriptor")
                .contains("(Careless.java:15): calls java.lang.Thread.ofVirtual()")
                .contains("(Careless.java:16): calls java.util.concurrent.Executors.newFixedThreadPool(int), which creates a thread pool")
                .contains("(Careless.java:17): new java.util.concurrent.ForkJoinPool(int)")
                .contains("(Careless.java:18): new java.util.Timer(boolean)")
                .contains("(Careless.java:19): calls java.util.concurrent.CompletableFuture.runAsync(Runnable), which runs work on the JDK's common pool")
                .contains("(Careless.java:20): calls java.util.List.parallelStream()")
                .contains("ModuleEnv.schedule");
        assertThat(System.getProperty(RAN)).as("the constructor ran (descriptor() needs an instance), init did not").isEqualTo("yes");
    }

    @Test
    void processesNeedProcesses() {
        Path jar = jar(careless("", """
                    public void work() throws Exception {
                        Runtime.getRuntime().exec(new String[] {"true"});
                        new ProcessBuilder("true").start();
                    }
                """));

        refusedBeforeInit(jar, NOTHING_ALLOWED)
                .contains("(Careless.java:13): calls java.lang.Runtime.exec(String[]), which starts a process, which needs capability processes")
                .contains("(Careless.java:14): new java.lang.ProcessBuilder(String[])")
                .contains(".capability(Capability.PROCESSES)");
    }

    @Test
    void nativeCodeAndRawMemoryNeedNative() {
        Path jar = jar(careless("", """
                    public native int peek();
                    public void work() throws Throwable {
                        System.loadLibrary("z");
                        java.lang.foreign.Linker.nativeLinker().defaultLookup();
                        java.lang.foreign.MemorySegment.ofAddress(1).reinterpret(8);
                    }
                """));

        refusedBeforeInit(jar, NOTHING_ALLOWED)
                .contains("t.Careless.peek(): native method (JNI), which needs capability native")
                .contains("(Careless.java:14): calls java.lang.System.loadLibrary(String), which loads native code")
                .contains("(Careless.java:15): calls java.lang.foreign.Linker.nativeLinker()")
                .contains("(Careless.java:16): calls java.lang.foreign.MemorySegment.reinterpret(long)")
                .contains(".capability(Capability.NATIVE)");
    }

    @Test
    void theMemoryApiAndRewriteNeedNoCapability() throws Exception {
        Path jar = jar(careless("", """
                    public Verdict onSend(Object s, StreamContext c, ByteView v) {
                        java.lang.foreign.MemorySegment m = c.rewrite();
                        try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
                            java.lang.foreign.MemorySegment copy = a.allocate(m.byteSize());
                            copy.copyFrom(m);
                            m.set(java.lang.foreign.ValueLayout.JAVA_BYTE, 0, copy.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0));
                        }
                        return Verdict.PASS;
                    }
                """));

        LoadedModule m = registry.loadJar(jar, NOTHING_ALLOWED).getFirst();

        assertThat(m.verification()).get().satisfies(v -> {
            assertThat(v.capabilities()).isEmpty();
            assertThat(v.classes()).isEqualTo(1);
        });
    }

    @Test
    void reflectionThatOpensPrivateMembersNeedsReflection() {
        Path jar = jar(careless("", """
                    public void work() throws Exception {
                        java.lang.reflect.Field f = String.class.getDeclaredField("value");
                        f.setAccessible(true);
                        java.lang.invoke.MethodHandles.privateLookupIn(String.class, java.lang.invoke.MethodHandles.lookup());
                        Careless.class.getMethod("fini").invoke(this); // public reflection needs nothing
                    }
                """));

        refusedBeforeInit(jar, NOTHING_ALLOWED)
                .contains("2 problems")
                .contains("(Careless.java:14): calls java.lang.reflect.Field.setAccessible(boolean), which opens a member Java's access checks close,"
                        + " which needs capability reflection")
                .contains("(Careless.java:15): calls java.lang.invoke.MethodHandles.privateLookupIn(Class, MethodHandles.Lookup)")
                .contains(".capability(Capability.REFLECTION)");
    }

    @Test
    void unsafeNeedsNative() {
        Path jar = jar(careless("", """
                    public void work() throws Exception {
                        java.lang.reflect.Field f = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
                    }
                """));

        refusedBeforeInit(jar, NOTHING_ALLOWED).contains("(Careless.java:13): uses sun.misc.Unsafe (raw memory), which needs capability native");
    }

    @Test
    void aCapabilityDeclaredAndAllowedLoadsAndIsReported() throws Exception {
        Path jar = jar(careless(".capability(Capability.THREADS)", """
                    private Thread worker;
                    public void fini() {
                        worker.interrupt();
                        try { worker.join(); } catch (InterruptedException e) { Thread.currentThread().interrupt(); }
                    }
                """).replace("public void init(ModuleEnv env) throws Exception { " + MARK, """
                public void init(ModuleEnv env) throws Exception {
                    worker = new Thread(() -> { try { Thread.sleep(60_000); } catch (InterruptedException stop) { } }, "careless-worker");
                    worker.start();
                """));

        LoadedModule m = registry.loadJar(jar, allow(Capability.THREADS)).getFirst();

        assertThat(m.descriptor().capabilities()).containsExactly(Capability.THREADS);
        assertThat(m.verification()).get().extracting(ModuleVerifier.Summary::capabilities).isEqualTo(Set.of(Capability.THREADS));
        m.unregister();
    }

    @Test
    void aCapabilityDeclaredButNotAllowedByTheConfigIsRefusedNamingTheConfigLineToAdd() {
        Path jar = jar(careless(".capability(Capability.THREADS)", "").replace("public void init(ModuleEnv env) throws Exception { " + MARK,
                "public void init(ModuleEnv env) throws Exception { " + MARK + " new Thread(() -> {}).start();"));

        refusedBeforeInit(jar, allow(Capability.NATIVE))
                .contains("module careless declares capability threads (used at t.Careless.init(ModuleEnv) (Careless.java:11))"
                        + " but the agent's config does not allow it: add 'allow: [threads, native]' to the module's entry under modules:"
                        + " in the agent's config (- name: careless)");
        assertThat(System.getProperty(RAN)).as("init did not run: only the constructor").isEqualTo("yes");
    }

    @Test
    void aCapabilityDeclaredButUnusedStillNeedsTheConfigsAllowance() {
        Path jar = jar(careless(".capability(Capability.PROCESSES)", ""));

        refusedBeforeInit(jar, NOTHING_ALLOWED).contains("module careless declares capability processes but the agent's config does not allow it");
    }

    @Test
    void aCapabilityUsedInAStaticInitialiserIsRefusedEvenWhenDeclaredAndAllowed() {
        Path jar = jar(careless(".capability(Capability.THREADS)", """
                    static final ExecutorService POOL = Pools.make();
                """) + """
                class Pools {
                    static ExecutorService make() { return Executors.newSingleThreadExecutor(); }
                }
                """);

        refusedBeforeAnyCodeRan(jar, allow(Capability.THREADS))
                .contains("t.Pools.make() (Careless.java:16): calls java.util.concurrent.Executors.newSingleThreadExecutor(), which creates a"
                        + " thread pool, which needs capability threads, in code that runs while the agent reads the module's descriptor")
                .contains("do it in init() instead and stop it in fini()");
    }

    @Test
    void aCapabilityUsedOnlyByAnotherModuleOfTheJarCountsForThatModuleOnly() throws Exception {
        Path jar = TestJars.jar()
                .source("t.Plain", TestJars.streamModule("t.Plain", "plain", "1.0.0"))
                .source("t.Worker", """
                        package t;
                        import dev.interlayer.api.*;
                        public class Worker implements StreamModule<Object> {
                            private Thread t;
                            public ModuleDescriptor descriptor() {
                                return ModuleDescriptor.builder("worker", "1.0.0").implement(InterfaceType.STREAM, 1, 0)
                                        .capability(Capability.THREADS).build();
                            }
                            public void init(ModuleEnv env) { t = new Thread(() -> {}); }
                        }
                        """)
                .service("t.Plain", "t.Worker")
                .write(dir.resolve("two.jar"));

        List<LoadedModule> loaded = registry.loadJar(jar, name -> name.equals("worker") ? allow(Capability.THREADS).apply(name) : null);

        assertThat(loaded).extracting(LoadedModule::name).containsExactly("plain", "worker");
        assertThat(loaded.getFirst().verification()).get().extracting(ModuleVerifier.Summary::capabilities).isEqualTo(Set.of());
    }

    // ---- SDK versions ----

    @Test
    void aStream11ModuleCallingRewriteOfStream12IsRefusedAndLoadsWhenItDeclares12() throws Exception {
        String source = """
                package t;
                import dev.interlayer.api.*;
                public class Xor implements StreamModule<Object> {
                    public ModuleDescriptor descriptor() {
                        return ModuleDescriptor.builder("xor", "1.0.0").implement(InterfaceType.STREAM, 1, 1).build();
                    }
                    public Verdict onSend(Object s, StreamContext c, ByteView v) {
                        c.rewrite().fill((byte) 0);
                        return Verdict.PASS;
                    }
                }
                """;
        Path old = TestJars.jar().source("t.Xor", source).service("t.Xor").write(dir.resolve("xor-1.1.jar"));

        refusedBeforeInit(old, NOTHING_ALLOWED)
                .contains("t.Xor.onSend(Object, StreamContext, ByteView) (Xor.java:8): calls dev.interlayer.api.StreamContext.rewrite(),"
                        + " which is stream 1.2, but module xor declares stream 1.1")
                .contains("declare .implement(InterfaceType.STREAM, 1, 2)");

        Path fixed = TestJars.jar().source("t.Xor", source.replace("STREAM, 1, 1", "STREAM, 1, 2")).service("t.Xor").write(dir.resolve("xor-1.2.jar"));
        assertThat(registry.loadJar(fixed, NOTHING_ALLOWED)).extracting(LoadedModule::name).containsExactly("xor");
    }

    @Test
    void theVerifierRunsOnAClassFromTheClassPathForHostsWithoutAJar() {
        ModuleDescriptor d = new Rewriter11().descriptor();

        List<ModuleVerifier.Violation> found = ModuleVerifier.verify(Rewriter11.class, d, Set.of());

        assertThat(found).singleElement().satisfies(v -> {
            assertThat(v.className()).isEqualTo(Rewriter11.class.getName());
            assertThat(v.method()).isEqualTo("onSend(Object, StreamContext, ByteView)");
            assertThat(v.target()).isEqualTo("dev.interlayer.api.StreamContext.rewrite()");
            assertThat(v.message()).contains("which is stream 1.2, but module rewriter-11 declares stream 1.1");
        });
        assertThat(ModuleVerifier.verify(Rewriter11.class, ModuleDescriptor.builder("rewriter-11", "1.0.0")
                .implement(InterfaceType.STREAM, 1, 2).build(), Set.of())).isEmpty();
    }

    /** A copy of {@code jar} without the entries under {@code prefix}. */
    private static Path without(Path jar, String prefix, Path target) throws IOException {
        try (InputStream in = Files.newInputStream(jar); JarInputStream src = new JarInputStream(in);
             OutputStream out = Files.newOutputStream(target); JarOutputStream dst = new JarOutputStream(out, src.getManifest())) {
            for (JarEntry e; (e = src.getNextJarEntry()) != null; ) {
                if (!e.getName().startsWith(prefix)) {
                    dst.putNextEntry(new JarEntry(e.getName()));
                    src.transferTo(dst);
                    dst.closeEntry();
                }
            }
        }
        return target;
    }

    @Test
    void aClassFileThatCannotBeReadRefusesTheJar() throws Exception {
        Path jar = TestJars.jar().source(TestJars.streamModule("t.Fine", "fine", "1.0.0")).service("t.Fine")
                .entry("t/Broken.class", new byte[] {(byte) 0xCA, (byte) 0xFE, 0, 0}).write(dir.resolve("broken.jar"));

        assertThatThrownBy(() -> registry.loadJar(jar, NOTHING_ALLOWED)).isInstanceOf(ModuleLoadException.class)
                .hasMessageContaining("t/Broken.class is not a class file this agent can read");
    }
}
