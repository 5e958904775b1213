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
 * The endpoints and methods a control endpoint serves, by the names policies use: its IDL's (the agent's
 * {@code control.proto}, {@link #control()}; the orchestrator's {@code orchestrator.proto}) with endpoint = the
 * service's simple name ({@code Modules}), and the standard gRPC services beside them (health checking and server
 * reflection, for probes and grpcurl-style tools) with endpoint = the service's full name
 * ({@code grpc.health.v1.Health}, which is not the IDL's {@code Health}); method = the method's name
 * ({@code SetState}, {@code Check}).
 *
 * <p>Immutable and thread-safe.
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

    private static final Idl CONTROL = of(ControlProto.getDescriptor());

    private final FileDescriptor file;
    private final Map<String, Method> methods = new LinkedHashMap<>();
    private final Map<String, Method> byGrpcName = new HashMap<>();

    private Idl(FileDescriptor file) {
        this.file = file;
        for (ServiceDescriptor s : file.getServices()) {
            add(s.getName(), s);
        }
        for (FileDescriptor f : STANDARD) {
            for (ServiceDescriptor s : f.getServices()) {
                add(s.getFullName(), s);
            }
        }
    }

    private void add(String endpoint, ServiceDescriptor s) {
        for (MethodDescriptor m : s.getMethods()) {
            Method x = new Method(endpoint, m.getName(), m);
            methods.put(x.id(), x);
            byGrpcName.put(x.grpcName(), x);
        }
    }

    /** The agent's control IDL ({@code control.proto}) and the standard services. */
    public static Idl control() {
        return CONTROL;
    }

    /** The services of {@code file} and the standard services beside them. */
    public static Idl of(FileDescriptor file) {
        return new Idl(file);
    }

    /** The IDL file. */
    public FileDescriptor file() {
        return file;
    }

    /** The IDL file's name without its folders, for messages ({@code control.proto}). */
    public String fileName() {
        String n = file.getName();
        return n.substring(n.lastIndexOf('/') + 1);
    }

    /** Every method: the IDL's in IDL order, then the standard services'. */
    public List<Method> methods() {
        return List.copyOf(methods.values());
    }

    /** The method {@code Endpoint.Method}, or null. */
    public Method method(String endpointMethod) {
        return methods.get(endpointMethod);
    }

    /** The method with gRPC full name {@code package.Service/Method}, or null. */
    public Method byGrpcName(String fullMethodName) {
        return byGrpcName.get(fullMethodName);
    }

    /** Every endpoint name: the IDL's, in IDL order, then the standard services'. */
    public List<String> endpoints() {
        List<String> out = new ArrayList<>();
        for (Method m : methods.values()) {
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
