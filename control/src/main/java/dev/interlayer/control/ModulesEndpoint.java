package dev.interlayer.control;

import dev.interlayer.api.ControlRequest;
import dev.interlayer.api.ControlResponse;
import dev.interlayer.api.SocketModule;
import dev.interlayer.control.v1.ListModulesRequest;
import dev.interlayer.control.v1.ListModulesResponse;
import dev.interlayer.control.v1.LoadHeader;
import dev.interlayer.control.v1.LoadModuleRequest;
import dev.interlayer.control.v1.LoadModuleResponse;
import dev.interlayer.control.v1.ModuleControlRequest;
import dev.interlayer.control.v1.ModuleControlResponse;
import dev.interlayer.control.v1.ModuleResponse;
import dev.interlayer.control.v1.ModuleStatsRequest;
import dev.interlayer.control.v1.ModuleStatsResponse;
import dev.interlayer.control.v1.ModulesGrpc;
import dev.interlayer.control.v1.SetPriorityRequest;
import dev.interlayer.control.v1.SetStateRequest;
import dev.interlayer.control.v1.UnloadModuleRequest;
import dev.interlayer.engine.StuckCall;
import dev.interlayer.runtime.Failure;
import dev.interlayer.runtime.Hooks;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleCallException;
import dev.interlayer.runtime.ModuleLoadException;
import dev.interlayer.runtime.ModuleState;
import dev.interlayer.runtime.ParamValues;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.System.Logger.Level;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * The {@code Modules} endpoint: list, load (jar upload), unload, state, priority, statistics and module
 * control requests. Gets only messages the security module has checked and granted.
 */
final class ModulesEndpoint extends ModulesGrpc.ModulesImplBase {

    private static final System.Logger LOG = System.getLogger("interlayer.control");

    private final ControlTarget target;
    private final Departures departures;

    ModulesEndpoint(ControlTarget target, Departures departures) {
        this.target = target;
        this.departures = departures;
    }

    static StatusRuntimeException notFound(String name) {
        return Status.NOT_FOUND.withDescription("no module named '" + name + "' is loaded; interlayer modules list shows the loaded modules")
                .asRuntimeException();
    }

    /** Not found, with how the module left and how to bring it back when it left while the endpoint ran. */
    private StatusRuntimeException notLoaded(String name) {
        return departures.last(name).map(d -> Status.NOT_FOUND.withDescription("no module named '" + name + "' is loaded: " + d.what()
                        + ", and a module that left does not come back by itself; " + Departures.revival(d.source())).asRuntimeException())
                .orElseGet(() -> notFound(name));
    }

    private LoadedModule find(String name) {
        return target.registry().find(name).orElseThrow(() -> notLoaded(name));
    }

    /** The loaded instance {@code name@version}: of several, the one that is not leaving, else the newest. */
    private LoadedModule find(String name, String version) {
        if (version.isEmpty()) {
            return find(name);
        }
        LoadedModule best = null;
        for (LoadedModule m : target.registry().modules()) {
            if (m.name().equals(name) && m.version().equals(version) && (best == null || !m.state().leaving())) {
                best = m;
            }
        }
        if (best == null) {
            List<String> loaded = target.registry().modules().stream().filter(m -> m.name().equals(name)).map(m -> m.version() + " (" + m.state() + ")")
                    .toList();
            throw loaded.isEmpty() ? notLoaded(name) : Status.NOT_FOUND.withDescription("no module " + name + "@" + version + " is loaded; the loaded"
                    + " versions of " + name + " are " + String.join(", ", loaded)).asRuntimeException();
        }
        return best;
    }

    @Override
    public void list(ListModulesRequest request, StreamObserver<ListModulesResponse> out) {
        ListModulesResponse.Builder b = ListModulesResponse.newBuilder();
        List<StuckCall> stuck = target.engine().stuckCalls();
        for (LoadedModule m : target.registry().modules()) {
            b.addModules(Protos.module(m, stuck));
        }
        for (Failure f : target.registry().failures()) {
            b.addFailures(Protos.failure(f));
        }
        out.onNext(b.build());
        out.onCompleted();
    }

    @Override
    public void unload(UnloadModuleRequest request, StreamObserver<ModuleResponse> out) {
        LoadedModule m = find(request.getName());
        int live = m.liveAttachments();
        m.unregister();
        out.onNext(ModuleResponse.newBuilder().setModule(Protos.module(m))
                .setMessage(m.id() + " is unregistering: detached from " + live + " connection" + (live == 1 ? "" : "s")
                        + "; it unloads once the last call into it has returned and does not come back by itself; "
                        + Departures.revival(m.pkg().location())).build());
        out.onCompleted();
    }

    @Override
    public void setState(SetStateRequest request, StreamObserver<ModuleResponse> out) {
        LoadedModule m = find(request.getName());
        ModuleState from = m.state();
        int live = m.liveAttachments();
        ModuleState to = switch (request.getState()) {
            case ACTIVATE -> ModuleState.ACTIVE;
            case DEACTIVATE -> ModuleState.INACTIVE;
            case DEPRECATE -> ModuleState.DEPRECATED;
            case UNREGISTER -> ModuleState.UNREGISTERING;
            case REVOKE -> ModuleState.REVOKED;
            default -> throw Status.INVALID_ARGUMENT.withDescription("state must be one of ACTIVATE, DEACTIVATE, DEPRECATE, UNREGISTER, REVOKE")
                    .asRuntimeException();
        };
        try {
            m.setState(to);
        } catch (IllegalStateException e) {
            String leaving = from.leaving() ? "; " + Departures.revival(m.pkg().location()) : "";
            throw Status.FAILED_PRECONDITION.withDescription(e.getMessage() + leaving).asRuntimeException();
        }
        List<StuckCall> stuck = target.engine().stuckCalls().stream().filter(c -> c.moduleId().equals(m.id())).toList();
        String held = stuck.isEmpty() ? "" : to == ModuleState.REVOKED
                ? "; its connections on the other event loops are reset; " + stuck.size() + " event loop(s) stay stuck in it until the call returns"
                : "; " + stuck.size() + " event loop(s) are stuck in it: revoke it to end its connections on the others";
        out.onNext(ModuleResponse.newBuilder().setModule(Protos.module(m, stuck))
                .setMessage(m.id() + ": " + from + " -> " + m.state() + ": " + effect(m, from, m.state(), live) + held).build());
        out.onCompleted();
    }

    /** What a change of state does, for the reply: the lifecycle table of docs/architecture.md, for this module. */
    static String effect(LoadedModule m, ModuleState from, ModuleState to, int live) {
        String on = live + " connection" + (live == 1 ? "" : "s");
        if (from == to) {
            return "it was " + to + " already; nothing changed";
        }
        return switch (to) {
            case ACTIVE -> "it attaches to new connections its selector matches and customizes them"
                    + (from.customizes() ? "" : "; its data hooks run again on the " + on + " it is on");
            case INACTIVE -> "it attaches to new connections its selector matches but passes their traffic untouched, and the traffic of the "
                    + on + " it is on: its data hooks are not called until it is set active";
            case DEPRECATED -> "it attaches to no new connection and " + (from.customizes() ? "keeps customizing" : "customizes again")
                    + " the " + on + " it is on; it stays loaded (unless its jar was replaced or removed: then it unloads after its last"
                    + " connection ends): set it active to take new connections again, or unregister it";
            case UNREGISTERING -> "it attaches to nothing new and is detached from the " + on + " it was on; it unloads once the last call"
                    + " into it has returned and does not come back by itself; " + Departures.revival(m.pkg().location());
            case REVOKED -> "it was detached from the " + on + " it was on at once and unloads now; it does not come back by itself; "
                    + Departures.revival(m.pkg().location());
            case FAILED -> "it failed";
        };
    }

    @Override
    public void setPriority(SetPriorityRequest request, StreamObserver<ModuleResponse> out) {
        LoadedModule m = find(request.getName());
        int from = m.priority();
        m.setPriority(request.getPriority());
        out.onNext(ModuleResponse.newBuilder().setModule(Protos.module(m))
                .setMessage(m.id() + ": priority " + from + " -> " + request.getPriority() + " (new connections; open chains keep their order)").build());
        out.onCompleted();
    }

    @Override
    public void stats(ModuleStatsRequest request, StreamObserver<ModuleStatsResponse> out) {
        ModuleStatsResponse.Builder b = ModuleStatsResponse.newBuilder();
        if (request.getName().isEmpty()) {
            for (LoadedModule m : target.registry().modules()) {
                b.addModules(Protos.stats(m));
            }
        } else {
            b.addModules(Protos.stats(find(request.getName())));
        }
        out.onNext(b.build());
        out.onCompleted();
    }

    /**
     * The largest body a module's control reply may carry: well under the 2 MiB a control message may be, so the reply
     * always fits, and small enough that a module cannot make the agent hold large replies for many callers at once.
     */
    static final int MAX_CONTROL_REPLY = 1 << 20;

    @Override
    public void control(ModuleControlRequest request, StreamObserver<ModuleControlResponse> out) {
        LoadedModule m = find(request.getName(), request.getVersion());
        if (!(m.module() instanceof SocketModule<?> sm) || !m.has(Hooks.CONTROL)) {
            throw Status.FAILED_PRECONDITION.withDescription("module " + m.id() + " does not answer control requests (it implements no control hook)")
                    .asRuntimeException();
        }
        Caller caller = SecurityModule.CALLER.get();
        ControlRequest req = new ControlRequest(request.getCommand(), request.getBody().toByteArray(), caller == null ? "" : caller.toString());
        ControlResponse resp;
        try {
            resp = m.callModuleWide("control", () -> sm.control(req));
        } catch (ModuleCallException e) {
            throw Status.INTERNAL.withDescription(e.getMessage()).asRuntimeException();
        } catch (IllegalStateException e) {
            throw Status.FAILED_PRECONDITION.withDescription(e.getMessage()).asRuntimeException();
        }
        if (resp == null) {
            throw Status.INTERNAL.withDescription("module " + m.id() + " answered the control request with null (a bug in the module)").asRuntimeException();
        }
        byte[] body = resp.body() == null ? new byte[0] : resp.body();
        if (body.length > MAX_CONTROL_REPLY) {
            String why = "answered control command '" + request.getCommand() + "' with " + ParamValues.formatSize(body.length)
                    + ", more than the " + ParamValues.formatSize(MAX_CONTROL_REPLY) + " a control reply may carry";
            m.recordFault("control", -1, why);
            throw Status.RESOURCE_EXHAUSTED.withDescription("module " + m.id() + " " + why
                    + " (counted as a fault); ask it for less, e.g. a page of its records").asRuntimeException();
        }
        out.onNext(ModuleControlResponse.newBuilder().setOk(resp.ok()).setBody(com.google.protobuf.ByteString.copyFrom(body)).build());
        out.onCompleted();
    }

    @Override
    public StreamObserver<LoadModuleRequest> load(StreamObserver<LoadModuleResponse> out) {
        return new Upload(out);
    }

    /**
     * One jar upload: the header names the file and its size, the chunks are written to a file in the
     * upload folder as they come, and the jar is loaded when the client half-closes.
     */
    private final class Upload implements StreamObserver<LoadModuleRequest> {
        private final StreamObserver<LoadModuleResponse> out;
        private LoadHeader header;
        private Path file;
        private OutputStream stream;
        private MessageDigest digest;
        private long received;
        private boolean failed;

        Upload(StreamObserver<LoadModuleResponse> out) {
            this.out = out;
        }

        @Override
        public void onNext(LoadModuleRequest r) {
            if (failed) {
                return;
            }
            try {
                if (r.hasHeader()) {
                    if (header != null) {
                        fail(Status.INVALID_ARGUMENT.withDescription("the upload has a second header; send one header, then the chunks"));
                        return;
                    }
                    header = r.getHeader();
                    Files.createDirectories(target.uploadDir());
                    file = Files.createTempFile(target.uploadDir(), "upload-", "-" + header.getFileName());
                    stream = Files.newOutputStream(file);
                    digest = MessageDigest.getInstance("SHA-256");
                    return;
                }
                if (header == null) {
                    fail(Status.INVALID_ARGUMENT.withDescription("the upload must start with its header (file name and size), then the chunks"));
                    return;
                }
                byte[] chunk = r.getChunk().toByteArray();
                received += chunk.length;
                if (received > header.getSize()) {
                    fail(Status.INVALID_ARGUMENT.withDescription("the upload carries more than the " + header.getSize() + " bytes its header announced"));
                    return;
                }
                stream.write(chunk);
                digest.update(chunk);
            } catch (IOException e) {
                fail(Status.UNAVAILABLE.withDescription("the agent cannot store the upload in " + target.uploadDir() + ": " + e.getMessage()));
            } catch (NoSuchAlgorithmException e) {
                fail(Status.INTERNAL.withDescription("SHA-256 is not available in this JVM"));
            }
        }

        private void fail(Status s) {
            failed = true;
            cleanUp();
            out.onError(s.asRuntimeException());
        }

        private void cleanUp() {
            try {
                if (stream != null) {
                    stream.close();
                }
                if (file != null) {
                    Files.deleteIfExists(file);
                }
            } catch (IOException e) {
                LOG.log(Level.WARNING, "cannot delete the upload {0}: {1}", file, e.toString());
            }
        }

        @Override
        public void onError(Throwable t) {
            cleanUp(); // the client went away: nothing to load
        }

        @Override
        public void onCompleted() {
            if (failed) {
                return;
            }
            if (header == null) {
                fail(Status.INVALID_ARGUMENT.withDescription("the upload had no header"));
                return;
            }
            try {
                stream.close();
                stream = null;
                if (received != header.getSize()) {
                    fail(Status.INVALID_ARGUMENT.withDescription("the upload ended after " + received + " of the " + header.getSize()
                            + " bytes its header announced; send the whole jar"));
                    return;
                }
                String sha = HexFormat.of().formatHex(digest.digest());
                if (!header.getSha256().isEmpty() && !header.getSha256().equals(sha)) {
                    fail(Status.INVALID_ARGUMENT.withDescription("the upload's SHA-256 is " + sha + " but the header says " + header.getSha256()
                            + "; the jar was damaged on the way or the header is wrong"));
                    return;
                }
                List<LoadedModule> loaded;
                try {
                    loaded = target.registry().load(file, target.moduleConfigs());
                } catch (ModuleLoadException e) {
                    fail(Status.FAILED_PRECONDITION.withDescription(header.getFileName() + " did not load: " + e.getMessage()));
                    return;
                }
                LoadModuleResponse.Builder b = LoadModuleResponse.newBuilder().setSha256(sha);
                loaded.forEach(m -> b.addModules(Protos.module(m)));
                cleanUp();
                out.onNext(b.build());
                out.onCompleted();
            } catch (IOException e) {
                fail(Status.UNAVAILABLE.withDescription("the agent cannot store the upload: " + e.getMessage()));
            }
        }
    }
}
