package dev.interlayer.control;

import dev.interlayer.control.v1.TakeoverRequest;
import dev.interlayer.control.v1.TakeoverResponse;
import dev.interlayer.control.v1.UpgradeGrpc;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.atomic.AtomicReference;

/** The {@code Upgrade} endpoint: a new agent process takes over this one's listening sockets (see {@link Handover}). */
final class UpgradeEndpoint extends UpgradeGrpc.UpgradeImplBase {

    private final AtomicReference<Handover> handover;

    UpgradeEndpoint(AtomicReference<Handover> handover) {
        this.handover = handover;
    }

    @Override
    public void takeover(TakeoverRequest request, StreamObserver<TakeoverResponse> out) {
        Handover h = handover.get();
        if (h == null) {
            throw Status.FAILED_PRECONDITION.withDescription("this process does not hand over listeners; stop it, then start the new agent without --takeover")
                    .asRuntimeException();
        }
        TakeoverResponse r;
        try {
            r = h.offer(request, SecurityModule.CALLER.get());
        } catch (ControlException e) {
            throw Status.FAILED_PRECONDITION.withDescription(e.getMessage()).asRuntimeException();
        }
        out.onNext(r);
        out.onCompleted();
    }
}
