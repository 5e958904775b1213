package dev.interlayer.control;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.control.testing.ControlFixture;
import dev.interlayer.control.v1.AuditQuery;
import dev.interlayer.control.v1.HealthRequest;
import dev.interlayer.control.v1.HealthResponse;
import dev.interlayer.control.v1.ListModulesRequest;
import dev.interlayer.control.v1.SetStateRequest;
import dev.interlayer.control.v1.StateChange;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.junit.jupiter.api.Test;

class ControlServerTest {

    @Test
    void healthShowsTheCallerTheKernelReportedForTheUnixSocket() throws Exception {
        try (ControlFixture f = new ControlFixture(); ControlClient c = f.client()) {
            HealthResponse h = c.health().check(HealthRequest.getDefaultInstance());
            assertThat(h.getStatus()).isEqualTo("serving");
            assertThat(h.getCaller().getTransport()).isEqualTo("uds");
            assertThat(h.getCaller().getUid()).isEqualTo(Policy.processUid());
            assertThat(h.getCaller().getPid()).isEqualTo(ProcessHandle.current().pid());
            assertThat(h.getSecurity()).isTrue();
            assertThat(c.modules().list(ListModulesRequest.getDefaultInstance()).getModulesList()).isEmpty();
        }
    }

    @Test
    void aMalformedRequestIsRefusedNamingTheFieldAndConstraintAndIsAudited() throws Exception {
        try (ControlFixture f = new ControlFixture(); ControlClient c = f.client()) {
            assertThatThrownBy(() -> c.modules().setState(SetStateRequest.newBuilder().setName("Bad Name").setState(StateChange.REVOKE).build()))
                    .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                        assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
                        assertThat(e.getStatus().getDescription()).contains("field 'name'", "module-name", "Bad Name");
                    });
            var entries = c.audit().query(AuditQuery.newBuilder().setDecision("invalid").build()).getEntriesList();
            assertThat(entries).hasSize(1);
            assertThat(entries.get(0).getMethod()).isEqualTo("SetState");
            assertThat(entries.get(0).getRule()).isEqualTo("structure");
        }
    }
}
