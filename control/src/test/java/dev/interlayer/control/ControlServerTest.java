package dev.interlayer.control;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.control.testing.CallerProbe;
import dev.interlayer.control.testing.ControlFixture;
import dev.interlayer.control.testing.OtherUser;
import dev.interlayer.control.testing.TempDirs;
import dev.interlayer.control.v1.AuditQuery;
import dev.interlayer.control.v1.HealthRequest;
import dev.interlayer.control.v1.HealthResponse;
import dev.interlayer.control.v1.ListListenersRequest;
import dev.interlayer.control.v1.ListModulesRequest;
import dev.interlayer.control.v1.SetStateRequest;
import dev.interlayer.control.v1.StateChange;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class ControlServerTest {

    /** Answers {@code size} with as many bytes as its body says, anything else with "ok". */
    static final class SizedReplies implements dev.interlayer.api.SocketModule<Object> {
        @Override
        public dev.interlayer.api.ModuleDescriptor descriptor() {
            return dev.interlayer.api.ModuleDescriptor.builder("sized", "1.0.0").implement(dev.interlayer.api.InterfaceType.SOCKET, 1, 0).build();
        }

        @Override
        public dev.interlayer.api.ControlResponse control(dev.interlayer.api.ControlRequest r) {
            return r.command().equals("size") ? dev.interlayer.api.ControlResponse.ok(new byte[Integer.parseInt(new String(r.body()))])
                    : dev.interlayer.api.ControlResponse.ok("ok");
        }
    }

    @Test
    void aControlReplyOverTheLimitIsRefusedCountedAsAFaultAndTheNextCallIsServed() throws Exception {
        try (ControlFixture f = new ControlFixture(); ControlClient c = f.client()) {
            dev.interlayer.runtime.LoadedModule m = f.engine.add(new SizedReplies());
            int limit = ModulesEndpoint.MAX_CONTROL_REPLY;
            assertThat(c.modules().control(dev.interlayer.control.v1.ModuleControlRequest.newBuilder().setName("sized").setCommand("size").setBody(com.google.protobuf.ByteString.copyFromUtf8(String.valueOf(limit))).build())
                    .getBody().size()).as("a reply of exactly the limit").isEqualTo(limit);
            assertThatThrownBy(() -> c.modules().control(dev.interlayer.control.v1.ModuleControlRequest.newBuilder().setName("sized")
                    .setCommand("size").setBody(com.google.protobuf.ByteString.copyFromUtf8(String.valueOf(limit + 1))).build()))
                    .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                        assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
                        assertThat(e.getStatus().getDescription()).contains("module sized@1.0.0 answered control command 'size' with 1048577 bytes")
                                .contains("more than the 1MiB a control reply may carry").contains("counted as a fault");
                    });
            assertThat(m.faults()).isEqualTo(1);
            assertThat(c.modules().control(dev.interlayer.control.v1.ModuleControlRequest.newBuilder().setName("sized").setCommand("small").build())
                    .getBody().toStringUtf8()).isEqualTo("ok");
        }
    }

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
    void aProcessCanRenameItselfButNotItsExecutableAndAPolicyCanTellThemApart() throws Exception {
        String java = Files.readSymbolicLink(Path.of("/proc/self/exe")).toString();
        Path dir = Files.createTempDirectory("interlayer-exe-");
        try {
            Path policy = dir.resolve("policy.yaml");
            Files.writeString(policy, """
                    rules:
                      - {name: health, endpoint: Health, decision: granted}
                      - {name: by-name, endpoint: Modules, method: Stats, caller: {command: trusted-tool}, decision: granted}
                      - {name: by-executable, endpoint: Modules, method: List, caller: {exe: /usr/local/bin/trusted-tool}, decision: granted}
                      - {name: java, endpoint: Listeners, caller: {exe: "%s"}, decision: granted}
                      - {name: responses, on: response, decision: granted}
                    """.formatted(java));
            try (ControlFixture f = new ControlFixture(s -> s.withPolicy(policy)); ControlClient c = f.client()) {
                assertThat(c.health().check(HealthRequest.getDefaultInstance()).getCaller().getExe()).isEqualTo(java);
                assertThat(c.listeners().list(ListListenersRequest.getDefaultInstance())).as("granted by the executable").isNotNull();
                // a process that names itself trusted-tool passes a rule on the command, not one on the executable
                OtherUser.Result r = OtherUser.runAsThisUser(Duration.ofSeconds(60), CallerProbe.class.getName(), f.server.socket().toString(),
                        "trusted-tool");
                assertThat(r.code()).as(r.err()).isZero();
                assertThat(r.out().lines().toList()).containsExactly("command=trusted-tool", "exe=" + java, "Modules.Stats OK",
                        "Modules.List PERMISSION_DENIED");
                assertThat(f.server.audit().query(100, AuditLog.GRANTED, "Modules", 0)).filteredOn(e -> e.rule().equals("by-name"))
                        .singleElement().satisfies(e -> assertThat(e.toJson()).contains("\"command\":\"trusted-tool\",\"exe\":\"" + java + "\""));
            }
        } finally {
            TempDirs.delete(dir);
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
