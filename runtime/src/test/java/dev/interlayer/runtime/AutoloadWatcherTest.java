package dev.interlayer.runtime;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.runtime.testing.TestJars;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The autoload folder: jars added, replaced, removed, half-written, while connections are attached. */
class AutoloadWatcherTest {

    @TempDir
    Path tmp;

    private Path modules;
    private Path staging;
    private ModuleRegistry registry;
    private AutoloadWatcher watcher;

    @BeforeEach
    void setUp() throws Exception {
        modules = Files.createDirectories(tmp.resolve("modules"));
        staging = Files.createDirectories(tmp.resolve("staging"));
        registry = new ModuleRegistry(tmp.resolve("cache"));
        watcher = new AutoloadWatcher(modules, registry, name -> null);
    }

    @AfterEach
    void tearDown() {
        watcher.close();
        registry.close();
    }

    /** A jar with one stream module per name, all at {@code version}, built in the staging folder. */
    private Path jar(String file, String version, String... names) {
        TestJars.Builder b = TestJars.jar();
        String[] classes = new String[names.length];
        for (int i = 0; i < names.length; i++) {
            // The class name carries the version so two versions never share a class name by accident.
            classes[i] = "t.M" + names[i].replace("-", "") + "v" + version.replace(".", "");
            b.source(classes[i], TestJars.streamModule(classes[i], names[i], version));
        }
        return b.service(classes).write(staging.resolve(file + "-" + version));
    }

    private static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting until " + what);
            }
            Thread.sleep(20);
        }
    }

    @Test
    void anAddedJarIsLoaded() {
        TestJars.deploy(jar("a.jar", "1.0.0", "alpha", "beta"), modules.resolve("a.jar"));

        watcher.scanNow();

        assertThat(registry.modules()).extracting(LoadedModule::id).containsExactlyInAnyOrder("alpha@1.0.0", "beta@1.0.0");
        assertThat(registry.modules().getFirst().pkg().location()).isEqualTo(modules.resolve("a.jar").toString());
    }

    @Test
    void filesThatAreNotJarsOrAreHiddenAreIgnored() throws Exception {
        Files.copy(jar("x.jar", "1.0.0", "hidden"), modules.resolve(".x.jar"));
        Files.copy(jar("y.jar", "1.0.0", "partial"), modules.resolve("y.jar.part"));
        Files.writeString(modules.resolve("README"), "not a module");

        watcher.scanNow();

        assertThat(registry.modules()).isEmpty();
        assertThat(registry.failures()).isEmpty();
    }

    @Test
    void theInitialScanLoadsJarsInNameOrderThenTheWatcherThreadPicksUpNewOnes() throws Exception {
        TestJars.deploy(jar("b.jar", "1.0.0", "bravo"), modules.resolve("b.jar"));
        TestJars.deploy(jar("a.jar", "1.0.0", "alpha"), modules.resolve("a.jar"));
        // Both were complete before the agent started (however slowly a busy machine wrote them).
        java.nio.file.attribute.FileTime past = java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() - 10_000);
        Files.setLastModifiedTime(modules.resolve("b.jar"), past);
        Files.setLastModifiedTime(modules.resolve("a.jar"), past);

        watcher.start();

        assertThat(registry.modules()).extracting(LoadedModule::name).containsExactly("alpha", "bravo");
        assertThat(Thread.getAllStackTraces().keySet()).anySatisfy(t -> {
            assertThat(t.getName()).isEqualTo("interlayer-autoload");
            assertThat(t.isDaemon()).isTrue();
        });

        TestJars.deploy(jar("c.jar", "1.0.0", "charlie"), modules.resolve("c.jar"));
        await("charlie is loaded", () -> registry.find("charlie").isPresent());

        watcher.close();
        await("the watcher thread ended", () -> Thread.getAllStackTraces().keySet().stream().noneMatch(t -> t.getName().equals("interlayer-autoload")));
        assertThat(registry.find("charlie")).get().extracting(LoadedModule::state).isEqualTo(ModuleState.ACTIVE);
    }

    @Test
    void aReplacedJarLoadsTheNewVersionAndTheOldOneKeepsItsConnectionUntilItDetaches() {
        TestJars.deploy(jar("tag.jar", "1.0.0", "tag"), modules.resolve("tag.jar"));
        watcher.scanNow();
        LoadedModule v1 = registry.find("tag").orElseThrow();
        RecordingSite connection = new RecordingSite(1);
        assertThat(v1.registerSite(connection)).isTrue();
        v1.attached();

        TestJars.deploy(jar("tag.jar", "2.0.0", "tag"), modules.resolve("tag.jar"));
        watcher.scanNow();

        LoadedModule v2 = registry.find("tag").orElseThrow();
        assertThat(v2.version()).isEqualTo("2.0.0");
        assertThat(v2.state()).isEqualTo(ModuleState.ACTIVE);
        assertThat(v1.state()).isEqualTo(ModuleState.DEPRECATED);
        assertThat(v1.isUnloaded()).isFalse();
        assertThat(connection.requests()).as("a deprecated module keeps its connections").isEmpty();
        assertThat(registry.candidates(new FakeConnection())).containsExactly(v2);

        v1.siteDetached(connection);

        assertThat(v1.isUnloaded()).isTrue();
        assertThat(((JarPackage) v1.pkg()).isClosed()).isTrue();
        assertThat(((JarPackage) v2.pkg()).isClosed()).isFalse();
        assertThat(registry.modules()).containsExactly(v2);
    }

    @Test
    void modulesTheNewVersionNoLongerHasAreRetired() {
        TestJars.deploy(jar("pair.jar", "1.0.0", "keep", "drop"), modules.resolve("pair.jar"));
        watcher.scanNow();
        LoadedModule drop = registry.find("drop").orElseThrow();

        TestJars.deploy(jar("pair.jar", "1.1.0", "keep"), modules.resolve("pair.jar"));
        watcher.scanNow();

        assertThat(drop.isUnloaded()).isTrue();
        assertThat(registry.modules()).extracting(LoadedModule::id).containsExactly("keep@1.1.0");
    }

    @Test
    void aRemovedJarRetiresItsModules() throws Exception {
        TestJars.deploy(jar("gone.jar", "1.0.0", "gone", "busy"), modules.resolve("gone.jar"));
        watcher.scanNow();
        LoadedModule gone = registry.find("gone").orElseThrow();
        LoadedModule busy = registry.find("busy").orElseThrow();
        RecordingSite connection = new RecordingSite(7);
        busy.registerSite(connection);
        busy.attached();

        Files.delete(modules.resolve("gone.jar"));
        watcher.scanNow();

        assertThat(gone.isUnloaded()).isTrue();
        assertThat(busy.state()).isEqualTo(ModuleState.DEPRECATED);
        assertThat(busy.isUnloaded()).isFalse();
        busy.siteDetached(connection);
        assertThat(busy.isUnloaded()).isTrue();
        assertThat(registry.modules()).isEmpty();
    }

    @Test
    void aTruncatedJarIsReportedOnceAndTheCompleteJarLoadsWhenItArrives() throws Exception {
        Path target = modules.resolve("slow.jar");
        byte[] whole = Files.readAllBytes(jar("slow.jar", "1.0.0", "slow"));
        Files.write(target, Arrays.copyOf(whole, whole.length / 3));

        watcher.scanNow();

        assertThat(registry.modules()).isEmpty();
        List<Failure> failures = registry.failures();
        assertThat(failures).singleElement().satisfies(f -> {
            assertThat(f.source()).isEqualTo(target.toString());
            assertThat(f.error()).contains("is not a readable jar");
        });

        watcher.scanNow();
        assertThat(registry.failures()).as("an unchanged broken jar is not retried").isEqualTo(failures);

        Files.write(target, whole);
        watcher.scanNow();

        assertThat(registry.modules()).extracting(LoadedModule::id).containsExactly("slow@1.0.0");
        assertThat(registry.failures()).isEmpty();
    }

    @Test
    void aBrokenJarThatIsRemovedLeavesNoFailureBehind() throws Exception {
        Path target = modules.resolve("broken.jar");
        byte[] whole = Files.readAllBytes(jar("broken.jar", "1.0.0", "broken"));
        Files.write(target, Arrays.copyOf(whole, whole.length / 2));
        watcher.scanNow();
        assertThat(registry.failures()).singleElement().satisfies(f -> assertThat(f.source()).isEqualTo(target.toString()));

        Files.delete(target);
        watcher.scanNow();

        assertThat(registry.failures()).as("status reports what the folder holds, not what it once held").isEmpty();
    }

    @Test
    void aBrokenReplacementKeepsTheRunningVersion() throws Exception {
        TestJars.deploy(jar("solid.jar", "1.0.0", "solid"), modules.resolve("solid.jar"));
        watcher.scanNow();
        LoadedModule v1 = registry.find("solid").orElseThrow();

        Files.writeString(staging.resolve("garbage"), "not a jar at all");
        TestJars.deploy(staging.resolve("garbage"), modules.resolve("solid.jar"));
        watcher.scanNow();

        assertThat(v1.state()).isEqualTo(ModuleState.ACTIVE);
        assertThat(registry.failures()).singleElement().extracting(Failure::error).asString().contains("is not a readable jar");

        TestJars.deploy(jar("solid.jar", "1.0.1", "solid"), modules.resolve("solid.jar"));
        watcher.scanNow();

        assertThat(v1.isUnloaded()).isTrue();
        assertThat(registry.find("solid")).get().extracting(LoadedModule::version).isEqualTo("1.0.1");
    }

    @Test
    void aTouchedJarWithTheSameContentIsNotReloaded() throws Exception {
        TestJars.deploy(jar("same.jar", "1.0.0", "same"), modules.resolve("same.jar"));
        watcher.scanNow();
        LoadedModule first = registry.find("same").orElseThrow();

        Files.setLastModifiedTime(modules.resolve("same.jar"), FileTime.from(Instant.now().minusSeconds(60)));
        watcher.scanNow();

        assertThat(registry.modules()).containsExactly(first);
        assertThat(first.state()).isEqualTo(ModuleState.ACTIVE);
    }

    // ---- two jars, one module name ----

    private static String locationOf(LoadedModule m) {
        return Path.of(m.pkg().location()).getFileName().toString();
    }

    @Test
    void twoJarsDeclaringOneModuleRunTheHigherVersionEvenWhenTheLowerSortsFirst() throws Exception {
        TestJars.deploy(jar("a.jar", "1.0.0", "tag"), modules.resolve("a.jar"));
        TestJars.deploy(jar("b.jar", "2.0.0", "tag"), modules.resolve("b.jar"));

        try (LogCapture log = LogCapture.start()) {
            watcher.scanNow();

            assertThat(log.at(java.util.logging.Level.WARNING)).singleElement().asString()
                    .contains("module tag is declared by two jars of " + modules)
                    .contains("b.jar (tag 2.0.0) and a.jar (tag 1.0.0); b.jar wins (higher version), a.jar's tag retires");
        }
        assertThat(registry.modules()).extracting(LoadedModule::id).containsExactly("tag@2.0.0");
        assertThat(locationOf(registry.find("tag").orElseThrow())).isEqualTo("b.jar");
        assertThat(watcher.clashes()).containsExactly("module tag is declared by 2 jars of " + modules + ": b.jar (2.0.0), a.jar (1.0.0);"
                + " b.jar wins (higher version), the other is not loaded; remove the jar you do not mean to run");
    }

    @Test
    void twoJarsDeclaringOneModuleRunTheHigherVersionAndTheLowerIsNeverLoaded() throws Exception {
        TestJars.deploy(jar("a.jar", "2.0.0", "tag"), modules.resolve("a.jar"));
        TestJars.deploy(jar("b.jar", "1.0.0", "tag", "other"), modules.resolve("b.jar"));

        try (LogCapture log = LogCapture.start()) {
            watcher.scanNow();

            assertThat(log.at(java.util.logging.Level.WARNING)).singleElement().asString()
                    .contains("b.jar (tag 1.0.0) and a.jar (tag 2.0.0); a.jar wins (higher version), b.jar's tag is not loaded");
            assertThat(log.lines()).noneMatch(l -> l.contains("tag@1.0.0"));
        }
        assertThat(registry.modules()).extracting(LoadedModule::id).containsExactlyInAnyOrder("tag@2.0.0", "other@1.0.0");
        assertThat(registry.failures()).isEmpty();
    }

    @Test
    void atEqualVersionsTheJarWhoseNameSortsFirstWinsWhicheverArrivedFirst() throws Exception {
        TestJars.deploy(jar("b.jar", "1.0.0", "tag"), modules.resolve("b.jar"));
        watcher.scanNow();
        LoadedModule fromB = registry.find("tag").orElseThrow();

        TestJars.deploy(jar("a.jar", "1.0.0", "tag"), modules.resolve("a.jar"));
        try (LogCapture log = LogCapture.start()) {
            watcher.scanNow();

            assertThat(log.at(java.util.logging.Level.WARNING)).singleElement().asString()
                    .contains("a.jar wins (same version; its file name sorts first), b.jar's tag retires");
        }
        assertThat(fromB.isUnloaded()).isTrue();
        assertThat(locationOf(registry.find("tag").orElseThrow())).isEqualTo("a.jar");

        TestJars.deploy(jar("b.jar", "1.0.0", "tag", "extra"), modules.resolve("b.jar")); // b.jar changes: a.jar still wins
        watcher.scanNow();
        assertThat(registry.modules()).extracting(m -> m.id() + " " + locationOf(m))
                .containsExactlyInAnyOrder("tag@1.0.0 a.jar", "extra@1.0.0 b.jar");
    }

    @Test
    void removingTheJarThatRunsAModuleLoadsTheOneItOutranked() throws Exception {
        TestJars.deploy(jar("a.jar", "2.0.0", "tag"), modules.resolve("a.jar"));
        TestJars.deploy(jar("b.jar", "1.0.0", "tag", "other"), modules.resolve("b.jar"));
        watcher.scanNow();
        LoadedModule other = registry.find("other").orElseThrow();
        assertThat(registry.find("tag")).get().extracting(LoadedModule::version).isEqualTo("2.0.0");

        Files.delete(modules.resolve("a.jar"));
        watcher.scanNow();

        assertThat(registry.modules()).extracting(m -> m.id() + " " + locationOf(m) + " " + m.state())
                .containsExactlyInAnyOrder("tag@1.0.0 b.jar ACTIVE", "other@1.0.0 b.jar ACTIVE");
        assertThat(registry.find("other")).get().as("the module b.jar already ran is left alone").isSameAs(other);
        assertThat(watcher.clashes()).isEmpty();
    }

    @Test
    void compareVersionsOrdersAsSemanticVersions() {
        assertThat(AutoloadWatcher.compareVersions("1.10.0", "1.9.0")).isPositive();
        assertThat(AutoloadWatcher.compareVersions("1.0.0-rc.1", "1.0.0")).isNegative();
        assertThat(AutoloadWatcher.compareVersions("1.0.0-rc.2", "1.0.0-rc.10")).isNegative();
        assertThat(AutoloadWatcher.compareVersions("1.0.0-alpha", "1.0.0-1")).isPositive();
        assertThat(AutoloadWatcher.compareVersions("2.0.0", "2.0.0")).isZero();
    }
}
