package dev.interlayer.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.api.InterfaceType;
import dev.interlayer.runtime.ModuleVerifier;
import dev.interlayer.runtime.testing.TestJars;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MainTest {

    @TempDir
    Path dir;

    /** The outcome of one in-process run of the command line. */
    record Run(int code, String out, String err) {}

    static Run run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.execute(new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new Run(code, out.toString(), err.toString());
    }

    private Path config(String yaml) throws IOException {
        Path f = dir.resolve("agent.yaml");
        Files.writeString(f, yaml);
        return f;
    }

    private static final String VALID = """
            listeners:
              - name: web
                listen: 127.0.0.1:18080
                upstream: 127.0.0.1:18081
                role: client
            """;

    @Test
    void runCheckPrintsOkAndExitsZeroForAValidConfig() throws Exception {
        Run r = run("run", "--config", config(VALID).toString(), "--check");
        assertThat(r.err()).isEmpty();
        assertThat(r.code()).isZero();
        assertThat(r.out()).startsWith("OK: " + dir.resolve("agent.yaml") + ": 1 listener, 0 module entries")
                .contains("listener web (client): 127.0.0.1:18080 -> 127.0.0.1:18081");
    }

    @Test
    void runCheckExitsTwoAndListsEveryProblemOfABadConfig() throws Exception {
        Path f = config(VALID.replace("role: client", "role: sideways") + "agent:\n  hook-budget: 200\n");
        Run r = run("run", "--config", f.toString(), "--check");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.out()).isEmpty();
        assertThat(r.err()).contains("interlayer: 2 problems in " + f + ":")
                .contains(f + ":5: listeners[0].role: unknown value 'sideways'; expected client")
                .contains(f + ":7: agent.hook-budget: '200' is not a duration")
                .contains("then check again with: interlayer run --config " + f + " --check");
    }

    @Test
    void runCheckExitsTwoWhenAConfiguredModuleIsInNoJar() throws Exception {
        Path f = config(VALID + "modules:\n  - name: ghost\n");
        Run r = run("run", "--config", f.toString(), "--check");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains(f + ":7: modules[0].name: no module named 'ghost' was found");
    }

    @Test
    void runCheckExitsTwoForAConfigFileThatDoesNotExist() {
        Run r = run("run", "--config", dir.resolve("missing.yaml").toString(), "--check");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("missing.yaml: the config file does not exist");
    }

    @Test
    void runWithoutAConfigIsAUsageError() {
        Run r = run("run");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("Missing required option: '--config=FILE'");
    }

    @Test
    void noCommandIsAUsageErrorThatNamesTheCommands() {
        Run r = run();
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("missing command: use one of run, check-module");
    }

    @Test
    void checkModuleOnAFileThatIsNotAJarExitsOneWithTheFix() throws Exception {
        Path jar = dir.resolve("broken.jar");
        Files.writeString(jar, "not a zip");
        Run r = run("check-module", jar.toString());
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.out()).contains("PROBLEM: ").contains("broken.jar").contains("FAILED: 0 modules loaded, 1 problem");
    }

    @Test
    void checkModuleOnAJarListingAMissingClassExitsOneAndNamesTheClass() throws Exception {
        Path jar = dir.resolve("missing-class.jar");
        try (OutputStream f = Files.newOutputStream(jar); JarOutputStream j = new JarOutputStream(f)) {
            j.putNextEntry(new JarEntry("META-INF/services/dev.interlayer.api.Module"));
            j.write("com.example.NotThere\n".getBytes(StandardCharsets.UTF_8));
            j.closeEntry();
        }
        Run r = run("check-module", jar.toString());
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.out()).contains("PROBLEM").contains("com.example.NotThere");
    }

    @Test
    void checkModuleOnAPathThatDoesNotExistIsAUsageError() {
        Run r = run("check-module", dir.resolve("nope.jar").toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("nope.jar does not exist; pass the path of a module jar");
    }

    static Path sampleJar(String name) {
        Path dir = DemoCommand.findSampleModules();
        assertThat(dir).as("sample module jars (set -Dinterlayer.sampleModules or run ./mvnw -pl cli -am package -DskipTests)").isNotNull();
        return dir.resolve("module-" + name + ".jar");
    }

    @Test
    void checkModuleOnTheTagSampleReportsItsInterfacesHooksParametersAndDefaults() {
        Run r = run("check-module", sampleJar("tag").toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out())
                .containsPattern("sha256 [0-9a-f]{64}")
                .contains("module tag 1.0.0 - inserts a tag every N bytes")
                .contains("interfaces:   stream 1.3 (host offers " + InterfaceType.STREAM.hostMajor() + "." + InterfaceType.STREAM.hostMinor())
                .contains("hooks:        attach, onSend, onRecv, onEnd")
                .contains("defaults:     priority 50, selector any, mode global, fault policy fail-closed, runs in the agent's warm-up")
                .containsPattern("every +int +default 1000 +payload bytes between two tags")
                .contains("OK: 1 module loaded");
    }

    @Test
    void checkModuleOnTheCTagSampleReportsItsExportsInterfacesHooksAndParameters() {
        Path so = DemoCommand.findSampleModules().resolve("module-tag-c.so");
        Run r = run("check-module", so.toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out())
                .contains("C module object " + so.toAbsolutePath().normalize())
                .containsPattern("sha256 [0-9a-f]{64}")
                .contains("exports interlayer_plugin_get_version, interlayer_module_list, interlayer_plugin_init, interlayer_plugin_fini,"
                        + " stream_tag_c_initvt")
                .contains("module tag-c 1.0.0")
                .contains("interfaces:   stream 1.1 (host offers " + InterfaceType.STREAM.hostMajor() + "." + InterfaceType.STREAM.hostMinor())
                .contains("hooks:        attach, detach, onSend, onRecv, onEnd")
                .contains("native:       runs in the agent's process")
                .containsPattern("every +int +default 1000 +payload bytes between two tags")
                .contains("OK: 1 module loaded");
    }

    @Test
    void checkModuleOnAFileThatIsNotASharedObjectExitsOneWithTheFix() throws Exception {
        Path so = Files.writeString(dir.resolve("half.so"), "copied half-way");
        Run r = run("check-module", so.toString());
        assertThat(r.code()).isEqualTo(1);
        assertThat(r.out()).contains("is not a shared object").contains("gcc -shared -fPIC").contains("FAILED: 0 modules loaded, 1 problem");
    }

    @Test
    void checkModuleOnTheTcplogSampleShowsASocketOnlyModuleWithItsControlHook() {
        Run r = run("check-module", sampleJar("tcplog").toString());
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("interfaces:   socket 1.0 (host offers 1.0)").contains("control")
                .containsPattern("enabled +bool +default true");
    }

    /** A jar with stream module {@code t.Careless} named {@code careless}, with {@code builder} calls and {@code body}. */
    private Path carelessJar(Path target, String builder, String body) {
        return TestJars.jar().source("t.Careless", """
                package t;
                import dev.interlayer.api.*;
                public class Careless implements StreamModule<Object> {
                    public ModuleDescriptor descriptor() {
                        return ModuleDescriptor.builder("careless", "1.0.0").implement(InterfaceType.STREAM, 1, 2)%s.build();
                    }
                %s
                }
                """.formatted(builder, body)).service("t.Careless").write(target);
    }

    @Test
    void checkModuleOnAModuleThatExitsInInitPrintsTheRefusalWithClassMethodAndLineAndExitsOne() {
        Path jar = carelessJar(dir.resolve("quitter.jar"), "", "    public void init(ModuleEnv env) { System.exit(43); }");

        Run r = run("check-module", jar.toString());

        assertThat(r.code()).isEqualTo(1);
        assertThat(r.out()).contains("was refused before any of its code ran (1 problem):")
                .contains("- t.Careless.init(ModuleEnv) (Careless.java:7): calls java.lang.System.exit(int), which stops the JVM")
                .contains("FAILED: 0 modules loaded, 1 problem");
    }

    @Test
    void checkModuleListsTheCapabilitiesAModuleDeclaresAndTheConfigLineAnAgentNeeds() {
        Path jar = carelessJar(dir.resolve("worker.jar"), ".capability(Capability.THREADS)", """
                    private Thread worker;
                    public void init(ModuleEnv env) { worker = new Thread(() -> {}, "careless-worker"); }
                """);

        Run r = run("check-module", jar.toString());

        assertThat(r.code()).as(r.out()).isZero();
        assertThat(r.out()).contains("capabilities: threads (an agent loads the module only where its config allows them: allow: [threads])")
                .contains("verified:     1 class read before any ran, nothing refused; uses threads")
                .contains("OK: 1 module loaded");
    }

    @Test
    void checkModuleNamesACapabilityUsedButNotDeclared() {
        Path jar = carelessJar(dir.resolve("worker.jar"), "", """
                    public void init(ModuleEnv env) { new Thread(() -> {}).start(); }
                """);

        Run r = run("check-module", jar.toString());

        assertThat(r.code()).isEqualTo(1);
        assertThat(r.out()).contains("PROBLEM in module careless: module careless 1.0.0 from")
                .contains("t.Careless.init(ModuleEnv) (Careless.java:7): new java.lang.Thread(Runnable), which creates a thread, which needs"
                        + " capability threads, and module careless does not declare it: add .capability(Capability.THREADS)");
    }

    @Test
    void runCheckPrintsTheRefusalOfAModuleThatWouldStopTheAgentAndExitsTwo() throws Exception {
        Path modules = Files.createDirectories(dir.resolve("modules"));
        carelessJar(modules.resolve("quitter.jar"), "", "    public void init(ModuleEnv env) { System.exit(43); }");

        Run r = run("run", "--config", config(VALID).toString(), "--check");

        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("quitter.jar was refused before any of its code ran")
                .contains("t.Careless.init(ModuleEnv) (Careless.java:7): calls java.lang.System.exit(int)");
    }

    @Test
    void runCheckWarnsAboutTwoJarsOfTheModulesFolderDeclaringOneModule() throws Exception {
        Path modules = Files.createDirectories(dir.resolve("modules"));
        Files.copy(sampleJar("tag"), modules.resolve("a-tag.jar"));
        Files.copy(sampleJar("tag"), modules.resolve("b-tag.jar"));

        Run r = run("run", "--config", config(VALID).toString(), "--check");

        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).contains("interlayer: warning: module tag is declared by 2 jars of " + modules
                + ": a-tag.jar (1.0.0), b-tag.jar (1.0.0); a-tag.jar wins (same version; its file name sorts first)");
        assertThat(r.out()).contains("module tag@1.0.0 (a-tag.jar): loads").doesNotContain("b-tag.jar");
    }

    @Test
    void everyBundledSampleModulePassesTheVerifierAndUsesNoCapability() throws Exception {
        List<String> jars = List.of("tag", "tcplog", "ratelimit", "hold-release", "dns-tag");
        for (String name : jars) {
            Run r = run("check-module", sampleJar(name).toString());
            assertThat(r.code()).as(r.out()).isZero();
            assertThat(r.out()).contains("capabilities: none").containsPattern("nothing refused; uses no capability");
        }
        for (int pass = 1; pass <= 2; pass++) { // what verifying them costs at load: a first pass, then one with the JIT warmer
            long t0 = System.nanoTime();
            int classes = 0;
            for (String name : jars) {
                ModuleVerifier.Scan scan = ModuleVerifier.scan(sampleJar(name));
                assertThat(scan.refusals(List.of())).isEmpty();
                classes += scan.classes();
            }
            System.out.printf("verifier pass %d: the %d bundled sample module jars (%d classes) in %.1f ms%n", pass, jars.size(), classes,
                    (System.nanoTime() - t0) / 1e6);
        }
    }

    @Test
    void runCheckLoadsTheModulesAConfigNamesAndSaysTheyLoad() throws Exception {
        Path f = config(VALID + "modules:\n  - name: tag\n    jar: " + sampleJar("tag") + "\n    params: {every: 64}\n");
        Run r = run("run", "--config", f.toString(), "--check");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("1 module entry").containsPattern("module tag@1.0.0 \\(module-tag.jar\\): loads");
    }

    @Test
    void runCheckPutsABadParameterValueOnItsConfigLine() throws Exception {
        Path f = config(VALID + "modules:\n  - name: tag\n    jar: " + sampleJar("tag") + "\n    params:\n      every: lots\n");
        Run r = run("run", "--config", f.toString(), "--check");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains(f + ":10: modules[0].params.every: ").contains("'lots' is not an integer");
    }

    @Test
    void runCheckNamesAnUnknownParameterAndTheKnownOnes() throws Exception {
        Path f = config(VALID + "modules:\n  - name: tag\n    jar: " + sampleJar("tag") + "\n    params:\n      evry: 10\n");
        Run r = run("run", "--config", f.toString(), "--check");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains(f + ":10: modules[0].params.evry: ").contains("unknown parameter 'evry'; known: every, tag");
    }

    @Test
    void runExitsOneWhenAListenerCannotBind() throws Exception {
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            Path f = config(VALID.replace("18080", Integer.toString(taken.getLocalPort())));
            Run r = run("run", "--config", f.toString());
            assertThat(r.code()).isEqualTo(1);
            assertThat(r.err()).contains("interlayer: the agent did not start: " + f + ":2: listener web did not start: ");
        }
    }

    @Test
    void helpListsTheFinishedCommands() {
        Run r = run("--help");
        assertThat(r.code()).isZero();
        assertThat(r.out()).contains("run", "check-module", "demo", "Exit codes:");
    }

    @Test
    void aCallBuildsOnlyTheCommandItNamesAndEveryCommandStillAnswersItsHelp() {
        assertThat(Main.commandLine("status", "--json").getSubcommands().keySet()).containsExactly("status");
        assertThat(Main.commandLine("--help").getSubcommands().keySet()).containsExactlyElementsOf(Main.Commands.ALL.keySet());
        assertThat(Main.commandLine("sttaus").getSubcommands().keySet()).as("a mistyped name gets the suggestions")
                .containsExactlyElementsOf(Main.Commands.ALL.keySet());
        for (String name : Main.Commands.ALL.keySet()) {
            Run r = run(name, "--help");
            assertThat(r.code()).as(name + " --help: " + r.err()).isZero();
            assertThat(r.out()).as(name).contains("Usage: interlayer " + name);
        }
        assertThat(run("help", "modules").out()).contains("Usage: interlayer modules", "state", "stats");
        List<String> listed = Main.Commands.ALL.entrySet().stream()
                .filter(c -> !c.getValue().getAnnotation(picocli.CommandLine.Command.class).hidden()).map(Map.Entry::getKey).toList();
        assertThat(listed).as("the build's training run is not a user's command").doesNotContain("aot-training");
        assertThat(run("--help").out()).contains(listed).doesNotContain("aot-training");
    }

    @Test
    void onlyTheExactFormOfRunStartsWithoutTheCommandLineParser() {
        PrintWriter w = new PrintWriter(new StringWriter());
        assertThat(RunCommand.plain(new String[] {"run", "--config", "agent.yaml"}, w, w)).isNotNull();
        assertThat(RunCommand.plain(new String[] {"run", "--config=agent.yaml"}, w, w)).isNotNull();
        for (String[] other : List.of(new String[] {"run", "--config", "agent.yaml", "--check"}, new String[] {"run", "--help"},
                new String[] {"run", "--config", "--check"}, new String[] {"run", "--config="}, new String[] {"status"},
                new String[] {"run", "--cnofig", "agent.yaml"})) {
            assertThat(RunCommand.plain(other, w, w)).as(String.join(" ", other)).isNull();
        }
    }

    @Test
    void versionNamesTheModuleInterfaces() {
        Run r = run("--version");
        assertThat(r.code()).isZero();
        assertThat(r.out()).contains("interlayer 0.1.0").contains("module interfaces: stream ");
        for (InterfaceType t : InterfaceType.values()) {
            assertThat(r.out()).contains(t.id() + " " + t.hostMajor() + "." + t.hostMinor());
        }
    }

    @Test
    void sizesAndDurationsAreShownAsAConfigWouldWriteThem() {
        assertThat(CheckModuleCommand.size(65536)).isEqualTo("64KiB");
        assertThat(CheckModuleCommand.size(1500)).isEqualTo("1500");
        assertThat(CheckModuleCommand.duration(java.time.Duration.ofMillis(250))).isEqualTo("250ms");
        assertThat(CheckModuleCommand.duration(java.time.Duration.ofSeconds(120))).isEqualTo("2m");
    }

    @Test
    void policyTestPrintsEachCaseAndExitsOneOnAMismatch() throws Exception {
        Path examples = Path.of("..", "docs", "examples");
        Run ok = run("policy", "test", examples.resolve("control-policy.yaml").toString(), examples.resolve("control-policy-cases.yaml").toString());
        assertThat(ok.code()).as(ok.err()).isZero();
        assertThat(ok.out()).contains("ok    root may revoke", "ok    the orchestrator's certificate", "14 cases: 14 passed, 0 failed");
        Path cases = Files.writeString(dir.resolve("cases.yaml"), """
                cases:
                  - name: a user revokes
                    caller: {uid: 1000}
                    call: Modules.SetState
                    message: {name: tcplog, state: REVOKE}
                    expect: granted
                """);
        Run bad = run("policy", "test", examples.resolve("control-policy.yaml").toString(), cases.toString());
        assertThat(bad.code()).isEqualTo(1);
        assertThat(bad.out()).contains("FAIL  a user revokes (" + cases + ":2): expected granted, got denied by rule only-root-revokes",
                "1 cases: 0 passed, 1 failed");
        Files.writeString(cases, "cases:\n  - name: x\n    caller: {uid: 1}\n    call: Modules.Nope\n    expect: denied\n");
        Run broken = run("policy", "test", examples.resolve("control-policy.yaml").toString(), cases.toString());
        assertThat(broken.code()).isEqualTo(2);
        assertThat(broken.err()).contains(cases + ":4: case 'x': Modules.Nope is not a method of the IDL");
    }

    @Test
    void aControlCommandWithoutAnAgentSaysHowToStartOneAndExitsThree() {
        Run r = run("modules", "list", "--socket", dir.resolve("none.sock").toString());
        assertThat(r.code()).isEqualTo(3);
        assertThat(r.err()).contains("interlayer: no agent at " + dir.resolve("none.sock") + ": start one with interlayer run --config FILE");
    }

    @Test
    void runCheckReportsABadControlPolicyAtItsLine() throws Exception {
        Files.writeString(dir.resolve("policy.yaml"), "rules:\n  - name: a\n    decision: perhaps\n");
        Path f = config("agent:\n  control: {socket: c.sock, policy: policy.yaml}\n" + VALID);
        Run r = run("run", "--config", f.toString(), "--check");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains(f + ":2: agent.control.policy: " + dir.resolve("policy.yaml") + ":3: rule 'a': decision must be granted or denied");
    }
}
