package dev.interlayer.control;

import dev.interlayer.control.v1.HealthGrpc;
import dev.interlayer.control.v1.HealthRequest;
import dev.interlayer.control.v1.HealthResponse;
import io.grpc.stub.StreamObserver;
import java.time.Instant;

/** The {@code Health} endpoint: is the agent serving, and what does it hold. */
final class HealthEndpoint extends HealthGrpc.HealthImplBase {

    private final ControlTarget target;
    private final PolicyHolder policy;
    private final boolean security;
    private final Instant started = Instant.now();

    HealthEndpoint(ControlTarget target, PolicyHolder policy, boolean security) {
        this.target = target;
        this.policy = policy;
        this.security = security;
    }

    @Override
    public void check(HealthRequest request, StreamObserver<HealthResponse> out) {
        HealthResponse.Builder b = HealthResponse.newBuilder()
                .setStatus("serving")
                .setVersion(target.version())
                .setUptimeMs(System.currentTimeMillis() - started.toEpochMilli())
                .setPid(ProcessHandle.current().pid())
                .setModules(target.registry().modules().size())
                .setFailures(target.registry().failures().size())
                .setConnections(target.engine().connectionCount())
                .setListeners(target.engine().listeners().size())
                .setTransport(target.engine().transportName())
                .setPolicy(PolicyEndpoint.info(policy.current()))
                .setSecurity(security);
        Caller c = SecurityModule.CALLER.get();
        if (c != null) {
            b.setCaller(c.toProto());
        }
        out.onNext(b.build());
        out.onCompleted();
    }
}
