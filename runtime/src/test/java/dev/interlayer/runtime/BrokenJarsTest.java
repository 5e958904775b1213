package dev.interlayer.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.Module;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.runtime.testing.TestJars;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.assertj.core.api.AbstractThrowableAssert;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A catalogue of deliberately broken module jars: each is refused with a message that says what is wrong
 * and what to do, is recorded in the registry's failures, and leaves the registry working.
 */
class BrokenJarsTest {

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

    private AbstractThrowableAssert<?, ? extends Throwable> refused(Path jar) {
        AbstractThrowableAssert<?, ? extends Throwable> a = assertThatThrownBy(() -> registry.loadJar(jar, name -> null))
                .isInstanceOf(ModuleLoadException.class);
        assertThat(registry.failures()).isNotEmpty().allSatisfy(f -> assertThat(f.source()).isEqualTo(jar.toAbsolutePath().toString()));
        assertThat(registry.modules()).isEmpty();
        assertThat(Files.exists(registry.cacheDir())).isTrue();
        try (var files = Files.list(registry.cacheDir())) {
            assertThat(files).as("cached copies of refused jars are deleted").isEmpty();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return a;
    }

    private static String module(String simple, String descriptorBody, String extra) {
        return """
                package t;
                import dev.interlayer.api.*;
                public class %s implements StreamModule<Object> {
                    public ModuleDescriptor descriptor() { %s }
                    %s
                }
                """.formatted(simple, descriptorBody, extra);
    }

    private static final String GOOD_DESCRIPTOR = "return ModuleDescriptor.builder(\"broken\", \"1.0.0\").implement(InterfaceType.STREAM, 1, 0).build();";

    @Test
    void aFileThatIsNotAZipIsRefusedAsUnreadable() throws Exception {
        Path jar = Files.writeString(dir.resolve("text.jar"), "this is not a jar");

        refused(jar).hasMessageContaining("is not a readable jar").hasMessageContaining("wait until the copy is complete");
    }

    @Test
    void aTruncatedJarIsRefusedAsUnreadable() throws Exception {
        byte[] whole = TestJars.jar().source(TestJars.streamModule("t.Cut", "cut", "1.0.0")).service("t.Cut").bytes();
        Path jar = Files.write(dir.resolve("cut.jar"), java.util.Arrays.copyOf(whole, whole.length / 2));

        refused(jar).hasMessageContaining("is not a readable jar");
    }

    @Test
    void aJarWithoutServiceFileIsRefusedWithTheFix() {
        Path jar = TestJars.jar().source(TestJars.streamModule("t.NoService", "no-service", "1.0.0")).write(dir.resolve("nosvc.jar"));

        refused(jar).hasMessageContaining("add META-INF/services/dev.interlayer.api.Module listing your module classes");
    }

    @Test
    void anEmptyServiceFileIsRefusedWithTheFix() {
        Path jar = TestJars.jar().source(TestJars.streamModule("t.Empty", "empty", "1.0.0")).service().write(dir.resolve("empty.jar"));

        refused(jar).hasMessageContaining("lists no module class").hasMessageContaining("one fully qualified class name per line");
    }

    @Test
    void jarBundlingTheSdkIsRefusedWithTheFix() {
        Path jar = TestJars.jar()
                .source(TestJars.streamModule("t.Bundler", "bundler", "1.0.0"))
                .service("t.Bundler")
                .entry(TestJars.entryName(Module.class), TestJars.classBytes(Module.class))
                .entry(TestJars.entryName(ModuleDescriptor.class), TestJars.classBytes(ModuleDescriptor.class))
                .write(dir.resolve("bundler.jar"));

        refused(jar).hasMessageContaining("bundles the Interlayer SDK")
                .hasMessageContaining("dev/interlayer/api/")
                .hasMessageContaining("declare interlayer-api with <scope>provided</scope>");
    }

    @Test
    void aListedClassThatIsNotInTheJarIsNamedWithTheFix() {
        Path jar = TestJars.jar().source(TestJars.streamModule("t.Real", "real", "1.0.0")).service("t.Missing").write(dir.resolve("missing.jar"));

        refused(jar).hasMessageContaining("module class t.Missing").hasMessageContaining("is not in the jar")
                .hasMessageContaining("fix the class name in the service file");
    }

    @Test
    void aListedClassThatIsNotAModuleIsNamedWithTheFix() {
        Path jar = TestJars.jar().source("t.Plain", "package t; public class Plain {}").service("t.Plain").write(dir.resolve("plain.jar"));

        refused(jar).hasMessageContaining("class t.Plain").hasMessageContaining("does not implement dev.interlayer.api.Module");
    }

    @Test
    void aModuleWithoutPublicNoArgConstructorIsNamedWithTheFix() {
        Path jar = TestJars.jar()
                .source(module("NeedsArg", GOOD_DESCRIPTOR, "public NeedsArg(int x) {}"))
                .service("t.NeedsArg")
                .write(dir.resolve("ctor.jar"));

        refused(jar).hasMessageContaining("module class t.NeedsArg").hasMessageContaining("has no public no-argument constructor")
                .hasMessageContaining("add 'public NeedsArg() {}'");
    }

    @Test
    void aConstructorThatThrowsIsReportedWithItsException() {
        Path jar = TestJars.jar()
                .source(module("Explodes", GOOD_DESCRIPTOR, "public Explodes() { throw new IllegalStateException(\"boom in ctor\"); }"))
                .service("t.Explodes")
                .write(dir.resolve("explodes.jar"));

        refused(jar).hasMessageContaining("the constructor of module class t.Explodes")
                .hasMessageContaining("boom in ctor")
                .hasMessageContaining("fix the constructor");
    }

    @Test
    void aDescriptorThatThrowsIsReportedWithTheFix() {
        Path jar = TestJars.jar()
                .source(module("BadDescriptor", "return ModuleDescriptor.builder(\"Bad Name\", \"1.0.0\").implement(InterfaceType.STREAM, 1, 0).build();", ""))
                .service("t.BadDescriptor")
                .write(dir.resolve("baddesc.jar"));

        refused(jar).hasMessageContaining("t.BadDescriptor failed in descriptor()")
                .hasMessageContaining("must match") // the builder's own message names the rule
                .hasMessageContaining("descriptor() must return");
    }

    @Test
    void aNullDescriptorIsReportedWithTheFix() {
        Path jar = TestJars.jar().source(module("NoDescriptor", "return null;", "")).service("t.NoDescriptor").write(dir.resolve("null.jar"));

        refused(jar).hasMessageContaining("t.NoDescriptor returned no descriptor").hasMessageContaining("return ModuleDescriptor.builder");
    }

    @Test
    void anInitThatThrowsFailsTheModuleWithItsMessage() {
        Path jar = TestJars.jar()
                .source(module("InitFails", GOOD_DESCRIPTOR, "public void init(ModuleEnv env) throws Exception { throw new java.io.IOException(\"no license file\"); }"))
                .service("t.InitFails")
                .write(dir.resolve("init.jar"));

        refused(jar).hasMessageContaining("module broken 1.0.0: init failed").hasMessageContaining("no license file")
                .hasMessageContaining("fix init()");
        assertThat(registry.failures()).singleElement().satisfies(f -> assertThat(f.module()).isEqualTo("broken"));
    }

    @Test
    void aModuleBuiltForAnotherMajorVersionIsRefusedWithTheFix() {
        Path jar = TestJars.jar()
                .source(module("Future", "return ModuleDescriptor.builder(\"future\", \"1.0.0\").implement(InterfaceType.STREAM, 2, 0).build();", ""))
                .service("t.Future")
                .write(dir.resolve("future.jar"));

        refused(jar).hasMessageContaining("was built against stream 2.0 but this agent offers stream "
                        + InterfaceType.STREAM.hostMajor() + "." + InterfaceType.STREAM.hostMinor())
                .hasMessageContaining("rebuild the module against interlayer-api with stream 1.x");
    }

    @Test
    void aModuleBuiltForANewerMinorVersionIsRefusedWithTheFix() {
        int newer = InterfaceType.STREAM.hostMinor() + 1;
        Path jar = TestJars.jar()
                .source(module("Newer", "return ModuleDescriptor.builder(\"newer\", \"1.0.0\").implement(InterfaceType.STREAM, 1, "
                        + newer + ").build();", ""))
                .service("t.Newer")
                .write(dir.resolve("newer.jar"));

        refused(jar).hasMessageContaining("was built against stream 1." + newer + " but this agent offers stream 1."
                        + InterfaceType.STREAM.hostMinor())
                .hasMessageContaining("upgrade the agent");
    }

    @Test
    void aStreamModuleThatDoesNotDeclareStreamIsRefusedWithTheFix() {
        Path jar = TestJars.jar()
                .source("t.Undeclared", """
                        package t;
                        import dev.interlayer.api.*;
                        public class Undeclared implements StreamModule<Object>, SocketModule<Object> {
                            public ModuleDescriptor descriptor() {
                                return ModuleDescriptor.builder("undeclared", "1.0.0").implement(InterfaceType.SOCKET, 1, 0).build();
                            }
                        }
                        """)
                .service("t.Undeclared")
                .write(dir.resolve("undeclared.jar"));

        refused(jar).hasMessageContaining("implements StreamModule but its descriptor does not declare it")
                .hasMessageContaining("add .implement(InterfaceType.STREAM, 1, " + InterfaceType.STREAM.hostMinor() + ")");
    }

    @Test
    void aFailingModuleDoesNotStopTheOtherModulesOfItsJar() throws Exception {
        Path jar = TestJars.jar()
                .source(module("Explodes", GOOD_DESCRIPTOR, "public Explodes() { throw new IllegalStateException(\"boom\"); }"))
                .source(TestJars.streamModule("t.Fine", "fine", "1.0.0"))
                .source("t.Plain", "package t; public class Plain {}")
                .source(TestJars.streamModule("t.AlsoFine", "also-fine", "1.0.0"))
                .service("t.Explodes", "t.Missing", "t.Fine", "t.Plain", "t.AlsoFine")
                .write(dir.resolve("mixed.jar"));

        List<LoadedModule> loaded = registry.loadJar(jar, name -> null);

        assertThat(loaded).extracting(LoadedModule::name).containsExactly("fine", "also-fine");
        assertThat(registry.failures()).extracting(Failure::error).satisfiesExactly(
                e -> assertThat(e).contains("t.Explodes").contains("boom"),
                e -> assertThat(e).contains("t.Missing").contains("is not in the jar"),
                e -> assertThat(e).contains("t.Plain").contains("does not implement"));
    }

    @Test
    void aGoodJarStillLoadsAfterABadOne() throws Exception {
        Path bad = Files.writeString(dir.resolve("bad.jar"), "garbage");
        assertThatThrownBy(() -> registry.loadJar(bad, name -> null)).isInstanceOf(ModuleLoadException.class);

        Path good = TestJars.jar().source(TestJars.streamModule("t.Good", "good", "1.0.0")).service("t.Good").write(dir.resolve("good.jar"));

        assertThat(registry.loadJar(good, name -> null)).extracting(LoadedModule::name).containsExactly("good");
    }

    @Test
    void aSuccessfulReloadClearsTheFailuresRecordedForThatPath() throws Exception {
        Path jar = Files.writeString(dir.resolve("later.jar"), "garbage");
        assertThatThrownBy(() -> registry.loadJar(jar, name -> null)).isInstanceOf(ModuleLoadException.class);
        assertThat(registry.failures()).hasSize(1);

        TestJars.jar().source(TestJars.streamModule("t.Later", "later", "1.0.0")).service("t.Later").write(jar);
        registry.loadJar(jar, name -> null);

        assertThat(registry.failures()).isEmpty();
    }
}
