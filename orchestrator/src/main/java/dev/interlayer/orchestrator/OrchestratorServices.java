package dev.interlayer.orchestrator;

import dev.interlayer.control.Constraints;
import dev.interlayer.control.ControlServer;
import dev.interlayer.control.Idl;
import dev.interlayer.control.Policy;
import dev.interlayer.orchestrator.v1.OrchestratorProto;
import io.grpc.BindableService;
import io.grpc.ServerInterceptors;
import java.util.List;

/** The orchestrator's endpoint: orchestrator.proto's services, served by the agents' control-endpoint machinery and security module. */
final class OrchestratorServices implements ControlServer.Served {

    /** The orchestrator's IDL. */
    static final Idl IDL = Idl.of(OrchestratorProto.getDescriptor());
    static final String CONSTRAINTS = "/interlayer/orchestrator/v1/constraints.yaml";
    static final String DEFAULT_POLICY = "/dev/interlayer/orchestrator/orchestrator-policy.yaml";

    private final Store store;
    private final Authority authority;
    private final AgentStreams streams;
    private final Recorder recorder;
    private final String instance;

    OrchestratorServices(Store store, Authority authority, AgentStreams streams, Recorder recorder, String instance) {
        this.store = store;
        this.authority = authority;
        this.streams = streams;
        this.recorder = recorder;
        this.instance = instance;
    }

    @Override
    public Idl idl() {
        return IDL;
    }

    @Override
    public Constraints constraints() {
        return Constraints.resource(CONSTRAINTS, IDL);
    }

    @Override
    public Policy builtinPolicy(long uid) {
        return Policy.resource(DEFAULT_POLICY, uid, IDL);
    }

    @Override
    public List<BindableService> services(ControlServer.Parts parts) {
        BindableService agents = new AgentsEndpoint(store, streams, recorder, instance);
        BindableService enrollment = new EnrollmentEndpoint(store, authority);
        return List.of(new FleetEndpoint(store, authority, streams), new Dashboard.Endpoint(store),
                () -> ServerInterceptors.intercept(enrollment, Peer.INTERCEPTOR),
                () -> ServerInterceptors.intercept(agents, Peer.INTERCEPTOR));
    }

    @Override
    public boolean tlsWithoutCertificate() {
        return true;
    }
}
