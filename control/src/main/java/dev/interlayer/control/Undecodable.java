package dev.interlayer.control;

import io.grpc.MethodDescriptor;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServiceDescriptor;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;

/**
 * A request whose bytes do not decode as the method's message type. The control endpoint's request
 * marshallers hand it to the {@link SecurityModule} instead of failing inside the transport, so bytes
 * that are no message at all are refused like any other malformed message: INVALID_ARGUMENT with a
 * clear reason, audited, and never passed to a handler.
 *
 * @param type the expected message type
 * @param problem what the decoder said
 */
record Undecodable(String type, String problem) {

    /** The service with every request marshaller wrapped so that undecodable bytes become an {@link Undecodable}. */
    static ServerServiceDefinition decodeChecked(ServerServiceDefinition def) {
        List<ServerMethodDefinition<?, ?>> methods = new ArrayList<>();
        ServiceDescriptor.Builder sd = ServiceDescriptor.newBuilder(def.getServiceDescriptor().getName())
                .setSchemaDescriptor(def.getServiceDescriptor().getSchemaDescriptor());
        for (ServerMethodDefinition<?, ?> m : def.getMethods()) {
            ServerMethodDefinition<?, ?> w = wrap(m);
            methods.add(w);
            sd.addMethod(w.getMethodDescriptor());
        }
        ServerServiceDefinition.Builder b = ServerServiceDefinition.builder(sd.build());
        methods.forEach(b::addMethod);
        return b.build();
    }

    private static <Q, R> ServerMethodDefinition<Q, R> wrap(ServerMethodDefinition<Q, R> m) {
        MethodDescriptor<Q, R> md = m.getMethodDescriptor();
        MethodDescriptor.Marshaller<Q> inner = md.getRequestMarshaller();
        String type = md.getBareMethodName() + " request";
        MethodDescriptor.Marshaller<Q> checked = new MethodDescriptor.Marshaller<>() {
            @Override
            public InputStream stream(Q value) {
                return inner.stream(value);
            }

            @Override
            @SuppressWarnings("unchecked")
            public Q parse(InputStream stream) {
                try {
                    return inner.parse(stream);
                } catch (RuntimeException e) {
                    Throwable why = e.getCause() != null ? e.getCause() : e;
                    // Never reaches a handler: the security module refuses it first (see SecurityModule.Guard).
                    return (Q) new Undecodable(type, String.valueOf(why.getMessage()));
                }
            }
        };
        return ServerMethodDefinition.create(md.toBuilder().setRequestMarshaller(checked).build(), m.getServerCallHandler());
    }
}
