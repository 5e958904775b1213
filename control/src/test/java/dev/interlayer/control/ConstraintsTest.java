package dev.interlayer.control;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.control.v1.LoadHeader;
import dev.interlayer.control.v1.LoadModuleRequest;
import dev.interlayer.control.v1.ModuleInfo;
import dev.interlayer.control.v1.ModuleState;
import dev.interlayer.control.v1.SetStateRequest;
import dev.interlayer.control.v1.StateChange;
import java.util.List;
import org.junit.jupiter.api.Test;

class ConstraintsTest {

    @Test
    void theShippedConstraintsMatchTheIdlAndAcceptWellFormedMessages() {
        Constraints c = Constraints.builtin();
        assertThat(c.check(SetStateRequest.newBuilder().setName("tcplog").setState(StateChange.REVOKE).build())).isEmpty();
        assertThat(c.check(LoadModuleRequest.newBuilder().setHeader(LoadHeader.newBuilder().setFileName("tcplog-1.0.jar").setSize(10)).build())).isEmpty();
        assertThat(c.stream("Modules.Load")).hasValueSatisfying(s -> assertThat(s.first()).isEqualTo("header"));
    }

    @Test
    void responsesAreCheckedToo() {
        Constraints c = Constraints.builtin();
        assertThat(c.check(ModuleInfo.newBuilder().setName("Not A Module").setState(ModuleState.ACTIVE).build()))
                .hasValueSatisfying(v -> assertThat(v.field()).isEqualTo("name"));
        assertThat(c.check(ModuleInfo.newBuilder().setName("ok").build())).hasValueSatisfying(v -> assertThat(v.constraint()).isEqualTo("required"));
    }

    @Test
    void everyMistakeInTheConstraintsFileIsReportedWithFileAndLine() {
        record Bad(String yaml, int line, String text) {}
        String msg = "messages:\n  interlayer.control.v1.SetStateRequest:\n";
        List<Bad> bad = List.of(
                new Bad("messages:\n  interlayer.control.v1.Nope:\n    name: {required: true}\n", 2, "message interlayer.control.v1.Nope is not in the IDL"),
                new Bad(msg + "    nmae: {required: true}\n", 3, "has no field 'nmae'; its fields are name, state"),
                new Bad(msg + "    name: {format: nope}\n", 3, "unknown format 'nope'"),
                new Bad(msg + "    state: {enum: [ACTIVE]}\n", 3, "ACTIVE is not a value of StateChange"),
                new Bad(msg + "    state: {max-length: 3}\n", 3, "apply to string fields (this field is enum)"),
                new Bad(msg + "    name: {min: 3}\n", 3, "min and max apply to integer fields"),
                new Bad(msg + "    name: {requird: true}\n", 3, "unknown key 'requird'"),
                new Bad("formats:\n  x: '[a-'\n", 2, "format x is not a valid regular expression"),
                new Bad("streams:\n  Modules.List: {first: header}\n", 2, "is not a client-streaming method"));
        for (Bad b : bad) {
            assertThatThrownBy(() -> Constraints.parse("constraints.yaml", b.yaml(), Idl.control())).as(b.yaml())
                    .isInstanceOf(YamlException.class)
                    .hasMessageStartingWith("constraints.yaml:" + b.line() + ": ")
                    .hasMessageContaining(b.text());
        }
    }
}
