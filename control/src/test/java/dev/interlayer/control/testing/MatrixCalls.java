package dev.interlayer.control.testing;

import com.google.protobuf.ByteString;
import dev.interlayer.control.ControlClient;
import dev.interlayer.control.v1.AttachProcessRequest;
import dev.interlayer.control.v1.AttachRequest;
import dev.interlayer.control.v1.AuditQuery;
import dev.interlayer.control.v1.DetachProcessRequest;
import dev.interlayer.control.v1.DetachRequest;
import dev.interlayer.control.v1.HealthRequest;
import dev.interlayer.control.v1.ListConnectionsRequest;
import dev.interlayer.control.v1.ListListenersRequest;
import dev.interlayer.control.v1.ListModulesRequest;
import dev.interlayer.control.v1.LoadHeader;
import dev.interlayer.control.v1.LoadModuleRequest;
import dev.interlayer.control.v1.LoadModuleResponse;
import dev.interlayer.control.v1.ModuleControlRequest;
import dev.interlayer.control.v1.ModuleStatsRequest;
import dev.interlayer.control.v1.ReloadConfigRequest;
import dev.interlayer.control.v1.ReloadPolicyRequest;
import dev.interlayer.control.v1.ReloadTlsRequest;
import dev.interlayer.control.v1.ReopenAuditRequest;
import dev.interlayer.control.v1.SetPriorityRequest;
import dev.interlayer.control.v1.SetStateRequest;
import dev.interlayer.control.v1.StateChange;
import dev.interlayer.control.v1.SubscribeRequest;
import dev.interlayer.control.v1.UnloadModuleRequest;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.stub.StreamObserver;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * One well-formed call of every method the endpoint serves (the IDL's and the standard health and reflection services'),
 * for the policy matrix: run in-process, or as a
 * separate process ({@link #main}) under another user. Each call's outcome is its status code and
 * description ({@code OK} when the handler answered).
 *
 * <p>Calls that change things work on the module {@code victim} (loaded by {@code Modules.Load} from the
 * jar given) and the module {@code ctl} (answers control), in an order that leaves the agent usable.
 */
public final class MatrixCalls {

    /** The methods, in the order they are called. */
    public static final String[] ORDER = {"Health.Check", "grpc.health.v1.Health.Check", "grpc.health.v1.Health.Watch",
            "grpc.reflection.v1.ServerReflection.ServerReflectionInfo", "grpc.reflection.v1alpha.ServerReflection.ServerReflectionInfo", "Modules.List", "Modules.Stats", "Listeners.List", "Connections.List",
            "Events.Subscribe", "Audit.Query", "Audit.Tail", "Audit.Reopen", "Modules.Load", "Modules.SetPriority", "Modules.SetState", "Modules.Control",
            "Connections.Attach", "Connections.Detach", "Connections.AttachProcess", "Connections.DetachProcess", "Policy.Reload", "Listeners.ReloadTls", "Config.Reload", "Modules.Unload"};

    private MatrixCalls() {}

    /** Runs every call; returns {@code Endpoint.Method -> "CODE description"}. */
    public static Map<String, String> all(ControlClient c, Path victimJar) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String m : ORDER) {
            out.put(m, outcome(() -> call(c, m, victimJar)));
        }
        return out;
    }

    private static String outcome(Runnable r) {
        try {
            r.run();
            return "OK";
        } catch (StatusRuntimeException e) {
            return e.getStatus().getCode() + " " + e.getStatus().getDescription();
        }
    }

    private static void call(ControlClient c, String method, Path victimJar) {
        switch (method) {
            case "Health.Check" -> c.health().check(HealthRequest.getDefaultInstance());
            case "grpc.health.v1.Health.Check" -> HealthGrpc.newBlockingStub(c.channel()).check(HealthCheckRequest.getDefaultInstance());
            case "grpc.health.v1.Health.Watch" -> firstOf(c, ctx -> HealthGrpc.newBlockingStub(c.channel()).watch(HealthCheckRequest.getDefaultInstance()));
            case "grpc.reflection.v1.ServerReflection.ServerReflectionInfo" -> reflectV1(c);
            case "grpc.reflection.v1alpha.ServerReflection.ServerReflectionInfo" -> reflectV1alpha(c);
            case "Modules.List" -> c.modules().list(ListModulesRequest.getDefaultInstance());
            case "Modules.Stats" -> c.modules().stats(ModuleStatsRequest.getDefaultInstance());
            case "Listeners.List" -> c.listeners().list(ListListenersRequest.getDefaultInstance());
            case "Connections.List" -> c.connections().list(ListConnectionsRequest.getDefaultInstance());
            case "Events.Subscribe" -> firstOf(c, ctx -> c.events().subscribe(SubscribeRequest.getDefaultInstance()));
            case "Audit.Query" -> c.audit().query(AuditQuery.newBuilder().setLimit(5).build());
            case "Audit.Tail" -> firstOf(c, ctx -> c.audit().tail(AuditQuery.newBuilder().setLimit(1).build()));
            case "Audit.Reopen" -> c.audit().reopen(ReopenAuditRequest.getDefaultInstance());
            case "Modules.Load" -> load(c, victimJar);
            case "Modules.SetPriority" -> c.modules().setPriority(SetPriorityRequest.newBuilder().setName("victim").setPriority(7).build());
            case "Modules.SetState" -> c.modules().setState(SetStateRequest.newBuilder().setName("victim").setState(StateChange.DEACTIVATE).build());
            case "Modules.Control" -> c.modules().control(ModuleControlRequest.newBuilder().setName("ctl").setCommand("status").build());
            case "Connections.Attach" -> c.connections().attach(AttachRequest.newBuilder().setConnectionId(987654).setModule("victim").build());
            case "Connections.Detach" -> c.connections().detach(DetachRequest.newBuilder().setConnectionId(987654).setModule("victim").build());
            case "Connections.AttachProcess" -> c.connections().attachProcess(AttachProcessRequest.newBuilder().setModule("victim").build());
            case "Connections.DetachProcess" -> c.connections().detachProcess(DetachProcessRequest.newBuilder().setId(987654).build());
            case "Policy.Reload" -> c.policy().reload(ReloadPolicyRequest.getDefaultInstance());
            case "Listeners.ReloadTls" -> c.listeners().reloadTls(ReloadTlsRequest.getDefaultInstance());
            case "Config.Reload" -> c.config().reload(ReloadConfigRequest.getDefaultInstance());
            case "Modules.Unload" -> c.modules().unload(UnloadModuleRequest.newBuilder().setName("victim").build());
            default -> throw new IllegalArgumentException(method);
        }
    }

    /** Reads the first message of a server stream, then cancels it. */
    private static void firstOf(ControlClient c, java.util.function.Function<Context, Iterator<?>> open) {
        Context.CancellableContext ctx = Context.current().withCancellation();
        try {
            ctx.call(() -> {
                Iterator<?> it = open.apply(ctx);
                it.hasNext();
                it.next();
                return null;
            });
        } catch (StatusRuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw Status.UNKNOWN.withDescription(e.toString()).asRuntimeException();
        } finally {
            ctx.cancel(null);
        }
    }

    private static void reflectV1(ControlClient c) {
        MatrixCalls.<io.grpc.reflection.v1.ServerReflectionRequest, io.grpc.reflection.v1.ServerReflectionResponse>firstAnswer(observer ->
                io.grpc.reflection.v1.ServerReflectionGrpc.newStub(c.channel()).serverReflectionInfo(observer),
                io.grpc.reflection.v1.ServerReflectionRequest.newBuilder().setListServices("").build());
    }

    @SuppressWarnings("deprecation") // v1alpha: served for older tools, so checked like the rest
    private static void reflectV1alpha(ControlClient c) {
        MatrixCalls.<io.grpc.reflection.v1alpha.ServerReflectionRequest, io.grpc.reflection.v1alpha.ServerReflectionResponse>firstAnswer(observer ->
                io.grpc.reflection.v1alpha.ServerReflectionGrpc.newStub(c.channel()).serverReflectionInfo(observer),
                io.grpc.reflection.v1alpha.ServerReflectionRequest.newBuilder().setListServices("").build());
    }

    /** Sends one message on a bidi stream, waits for the first answer, then ends the stream. */
    private static <Q, R> void firstAnswer(java.util.function.Function<StreamObserver<R>, StreamObserver<Q>> open, Q request) {
        CompletableFuture<R> answer = new CompletableFuture<>();
        StreamObserver<Q> requests = open.apply(new StreamObserver<>() {
            @Override public void onNext(R v) { answer.complete(v); }
            @Override public void onError(Throwable t) { answer.completeExceptionally(t); }
            @Override public void onCompleted() {
                answer.completeExceptionally(Status.UNKNOWN.withDescription("the stream ended without an answer").asRuntimeException());
            }
        });
        requests.onNext(request);
        try {
            answer.get(30, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            if (e.getCause() instanceof StatusRuntimeException s) {
                throw s;
            }
            throw Status.UNKNOWN.withDescription(e.getCause().toString()).asRuntimeException();
        } catch (Exception e) {
            throw Status.UNKNOWN.withDescription(e.toString()).asRuntimeException();
        } finally {
            requests.onCompleted();
        }
    }

    /** Uploads {@code jar} in 4 KiB chunks. */
    public static LoadModuleResponse load(ControlClient c, Path jar) {
        try {
            byte[] bytes = Files.readAllBytes(jar);
            CompletableFuture<LoadModuleResponse> done = new CompletableFuture<>();
            StreamObserver<LoadModuleRequest> up = c.modulesAsync().load(new StreamObserver<>() {
                @Override public void onNext(LoadModuleResponse v) { done.complete(v); }
                @Override public void onError(Throwable t) { done.completeExceptionally(t); }
                @Override public void onCompleted() { done.complete(null); }
            });
            up.onNext(LoadModuleRequest.newBuilder().setHeader(LoadHeader.newBuilder().setFileName(jar.getFileName().toString())
                    .setSize(bytes.length)).build());
            for (int off = 0; off < bytes.length; off += 4096) {
                up.onNext(LoadModuleRequest.newBuilder().setChunk(ByteString.copyFrom(bytes, off, Math.min(4096, bytes.length - off))).build());
            }
            up.onCompleted();
            return done.get(30, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            if (e.getCause() instanceof StatusRuntimeException s) {
                throw s;
            }
            throw Status.UNKNOWN.withDescription(e.getCause().toString()).asRuntimeException();
        } catch (Exception e) {
            throw Status.UNKNOWN.withDescription(e.toString()).asRuntimeException();
        }
    }

    /** {@code MatrixCalls SOCKET VICTIM_JAR}: prints one line per method, {@code Endpoint.Method<TAB>CODE description}. */
    public static void main(String[] args) {
        try (ControlClient c = ControlClient.unix(Path.of(args[0]))) {
            for (Map.Entry<String, String> e : all(c, Path.of(args[1])).entrySet()) {
                System.out.println(e.getKey() + "\t" + e.getValue().replace('\n', ' '));
            }
        }
    }

}
