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

    /** The policy in force, and the last refused edit of its file if the file has not been fixed since. */
    static PolicyInfo info(PolicyHolder h) {
        PolicyHolder.Loaded l = h.current();
        PolicyInfo.Builder b = PolicyInfo.newBuilder().setSource(l.policy().source()).setRules(l.policy().size()).setLoadedAtMs(l.at().toEpochMilli());
        String refused = h.lastError();
        java.time.Instant at = h.lastErrorAt();
        if (refused != null && at != null) {
            b.setRefused(refused).setRefusedAtMs(at.toEpochMilli());
        }
        return b.build();
    }

    @Override
    public void reload(ReloadPolicyRequest request, StreamObserver<PolicyInfo> out) {
        try {
            holder.reload();
            out.onNext(info(holder));
            out.onCompleted();
        } catch (YamlException e) {
            throw Status.FAILED_PRECONDITION.withDescription("policy not reloaded, the previous one stays in force: " + e.getMessage()).asRuntimeException();
        }
    }
}
