package dev.interlayer.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.api.Module;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.Verdict;
import dev.interlayer.runtime.testing.TestJars;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Loading real module jars: discovery, class loading, the cache, hook detection by version. */
class JarLoadingTest {

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

    @Test
    void aJarWithTwoModulesLoadsBoth() throws Exception {
        Path jar = TestJars.jar()
                .source(TestJars.streamModule("t.First", "first", "1.0.0"))
                .source(TestJars.streamModule("t.Second", "second", "2.1.0"))
                .service("t.First", "t.Second")
                .write(dir.resolve("two.jar"));

        List<LoadedModule> loaded = registry.loadJar(jar, name -> null);

        assertThat(loaded).extracting(LoadedModule::id).containsExactly("first@1.0.0", "second@2.1.0");
        assertThat(loaded).allSatisfy(m -> assertThat(m.state()).isEqualTo(ModuleState.ACTIVE));
        assertThat(loaded.get(0).loader()).isSameAs(loaded.get(1).loader()).isInstanceOf(ModuleClassLoader.class);
        assertThat(registry.modules()).hasSize(2);
        assertThat(registry.failures()).isEmpty();
    }

    @Test
    void eachModuleGetsTheConfigNamedAfterIt() throws Exception {
        Path jar = TestJars.jar()
                .source(TestJars.streamModule("t.First", "first", "1.0.0"))
                .service("t.First")
                .write(dir.resolve("one.jar"));

        List<LoadedModule> loaded = registry.loadJar(jar,
                name -> name.equals("first") ? new ModuleConfig("first", ModuleState.INACTIVE, 7, null, null, null, null, Map.of()) : null);

        assertThat(loaded.getFirst().state()).isEqualTo(ModuleState.INACTIVE);
        assertThat(loaded.getFirst().priority()).isEqualTo(7);
    }

    @Test
    void classesInTheJarWinOverTheHostsWhileSdkClassesAreTheHosts() throws Exception {
        Path jar = TestJars.jar()
                .source("dev.interlayer.runtime.fixtures.Twin", """
                        package dev.interlayer.runtime.fixtures;
                        public final class Twin { public static String where() { return "jar"; } }
                        """)
                .source("t.UsesTwin", """
                        package t;
                        import dev.interlayer.api.*;
                        public class UsesTwin implements StreamModule<Object> {
                            public ModuleDescriptor descriptor() {
                                return ModuleDescriptor.builder("uses-twin", "1.0.0").description(dev.interlayer.runtime.fixtures.Twin.where())
                                        .implement(InterfaceType.STREAM, 1, 0).build();
                            }
                        }
                        """)
                .service("t.UsesTwin")
                .write(dir.resolve("twin.jar"));

        LoadedModule m = registry.loadJar(jar, name -> null).getFirst();
        ClassLoader loader = m.loader();

        assertThat(dev.interlayer.runtime.fixtures.Twin.where()).isEqualTo("host");
        assertThat(m.descriptor().description()).isEqualTo("jar");
        assertThat(loader.loadClass("dev.interlayer.runtime.fixtures.Twin").getClassLoader()).isSameAs(loader);
        assertThat(loader.loadClass(Module.class.getName())).isSameAs(Module.class);
        assertThat(loader.loadClass(Verdict.class.getName())).isSameAs(Verdict.class);
        assertThat(loader.loadClass("java.lang.String")).isSameAs(String.class);
        assertThat(m.module()).isInstanceOf(StreamModule.class);
    }

    @Test
    void serviceFilesAreLookedUpInTheJarOnly() throws Exception {
        Path jar = TestJars.jar()
                .source(TestJars.streamModule("t.Own", "own", "1.0.0"))
                .service("t.Own")
                .write(dir.resolve("own.jar"));

        ModuleClassLoader loader = (ModuleClassLoader) registry.loadJar(jar, name -> null).getFirst().loader();

        assertThat(java.util.Collections.list(loader.getResources("META-INF/services/" + Module.class.getName())))
                .singleElement().asString().contains(registry.cacheDir().toString());
        // junit registers services on the host class path; the module loader must not show them
        assertThat(java.util.Collections.list(loader.getResources("META-INF/services/org.junit.platform.engine.TestEngine"))).isEmpty();
        assertThat(ClassLoader.getSystemClassLoader().getResources("META-INF/services/org.junit.platform.engine.TestEngine").hasMoreElements())
                .isTrue();
    }

    @Test
    void theJarIsLoadedFromACachedCopySoTheOriginalCanBeDeleted() throws Exception {
        Path jar = TestJars.jar()
                .source(TestJars.streamModule("t.Late", "late", "1.0.0", """
                    public void init(ModuleEnv env) {}
                    public Verdict onSend(Object s, StreamContext c, ByteView d) { return Helper.verdict(); }
                """))
                .source("t.Helper", "package t; class Helper { static dev.interlayer.api.Verdict verdict() { return dev.interlayer.api.Verdict.DROP; } }")
                .service("t.Late")
                .write(dir.resolve("late.jar"));

        LoadedModule m = registry.loadJar(jar, name -> null).getFirst();
        JarPackage pkg = (JarPackage) m.pkg();
        Files.delete(jar);

        assertThat(pkg.cachedCopy()).exists().hasFileName(pkg.sha256() + ".jar").startsWith(registry.cacheDir());
        assertThat(pkg.location()).isEqualTo(jar.toAbsolutePath().toString());
        // t.Helper is loaded only now, after the original is gone
        @SuppressWarnings("unchecked")
        StreamModule<Object> s = (StreamModule<Object>) (StreamModule<?>) m.module();
        assertThat(s.onSend(null, null, null)).isEqualTo(Verdict.DROP);

        m.unregister();
        assertThat(pkg.isClosed()).isTrue();
        assertThat(pkg.cachedCopy()).doesNotExist();
    }

    @Test
    void aModuleDeclaringStream10DoesNotGetTheEndHookButOneDeclaring11Does() throws Exception {
        String onEnd = "public Verdict onEnd(Object s, StreamContext c, ByteView rest) { return Verdict.PASS; }";
        Path jar = TestJars.jar()
                .source(moduleDeclaring("t.Old", "old", 0, onEnd))
                .source(moduleDeclaring("t.New", "new", 1, onEnd))
                .service("t.Old", "t.New")
                .write(dir.resolve("versions.jar"));

        List<LoadedModule> loaded = registry.loadJar(jar, name -> null);

        LoadedModule old = loaded.get(0);
        LoadedModule neu = loaded.get(1);
        assertThat(old.has(Hooks.END)).isFalse();
        assertThat(old.hookNotes()).singleElement().asString().contains("onEnd needs stream 1.1 but the module declares 1.0");
        assertThat(neu.has(Hooks.END)).isTrue();
        assertThat(neu.has(Hooks.SEND)).isFalse();
    }

    private static String moduleDeclaring(String className, String name, int minor, String body) {
        String simple = className.substring(className.indexOf('.') + 1);
        return """
                package t;
                import dev.interlayer.api.*;
                public class %s implements StreamModule<Object> {
                    public ModuleDescriptor descriptor() {
                        return ModuleDescriptor.builder("%s", "1.0.0").implement(InterfaceType.STREAM, 1, %d).build();
                    }
                    %s
                }
                """.formatted(simple, name, minor, body);
    }

    @Test
    void loadingTheSameJarTwiceRetiresTheFirstInstance() throws Exception {
        Path jar = TestJars.jar()
                .source(TestJars.streamModule("t.Same", "same", "1.0.0"))
                .service("t.Same")
                .write(dir.resolve("same.jar"));

        LoadedModule first = registry.loadJar(jar, name -> null).getFirst();
        LoadedModule second = registry.loadJar(jar, name -> null).getFirst();

        assertThat(first.isUnloaded()).isTrue(); // retired and idle: gone at once
        assertThat(second.state()).isEqualTo(ModuleState.ACTIVE);
        assertThat(((JarPackage) second.pkg()).cachedCopy()).exists(); // shared cache file survives the first's release
        assertThat(registry.find("same")).contains(second);
    }

    @Test
    void aMissingFileIsRefusedWithThePath() {
        Path jar = dir.resolve("nowhere.jar");

        assertThatThrownBy(() -> registry.loadJar(jar, name -> null))
                .isInstanceOf(ModuleLoadException.class)
                .hasMessageContaining(jar.toString())
                .hasMessageContaining("does not exist");
    }

    @Test
    void loadingAfterCloseIsRefused() {
        registry.close();

        assertThatThrownBy(() -> registry.loadJar(dir.resolve("x.jar"), name -> null)).isInstanceOf(IllegalStateException.class);
    }
}
