package dev.interlayer.control;

import dev.interlayer.control.v1.PolicyGrpc;
import dev.interlayer.control.v1.PolicyInfo;
import dev.interlayer.control.v1.ReloadPolicyRequest;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;

/** The {@code Policy} endpoint: reload the policy file without a restart. */
final class PolicyEndpoint extends PolicyGrpc.PolicyImplBase {

    private final PolicyHolder holder;

    PolicyEndpoint(PolicyHolder holder) {
        this.holder = holder;
    }

    static PolicyInfo info(PolicyHolder.Loaded l) {
        return PolicyInfo.newBuilder().setSource(l.policy().source()).setRules(l.policy().size()).setLoadedAtMs(l.at().toEpochMilli()).build();
    }

    @Override
    public void reload(ReloadPolicyRequest request, StreamObserver<PolicyInfo> out) {
        try {
            out.onNext(info(holder.reload()));
            out.onCompleted();
        } catch (YamlException e) {
            throw Status.FAILED_PRECONDITION.withDescription("policy not reloaded, the previous one stays in force: " + e.getMessage()).asRuntimeException();
        }
    }
}
