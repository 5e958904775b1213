package dev.interlayer.control;

import dev.interlayer.control.v1.AttachProcessRequest;
import dev.interlayer.control.v1.AttachProcessResponse;
import dev.interlayer.control.v1.AttachRequest;
import dev.interlayer.control.v1.AttachResponse;
import dev.interlayer.control.v1.ConnectionsGrpc;
import dev.interlayer.control.v1.DetachProcessRequest;
import dev.interlayer.control.v1.DetachRequest;
import dev.interlayer.control.v1.ListConnectionsRequest;
import dev.interlayer.control.v1.ListConnectionsResponse;
import dev.interlayer.control.v1.ProcessAttachment;
import dev.interlayer.engine.ConnectionSnapshot;
import dev.interlayer.engine.ProcessAttachments;
import dev.interlayer.runtime.LoadedModule;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.Optional;

/** The {@code Connections} endpoint: open connections with their attachments and byte counts; programmatic attach and detach. */
final class ConnectionsEndpoint extends ConnectionsGrpc.ConnectionsImplBase {

    private final ControlTarget target;

    ConnectionsEndpoint(ControlTarget target) {
        this.target = target;
    }

    @Override
    public void list(ListConnectionsRequest request, StreamObserver<ListConnectionsResponse> out) {
        ListConnectionsResponse.Builder b = ListConnectionsResponse.newBuilder();
        for (ConnectionSnapshot c : target.engine().connections()) {
            if (request.getListener().isEmpty() || request.getListener().equals(c.listener())) {
                b.addConnections(Protos.connection(c));
            }
        }
        if (request.getListener().isEmpty()) {
            for (ProcessAttachments.Registration r : target.engine().processAttachments().list()) {
                b.addProcessAttachments(ProcessAttachment.newBuilder().setId(r.id()).setPid(r.pid()).setCommand(r.command()).setModule(r.module())
                        .setVersion(r.version()).setAttached(r.attachedCount()).setLimit(r.limit()).setExpiresAtMs(r.expiresAtMs()));
            }
        }
        out.onNext(b.build());
        out.onCompleted();
    }

    private Optional<ConnectionSnapshot> connection(long id) {
        return target.engine().connections().stream().filter(c -> c.id() == id).findFirst();
    }

    private ConnectionSnapshot require(long id) {
        return connection(id).orElseThrow(() -> Status.NOT_FOUND.withDescription("no open connection " + Long.toUnsignedString(id)
                + "; interlayer conns list shows the open connections").asRuntimeException());
    }

    @Override
    public void attach(AttachRequest request, StreamObserver<AttachResponse> out) {
        long id = request.getConnectionId();
        require(id);
        LoadedModule m = target.registry().find(request.getModule()).orElseThrow(() -> ModulesEndpoint.notFound(request.getModule()));
        if (!m.state().attachesNew()) {
            throw Status.FAILED_PRECONDITION.withDescription("module " + m.id() + " is " + m.state() + " and attaches to no connection;"
                    + " interlayer modules state " + m.name() + " active").asRuntimeException();
        }
        boolean done = target.engine().attach(id, m.name());
        ConnectionSnapshot after = connection(id).orElse(null);
        String message;
        if (done) {
            message = m.id() + " attached to connection " + id + " from its next data";
        } else if (after == null) {
            message = "connection " + id + " closed before the module could attach";
        } else if (after.modules().contains(m.id())) {
            message = m.id() + " is already attached to connection " + id;
        } else if (after.tls() != null && after.tls().startsWith("in: handshaking")) {
            // on a listener that terminates TLS nothing attaches before the client's handshake completes
            message = "connection " + id + " is still in its TLS handshake and attaches no module until it completes; ask again";
        } else {
            message = m.id() + " declined connection " + id + " (its attach hook said no)";
        }
        AttachResponse.Builder b = AttachResponse.newBuilder().setDone(done).setMessage(message);
        if (after != null) {
            b.setConnection(Protos.connection(after));
        }
        out.onNext(b.build());
        out.onCompleted();
    }

    @Override
    public void detach(DetachRequest request, StreamObserver<AttachResponse> out) {
        long id = request.getConnectionId();
        require(id);
        boolean done = target.engine().detach(id, request.getModule());
        ConnectionSnapshot after = connection(id).orElse(null);
        String message = done ? request.getModule() + " detached from connection " + id
                : request.getModule() + " is not attached to connection " + id;
        AttachResponse.Builder b = AttachResponse.newBuilder().setDone(done).setMessage(message);
        if (after != null) {
            b.setConnection(Protos.connection(after));
        }
        out.onNext(b.build());
        out.onCompleted();
    }

    @Override
    public void attachProcess(AttachProcessRequest request, StreamObserver<AttachProcessResponse> out) {
        try {
            out.onNext(ProcessAttach.attach(target, SecurityModule.CALLER.get(), request));
        } catch (ProcessAttachments.Refused e) {
            throw Status.FAILED_PRECONDITION.withDescription(e.getMessage()).asRuntimeException();
        }
        out.onCompleted();
    }

    @Override
    public void detachProcess(DetachProcessRequest request, StreamObserver<AttachProcessResponse> out) {
        try {
            out.onNext(ProcessAttach.detach(target, SecurityModule.CALLER.get(), request));
        } catch (ProcessAttachments.Refused e) {
            throw Status.NOT_FOUND.withDescription(e.getMessage()).asRuntimeException();
        }
        out.onCompleted();
    }
}
