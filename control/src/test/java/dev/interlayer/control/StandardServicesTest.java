package dev.interlayer.control;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.DescriptorProtos.FileDescriptorProto;
import dev.interlayer.control.testing.ControlFixture;
import dev.interlayer.control.v1.AuditEntry;
import dev.interlayer.control.v1.AuditQuery;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.reflection.v1.ServerReflectionGrpc;
import io.grpc.reflection.v1.ServerReflectionRequest;
import io.grpc.reflection.v1.ServerReflectionResponse;
import io.grpc.reflection.v1.ServiceResponse;
import io.grpc.stub.StreamObserver;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.assertj.core.groups.Tuple;
import org.junit.jupiter.api.Test;

/**
 * The standard gRPC health service and server reflection on the real Unix socket, through the generated clients of
 * grpc-services (what probes and grpcurl use): they answer, they pass the security module like every other call
 * (policy, audit), and a policy that does not grant them denies them.
 */
class StandardServicesTest {

    /** Asks the reflection service one question over a bidi stream and returns the answer. */
    static ServerReflectionResponse reflect(ControlClient c, ServerReflectionRequest request) throws Exception {
        CompletableFuture<ServerReflectionResponse> answer = new CompletableFuture<>();
        StreamObserver<ServerReflectionRequest> requests = ServerReflectionGrpc.newStub(c.channel()).serverReflectionInfo(new StreamObserver<>() {
            @Override
            public void onNext(ServerReflectionResponse value) {
                answer.complete(value);
            }

            @Override
            public void onError(Throwable t) {
                answer.completeExceptionally(t);
            }

            @Override
            public void onCompleted() {
                answer.completeExceptionally(new IllegalStateException("the stream ended without an answer"));
            }
        });
        requests.onNext(request);
        try {
            return answer.get(20, TimeUnit.SECONDS);
        } finally {
            requests.onCompleted();
        }
    }

    @Test
    void healthAndReflectionAnswerThroughTheSecurityModuleAndAreAudited() throws Exception {
        try (ControlFixture f = new ControlFixture(); ControlClient c = f.client()) {
            HealthGrpc.HealthBlockingStub health = HealthGrpc.newBlockingStub(c.channel());
            assertThat(health.check(HealthCheckRequest.getDefaultInstance()).getStatus()).isEqualTo(ServingStatus.SERVING);
            for (String service : Idl.control().methods().stream().map(m -> m.descriptor().getService().getFullName()).distinct().toList()) {
                assertThat(health.check(HealthCheckRequest.newBuilder().setService(service).build()).getStatus()).as(service)
                        .isEqualTo(ServingStatus.SERVING);
            }
            assertThatThrownBy(() -> health.check(HealthCheckRequest.newBuilder().setService("no.such.Service").build()))
                    .isInstanceOfSatisfying(StatusRuntimeException.class, e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND));

            // what grpcurl list does: every service the endpoint serves, ours and the standard ones
            ServerReflectionResponse list = reflect(c, ServerReflectionRequest.newBuilder().setListServices("").build());
            List<String> services = list.getListServicesResponse().getServiceList().stream().map(ServiceResponse::getName).toList();
            assertThat(services).containsAll(Idl.control().methods().stream().map(m -> m.descriptor().getService().getFullName()).distinct().toList());
            // what grpcurl describe does: the IDL itself, as a foreign client's author reads it
            ServerReflectionResponse file = reflect(c, ServerReflectionRequest.newBuilder().setFileContainingSymbol("interlayer.control.v1.Modules").build());
            FileDescriptorProto idl = FileDescriptorProto.parseFrom(file.getFileDescriptorResponse().getFileDescriptorProto(0));
            assertThat(idl.getName()).isEqualTo("interlayer/control/v1/control.proto");
            assertThat(idl.getServiceList()).extracting(s -> s.getName()).contains("Modules", "Health");

            List<AuditEntry> audited = c.audit().query(AuditQuery.newBuilder().setLimit(100).build()).getEntriesList();
            assertThat(audited).filteredOn(e -> e.getEndpoint().equals("grpc.health.v1.Health"))
                    .extracting(AuditEntry::getMethod, AuditEntry::getKind, AuditEntry::getDecision)
                    .contains(Tuple.tuple("Check", "request", "granted"), Tuple.tuple("Check", "response", "granted"));
            assertThat(audited).filteredOn(e -> e.getEndpoint().equals("grpc.reflection.v1.ServerReflection"))
                    .extracting(AuditEntry::getMethod, AuditEntry::getDecision).contains(Tuple.tuple("ServerReflectionInfo", "granted"));
            assertThat(c.audit().query(AuditQuery.newBuilder().setEndpoint("grpc.health.v1.Health").setLimit(100).build()).getEntriesList())
                    .isNotEmpty().allSatisfy(e -> assertThat(e.getEndpoint()).isEqualTo("grpc.health.v1.Health"));
        }
    }

    @Test
    void aPolicyThatDoesNotGrantThemDeniesThemByRule() throws Exception {
        Path dir = Files.createTempDirectory("interlayer-standard-");
        Path policy = Files.writeString(dir.resolve("policy.yaml"), """
                rules:
                  - name: only-the-idl
                    on: both
                    endpoint: [Modules, Connections, Listeners, Events, Audit, Policy, Health]
                    decision: granted
                """);
        try (ControlFixture f = new ControlFixture(s -> s.withPolicy(policy)); ControlClient c = f.client()) {
            assertThatThrownBy(() -> HealthGrpc.newBlockingStub(c.channel()).check(HealthCheckRequest.getDefaultInstance()))
                    .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                        assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.PERMISSION_DENIED);
                        assertThat(e.getStatus().getDescription()).contains("'default'", "grpc.health.v1.Health");
                    });
            assertThatThrownBy(() -> reflect(c, ServerReflectionRequest.newBuilder().setListServices("").build()))
                    .isInstanceOfSatisfying(ExecutionException.class, e -> assertThat(Status.fromThrowable(e.getCause()).getCode())
                            .isEqualTo(Status.Code.PERMISSION_DENIED));
            // the IDL's own Health is another endpoint, granted here
            assertThat(c.health().check(dev.interlayer.control.v1.HealthRequest.getDefaultInstance()).getStatus()).isEqualTo("serving");
            assertThat(c.audit().query(AuditQuery.newBuilder().setDecision("denied").setLimit(100).build()).getEntriesList())
                    .extracting(AuditEntry::getEndpoint).contains("grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection");
        } finally {
            dev.interlayer.control.testing.TempDirs.delete(dir);
        }
    }

    @Test
    void aHealthWatcherLearnsNotServingWhenTheEndpointStops() throws Exception {
        ControlFixture f = new ControlFixture();
        boolean closed = false;
        try (ControlClient c = f.client()) {
            Iterator<HealthCheckResponse> watch = HealthGrpc.newBlockingStub(c.channel()).watch(HealthCheckRequest.getDefaultInstance());
            List<ServingStatus> seen = new ArrayList<>();
            seen.add(watch.next().getStatus());
            f.close();
            closed = true;
            try {
                while (watch.hasNext()) {
                    seen.add(watch.next().getStatus());
                }
            } catch (StatusRuntimeException ended) {
                // the endpoint went away after saying so
            }
            assertThat(seen).containsExactly(ServingStatus.SERVING, ServingStatus.NOT_SERVING);
        } finally {
            if (!closed) {
                f.close();
            }
        }
    }
}
