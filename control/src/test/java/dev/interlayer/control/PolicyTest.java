package dev.interlayer.control;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.control.testing.ControlFixture;
import dev.interlayer.control.testing.TempDirs;
import dev.interlayer.control.v1.ListModulesRequest;
import dev.interlayer.control.v1.ModuleControlRequest;
import dev.interlayer.control.v1.ReloadPolicyRequest;
import dev.interlayer.control.v1.SetStateRequest;
import dev.interlayer.control.v1.StateChange;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Files;
import java.nio.file.Path;
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
        for (Idl.Method m : Idl.methods()) {
            for (Policy.Kind k : Policy.Kind.values()) {
                assertThat(p.decide(uds(0), m, k, null).granted()).as("root " + m.id() + " " + k).isTrue();
                assertThat(p.decide(uds(990), m, k, null).granted()).as("agent user " + m.id() + " " + k).isTrue();
            }
            boolean read = List.of("List", "Stats", "Check", "Subscribe").contains(m.name()) && !m.endpoint().equals("Audit")
                    || m.endpoint().startsWith("grpc."); // the standard health check and server reflection
            assertThat(p.decide(uds(1000), m, Policy.Kind.REQUEST, com.google.protobuf.DynamicMessage.getDefaultInstance(m.descriptor().getInputType()))
                    .granted()).as("user 1000 " + m.id()).isEqualTo(read);
        }
        Idl.Method control = Idl.method("Modules.Control");
        assertThat(p.decide(uds(1000), control, Policy.Kind.REQUEST, ModuleControlRequest.newBuilder().setName("tcplog").setCommand("dump").build()))
                .satisfies(d -> assertThat(d.granted()).isTrue()).satisfies(d -> assertThat(d.rule()).isEqualTo("module-readers"));
        assertThat(p.decide(uds(1000), control, Policy.Kind.REQUEST, ModuleControlRequest.newBuilder().setName("tcplog").setCommand("off").build()))
                .satisfies(d -> assertThat(d.granted()).isFalse()).satisfies(d -> assertThat(d.rule()).isEqualTo("default"));
        // a TLS caller proves no uid: it is never mistaken for root
        assertThat(p.decide(Caller.tls("CN=root", List.of()), Idl.method("Modules.Unload"), Policy.Kind.REQUEST, null).granted()).isFalse();
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
        Idl.Method set = Idl.method("Modules.SetState");
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
