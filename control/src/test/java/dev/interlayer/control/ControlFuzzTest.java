package dev.interlayer.control;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.google.protobuf.DynamicMessage;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import dev.interlayer.control.testing.ControlFixture;
import dev.interlayer.control.testing.CountingControlModule;
import dev.interlayer.control.v1.HealthRequest;
import io.grpc.Status;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;

/**
 * Coverage-guided fuzzing (Jazzer) of the security module's validation and of the handlers behind it:
 * random and mutated bytes are sent as the request of a random method, both to the structure check
 * directly and to a live agent whose policy grants everything (so well-formed messages reach their
 * handlers). Nothing may crash or hang; every message the structure check refuses is refused by the
 * live agent with INVALID_ARGUMENT; no handler fails with INTERNAL or UNKNOWN.
 *
 * <p>In the normal test run Jazzer replays the inputs in {@code src/test/resources/.../ControlFuzzTestInputs}
 * (regression mode) and {@code fuzzForABoundedTime} fuzzes for 30 s. To fuzz longer:
 * {@code JAZZER_FUZZ=1 ./mvnw -pl control -am test -Dtest=ControlFuzzTest -Djazzer.max_duration=10m};
 * findings are written as new inputs beside the test and replayed from then on.
 */
class ControlFuzzTest {

    private static final Set<Status.Code> EXPECTED = Set.of(Status.Code.OK, Status.Code.INVALID_ARGUMENT, Status.Code.NOT_FOUND,
            Status.Code.FAILED_PRECONDITION);
    private static final Caller ROOT = new Caller("uds", 0, 0, 1, "root", "fuzz", "", List.of());

    private static ControlFixture agent;
    private static ControlClient client;
    private static SecurityModule security;

    private static synchronized void start() throws Exception {
        if (agent != null) {
            return;
        }
        java.nio.file.Path policy = java.nio.file.Files.createTempFile("fuzz-policy", ".yaml");
        java.nio.file.Files.writeString(policy, "rules:\n  - {name: everyone, on: both, decision: granted}\n");
        agent = new ControlFixture(s -> s.withPolicy(policy));
        agent.engine.add(new CountingControlModule("ctl"));
        client = agent.client();
        security = new SecurityModule(Constraints.builtin(), PolicyHolder.of(Policy.parse("allow", "rules:\n  - {name: everyone, on: both, decision: granted}\n", 0)),
                null, true);
    }

    @AfterAll
    static void stop() {
        if (client != null) {
            client.close();
            agent.close();
            client = null;
            agent = null;
        }
    }

    @FuzzTest(maxDuration = "30s")
    void fuzzForABoundedTime(FuzzedDataProvider data) throws Exception {
        start();
        List<Idl.Method> methods = Idl.control().methods();
        Idl.Method m = methods.get(data.consumeInt(0, methods.size() - 1));
        byte[] wire = data.consumeRemainingAsBytes();
        Message parsed;
        try {
            parsed = DynamicMessage.parseFrom(m.descriptor().getInputType(), wire);
        } catch (InvalidProtocolBufferException e) {
            parsed = null;
        }
        SecurityModule.Verdict local = parsed == null ? null : security.check(ROOT, m, Policy.Kind.REQUEST, parsed);
        Status s = MalformedCorpusTest.sendRaw(client, m, wire);
        if (m.descriptor().isServerStreaming() && s.getCode() == Status.Code.DEADLINE_EXCEEDED && parsed != null && local.granted()) {
            return; // a granted live stream (Audit.Tail, events) follows until the caller stops it: the client deadline did
        }
        assertThat(EXPECTED).as(m.id() + " answered " + s).contains(s.getCode());
        if (parsed == null || !local.granted()) {
            assertThat(s.getCode()).as(m.id() + ": refused locally (" + (local == null ? "undecodable" : local.reason()) + ") but live: " + s)
                    .isEqualTo(Status.Code.INVALID_ARGUMENT);
            assertThat(s.getDescription()).startsWith("invalid request: ");
        } else {
            assertThat(s.getCode()).as(m.id() + ": well-formed, but live: " + s).isNotEqualTo(Status.Code.INVALID_ARGUMENT);
        }
        // the agent still serves
        assertThat(client.health().check(HealthRequest.getDefaultInstance()).getStatus()).isEqualTo("serving");
    }
}
