package dev.interlayer.control;

import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FileDescriptor;
import com.google.protobuf.Descriptors.MethodDescriptor;
import com.google.protobuf.Descriptors.ServiceDescriptor;
import dev.interlayer.control.v1.ControlProto;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The endpoints and methods the IDL ({@code control.proto}) defines, by the names policies use:
 * endpoint = the service's simple name ({@code Modules}), method = the method's name ({@code SetState}).
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

    private static final Map<String, Method> METHODS = new LinkedHashMap<>();

    static {
        for (ServiceDescriptor s : ControlProto.getDescriptor().getServices()) {
            for (MethodDescriptor m : s.getMethods()) {
                Method x = new Method(s.getName(), m.getName(), m);
                METHODS.put(x.id(), x);
            }
        }
    }

    private Idl() {}

    /** The IDL file. */
    public static FileDescriptor file() {
        return ControlProto.getDescriptor();
    }

    /** Every method, in IDL order. */
    public static List<Method> methods() {
        return List.copyOf(METHODS.values());
    }

    /** The method {@code Endpoint.Method}, or null. */
    public static Method method(String endpointMethod) {
        return METHODS.get(endpointMethod);
    }

    /** The method with gRPC full name {@code package.Service/Method}, or null. */
    public static Method byGrpcName(String fullMethodName) {
        int slash = fullMethodName.lastIndexOf('/');
        if (slash < 0) {
            return null;
        }
        String service = fullMethodName.substring(0, slash);
        int dot = service.lastIndexOf('.');
        return METHODS.get(service.substring(dot + 1) + "." + fullMethodName.substring(slash + 1));
    }

    /** Every endpoint name, in IDL order. */
    public static List<String> endpoints() {
        List<String> out = new ArrayList<>();
        for (ServiceDescriptor s : ControlProto.getDescriptor().getServices()) {
            out.add(s.getName());
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
