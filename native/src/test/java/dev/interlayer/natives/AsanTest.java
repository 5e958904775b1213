package dev.interlayer.natives;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The C tag built with {@code -fsanitize=address} runs in an agent JVM with the ASan runtime preloaded: no invalid
 * access (a deliberately broken build shows ASan is watching), and none of the module's allocations is left once it is
 * unloaded. LeakSanitizer needs ptrace, which containers often forbid, so leaks are counted by the module itself: it is
 * built with calloc/malloc/free routed through a counter, read after the unload (a build that forgets a free shows the count).
 *
 * <p>The same for the tls code: the C sni-cert behind a real TLS listener, with openssl s_client making the handshakes.
 */
class AsanTest {

    @TempDir
    static Path dir;

    private static Path libasan;
    private static final String COUNTER = """
            #undef calloc
            #undef malloc
            #undef free
            #include <stdlib.h>
            #include <stdatomic.h>
            static atomic_long live;
            void *il_test_calloc(size_t n, size_t size) { void *p = calloc(n, size); if (p) atomic_fetch_add(&live, 1); return p; }
            void *il_test_malloc(size_t size) { void *p = malloc(size); if (p) atomic_fetch_add(&live, 1); return p; }
            void il_test_free(void *p) { if (p) atomic_fetch_sub(&live, 1); free(p); }
            long il_test_live_allocations(void) { return atomic_load(&live); }
            """;

    @BeforeAll
    static void findAsan() throws Exception {
        Process p = new ProcessBuilder("gcc", "-print-file-name=libasan.so").redirectErrorStream(true).start();
        String path = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        p.waitFor();
        Path real = Path.of(path);
        Assumptions.assumeTrue(real.isAbsolute() && Files.isRegularFile(real),
                "the AddressSanitizer runtime is not installed (gcc -print-file-name=libasan.so gives '" + path
                        + "'); install it with apt-get install -y libasan8 (Debian 12) to run this test");
        libasan = real.toRealPath();
    }

    private record Run(int exit, String output) {}

    /** The sample tag (or {@code source}) with ASan and the counting allocator. */
    private static Path build(String name, String source, String... extra) throws Exception {
        Path c = dir.resolve(name + ".c");
        Files.writeString(c, "void *il_test_calloc(__SIZE_TYPE__, __SIZE_TYPE__);\nvoid *il_test_malloc(__SIZE_TYPE__);\nvoid il_test_free(void *);\n"
                + "#define calloc il_test_calloc\n#define malloc il_test_malloc\n#define free il_test_free\n" + source.replace("#include <stdlib.h>\n", "")
                + "\n" + COUNTER);
        List<String> flags = new ArrayList<>(List.of("-fsanitize=address", "-fno-omit-frame-pointer", "-g", "-O1", "-include", "stdlib.h"));
        flags.addAll(List.of(extra));
        return CBuild.compile(c, dir.resolve(name + ".so"), flags.toArray(String[]::new));
    }

    private static String tag() throws Exception {
        return Files.readString(CBuild.SAMPLES.resolve("tag.c"));
    }

    private static Run agent(Path so, String... more) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--sun-misc-unsafe-memory-access=allow", "--enable-native-access=ALL-UNNAMED", "-Xmx512m",
                "-Dio.netty.leakDetection.level=paranoid", "-cp", System.getProperty("java.class.path"),
                AsanDriver.class.getName(), so.toString(), "40"));
        cmd.addAll(List.of(more));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("LD_PRELOAD", libasan.toString());
        // the JVM uses SIGSEGV itself (implicit null checks, safepoint polls): ASan must leave it alone
        pb.environment().put("ASAN_OPTIONS", "handle_segv=0:allow_user_segv_handler=1:detect_leaks=0:detect_stack_use_after_return=0");
        Process p = pb.start();
        byte[] out = p.getInputStream().readAllBytes();
        assertThat(p.waitFor(3, TimeUnit.MINUTES)).isTrue();
        return new Run(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    }

    @Test
    void theCTagUnderAddressSanitizerMakesNoInvalidAccessAndLeavesNoAllocationBehind() throws Exception {
        Run r = agent(build("tag-asan", tag()));
        assertThat(r.output()).as(r.output()).contains("ASAN-DRIVER: OK").doesNotContain("ERROR: AddressSanitizer")
                .contains("live allocations of the module after unload: 0");
        assertThat(r.exit()).as(r.output()).isZero();
    }

    @Test
    void aBuildThatForgetsToFreeItsConnectionStateIsCounted() throws Exception {
        Run r = agent(build("leaky", tag().replace("    (void) reason;\n    free(state);", "    (void) reason;\n    (void) state;")));
        assertThat(r.output()).as(r.output()).contains("ASAN-DRIVER: OK").contains("live allocations of the module after unload: 40");
    }

    @Test
    void aUseAfterFreeInTheModuleIsReportedByAddressSanitizer() throws Exception {
        Run r = agent(build("uaf", tag().replace("    (void) reason;\n    free(state);",
                "    (void) reason;\n    free(state);\n    ((tag_state *) state)->send_left = 0;"), "-Wno-use-after-free"));
        assertThat(r.output()).as(r.output()).contains("ERROR: AddressSanitizer: heap-use-after-free").contains("tag_detach");
        assertThat(r.exit()).isNotZero();
    }

    /** A self-signed certificate for {@code name} as NAME.crt and NAME.key (PEM PKCS#8) in {@code folder}, made by openssl. */
    private static void certificate(Path folder, String name) throws Exception {
        Process p = new ProcessBuilder("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-days", "2", "-subj", "/CN=" + name, "-keyout", folder.resolve(name + ".key").toString(), "-out",
                folder.resolve(name + ".crt").toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor()).as(out).isZero();
    }

    /** The C sni-cert ({@code source}) with ASan behind a TLS listener, 40 handshakes by openssl s_client, then unloaded. */
    private Run tlsAgent(String name, String source) throws Exception {
        Assumptions.assumeTrue(new ProcessBuilder("openssl", "version").start().waitFor() == 0, "openssl is not installed");
        Path run = Files.createDirectories(dir.resolve(name + "-run"));
        Path certs = Files.createDirectories(run.resolve("certs"));
        certificate(certs, "a.test");
        certificate(certs, "b.test");
        certificate(run, "default");
        return agent(build(name, source), "tls", certs.toString(), run.resolve("default.crt").toString(), run.resolve("default.key").toString());
    }

    private static String sniCert() throws Exception {
        return Files.readString(CBuild.SAMPLES.resolve("sni-cert.c"));
    }

    @Test
    void theCSniCertUnderAddressSanitizerServesRealHandshakesWithoutInvalidAccessAndLeavesNoAllocationBehind() throws Exception {
        Run r = tlsAgent("sni-cert-asan", sniCert());
        assertThat(r.output()).as(r.output()).contains("ASAN-DRIVER: OK").doesNotContain("ERROR: AddressSanitizer")
                .contains("live allocations of the module after unload: 0");
        assertThat(r.exit()).as(r.output()).isZero();
    }

    @Test
    void anOffByOneInTheCSniCertsCacheIsReportedByAddressSanitizerDuringAHandshake() throws Exception {
        String source = sniCert();
        String copy = "memcpy(e->name, name, n + 1);";
        assertThat(source).contains(copy);
        Run r = tlsAgent("sni-cert-overflow", source.replace(copy, copy + " e->name[n + 1] = 0;"));
        assertThat(r.output()).as(r.output()).contains("ERROR: AddressSanitizer: heap-buffer-overflow").contains("sni-cert-overflow.c");
        assertThat(r.exit()).isNotZero();
    }
}
