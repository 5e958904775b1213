package dev.interlayer.control;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.control.testing.Certs;
import dev.interlayer.control.testing.ControlFixture;
import dev.interlayer.control.testing.TempDirs;
import dev.interlayer.control.v1.HealthRequest;
import dev.interlayer.control.v1.ListModulesRequest;
import dev.interlayer.control.v1.ModuleControlRequest;
import dev.interlayer.control.v1.PolicyInfo;
import dev.interlayer.control.v1.ReloadPolicyRequest;
import dev.interlayer.control.v1.SetStateRequest;
import dev.interlayer.control.v1.StateChange;
import dev.interlayer.control.v1.UnloadModuleRequest;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class PolicyTest {

    private final Path dir;

    PolicyTest() throws Exception {
        dir = Files.createTempDirectory("interlayer-policy-");
    }

    @AfterEach
    void cleanUp() {
        TempDirs.delete(dir);
    }

    static Caller uds(long uid) {
        return new Caller("uds", uid, uid, 4242, "", "java", "", List.of());
    }

    @Test
    void theDefaultPolicyLetsRootAndTheAgentUserDoEverythingAndOthersOnlyRead() {
        Policy p = Policy.builtinDefault(990);
        for (Idl.Method m : Idl.control().methods()) {
            for (Policy.Kind k : Policy.Kind.values()) {
                assertThat(p.decide(uds(0), m, k, null).granted()).as("root " + m.id() + " " + k).isTrue();
                assertThat(p.decide(uds(990), m, k, null).granted()).as("agent user " + m.id() + " " + k).isTrue();
            }
            boolean read = List.of("List", "Stats", "Check", "Subscribe").contains(m.name()) && !m.endpoint().equals("Audit")
                    || m.endpoint().startsWith("grpc."); // the standard health check and server reflection
            assertThat(p.decide(uds(1000), m, Policy.Kind.REQUEST, com.google.protobuf.DynamicMessage.getDefaultInstance(m.descriptor().getInputType()))
                    .granted()).as("user 1000 " + m.id()).isEqualTo(read);
        }
        Idl.Method control = Idl.control().method("Modules.Control");
        assertThat(p.decide(uds(1000), control, Policy.Kind.REQUEST, ModuleControlRequest.newBuilder().setName("tcplog").setCommand("dump").build()))
                .satisfies(d -> assertThat(d.granted()).isTrue()).satisfies(d -> assertThat(d.rule()).isEqualTo("module-readers"));
        assertThat(p.decide(uds(1000), control, Policy.Kind.REQUEST, ModuleControlRequest.newBuilder().setName("tcplog").setCommand("off").build()))
                .satisfies(d -> assertThat(d.granted()).isFalse()).satisfies(d -> assertThat(d.rule()).isEqualTo("default"));
        // a TLS caller proves no uid: it is never mistaken for root
        assertThat(p.decide(Caller.tls("CN=root", List.of()), Idl.control().method("Modules.Unload"), Policy.Kind.REQUEST, null).granted()).isFalse();
    }

    @Test
    void theFirstMatchingRuleDecidesAndNothingMatchingIsDenied() throws Exception {
        Policy p = Policy.parse("p.yaml", """
                rules:
                  - name: no-revoke
                    endpoint: Modules
                    method: SetState
                    fields: {state: [REVOKE, UNREGISTER]}
                    decision: denied
                  - name: ops
                    caller: {uid: 1000-1999, command: "inter*"}
                    endpoint: "Mod*"
                    decision: granted
                """, 0);
        Idl.Method set = Idl.control().method("Modules.SetState");
        Caller ops = new Caller("uds", 1500, 1500, 1, "", "interlayer", "", List.of());
        assertThat(p.decide(ops, set, Policy.Kind.REQUEST, SetStateRequest.newBuilder().setName("x").setState(StateChange.REVOKE).build()).rule())
                .isEqualTo("no-revoke");
        Policy.Decision ok = p.decide(ops, set, Policy.Kind.REQUEST, SetStateRequest.newBuilder().setName("x").setState(StateChange.DEPRECATE).build());
        assertThat(ok.granted()).isTrue();
        assertThat(ok.reason()).contains("rule 'ops' (p.yaml:7) grants Modules.SetState requests to uds:uid=1500");
        Policy.Decision other = p.decide(new Caller("uds", 1500, 1500, 1, "", "python3", "", List.of()), set, Policy.Kind.REQUEST,
                SetStateRequest.newBuilder().setName("x").setState(StateChange.DEPRECATE).build());
        assertThat(other.granted()).isFalse();
        assertThat(other.rule()).isEqualTo("default");
        assertThat(p.decide(ops, set, Policy.Kind.RESPONSE, null).granted()).as("responses need a rule too").isFalse();
    }

    @Test
    void everyMistakeInAPolicyIsReportedWithFileAndLine() {
        record Bad(String yaml, int line, String text) {}
        List<Bad> bad = List.of(
                new Bad("rules:\n  - name: a\n    decison: granted\n", 3, "unknown key 'decison' in a rule"),
                new Bad("rules:\n  - name: a\n    decision: allow\n", 3, "decision must be granted or denied, got 'allow'"),
                new Bad("rules:\n  - name: a\n    endpoint: Module\n    decision: granted\n", 3, "match no method of the IDL"),
                new Bad("rules:\n  - name: a\n    endpoint: Modules\n    method: SetState\n    fields: {stat: REVOKE}\n    decision: denied\n", 5,
                        "fields.stat: no field 'stat' (fields: name, state) in the request of Modules.SetState"),
                new Bad("rules:\n  - name: a\n    fields: {name: x}\n    decision: denied\n", 3, "no field 'name'"),
                new Bad("rules:\n  - name: a\n    decision: granted\n  - name: a\n    decision: denied\n", 4, "rule name 'a' is used twice"),
                new Bad("rules:\n  - name: a\n    caller: {uid: 2000-1000}\n    decision: granted\n", 3, "range 2000-1000"),
                new Bad("rules:\n  - name: a\n    caller: {uid: root}\n    decision: granted\n", 3, "'root' is not a number"),
                new Bad("rules:\n  - name: a\n    caller: {transport: ssh}\n    decision: granted\n", 3, "ssh is not a transport"),
                new Bad("rules:\n  - name: a\n    on: reply\n    decision: granted\n", 3, "on must be request, response or both"),
                new Bad("rules:\n  - name: a\n    decision: [granted\n", 4, "not valid YAML"),
                new Bad("rule:\n  - name: a\n", 1, "unknown key 'rule'"));
        for (Bad b : bad) {
            assertThatThrownBy(() -> Policy.parse("policy.yaml", b.yaml(), 0)).as(b.yaml())
                    .isInstanceOf(YamlException.class)
                    .hasMessageStartingWith("policy.yaml:" + b.line() + ": ")
                    .hasMessageContaining(b.text());
        }
    }

    @Test
    void aChangedPolicyFileIsPutInForceAndABadOneIsRefusedKeepingTheOld() throws Exception {
        Path file = dir.resolve("policy.yaml");
        Files.writeString(file, "rules:\n  - {name: everyone, on: both, decision: granted}\n");
        try (ControlFixture f = new ControlFixture(s -> s.withPolicy(file)); ControlClient c = f.client()) {
            c.modules().list(ListModulesRequest.getDefaultInstance());
            // the watcher puts a new file in force within a second or so
            Files.writeString(file, "rules:\n  - {name: nobody-lists, endpoint: Modules, method: List, decision: denied}\n"
                    + "  - {name: everyone, on: both, decision: granted}\n");
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (f.server.policy().current().policy().size() != 2 && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            assertThatThrownBy(() -> c.modules().list(ListModulesRequest.getDefaultInstance()))
                    .isInstanceOfSatisfying(StatusRuntimeException.class, e -> assertThat(e.getStatus().getDescription()).contains("nobody-lists"));
            // a broken file is refused (with its line) and the policy in force stays
            Files.writeString(file, "rules:\n  - {name: x, decision: maybe}\n");
            assertThatThrownBy(() -> c.policy().reload(ReloadPolicyRequest.getDefaultInstance()))
                    .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                        assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.FAILED_PRECONDITION);
                        assertThat(e.getStatus().getDescription()).contains(file + ":2: ", "decision must be granted or denied", "previous one stays");
                    });
            assertThat(f.server.policy().current().policy().ruleNames()).containsExactly("nobody-lists", "everyone");
            assertThat(f.server.policy().lastError()).startsWith(file + ":2: ");
            // status shows the refused edit until the file is fixed
            PolicyInfo seen = c.health().check(HealthRequest.getDefaultInstance()).getPolicy();
            assertThat(seen.getRefused()).startsWith(file + ":2: ").contains("decision must be granted or denied");
            assertThat(seen.getRefusedAtMs()).isGreaterThanOrEqualTo(seen.getLoadedAtMs());
            Files.writeString(file, "rules:\n  - {name: everyone, on: both, decision: granted}\n");
            c.policy().reload(ReloadPolicyRequest.getDefaultInstance());
            seen = c.health().check(HealthRequest.getDefaultInstance()).getPolicy();
            assertThat(seen.getRefused()).isEmpty();
            assertThat(seen.getRules()).isEqualTo(1);
        }
    }

    @Test
    void anAgentRefusesToStartWithABadPolicyNamingFileAndLine() throws Exception {
        Path file = dir.resolve("bad.yaml");
        Files.writeString(file, "rules:\n  - name: a\n    endpoint: Nope\n    decision: granted\n");
        assertThatThrownBy(() -> new ControlFixture(s -> s.withPolicy(file)))
                .isInstanceOf(ControlException.class).hasMessageContaining(file + ":3: rule 'a': endpoint [Nope]");
    }

    @Test
    void aDeniedCallerIsToldTheRuleAndWhyButNotWhereThePolicyFileIsWhichTheAuditKeeps() throws Exception {
        Path file = dir.resolve("secret-place").resolve("policy.yaml");
        Files.createDirectories(file.getParent());
        Files.writeString(file, """
                rules:
                  - {name: no-unload, endpoint: Modules, method: Unload, decision: denied}
                  - {name: responses, on: response, decision: granted}
                """);
        try (ControlFixture f = new ControlFixture(s -> s.withPolicy(file)); ControlClient c = f.client()) {
            String me = "uds:uid=" + Policy.processUid();
            StatusRuntimeException byRule = org.assertj.core.api.Assertions.catchThrowableOfType(StatusRuntimeException.class,
                    () -> c.modules().unload(UnloadModuleRequest.newBuilder().setName("tcplog").build()));
            assertThat(byRule.getStatus().getCode()).isEqualTo(Status.Code.PERMISSION_DENIED);
            assertThat(byRule.getStatus().getDescription()).startsWith("denied by rule 'no-unload': rule 'no-unload' denies Modules.Unload requests to "
                    + me).doesNotContain("secret-place").doesNotContain("policy.yaml");
            StatusRuntimeException byDefault = org.assertj.core.api.Assertions.catchThrowableOfType(StatusRuntimeException.class,
                    () -> c.modules().setState(SetStateRequest.newBuilder().setName("tcplog").setState(StateChange.DEPRECATE).build()));
            assertThat(byDefault.getStatus().getDescription()).startsWith("denied by rule 'default': no rule of the agent's policy grants the request"
                    + " of Modules.SetState to " + me).doesNotContain("secret-place").doesNotContain("policy.yaml");
            // the audit log keeps where the decision came from
            assertThat(f.server.audit().query(10, AuditLog.DENIED, "Modules", 0)).extracting(AuditLog.Entry::reason).satisfiesExactly(
                    r -> assertThat(r).startsWith("rule 'no-unload' (" + file + ":2) denies Modules.Unload requests to " + me),
                    r -> assertThat(r).startsWith("no rule of " + file + " grants the request of Modules.SetState to " + me));
        }
    }

    @Test
    void certificateSubjectAttributesMatchInWhateverOrderTheCertificateListsThem() throws Exception {
        Policy p = Policy.parse("p.yaml", """
                rules:
                  - name: orchestrator
                    caller: {transport: tls, cn: orchestrator, o: [n4, n5]}
                    decision: granted
                """, 0);
        Idl.Method unload = Idl.control().method("Modules.Unload");
        // openssl req -subj "/CN=orchestrator/O=n4" gives a subject the JDK shows as O=n4,CN=orchestrator
        assertThat(p.decide(Caller.tls("O=n4,CN=orchestrator", List.of()), unload, Policy.Kind.REQUEST, null).granted()).isTrue();
        assertThat(p.decide(Caller.tls("CN=orchestrator,O=n5", List.of()), unload, Policy.Kind.REQUEST, null).granted()).isTrue();
        assertThat(p.decide(Caller.tls("CN=orchestrator+O=n4", List.of()), unload, Policy.Kind.REQUEST, null).granted()).isTrue();
        assertThat(p.decide(Caller.tls("CN=orchestrator,O=other", List.of()), unload, Policy.Kind.REQUEST, null).granted()).isFalse();
        assertThat(p.decide(Caller.tls("O=n4,CN=orchestrator-2", List.of()), unload, Policy.Kind.REQUEST, null).granted()).isFalse();
        assertThat(p.decide(Caller.tls("O=n4", List.of()), unload, Policy.Kind.REQUEST, null).granted()).as("no CN").isFalse();
        assertThat(p.decide(uds(0), unload, Policy.Kind.REQUEST, null).granted()).as("no certificate").isFalse();
    }

    @Test
    void aSubjectPatternOverSeveralAttributesIsRefusedSayingHowToRewriteIt() throws Exception {
        assertThatThrownBy(() -> Policy.parse("p.yaml", "rules:\n  - name: o\n    caller: {transport: tls, subject: \"CN=orchestrator,*\"}\n"
                + "    decision: granted\n", 0))
                .isInstanceOf(YamlException.class)
                .hasMessageStartingWith("p.yaml:3: rule 'o'.caller.subject: 'CN=orchestrator,*' names several attributes")
                .hasMessageContaining("openssl req -subj \"/CN=a/O=b\" makes the subject O=b,CN=a")
                .hasMessageContaining("replace subject with cn: orchestrator in the rule's caller");
        assertThatThrownBy(() -> Policy.parse("p.yaml", "rules:\n  - name: o\n    caller: {subject: \"O=n4,CN=orch*\"}\n    decision: granted\n", 0))
                .hasMessageContaining("replace subject with o: n4, cn: \"orch*\"");
        // one attribute does not depend on order, and an escaped comma is part of a value: both still load
        assertThat(Policy.parse("p.yaml", "rules:\n  - name: o\n    caller: {subject: \"CN=admin\"}\n    decision: granted\n", 0).size()).isEqualTo(1);
        assertThat(Policy.parse("p.yaml", "rules:\n  - name: o\n    caller: {subject: 'CN=Smith\\, J'}\n    decision: granted\n", 0).size()).isEqualTo(1);
    }

    @Test
    void aPolicyTestCaseCanGiveTheCallersCertificateFile() throws Exception {
        Certs ca = Certs.newCa(dir.resolve("pki"), "test-ca");
        Instant now = Instant.now();
        ca.client(dir.resolve("pki"), "orchestrator", "CN=orchestrator,O=n4", now, now.plusSeconds(3600));
        ca.client(dir.resolve("pki"), "laptop", "CN=laptop,O=n4", now, now.plusSeconds(3600));
        Path policy = dir.resolve("p.yaml");
        Path cases = dir.resolve("c.yaml");
        Files.writeString(policy, "rules:\n  - {name: orchestrator, caller: {cn: orchestrator, o: n4}, decision: granted}\n");
        Files.writeString(cases, """
                cases:
                  - name: the orchestrator
                    caller: {cert: pki/orchestrator.crt}
                    call: Modules.Unload
                    message: {name: tcplog}
                    expect: granted
                    rule: orchestrator
                  - name: a laptop
                    caller: {cert: pki/laptop.crt}
                    call: Modules.Unload
                    message: {name: tcplog}
                    expect: denied
                """);
        List<PolicyTester.Outcome> o = PolicyTester.run(policy, cases);
        assertThat(o).extracting(PolicyTester.Outcome::passed).containsExactly(true, true);
        assertThat(o.get(1).reason()).contains("tls:O=n4,CN=laptop");
        Files.writeString(cases, "cases:\n  - name: x\n    caller: {cert: pki/missing.crt}\n    call: Modules.List\n    expect: denied\n");
        assertThatThrownBy(() -> PolicyTester.run(policy, cases)).isInstanceOf(YamlException.class)
                .hasMessageStartingWith(cases + ":3: case 'x'.caller.cert: cannot read " + dir.resolve("pki/missing.crt"));
        Files.writeString(cases, "cases:\n  - name: x\n    caller: {cert: p.yaml}\n    call: Modules.List\n    expect: denied\n");
        assertThatThrownBy(() -> PolicyTester.run(policy, cases)).isInstanceOf(YamlException.class)
                .hasMessageContaining("is not a PEM certificate");
    }

    @Test
    void theExamplePolicyPassesItsOwnTestCases() throws Exception {
        Path examples = Path.of("..", "docs", "examples");
        List<PolicyTester.Outcome> outcomes = PolicyTester.run(examples.resolve("control-policy.yaml"), examples.resolve("control-policy-cases.yaml"));
        assertThat(outcomes).hasSizeGreaterThanOrEqualTo(10);
        assertThat(outcomes).allSatisfy(o -> assertThat(o.passed()).as(o.name() + ": expected " + o.expected() + ", got " + o.actual()
                + " - " + o.reason()).isTrue());
    }

    @Test
    void aCaseThatExpectsTheWrongDecisionFailsShowingBoth() throws Exception {
        Path policy = dir.resolve("p.yaml");
        Path cases = dir.resolve("c.yaml");
        Files.writeString(policy, "rules:\n  - {name: readers, endpoint: Modules, method: List, decision: granted}\n");
        Files.writeString(cases, """
                cases:
                  - name: list
                    caller: {uid: 5}
                    call: Modules.List
                    expect: granted
                  - name: unload
                    caller: {uid: 5}
                    call: Modules.Unload
                    message: {name: tcplog}
                    expect: granted
                """);
        List<PolicyTester.Outcome> o = PolicyTester.run(policy, cases);
        assertThat(o).extracting(PolicyTester.Outcome::passed).containsExactly(true, false);
        assertThat(o.get(1).actual()).isEqualTo("denied by rule default");
        assertThat(o.get(1).line()).isEqualTo(6);
        Files.writeString(cases, "cases:\n  - name: x\n    caller: {uid: 5}\n    call: Modules.Unload\n    message: {nmae: tcplog}\n    expect: denied\n");
        assertThatThrownBy(() -> PolicyTester.run(policy, cases)).isInstanceOf(YamlException.class)
                .hasMessageStartingWith(cases + ":5: case 'x': the message does not fit UnloadModuleRequest");
    }
}
