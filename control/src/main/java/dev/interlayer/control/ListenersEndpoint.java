package dev.interlayer.control;

import dev.interlayer.control.v1.ListListenersRequest;
import dev.interlayer.control.v1.ListListenersResponse;
import dev.interlayer.control.v1.ListenerInfo;
import dev.interlayer.control.v1.ListenersGrpc;
import dev.interlayer.engine.ListenerSpec;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.util.Locale;
import java.util.Map;

/** The {@code Listeners} endpoint: the running listeners. */
final class ListenersEndpoint extends ListenersGrpc.ListenersImplBase {

    private final ControlTarget target;

    ListenersEndpoint(ControlTarget target) {
        this.target = target;
    }

    @Override
    public void list(ListListenersRequest request, StreamObserver<ListListenersResponse> out) {
        ListListenersResponse.Builder b = ListListenersResponse.newBuilder();
        for (Map.Entry<String, InetSocketAddress> e : target.engine().listeners().entrySet()) {
            ListenerInfo.Builder l = ListenerInfo.newBuilder().setName(e.getKey()).setListen(Protos.address(e.getValue()));
            target.engine().listenerSpec(e.getKey()).ifPresent((ListenerSpec s) -> l.setProtocol(s.protocol().name().toLowerCase(Locale.ROOT))
                    .setRole(s.role().name().toLowerCase(Locale.ROOT)).setUpstream(Protos.address(s.upstream())).addAllAttach(s.attach()));
            b.addListeners(l);
        }
        out.onNext(b.build());
        out.onCompleted();
    }
}
