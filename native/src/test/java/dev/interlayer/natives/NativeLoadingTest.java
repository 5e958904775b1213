package dev.interlayer.natives;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.Role;
import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.modules.tag.TagModule;
import dev.interlayer.runtime.Hooks;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleConfig;
import dev.interlayer.runtime.ModuleLoadException;
import dev.interlayer.runtime.ModuleState;
import dev.interlayer.runtime.NativePackage;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Loading C objects like jars: refusals with a message that says what is wrong and what to do (the agent keeps
 * serving), version negotiation, hook errors as faults, and replace / unload of a live object.
 */
class NativeLoadingTest {

    @TempDir
    Path dir;

    private EngineFixture fx;
    private TestServer echo;

    @AfterEach
    void close() throws Exception {
        if (fx != null) fx.close();
        if (echo != null) echo.close();
    }

    /** A one-module object: {@code interfaces} declared, {@code vtable} the body of its stream initvt, {@code extra} C code before. */
    private static String module(String name, String interfaces, String extra, String vtable) {
        String symbol = name.replace('-', '_');
        return """
                #include <interlayer/module.h>
                #include <stddef.h>
                static const il_host *host;
                %s
                int stream_%s_initvt(il_ctx *ctx, int major, int minor, void *v) {
                    il_stream_vtable *vt = v;
                    (void) ctx; (void) minor;
                    if (major != IL_STREAM_MAJOR) return IL_ERR_VERSION;
                    %s
                    return IL_OK;
                }
                static const il_module_info modules[] = {{ .size = sizeof(il_module_info), .name = "%s", .version = "1.0.0",
                    .interfaces = "%s", .priority = 10 }};
                uint32_t interlayer_plugin_get_version(void) { return IL_ABI_VERSION; }
                const il_module_info *interlayer_module_list(uint32_t *count) { *count = 1; return modules; }
                int interlayer_plugin_init(const il_host *h) { host = h; return IL_OK; }
                void interlayer_plugin_fini(void) { host = NULL; }
                """.formatted(extra, symbol, vtable, name, interfaces);
    }

    private static final String PASS_HOOKS = """
            static int pass(void *m, void *s, il_call *c, const uint8_t *d, size_t n) { (void) m; (void) s; (void) c; (void) d; (void) n; return IL_PASS; }
            """;

    private InetSocketAddress agent() throws Exception {
        fx = new EngineFixture();
        echo = TestServer.echo();
        return fx.listen(Role.CLIENT, echo.address());
    }

    /** Sends {@code n} random bytes, half-closes, and returns whether the same bytes came back before a clean EOF. */
    private static boolean echoes(InetSocketAddress at, int n) throws Exception {
        byte[] data = new byte[n];
        new Random(n).nextBytes(data);
        try (Socket s = EngineFixture.connect(at)) {
            s.getOutputStream().write(data);
            s.shutdownOutput();
            return java.util.Arrays.equals(s.getInputStream().readAllBytes(), data);
        }
    }

    private String failure() {
        return fx.registry.failures().getLast().error();
    }

    @Test
    void aFileThatIsNotASharedObjectIsRefusedAndTheAgentKeepsServing() throws Exception {
        InetSocketAddress at = agent();
        Path bad = Files.write(dir.resolve("bad.so"), "this is not an ELF file".getBytes());
        assertThatThrownBy(() -> fx.registry.load(bad, null)).isInstanceOf(ModuleLoadException.class)
                .hasMessageContaining("is not a shared object").hasMessageContaining("gcc -shared -fPIC");
        assertThat(echoes(at, 10_000)).isTrue();
    }

    @Test
    void anObjectWithoutTheModuleListIsRefusedNamingTheEntryPoint() throws Exception {
        InetSocketAddress at = agent();
        Path so = CBuild.so(dir, "nolist", """
                #include <interlayer/module.h>
                uint32_t interlayer_plugin_get_version(void) { return IL_ABI_VERSION; }
                int interlayer_plugin_init(const il_host *h) { (void) h; return IL_OK; }
                void interlayer_plugin_fini(void) {}
                """);
        assertThatThrownBy(() -> fx.registry.load(so, null)).isInstanceOf(ModuleLoadException.class)
                .hasMessageContaining("does not export interlayer_module_list").hasMessageContaining("nm -D");
        assertThat(echoes(at, 10_000)).isTrue();
    }

    @Test
    void anObjectWithAnUndefinedSymbolIsRefusedAtLoadNamingTheSymbol() throws Exception {
        InetSocketAddress at = agent();
        Path so = CBuild.so(dir, "undefined", module("needs-more", "stream 1.0", """
                extern int il_test_defined_nowhere(int);
                static int send(void *m, void *s, il_call *c, const uint8_t *d, size_t n) {
                    (void) m; (void) s; (void) c; (void) d; return il_test_defined_nowhere((int) n) ? IL_PASS : IL_DROP;
                }
                """, "vt->on_send = send;"));
        assertThatThrownBy(() -> fx.registry.load(so, null)).isInstanceOf(ModuleLoadException.class)
                .hasMessageContaining("needs the symbol 'il_test_defined_nowhere'").hasMessageContaining("link the library");
        assertThat(fx.registry.modules()).isEmpty();
        assertThat(echoes(at, 10_000)).isTrue();
    }

    @Test
    void aModuleBuiltForAnotherMajorIsRefusedWithTheVersions() throws Exception {
        agent();
        Path so = CBuild.so(dir, "major2", module("future", "stream 2.0", PASS_HOOKS, "vt->on_send = pass;"));
        assertThatThrownBy(() -> fx.registry.load(so, null)).isInstanceOf(ModuleLoadException.class);
        assertThat(failure()).contains("built against stream 2.0 but this agent offers stream 1.")
                .contains("the major version must match").contains("module.h");
    }

    @Test
    void anInitvtThatRefusesTheHostsMajorIsRefusedWithIlErrVersion() throws Exception {
        agent();
        Path so = CBuild.so(dir, "refuses", module("picky", "stream 1.0", PASS_HOOKS, "(void) vt; (void) pass; return IL_ERR_VERSION;"));
        assertThatThrownBy(() -> fx.registry.load(so, null)).isInstanceOf(ModuleLoadException.class);
        assertThat(failure()).contains("stream_picky_initvt refused stream 1.").contains("IL_ERR_VERSION");
    }

    /** The object declares stream 1.0 but also fills on_end (1.1), which resets the connection if it is ever called. */
    @Test
    void aModuleOfAnOlderMinorGetsOnlyTheHooksItKnows() throws Exception {
        InetSocketAddress at = agent();
        Path so = CBuild.so(dir, "older", module("older", "stream 1.0", PASS_HOOKS + """
                static int end(void *m, void *s, il_call *c, const uint8_t *d, size_t n) {
                    (void) m; (void) s; (void) d; (void) n; return host->abort_with(c, 9, "on_end must not be called");
                }
                """, "vt->minor = 0; vt->on_send = pass; vt->on_recv = pass; vt->on_end = end;"));
        LoadedModule m = fx.registry.load(so, null).getFirst();
        assertThat(Hooks.names(m.hooks())).contains("onSend", "onRecv").doesNotContain("onEnd");
        assertThat(m.hookNotes()).anySatisfy(n -> assertThat(n).contains("on_end needs stream 1.1").contains("will not be called"));
        assertThat(echoes(at, 50_000)).as("the half-close passed without on_end").isTrue();
        assertThat(m.faults()).isZero();
    }

    @Test
    void aNegativeStatusFromAHookIsAFaultThatFollowsTheFaultPolicy() throws Exception {
        InetSocketAddress at = agent();
        Path so = CBuild.so(dir, "failing", module("failing", "stream 1.0", """
                static il_ctx *me;
                static int init(il_ctx *ctx, void **m) { me = ctx; *m = NULL; return IL_OK; }
                static int send(void *m, void *s, il_call *c, const uint8_t *d, size_t n) {
                    (void) m; (void) s; (void) c; (void) d; (void) n;
                    host->set_error(me, 77, "the C module could not parse the chunk");
                    return IL_ERR_INVALID;
                }
                """, "vt->on_send = send;").replace(".priority = 10", ".priority = 10, .init = init"));
        LoadedModule m = fx.registry.load(so, name -> new ModuleConfig(name, null, null, null, null, FaultPolicy.FAIL_OPEN, null, Map.of()))
                .getFirst();
        assertThat(echoes(at, 20_000)).as("fail-open: detached from the connection, traffic passes").isTrue();
        assertThat(m.faults()).isEqualTo(1);
        assertThat(m.lastFault()).contains("on_send returned IL_ERR_INVALID (-4)").contains("the C module could not parse the chunk");
    }

    /**
     * The watchdog cannot stop native code, but a C hook that runs past the hook budget is flagged and, once it returns,
     * counted as a fault under the module's policy (fail-open here: detached, traffic passes).
     */
    @Test
    void aCHookThatOverrunsTheBudgetIsAFaultWhenItReturns() throws Exception {
        fx = new EngineFixture(dev.interlayer.engine.EngineOptions.defaults().withIoThreads(2).withHookBudget(java.time.Duration.ofMillis(50)));
        echo = TestServer.echo();
        InetSocketAddress at = fx.listen(Role.CLIENT, echo.address());
        Path so = CBuild.so(dir, "slow", module("slow", "stream 1.0", """
                #include <time.h>
                static int send(void *m, void *s, il_call *c, const uint8_t *d, size_t n) {
                    (void) m; (void) s; (void) c; (void) d; (void) n;
                    struct timespec t0, t;
                    clock_gettime(CLOCK_MONOTONIC, &t0);
                    do clock_gettime(CLOCK_MONOTONIC, &t); while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 1000000000L);
                    return IL_PASS;
                }
                """, "vt->on_send = send;"));
        LoadedModule m = fx.registry.load(so, null).getFirst();
        assertThat(echoes(at, 1000)).isTrue();
        for (int i = 0; i < 200 && m.faults() == 0; i++) Thread.sleep(10);
        assertThat(m.faults()).isEqualTo(1);
        assertThat(m.lastFault()).contains("hook budget");
    }

    /**
     * The same path is loaded again after its file was replaced while a connection runs through the first version: the
     * old one keeps that connection, new connections get the new one, and the old object is unmapped (and its cached copy
     * deleted) when that connection ends.
     */
    @Test
    void replacingTheObjectAtTheSamePathWhileAConnectionRunsUnloadsTheOldOneAfterIt() throws Exception {
        fx = new EngineFixture();
        echo = TestServer.echo();
        EngineFixture peer = new EngineFixture();
        try {
            peer.add(new TagModule());
            InetSocketAddress untag = peer.listen(Role.SERVER, echo.address());
            InetSocketAddress at = fx.listen(Role.CLIENT, untag);
            Path so = dir.resolve("tag-c.so");
            Files.copy(CBuild.TAG_C, so);
            LoadedModule first = fx.registry.load(so, null).getFirst();
            NativePackage firstPkg = (NativePackage) first.pkg();

            try (Socket running = EngineFixture.connect(at)) {
                byte[] part = new byte[5000];
                new Random(1).nextBytes(part);
                OutputStream out = running.getOutputStream();
                InputStream in = running.getInputStream();
                out.write(part);
                assertThat(in.readNBytes(part.length)).isEqualTo(part);

                // a new build at the same path (another version string), written in place as a deployer would rename it
                Path c = dir.resolve("tag2.c");
                Files.writeString(c, Files.readString(CBuild.SAMPLES.resolve("tag.c")).replace(".version = \"1.0.0\"", ".version = \"1.0.1\""));
                Path next = CBuild.compile(c, dir.resolve(".tag-c.so.new"));
                Files.move(next, so, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
                LoadedModule second = fx.registry.load(so, null).getFirst();
                assertThat(second.version()).isEqualTo("1.0.1");
                assertThat(first.state()).isEqualTo(ModuleState.DEPRECATED);
                assertThat(firstPkg.isClosed()).isFalse();

                assertThat(echoes(at, 100_000)).as("a new connection, through 1.0.1").isTrue();
                out.write(part); // the running connection still goes through 1.0.0
                assertThat(in.readNBytes(part.length)).isEqualTo(part);
                running.shutdownOutput();
                assertThat(in.read()).isEqualTo(-1);
            }
            for (int i = 0; i < 200 && !firstPkg.isClosed(); i++) Thread.sleep(10);
            assertThat(firstPkg.isClosed()).as("1.0.0 unmapped after its last connection").isTrue();
            for (int i = 0; i < 200 && fx.registry.modules().size() > 1; i++) Thread.sleep(10);
            assertThat(firstPkg.cachedCopy()).doesNotExist();
            assertThat(fx.registry.modules()).extracting(LoadedModule::version).containsExactly("1.0.1");

            // unload the new one too: nothing of either object is left
            NativePackage secondPkg = (NativePackage) fx.registry.modules().getFirst().pkg();
            fx.registry.modules().getFirst().unregister();
            for (int i = 0; i < 200 && !secondPkg.isClosed(); i++) Thread.sleep(10);
            assertThat(secondPkg.isClosed()).isTrue();
            assertThat(secondPkg.cachedCopy()).doesNotExist();
        } finally {
            peer.close();
        }
    }

    @Test
    void aSharedObjectInTheModulesFolderIsLoadedAndItsRemovalRetiresItsModules() throws Exception {
        InetSocketAddress at = agent();
        Path folder = Files.createDirectories(dir.resolve("modules"));
        try (dev.interlayer.runtime.AutoloadWatcher w = new dev.interlayer.runtime.AutoloadWatcher(folder, fx.registry, ModuleConfig::defaults)) {
            Files.copy(CBuild.TAG_C, folder.resolve(".tag-c.so.part"));
            Files.move(folder.resolve(".tag-c.so.part"), folder.resolve("tag-c.so"), StandardCopyOption.ATOMIC_MOVE);
            w.scanNow();
            LoadedModule m = fx.registry.find("tag-c").orElseThrow();
            assertThat(m.state()).isEqualTo(ModuleState.ACTIVE);
            assertThat(echoes(at, 10_000)).isTrue();
            NativePackage pkg = (NativePackage) m.pkg();
            Files.delete(folder.resolve("tag-c.so"));
            w.scanNow();
            for (int i = 0; i < 200 && !(pkg.isClosed() && fx.registry.modules().isEmpty()); i++) Thread.sleep(10);
            assertThat(pkg.isClosed()).as("unmapped once retired").isTrue();
            assertThat(fx.registry.modules()).isEmpty();
        }
    }

    @Test
    void aCModuleIsAttachedInPriorityOrderWithJavaModulesAndSeesTheirOutput() throws Exception {
        InetSocketAddress at = agent();
        fx.add(new TagModule());
        List<LoadedModule> loaded = fx.registry.load(CBuild.TAG_C, name -> new ModuleConfig(name, null, 40, null, null, null, null, Map.of()));
        assertThat(fx.registry.attachOrder()).extracting(LoadedModule::name).containsExactly("tag-c", "tag");
        assertThat(loaded.getFirst().pkg().location()).isEqualTo(CBuild.TAG_C.toAbsolutePath().normalize().toString());
        assertThat(echoes(at, 64_000)).isTrue();
    }
}
