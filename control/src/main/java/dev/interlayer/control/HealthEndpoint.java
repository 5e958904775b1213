package dev.interlayer.control;

import dev.interlayer.control.v1.HealthGrpc;
import dev.interlayer.control.v1.HealthRequest;
import dev.interlayer.control.v1.HealthResponse;
import io.grpc.stub.StreamObserver;
import dev.interlayer.engine.StuckCall;
import java.time.Instant;
import java.util.List;

/**
 * The {@code Health} endpoint: is the agent serving, and what does it hold. "degraded" while a module call holds an
 * event loop (it ran past its budget and did not stop when asked): the agent serves, on its other loops.
 */
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
        List<StuckCall> stuck = target.engine().stuckCalls();
        HealthResponse.Builder b = HealthResponse.newBuilder()
                .setStatus(stuck.isEmpty() ? "serving" : "degraded")
                .setVersion(target.version())
                .setUptimeMs(System.currentTimeMillis() - started.toEpochMilli())
                .setPid(ProcessHandle.current().pid())
                .setModules(target.registry().modules().size())
                .setFailures(target.registry().failures().size())
                .setConnections(target.engine().connectionCount())
                .setListeners(target.engine().listeners().size())
                .setTransport(target.engine().transportName())
                .setTlsProvider(dev.interlayer.engine.TlsProvider.describe())
                .setPolicy(PolicyEndpoint.info(policy))
                .setSecurity(security);
        stuck.forEach(c -> b.addStuck(Protos.stuck(c)));
        b.addAllInterception(target.engine().interceptionRules());
        if (target.config() != null) {
            b.setConfig(ConfigEndpoint.info(target.config().state()));
        }
        Caller c = SecurityModule.CALLER.get();
        if (c != null) {
            b.setCaller(c.toProto());
        }
        out.onNext(b.build());
        out.onCompleted();
    }
}
