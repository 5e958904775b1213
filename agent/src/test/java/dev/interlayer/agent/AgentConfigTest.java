package dev.interlayer.agent;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.agent.ConfigException.Problem;
import dev.interlayer.api.AttachMode;
import dev.interlayer.api.Capability;
import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.Protocol;
import dev.interlayer.api.Role;
import dev.interlayer.api.SocketOption;
import dev.interlayer.runtime.ModuleConfig;
import dev.interlayer.runtime.ModuleState;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AgentConfigTest {

    @TempDir
    Path dir;

    private Path write(String yaml) throws IOException {
        Path f = dir.resolve("agent.yaml");
        Files.writeString(f, yaml);
        return f;
    }

    private List<Problem> problems(String yaml) throws IOException {
        Path f = write(yaml);
        try {
            AgentConfig.load(f);
        } catch (ConfigException e) {
            return e.problems();
        }
        throw new AssertionError("expected problems in:\n" + yaml);
    }

    private Problem onlyProblem(String yaml) throws IOException {
        List<Problem> p = problems(yaml);
        assertThat(p).as("problems").hasSize(1);
        return p.get(0);
    }

    private static final String LISTENER = """
            listeners:
              - name: web
                listen: 127.0.0.1:8080
                upstream: 127.0.0.1:80
                role: client
            """;

    @Test
    void aFullConfigParsesIntoEveryField() throws Exception {
        Files.createDirectories(dir.resolve("mods"));
        Files.write(dir.resolve("extra.jar"), new byte[] {1});
        Path f = write("""
                agent:
                  modules-dir: mods
                  io-threads: 2
                  hold-limit: 8MiB
                  hook-budget: 150ms
                  module-wide-budget: 2s
                  alloc-limit: 16MiB
                  quarantine-after: 3
                  connect-timeout: 5s
                listeners:
                  - name: web
                    listen: 127.0.0.1:8080
                    upstream: 127.0.0.1:80
                    role: client
                    protocol: tcp
                    options: {tcp-nodelay: true, keep-alive: true, rcvbuf: 256KiB, sndbuf: 128KiB, tos: 0x10, linger: -1}
                  - name: api
                    listen: "[::1]:9090"
                    upstream: localhost:9000
                    role: server
                modules:
                  - name: tag
                    jar: extra.jar
                    state: inactive
                    priority: 50
                    mode: programmatic
                    listeners: [web]
                    apply-now: true
                    fault-policy: fail-closed
                    selector: {protocol: tcp, listener: [web], app: [curl], pid: [123], local: [127.0.0.0/8], remote: [10.0.0.0/8], local-ports: "80,443", remote-ports: "8000-8100"}
                    params: {every: 1000, tag: IL, fast: true}
                  - name: tcplog
                """);
        AgentConfig c = AgentConfig.load(f);

        assertThat(c.agent().modulesDir()).isEqualTo(dir.resolve("mods").toAbsolutePath().normalize());
        assertThat(c.agent().modulesDirSet()).isTrue();
        assertThat(c.agent().ioThreads()).isEqualTo(2);
        assertThat(c.agent().holdLimit()).isEqualTo(8L << 20);
        assertThat(c.agent().hookBudget()).isEqualTo(Duration.ofMillis(150));
        assertThat(c.agent().moduleWideBudget()).isEqualTo(Duration.ofSeconds(2));
        assertThat(c.agent().allocLimit()).isEqualTo(16L << 20);
        assertThat(c.agent().quarantineAfter()).isEqualTo(3);
        assertThat(c.agent().connectTimeout()).isEqualTo(Duration.ofSeconds(5));

        assertThat(c.listeners()).hasSize(2);
        AgentConfig.Listener web = c.listeners().get(0);
        assertThat(web.name()).isEqualTo("web");
        assertThat(web.protocol()).isEqualTo(Protocol.TCP);
        assertThat(web.role()).isEqualTo(Role.CLIENT);
        assertThat(web.listen()).isEqualTo(new InetSocketAddress("127.0.0.1", 8080));
        assertThat(web.upstream()).isEqualTo(new InetSocketAddress("127.0.0.1", 80));
        assertThat(web.options()).isEqualTo(Map.of(SocketOption.TCP_NODELAY, true, SocketOption.SO_KEEPALIVE, true,
                SocketOption.SO_RCVBUF, 256 * 1024, SocketOption.SO_SNDBUF, 128 * 1024, SocketOption.IP_TOS, 0x10, SocketOption.SO_LINGER, -1));
        assertThat(web.line()).isEqualTo(11);
        AgentConfig.Listener api = c.listeners().get(1);
        assertThat(api.role()).isEqualTo(Role.SERVER);
        assertThat(api.listen().getAddress().getHostAddress()).isEqualTo("0:0:0:0:0:0:0:1");
        assertThat(api.upstream().getPort()).isEqualTo(9000);

        assertThat(c.modules()).hasSize(2);
        AgentConfig.ModuleEntry tag = c.modules().get(0);
        assertThat(tag.jar()).isEqualTo(dir.resolve("extra.jar").toAbsolutePath().normalize());
        assertThat(tag.listeners()).containsExactly("web");
        assertThat(tag.line()).isEqualTo(22);
        assertThat(tag.paramLines()).containsEntry("every", 31);
        ModuleConfig mc = tag.config();
        assertThat(mc.state()).isEqualTo(ModuleState.INACTIVE);
        assertThat(mc.priority()).isEqualTo(50);
        assertThat(mc.attachMode()).isEqualTo(AttachMode.PROGRAMMATIC);
        assertThat(mc.applyNow()).isTrue();
        assertThat(mc.faultPolicy()).isEqualTo(FaultPolicy.FAIL_CLOSED);
        assertThat(mc.params()).containsEntry("every", 1000L).containsEntry("tag", "IL").containsEntry("fast", true);
        assertThat(mc.selector().protocol()).isEqualTo(Protocol.TCP);
        assertThat(mc.selector().listeners()).containsExactly("web");
        assertThat(mc.selector().apps()).containsExactly("curl");
        assertThat(mc.selector().pids()).containsExactly(123);
        assertThat(mc.selector().localCidrs()).hasSize(1);
        assertThat(mc.selector().remoteCidrs()).hasSize(1);
        assertThat(mc.selector().localPorts()).hasSize(2);
        assertThat(mc.selector().remotePorts()).hasSize(1);

        ModuleConfig tcplog = c.moduleConfigs().apply("tcplog");
        assertThat(tcplog.state()).isNull();
        assertThat(c.moduleConfigs().apply("not-configured")).isEqualTo(ModuleConfig.defaults("not-configured"));
    }

    @Test
    void leftOutAgentSettingsTakeTheirDefaults() throws Exception {
        AgentConfig c = AgentConfig.load(write(LISTENER));
        assertThat(c.agent().modulesDir()).isEqualTo(dir.resolve("modules").toAbsolutePath().normalize());
        assertThat(c.agent().modulesDirSet()).isFalse();
        assertThat(c.agent().ioThreads()).isZero();
        assertThat(c.agent().holdLimit()).isEqualTo(4L << 20);
        assertThat(c.agent().hookBudget()).isEqualTo(Duration.ofMillis(200));
        assertThat(c.agent().quarantineAfter()).isEqualTo(5);
        assertThat(c.agent().connectTimeout()).isEqualTo(Duration.ofSeconds(10));
        assertThat(c.agent().splice()).isTrue();
        assertThat(Agent.engineOptions(c.agent()).splice()).isTrue();
        assertThat(Agent.engineOptions(c.agent()).reusePort()).isTrue();
        assertThat(Agent.engineOptions(c.agent()).direct()).isTrue();
        assertThat(c.listeners().get(0).protocol()).isEqualTo(Protocol.TCP);
        assertThat(c.modules()).isEmpty();
    }

    @Test
    void theDirectPathCanBeTurnedOffAndTakesOnlyABoolean() throws Exception {
        switchTurnsOffAndTakesOnlyABoolean("direct", o -> o.direct(), "maybe");
    }

    @Test
    void reusePortCanBeTurnedOffAndTakesOnlyABoolean() throws Exception {
        switchTurnsOffAndTakesOnlyABoolean("reuse-port", o -> o.reusePort(), "2");
    }

    @Test
    void spliceCanBeTurnedOffAndTakesOnlyABoolean() throws Exception {
        switchTurnsOffAndTakesOnlyABoolean("splice", o -> o.splice(), "sometimes");
    }

    /** {@code agent.KEY: false} reaches the engine options; a value that is not a boolean is a problem on its line. */
    private void switchTurnsOffAndTakesOnlyABoolean(String key, java.util.function.Predicate<dev.interlayer.engine.EngineOptions> on,
                                                    String bad) throws Exception {
        AgentConfig c = AgentConfig.load(write("agent:\n  " + key + ": false\n" + LISTENER));
        assertThat(on.test(Agent.engineOptions(c.agent()))).isFalse();
        Problem p = onlyProblem("agent:\n  " + key + ": " + bad + "\n" + LISTENER);
        assertThat(p.line()).isEqualTo(2);
        assertThat(p.path()).isEqualTo("agent." + key);
        assertThat(p.message()).contains("'" + bad + "' is not a boolean; expected true or false");
    }

    @Test
    void anUnknownKeyIsNamedWithTheKnownOnes() throws Exception {
        Problem p = onlyProblem(LISTENER.replace("role: client", "role: client\n    colour: blue"));
        assertThat(p.toString()).isEqualTo(dir.resolve("agent.yaml") + ":6: listeners[0].colour: unknown key 'colour'; known: name, listen, upstream, role, protocol, options, tls, sni-routes, sni-timeout");
    }

    @Test
    void aBadHostPortSaysWhatAnAddressLooksLike() throws Exception {
        Problem p = onlyProblem(LISTENER.replace("listen: 127.0.0.1:8080", "listen: 127.0.0.1-8080"));
        assertThat(p.line()).isEqualTo(3);
        assertThat(p.path()).isEqualTo("listeners[0].listen");
        assertThat(p.message()).contains("'127.0.0.1-8080' is not HOST:PORT", "expected e.g. 127.0.0.1:8080");
    }

    @Test
    void anOutOfRangePortIsReported() throws Exception {
        Problem p = onlyProblem(LISTENER.replace("upstream: 127.0.0.1:80", "upstream: 127.0.0.1:0"));
        assertThat(p.line()).isEqualTo(4);
        assertThat(p.message()).contains("port 0 is out of range; expected 1..65535");
    }

    @Test
    void anUnknownRoleListsTheRoles() throws Exception {
        Problem p = onlyProblem(LISTENER.replace("role: client", "role: proxy"));
        assertThat(p.line()).isEqualTo(5);
        assertThat(p.message()).startsWith("unknown value 'proxy'; expected client").contains("or server");
    }

    @Test
    void aMissingRequiredFieldPointsAtTheEntry() throws Exception {
        Problem p = onlyProblem(LISTENER.replace("    role: client\n", ""));
        assertThat(p.line()).isEqualTo(2);
        assertThat(p.path()).isEqualTo("listeners[0]");
        assertThat(p.message()).startsWith("missing 'role'");
    }

    @Test
    void duplicateListenerNamesAndPortsAreBothReported() throws Exception {
        List<Problem> p = problems(LISTENER + """
                  - name: web
                    listen: 127.0.0.1:8080
                    upstream: 127.0.0.1:81
                    role: server
                """);
        assertThat(p).extracting(Problem::toString).containsExactly(
                dir.resolve("agent.yaml") + ":6: listeners[1].name: duplicate listener name 'web' (also on line 2); give each listener its own name",
                dir.resolve("agent.yaml") + ":7: listeners[1].listen: port 8080 is already used by listener 'web' (line 3); give each listener its own port");
    }

    @Test
    void aWildcardListenerCollidesWithAnyAddressOnTheSamePort() throws Exception {
        Problem p = onlyProblem(LISTENER + """
                  - name: all
                    listen: 0.0.0.0:8080
                    upstream: 127.0.0.1:81
                    role: server
                """);
        assertThat(p.message()).contains("port 8080 is already used by listener 'web'");
    }

    @Test
    void badSizesAndDurationsSayWhichUnitsExist() throws Exception {
        List<Problem> p = problems("""
                agent:
                  hold-limit: 4 lots
                  hook-budget: 200
                  connect-timeout: soon
                """ + LISTENER);
        assertThat(p).extracting(Problem::line).containsExactly(2, 3, 4);
        assertThat(p.get(0).message()).contains("'4 lots' is not a size", "KiB");
        assertThat(p.get(1).message()).contains("'200' is not a duration", "a bare number has no unit");
        assertThat(p.get(2).message()).contains("'soon' is not a duration", "e.g. 200ms or 10s");
    }

    @Test
    void aYamlBombIsRefusedWithTheFix() throws Exception {
        StringBuilder bomb = new StringBuilder("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for (int i = 0; i < 9; i++) {
            bomb.append((char) ('b' + i)).append(": &").append((char) ('b' + i)).append(" [")
                    .append(String.join(", ", java.util.Collections.nCopies(9, "*" + (char) ('a' + i)))).append("]\n");
        }
        Problem p = onlyProblem(bomb + LISTENER);
        assertThat(p.message()).contains("aliases", "more than " + AgentConfig.MAX_ALIASES + " times", "write those values out");
    }

    @Test
    void aHugeFileIsRefusedSayingWhatIsWrong() throws Exception {
        Problem p = onlyProblem("# " + "x".repeat(AgentConfig.MAX_CHARS) + "\n" + LISTENER);
        assertThat(p.message()).contains("longer than 4 Mi characters", "check that this is the config file");
    }

    @Test
    void theAllocationLimitCanBeTurnedOffAndDefaultsTo64MiB() throws Exception {
        assertThat(AgentConfig.load(write("agent: {alloc-limit: 0}\n" + LISTENER)).agent().allocLimit()).isZero();
        assertThat(AgentConfig.load(write(LISTENER)).agent().allocLimit()).isEqualTo(64L << 20);
        assertThat(AgentConfig.load(write(LISTENER)).agent().moduleWideBudget()).isEqualTo(Duration.ofSeconds(5));
        assertThat(onlyProblem("agent: {alloc-limit: lots}\n" + LISTENER).message()).contains("'lots' is not a size", "0 for no limit");
    }

    @Test
    void theControlEndpointsAuditFileAndLimitsAreConfigured() throws Exception {
        AgentConfig c = AgentConfig.load(write("""
                agent:
                  control:
                    socket: control.sock
                    audit-file: logs/audit.jsonl
                    audit-max-size: 16MiB
                    audit-keep: 3
                    audit-group: daemon
                    max-connections-per-uid: 4
                    handshake-timeout: 2s
                    idle-timeout: 1m
                """ + LISTENER));
        dev.interlayer.control.ControlSettings s = c.control().orElseThrow();
        assertThat(s.auditFile()).isEqualTo(dir.resolve("logs/audit.jsonl"));
        assertThat(s.auditFiles()).isEqualTo(new dev.interlayer.control.AuditLog.FileOptions(16L << 20, 3, "daemon"));
        assertThat(s.limits()).isEqualTo(new dev.interlayer.control.ControlSettings.Limits(4, Duration.ofSeconds(2), Duration.ofMinutes(1)));
        // left out: 64 MiB, 8 files, the agent's user only; 32 connections per uid, 10 s, 5 minutes
        dev.interlayer.control.ControlSettings d = AgentConfig.load(write("agent: {control: {socket: c.sock}}\n" + LISTENER)).control().orElseThrow();
        assertThat(d.auditFiles()).isEqualTo(dev.interlayer.control.AuditLog.FileOptions.DEFAULT);
        assertThat(d.limits()).isEqualTo(dev.interlayer.control.ControlSettings.Limits.DEFAULT);
    }

    @Test
    void badControlLimitsAndAnUnknownAuditGroupAreReported() throws Exception {
        List<Problem> p = problems("""
                agent:
                  control:
                    audit-max-size: big
                    audit-keep: 0
                    audit-group: no-such-group-here
                    max-connections-per-uid: 0
                    handshake-timeout: 10
                    idle-timeout: 500ms
                """ + LISTENER);
        assertThat(p).extracting(Problem::path).containsExactly("agent.control.audit-max-size", "agent.control.audit-keep",
                "agent.control.audit-group", "agent.control.max-connections-per-uid", "agent.control.handshake-timeout", "agent.control.idle-timeout");
        assertThat(p.get(2).message()).contains("there is no group no-such-group-here on this host");
        assertThat(p.get(5).message()).contains("must be at least 1s");
    }

    @Test
    void aHoldLimitBelowOneKibibyteIsRefused() throws Exception {
        Problem p = onlyProblem("agent: {hold-limit: 100}\n" + LISTENER);
        assertThat(p.message()).contains("out of range", "at least 1KiB");
    }

    @Test
    void aMissingModulesFolderThatTheConfigNamesIsReported() throws Exception {
        Problem p = onlyProblem("agent:\n  modules-dir: plugins\n" + LISTENER);
        assertThat(p.line()).isEqualTo(2);
        assertThat(p.message()).contains("folder " + dir.resolve("plugins") + " does not exist");
    }

    @Test
    void badCidrsAndPortListsInASelectorAreReported() throws Exception {
        List<Problem> p = problems(LISTENER + """
                modules:
                  - name: tag
                    selector:
                      local: [10.0.0.0/40]
                      remote: [not-an-ip]
                      remote-ports: "80,http"
                      local-ports: 70000
                      listener: [db]
                      protocol: sctp
                """);
        assertThat(p).extracting(Problem::line).containsExactly(9, 10, 11, 12, 13, 14);
        assertThat(p.get(0).message()).contains("prefix length must be 0..32");
        assertThat(p.get(1).message()).contains("not an IP address literal");
        assertThat(p.get(2).message()).contains("'http' is not a port or port range");
        assertThat(p.get(3).message()).contains("70000");
        assertThat(p.get(4).message()).isEqualTo("no listener named 'db'; known: web");
        assertThat(p.get(5).message()).contains("unknown protocol 'sctp'; expected tcp, udp or any");
    }

    /** {@link #LISTENER} terminating TLS. */
    private String tlsListener() throws IOException {
        Path cert = dir.resolve("web.crt");
        Path key = dir.resolve("web.key");
        // a real certificate and key, as the listener's tls: block is checked when the config loads
        Process p = new ProcessBuilder("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
                "/CN=web", "-days", "1", "-keyout", key.toString(), "-out", cert.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        try {
            assertThat(p.waitFor()).as(out).isZero();
        } catch (InterruptedException e) {
            throw new IOException(e);
        }
        return LISTENER + "    tls: {cert: " + cert + ", key: " + key + "}\n";
    }

    @Test
    void keyLogAndTicketKeysAreParsedAndEachMistakeSaysHowToFixIt() throws Exception {
        Path keyFile = dir.resolve("ticket.key");
        Files.write(keyFile, dev.interlayer.api.TlsTicketKey.random().encoded());
        String tls = tlsListener();
        String block = tls.substring(tls.indexOf("tls: {") + "tls: {".length(), tls.lastIndexOf('}'));
        java.util.function.Function<String, String> with = extra -> tls.replace(block, block + ", " + extra);
        AgentConfig ok = AgentConfig.load(write(with.apply("key-log: keys.log, ticket-keys: [" + keyFile + "]")));
        dev.interlayer.engine.TlsSettings t = ok.listeners().getFirst().tls();
        assertThat(t.keyLog()).isEqualTo(dir.resolve("keys.log"));
        assertThat(t.ticketKeys()).containsExactly(keyFile);
        assertThat(t.files()).contains(keyFile); // read again on reload, like the certificates

        assertThat(onlyProblem(with.apply("key-log: " + dir.resolve("no-such-folder/keys.log"))).message())
                .contains("cannot write the key log", "name a file in a folder the agent's user can write");
        assertThat(onlyProblem(with.apply("provider: jdk, key-log: keys.log")).message()).contains("key-log needs provider: openssl");
        assertThat(onlyProblem(with.apply("provider: jdk, ticket-keys: " + keyFile)).message()).contains("ticket-keys needs provider: openssl");
        assertThat(onlyProblem(with.apply("ticket-keys: " + dir.resolve("missing.key"))).message()).contains("does not exist");
        Files.write(keyFile, new byte[80]);
        assertThat(onlyProblem(with.apply("ticket-keys: " + keyFile)).message())
                .contains("ticket-keys file " + keyFile + " is 80 bytes", "openssl rand 48");
    }

    @Test
    void tlsSelectorFieldsAreParsedAndBadOnesReportedWithWhatIsExpected() throws Exception {
        java.nio.file.Path f = write(tlsListener() + """
                modules:
                  - name: tag
                    selector:
                      tls-sni: [a.test, '*.B.test']
                      tls-alpn: [h2]
                      tls-subject: ['CN=alice, O=Example', O=Other]
                      tls-identity: alice
                """);
        ModuleConfig mc = AgentConfig.load(f).modules().getFirst().config();
        assertThat(mc.selector().tlsSni()).containsExactly("a.test", "*.b.test");
        assertThat(mc.selector().tlsAlpn()).containsExactly("h2");
        assertThat(mc.selector().tlsSubjects()).containsExactly("CN=alice,O=Example", "O=Other");
        assertThat(mc.selector().tlsIdentities()).containsExactly("alice");

        List<Problem> p = problems(tlsListener() + """
                modules:
                  - name: tag
                    selector:
                      tls-sni: [a.test, 'bad name']
                      tls-subject: [Example]
                      tls-identity: {name: alice}
                      tls-alpn: [h2, '']
                """);
        assertThat(p).extracting(Problem::line).containsExactly(10, 11, 12, 13);
        assertThat(p.get(0).message()).contains("'bad name' is not a server name; expected a DNS name such as a.example.com or a wildcard");
        assertThat(p.get(0).path()).isEqualTo("modules[0].selector.tls-sni");
        assertThat(p.get(1).message()).contains("'Example' is not a certificate subject pattern", "expected attributes such as O=Example");
        assertThat(p.get(2).message()).contains("expected a list of identities");
        assertThat(p.get(3).message()).contains("expected an application protocol");

        Problem none = onlyProblem(LISTENER + "modules:\n  - name: tag\n    selector: {listener: [web], tls-sni: [a.test]}\n");
        assertThat(none.line()).isEqualTo(8);
        assertThat(none.message()).isEqualTo("tls-sni, tls-alpn, tls-subject and tls-identity match only connections of a listener that"
                + " terminates TLS, and none of web has a tls: block; add one, or remove the tls- fields");
    }

    @Test
    void anUnknownModuleStateListsTheStartingStates() throws Exception {
        Problem p = onlyProblem(LISTENER + "modules:\n  - name: tag\n    state: paused\n");
        assertThat(p.toString()).endsWith(":8: modules[0].state: unknown value 'paused'; expected active or inactive"
                + " (a module starts in one of these; other states are reached through the control plane)");
    }

    @Test
    void moduleEntriesAreCheckedForNameModePolicyAndJar() throws Exception {
        List<Problem> p = problems(LISTENER + """
                modules:
                  - name: Tag_Module
                  - name: tcplog
                    mode: sometimes
                    fault-policy: explode
                    priority: high
                    apply-now: perhaps
                    jar: missing.jar
                  - name: tcplog
                """);
        assertThat(p).extracting(Problem::path).containsExactly("modules[0].name", "modules[1].mode", "modules[1].fault-policy",
                "modules[1].priority", "modules[1].apply-now", "modules[1].jar", "modules[2].name");
        assertThat(p.get(5).message()).contains("missing.jar does not exist");
        assertThat(p.get(6).message()).contains("configured twice (also on line 8)");
    }

    @Test
    void allowListsTheCapabilitiesAModuleMayUse() throws Exception {
        AgentConfig c = AgentConfig.load(write(LISTENER + """
                modules:
                  - name: resolver
                    allow: [threads, native]
                  - name: spawner
                    allow: processes
                  - name: plain
                """));

        assertThat(c.moduleConfigs().apply("resolver").allow()).containsExactlyInAnyOrder(Capability.THREADS, Capability.NATIVE);
        assertThat(c.moduleConfigs().apply("spawner").allow()).containsExactly(Capability.PROCESSES);
        assertThat(c.moduleConfigs().apply("plain").allow()).isEmpty();
        assertThat(c.moduleConfigs().apply("not-configured").allow()).isEmpty();
    }

    @Test
    void anUnknownCapabilityAndExitAreRefusedInAllow() throws Exception {
        List<Problem> p = problems(LISTENER + "modules:\n  - name: tag\n    allow: [threads, exit, sockets]\n");
        assertThat(p).extracting(Problem::path).containsExactly("modules[0].allow", "modules[0].allow");
        assertThat(p.get(0).message()).isEqualTo("exit cannot be allowed: no module may stop the agent; allowed are threads, processes, native, reflection");
        assertThat(p.get(1).message()).isEqualTo("unknown capability 'sockets'; expected one of threads, processes, native, reflection");
    }

    @Test
    void listenersOfAGlobalModuleOrUnknownListenersAreRefused() throws Exception {
        List<Problem> p = problems(LISTENER + "modules:\n  - name: tag\n    mode: global\n    listeners: [web, api]\n");
        assertThat(p).extracting(Problem::message).containsExactly(
                "no listener named 'api'; known: web",
                "listeners attaches a programmatic module, but mode is global; set mode: programmatic, or use selector.listener to limit a global module");
    }

    @Test
    void aParamThatIsNotASingleValueIsReportedOnItsLine() throws Exception {
        Problem p = onlyProblem(LISTENER + "modules:\n  - name: tag\n    params:\n      every: [1, 2]\n");
        assertThat(p.line()).isEqualTo(9);
        assertThat(p.path()).isEqualTo("modules[0].params.every");
    }

    @Test
    void aLoadFailureNamingAParameterIsPlacedOnTheParametersLine() throws Exception {
        AgentConfig c = AgentConfig.load(write(LISTENER + "modules:\n  - name: tag\n    params:\n      every: lots\n"));
        assertThat(c.locate("tag", "module tag 1.0.0: parameter 'every': 'lots' is not an integer (e.g. 1000)"))
                .hasValue(c.source() + ":9: modules[0].params.every: module tag 1.0.0: parameter 'every': 'lots' is not an integer (e.g. 1000)");
        assertThat(c.locate("tag", "init failed")).hasValue(c.source() + ":7: modules[0] (tag): init failed");
        assertThat(c.locate("other", "x")).isEmpty();
    }

    @Test
    void severalProblemsAreReportedTogetherInLineOrder() throws Exception {
        List<Problem> p = problems("""
                agent:
                  io-threads: many
                  quarantine-after: 0
                listeners:
                  - name: web
                    listen: localhost
                    upstream: 127.0.0.1:80
                    role: client
                    options: {tcp-nodelay: maybe, tos: 300}
                modules:
                  - name: tag
                    state: on-fire
                """);
        assertThat(p).extracting(Problem::line).containsExactly(2, 3, 6, 9, 9, 12);
        assertThat(p).extracting(Problem::path).containsExactly("agent.io-threads", "agent.quarantine-after", "listeners[0].listen",
                "listeners[0].options.tcp-nodelay", "listeners[0].options.tos", "modules[0].state");
    }

    @Test
    void brokenYamlIsReportedWithItsLine() throws Exception {
        Problem p = onlyProblem("listeners:\n  - name: web\n   listen: [oops\n");
        assertThat(p.line()).isGreaterThanOrEqualTo(2);
        assertThat(p.message()).startsWith("not valid YAML");
    }

    @Test
    void anEmptyFileAndAMissingFileSayWhatIsExpected() throws Exception {
        assertThat(onlyProblem("").message()).contains("the file is empty");
        assertThatThrownBy(() -> AgentConfig.load(dir.resolve("nope.yaml")))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("nope.yaml: the config file does not exist; pass the path of a YAML config with --config");
    }

    @Test
    void aTopLevelThatIsNotAMappingIsRefused() throws Exception {
        assertThat(onlyProblem("- web\n- api\n").message()).startsWith("expected a mapping with keys agent, listeners, modules");
    }

    @Test
    void aDuplicateKeyIsReported() throws Exception {
        Problem p = onlyProblem(LISTENER.replace("role: client", "role: client\n    role: server"));
        assertThat(p.message()).isEqualTo("duplicate key 'role' (first on line 5); keep one");
    }

    @Test
    void aUdpListenerParsesWithTheAgentsFlowSettings() throws Exception {
        AgentConfig c = AgentConfig.load(write("""
                agent:
                  udp-idle-timeout: 15s
                  udp-max-flows: 500
                """ + LISTENER.replace("role: client", "role: client\n    protocol: udp\n    options: {rcvbuf: 1MiB, tos: 0x10}")));
        AgentConfig.Listener l = c.listeners().get(0);
        assertThat(l.protocol()).isEqualTo(Protocol.UDP);
        assertThat(c.agent().udp().idleTimeout()).isEqualTo(Duration.ofSeconds(15));
        assertThat(c.agent().udp().maxFlows()).isEqualTo(500);
        var spec = Agent.spec(c, l);
        assertThat(spec.protocol()).isEqualTo(Protocol.UDP);
        assertThat(spec.udp().maxFlows()).isEqualTo(500);
    }

    @Test
    void udpFlowSettingsDefaultToSixtySecondsAndTenThousandFlows() throws Exception {
        AgentConfig c = AgentConfig.load(write(LISTENER));
        assertThat(c.agent().udp().idleTimeout()).isEqualTo(Duration.ofSeconds(60));
        assertThat(c.agent().udp().maxFlows()).isEqualTo(10_000);
    }

    @Test
    void tcpOnlyOptionsOnAUdpListenerAreReported() throws Exception {
        Problem p = onlyProblem(LISTENER.replace("role: client", "role: client\n    protocol: udp\n    options: {tcp-nodelay: true}"));
        assertThat(p.message()).isEqualTo("option tcp-nodelay applies to tcp only; a udp listener takes rcvbuf, sndbuf and tos");
    }

    @Test
    void anUnknownListenerProtocolNamesTheKnownOnes() throws Exception {
        Problem p = onlyProblem(LISTENER.replace("role: client", "role: client\n    protocol: sctp"));
        assertThat(p.message()).isEqualTo("unknown protocol 'sctp'; expected tcp or udp");
    }

    @Test
    void aBadUdpMaxFlowsIsReported() throws Exception {
        Problem p = onlyProblem("agent:\n  udp-max-flows: 0\n" + LISTENER);
        assertThat(p.message()).contains("1..1000000");
    }

    @Test
    void theOrchestratorAddressIsOneHostPortOrAListOfThem() throws Exception {
        Files.writeString(dir.resolve("ca.crt"), "a CA certificate");
        AgentConfig one = AgentConfig.load(write("agent:\n  orchestrator: {address: 127.0.0.1:7543, ca: ca.crt}\n" + LISTENER));
        assertThat(one.orchestrator().orElseThrow().addresses()).extracting(a -> a.getHostString() + ":" + a.getPort()).containsExactly("127.0.0.1:7543");
        AgentConfig two = AgentConfig.load(write("agent:\n  orchestrator: {address: [127.0.0.1:7543, localhost:7544], ca: ca.crt}\n" + LISTENER));
        assertThat(two.orchestrator().orElseThrow().addresses()).extracting(a -> a.getHostString() + ":" + a.getPort())
                .containsExactly("127.0.0.1:7543", "localhost:7544");

        Problem bad = onlyProblem("agent:\n  orchestrator: {address: [127.0.0.1:7543, localhost], ca: ca.crt}\n" + LISTENER);
        assertThat(bad.path()).isEqualTo("agent.orchestrator.address[1]");
        assertThat(bad.message()).contains("'localhost' is not HOST:PORT");
        Problem empty = onlyProblem("agent:\n  orchestrator: {address: [], ca: ca.crt}\n" + LISTENER);
        assertThat(empty.message()).contains("the list is empty; name at least one HOST:PORT of an orchestrator");
    }
}
