package dev.interlayer.control;

import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FileDescriptor;
import com.google.protobuf.Descriptors.MethodDescriptor;
import com.google.protobuf.Descriptors.ServiceDescriptor;
import dev.interlayer.control.v1.ControlProto;
import io.grpc.health.v1.HealthProto;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The endpoints and methods the control endpoint serves, by the names policies use: the IDL's
 * ({@code control.proto}) with endpoint = the service's simple name ({@code Modules}), and the standard gRPC
 * services beside them (health checking and server reflection, for probes and grpcurl-style tools) with
 * endpoint = the service's full name ({@code grpc.health.v1.Health}, which is not the IDL's {@code Health});
 * method = the method's name ({@code SetState}, {@code Check}).
 */
public final class Idl {

    /**
     * One method of the IDL.
     *
     * @param endpoint the service's simple name
     * @param name the method's name
     * @param descriptor the protobuf method descriptor (request and response types, streaming)
     */
    public record Method(String endpoint, String name, MethodDescriptor descriptor) {
        /** {@code Endpoint.Method}. */
        public String id() {
            return endpoint + "." + name;
        }

        /** The gRPC full method name, {@code interlayer.control.v1.Modules/SetState}. */
        public String grpcName() {
            return descriptor.getService().getFullName() + "/" + name;
        }
    }

    /** The files of the standard services served beside the IDL's. */
    @SuppressWarnings("deprecation") // v1alpha reflection: still the only one older tools (grpc_cli, older grpcurl) ask for
    private static final List<FileDescriptor> STANDARD = List.of(HealthProto.getDescriptor(),
            io.grpc.reflection.v1.ServerReflectionProto.getDescriptor(), io.grpc.reflection.v1alpha.ServerReflectionProto.getDescriptor());

    private static final Map<String, Method> METHODS = new LinkedHashMap<>();
    private static final Map<String, Method> BY_GRPC_NAME = new HashMap<>();

    static {
        for (ServiceDescriptor s : ControlProto.getDescriptor().getServices()) {
            add(s.getName(), s);
        }
        for (FileDescriptor f : STANDARD) {
            for (ServiceDescriptor s : f.getServices()) {
                add(s.getFullName(), s);
            }
        }
    }

    private static void add(String endpoint, ServiceDescriptor s) {
        for (MethodDescriptor m : s.getMethods()) {
            Method x = new Method(endpoint, m.getName(), m);
            METHODS.put(x.id(), x);
            BY_GRPC_NAME.put(x.grpcName(), x);
        }
    }

    private Idl() {}

    /** The IDL file. */
    public static FileDescriptor file() {
        return ControlProto.getDescriptor();
    }

    /** Every method: the IDL's in IDL order, then the standard services'. */
    public static List<Method> methods() {
        return List.copyOf(METHODS.values());
    }

    /** The method {@code Endpoint.Method}, or null. */
    public static Method method(String endpointMethod) {
        return METHODS.get(endpointMethod);
    }

    /** The method with gRPC full name {@code package.Service/Method}, or null. */
    public static Method byGrpcName(String fullMethodName) {
        return BY_GRPC_NAME.get(fullMethodName);
    }

    /** Every endpoint name: the IDL's, in IDL order, then the standard services'. */
    public static List<String> endpoints() {
        List<String> out = new ArrayList<>();
        for (Method m : METHODS.values()) {
            if (!out.contains(m.endpoint())) {
                out.add(m.endpoint());
            }
        }
        return out;
    }

    /** Every message type of {@code file}, nested ones included. */
    static List<Descriptor> allMessages(FileDescriptor file) {
        List<Descriptor> out = new ArrayList<>();
        for (Descriptor d : file.getMessageTypes()) {
            addAll(d, out);
        }
        return out;
    }

    private static void addAll(Descriptor d, List<Descriptor> out) {
        out.add(d);
        for (Descriptor n : d.getNestedTypes()) {
            addAll(n, out);
        }
    }
}
