package dev.interlayer.control;

import dev.interlayer.control.v1.ListListenersRequest;
import dev.interlayer.control.v1.ListListenersResponse;
import dev.interlayer.control.v1.ListenerInfo;
import dev.interlayer.control.v1.ListenersGrpc;
import dev.interlayer.control.v1.ReloadTlsRequest;
import dev.interlayer.control.v1.ReloadTlsResponse;
import dev.interlayer.control.v1.TlsReloadResult;
import dev.interlayer.engine.Engine;
import dev.interlayer.engine.EngineException;
import dev.interlayer.engine.ListenerSpec;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The {@code Listeners} endpoint: the running listeners; reloading their TLS files. */
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

    @Override
    public void reloadTls(ReloadTlsRequest request, StreamObserver<ReloadTlsResponse> out) {
        List<Engine.TlsReload> done;
        try {
            done = target.engine().reloadTls(request.getListener());
        } catch (EngineException e) {
            throw Status.NOT_FOUND.withDescription(e.getMessage()).asRuntimeException();
        }
        if (done.isEmpty()) {
            throw Status.FAILED_PRECONDITION.withDescription("no running listener terminates or originates TLS; nothing to reload").asRuntimeException();
        }
        ReloadTlsResponse.Builder b = ReloadTlsResponse.newBuilder();
        for (Engine.TlsReload r : done) {
            b.addListeners(TlsReloadResult.newBuilder().setListener(r.listener()).addAllCertificates(r.certificates())
                    .setError(r.error() == null ? "" : r.error()));
        }
        out.onNext(b.build());
        out.onCompleted();
    }
}
