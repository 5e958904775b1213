package dev.interlayer.runtime;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.runtime.testing.TestJars;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassModel;
import java.lang.classfile.CodeModel;
import java.lang.classfile.MethodModel;
import java.lang.classfile.instruction.InvokeInstruction;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import java.util.jar.JarFile;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Classes from a module jar get pre-emption checks: they behave exactly as before, and code spinning in them stops at
 * its next check once the thread is asked to, whatever it catches; nothing else is stopped.
 */
class PreemptionTest {

    @TempDir
    Path dir;

    private ModuleClassLoader loader;
    private Thread worker;

    @BeforeEach
    void noRequestIsLeftOver() {
        assertThat(Preemption.pendingRequests()).isZero();
    }

    @AfterEach
    void tearDown() throws Exception {
        if (worker != null) {
            worker.join(5_000);
            assertThat(worker.isAlive()).as("the worker thread ended").isFalse();
        }
        if (loader != null) {
            loader.close();
        }
        assertThat(Preemption.pendingRequests()).as("every request withdrawn").isZero();
    }

    /** Everything javac makes of ordinary code, with the results it must still compute. */
    private static final String ORDINARY = """
            package t;
            import java.util.*;
            import java.util.function.*;
            import java.util.stream.*;
            public class Ordinary implements Supplier<Object> {
                static final int[] TABLE;
                static { TABLE = new int[16]; for (int i = 0; i < TABLE.length; i++) TABLE[i] = i * i; }
                record Point(int x, int y) {}
                enum Color { RED, GREEN, BLUE }
                private final Object lock = new Object();
                private int counter;
                public Ordinary() { this(3); }
                Ordinary(int start) { super(); counter = start; }
                static int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
                static String kind(Object o) {
                    return switch (o) {
                        case Integer i when i > 10 -> "big";
                        case Integer i -> "int";
                        case String s -> "string " + s.length();
                        case Point(int x, int y) -> "point " + (x + y);
                        default -> "other";
                    };
                }
                static int dense(int k) { switch (k) { case 0: return 10; case 1: return 11; case 2: return 12; case 3: return 13; default: return -1; } }
                static int sparse(int k) { switch (k) { case 1: return 1; case 100: return 2; case 10000: return 3; default: return 0; } }
                static int words(String w) { return switch (w) { case "alpha" -> 1; case "beta" -> 2; default -> 0; }; }
                int locked(int n) { for (int i = 0; i < n; i++) { synchronized (lock) { counter++; } } return counter; }
                static int caught(int n) {
                    int fails = 0;
                    for (int i = 0; i < n; i++) {
                        try { if (i % 3 == 0) throw new IllegalStateException("x" + i); }
                        catch (IllegalStateException e) { fails++; }
                        finally { fails += 0; }
                    }
                    return fails;
                }
                static int labelled() {
                    int found = 0;
                    outer:
                    for (int i = 0; i < 10; i++) {
                        for (int j = 0; j < 10; j++) {
                            if (j == i) continue outer;
                            if (i * j > 40) break outer;
                            found++;
                        }
                    }
                    return found;
                }
                static int doWhile(int n) { int s = 0; do { s += n; n--; } while (n > 0); return s; }
                static String resources() throws Exception {
                    StringBuilder sb = new StringBuilder();
                    try (AutoCloseable a = () -> sb.append("closed a;"); AutoCloseable b = () -> sb.append("closed b;")) { sb.append("body;"); }
                    return sb.toString();
                }
                public Object get() {
                    List<Object> out = new ArrayList<>();
                    out.add(fib(15));
                    out.add(kind(5)); out.add(kind(50)); out.add(kind("abc")); out.add(kind(new Point(2, 3))); out.add(kind(1.5));
                    out.add(dense(2)); out.add(dense(9)); out.add(sparse(100)); out.add(sparse(7)); out.add(words("beta"));
                    out.add(locked(5));
                    out.add(caught(10));
                    out.add(labelled());
                    out.add(doWhile(4));
                    try { out.add(resources()); } catch (Exception e) { out.add(e.toString()); }
                    out.add(IntStream.rangeClosed(1, 10).map(i -> i * 2).filter(i -> i % 3 != 0).sum());
                    out.add(Stream.of(Color.values()).map(Enum::name).collect(Collectors.joining(",")));
                    out.add(TABLE[7]);
                    int[] a = {5, 3, 9, 1}; Arrays.sort(a); out.add(Arrays.toString(a));
                    return out.toString();
                }
            }
            """;

    /** Spins in a way chosen by the constructor's argument until stopped; reports how it ended through the supplier. */
    private static final String SPINNER = """
            package t;
            import java.util.function.*;
            import java.util.stream.*;
            public class Spinner implements Supplier<Object> {
                public static volatile boolean started;
                static volatile long sink;
                final String how;
                public Spinner(String how) { this.how = how; }
                public Object get() {
                    started = true;
                    switch (how) {
                        case "loop" -> { while (true) { sink++; } }
                        case "catch-in-loop" -> { while (true) { try { sink++; } catch (Throwable t) { sink--; } } }
                        case "catch-around-call" -> { while (true) { try { spin(); } catch (Throwable t) { sink--; } } }
                        case "retry-forever" -> { for (;;) { try { while (true) { sink++; } } catch (Throwable t) { continue; } } }
                        case "synchronized" -> { Object lock = new Object(); while (true) { synchronized (lock) { sink++; } } }
                        case "finally-spins" -> { try { spin(); } finally { while (sink != 42) { sink++; } } }
                        case "recursion" -> { return explode(0); }
                        case "stream" -> { IntStream.iterate(0, i -> i + 1).forEach(i -> sink += i); }
                        default -> throw new IllegalArgumentException(how);
                    }
                    return "returned";
                }
                static void spin() { while (true) { sink++; } }
                /** Runs for about 2^depth calls: every StackOverflowError is caught and the call made again. */
                static int explode(int depth) {
                    try { return explode(depth + 1); }
                    catch (Throwable t) { return explode(depth + 1); }
                }
            }
            """;

    @SuppressWarnings("unchecked")
    private Supplier<Object> load(String cls, Object... args) throws Exception {
        Path jar = TestJars.jar().source("t.Ordinary", ORDINARY).source("t.Spinner", SPINNER).write(dir.resolve("classes.jar"));
        loader = new ModuleClassLoader(jar.toString(), jar.toUri().toURL(), PreemptionTest.class.getClassLoader());
        Class<?> c = loader.loadClass(cls);
        assertThat(c.getClassLoader()).isSameAs(loader);
        if (args.length == 0) {
            return (Supplier<Object>) c.getConstructor().newInstance();
        }
        return (Supplier<Object>) c.getConstructor(String.class).newInstance(args);
    }

    @Test
    void instrumentedClassesComputeWhatTheyComputedBefore() throws Exception {
        Object instrumented = load("t.Ordinary").get();
        try (URLClassLoader plain = new URLClassLoader(new URL[] {dir.resolve("classes.jar").toUri().toURL()}, PreemptionTest.class.getClassLoader())) {
            Object original = ((Supplier<?>) plain.loadClass("t.Ordinary").getConstructor().newInstance()).get();
            assertThat(instrumented).isEqualTo(original);
        }
        assertThat(instrumented.toString()).startsWith("[610, int, big, string 3, point 5, other, 12, -1, 2, 0, 2, 8,");
    }

    @Test
    void everyMethodEntryAndBackwardBranchGetsACheckAndNothingElseChanges() throws Exception {
        Path jar = TestJars.jar().source("t.Spinner", SPINNER).write(dir.resolve("spinner.jar"));
        byte[] original;
        try (JarFile j = new JarFile(jar.toFile())) {
            original = j.getInputStream(j.getEntry("t/Spinner.class")).readAllBytes();
        }
        ClassModel before = ClassFile.of().parse(original);
        ClassModel after = ClassFile.of().parse(PreemptionPoints.instrument(original));
        assertThat(checks(after, "spin")).as("entry and the loop's goto").isEqualTo(2);
        assertThat(checks(after, "explode")).as("entry only: no loop").isEqualTo(1);
        assertThat(checks(after, "<init>")).isEqualTo(1);
        assertThat(checks(before, "spin")).isZero();
        assertThat(after.methods()).hasSameSizeAs(before.methods());
        assertThat(after.fields()).hasSameSizeAs(before.fields());
        // the class as the verifier sees it: defined, linked and run (ORDINARY covers the constructs javac emits)
        assertThat(load("t.Ordinary").get()).isNotNull();
    }

    private static long checks(ClassModel c, String method) {
        MethodModel m = c.methods().stream().filter(x -> x.methodName().equalsString(method)).findFirst().orElseThrow();
        CodeModel code = m.code().orElseThrow();
        return code.elementStream().filter(e -> e instanceof InvokeInstruction i && i.owner().asInternalName().equals("dev/interlayer/runtime/Preemption")
                && i.name().equalsString("check")).count();
    }

    @Test
    void aSpinningLoopStopsAtItsNextCheckWithAMessageNamingWhere() throws Exception {
        Throwable t = stopWhileRunning("loop");
        assertThat(t).isInstanceOf(HookPreempted.class)
                .hasMessageStartingWith("test hook ran longer than its budget")
                .hasMessageContaining("it was stopped at t.Spinner.get (Spinner.java:");
    }

    @Test
    void aCatchThrowableInsideTheLoopDoesNotKeepItRunning() throws Exception {
        assertThat(stopWhileRunning("catch-in-loop")).isInstanceOf(HookPreempted.class);
    }

    @Test
    void aCatchThrowableAroundACallInTheLoopDoesNotKeepItRunning() throws Exception {
        assertThat(stopWhileRunning("catch-around-call")).isInstanceOf(HookPreempted.class);
    }

    @Test
    void aLoopThatCatchesAndRetriesForeverIsStopped() throws Exception {
        assertThat(stopWhileRunning("retry-forever")).isInstanceOf(HookPreempted.class);
    }

    @Test
    void aLoopAroundASynchronizedBlockIsStoppedAndReleasesTheMonitor() throws Exception {
        assertThat(stopWhileRunning("synchronized")).isInstanceOf(HookPreempted.class);
    }

    @Test
    void aLoopInAFinallyBlockIsStoppedToo() throws Exception {
        assertThat(stopWhileRunning("finally-spins")).isInstanceOf(HookPreempted.class);
    }

    @Test
    void exponentialRecursionThatCatchesStackOverflowIsStopped() throws Exception {
        assertThat(stopWhileRunning("recursion")).isInstanceOf(HookPreempted.class);
    }

    @Test
    void aLoopInsideTheJdkThatCallsModuleCodeIsStoppedInTheModulesLambda() throws Exception {
        assertThat(stopWhileRunning("stream")).isInstanceOf(HookPreempted.class).hasMessageContaining("t.Spinner.lambda$");
    }

    /** Runs spinner {@code how} on a worker thread, asks for a stop once it spins, and returns what the worker threw. */
    private Throwable stopWhileRunning(String how) throws Exception {
        Supplier<Object> spinner = load("t.Spinner", how);
        AtomicBoolean running = new AtomicBoolean(true);
        CompletableFuture<Throwable> ended = new CompletableFuture<>();
        worker = Thread.ofPlatform().name("spinner-" + how).start(() -> {
            try {
                Object r = spinner.get();
                ended.complete(new AssertionError("returned " + r));
            } catch (Throwable t) {
                ended.complete(t);
            } finally {
                running.set(false);
            }
        });
        Class<?> c = loader.loadClass("t.Spinner");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!(boolean) c.getField("started").get(null)) {
            assertThat(System.nanoTime()).isLessThan(deadline);
            Thread.sleep(5);
        }
        Thread.sleep(200); // let it get hot: the JIT's compiled loop must be stopped as well as the interpreter's
        Preemption.Request r = Preemption.request(worker, running::get, "test hook ran longer than its budget of 1 ms");
        try {
            return ended.get(5, TimeUnit.SECONDS);
        } finally {
            Preemption.withdraw(r);
        }
    }

    @Test
    void aRequestForAnotherThreadOrForACallThatReturnedStopsNothing() throws Exception {
        Supplier<Object> ordinary = load("t.Ordinary");
        Thread elsewhere = Thread.ofPlatform().unstarted(() -> {});
        Preemption.Request other = Preemption.request(elsewhere, () -> true, "not for this thread");
        Preemption.Request stale = Preemption.request(Thread.currentThread(), () -> false, "a call that already returned");
        try {
            for (int i = 0; i < 200; i++) {
                assertThat(ordinary.get()).isNotNull();
            }
        } finally {
            Preemption.withdraw(other);
            Preemption.withdraw(stale);
        }
        assertThat(Preemption.pendingRequests()).isZero();
    }

    @Test
    void aJarCannotShadowThePreemptionClass() throws Exception {
        String fake = """
                package dev.interlayer.runtime;
                public final class Preemption {
                    public static void check() { throw new IllegalStateException("the jar's own copy ran"); }
                }
                """;
        Path jar = TestJars.jar().source("t.Ordinary", ORDINARY).source("dev.interlayer.runtime.Preemption", fake).write(dir.resolve("shadow.jar"));
        loader = new ModuleClassLoader(jar.toString(), jar.toUri().toURL(), PreemptionTest.class.getClassLoader());
        assertThat(loader.loadClass(Preemption.CLASS_NAME)).isSameAs(Preemption.class);
        Supplier<?> s = (Supplier<?>) loader.loadClass("t.Ordinary").getConstructor().newInstance();
        assertThat(s.get()).isNotNull();
    }

    @Test
    void classesKeepTheirPackageAndCodeSource() throws Exception {
        Supplier<Object> o = load("t.Ordinary");
        assertThat(o.getClass().getPackage().getName()).isEqualTo("t");
        assertThat(o.getClass().getProtectionDomain().getCodeSource().getLocation()).isEqualTo(dir.resolve("classes.jar").toUri().toURL());
    }
}
