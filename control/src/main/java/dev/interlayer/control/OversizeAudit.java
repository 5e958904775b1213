package dev.interlayer.control;

import io.grpc.Metadata;
import io.grpc.ServerStreamTracer;
import io.grpc.Status;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reports a call whose request message the transport refused for its size ({@link ControlServer#MAX_MESSAGE}):
 * grpc-netty ends such a call with {@code RESOURCE_EXHAUSTED} before the security module sees the message, so
 * this reports it through {@link Rejections} instead, with the caller (audited as {@code invalid}, rule
 * {@code structure}; one log line, rate-limited).
 */
final class OversizeAudit extends ServerStreamTracer.Factory {

    /** How grpc-netty words it: {@code gRPC message exceeds maximum size 2097152: 52428814}. */
    private static final Pattern TOO_BIG = Pattern.compile("gRPC message exceeds maximum size (\\d+): (\\d+)");

    private final Rejections rejections;

    private final Idl idl;

    OversizeAudit(Rejections rejections, Idl idl) {
        this.rejections = rejections;
        this.idl = idl;
    }

    @Override
    public ServerStreamTracer newServerStreamTracer(String fullMethodName, Metadata headers) {
        Idl.Method method = idl.byGrpcName(fullMethodName);
        return method == null ? new ServerStreamTracer() {} : new Tracer(method);
    }

    private final class Tracer extends ServerStreamTracer {
        private final Idl.Method method;
        private volatile Caller caller;
        private volatile String who = "unknown";

        Tracer(Idl.Method method) {
            this.method = method;
        }

        @Override
        public void serverCallStarted(ServerCallInfo<?, ?> info) {
            caller = SecurityModule.callerOf(info.getAttributes());
            who = ConnectionGuard.who(caller, info.getAttributes().get(io.grpc.Grpc.TRANSPORT_ATTR_REMOTE_ADDR));
        }

        @Override
        public void streamClosed(Status status) {
            Caller c = caller;
            Matcher m = status.getDescription() == null ? null : TOO_BIG.matcher(status.getDescription());
            if (c != null && status.getCode() == Status.Code.RESOURCE_EXHAUSTED && m != null && m.matches()) {
                rejections.refuseCall(c, who, method, "a request message of " + m.group(2) + " bytes; the control endpoint takes at most "
                        + m.group(1) + " bytes per message");
            }
        }
    }
}
