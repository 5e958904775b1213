package dev.interlayer.cli;

import com.google.protobuf.ByteString;
import dev.interlayer.control.ControlClient;
import dev.interlayer.control.v1.ListModulesRequest;
import dev.interlayer.control.v1.ListModulesResponse;
import dev.interlayer.control.v1.LoadFailure;
import dev.interlayer.control.v1.LoadHeader;
import dev.interlayer.control.v1.LoadModuleRequest;
import dev.interlayer.control.v1.LoadModuleResponse;
import dev.interlayer.control.v1.ModuleInfo;
import dev.interlayer.control.v1.ModuleResponse;
import dev.interlayer.control.v1.ModuleStats;
import dev.interlayer.control.v1.ModuleStatsRequest;
import dev.interlayer.control.v1.ModuleStatsResponse;
import dev.interlayer.control.v1.SetPriorityRequest;
import dev.interlayer.control.v1.SetStateRequest;
import dev.interlayer.control.v1.StateChange;
import dev.interlayer.control.v1.StuckCall;
import dev.interlayer.control.v1.UnloadModuleRequest;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** {@code interlayer modules}: list, load, unload, state, priority, stats of a running agent's modules. */
@Command(name = "modules", mixinStandardHelpOptions = true, description = "List, load, unload and steer a running agent's modules.",
        subcommands = {ModulesCommand.ListCmd.class, ModulesCommand.Load.class, ModulesCommand.Unload.class, ModulesCommand.State.class,
                ModulesCommand.Priority.class, ModulesCommand.Stats.class})
final class ModulesCommand implements Runnable {

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "missing command: list, load, unload, state, priority or stats");
    }

    static String state(ModuleInfo m) {
        return m.getState().name() + (m.getStuckCount() > 0 ? ", STUCK" : "");
    }

    /** "module x@1.0.0 onSend on connection 7 for 12 s (thread T, in J called from M)". */
    static String describe(StuckCall c) {
        return "module " + c.getModule() + " " + c.getHook() + (c.getConnectionId() > 0 ? " on connection " + c.getConnectionId() : "")
                + " for " + c.getRunningMs() / 1000 + " s (thread " + c.getThread() + ", " + c.getAt() + ")";
    }

    @Command(name = "list", mixinStandardHelpOptions = true, description = "List the loaded modules and the load failures.")
    static final class ListCmd implements Callable<Integer> {
        @Spec CommandSpec spec;
        @Mixin ClientOptions o;

        @Override
        public Integer call() {
            return Calls.unary(spec, o, x -> x.modules().list(ListModulesRequest.getDefaultInstance()), (out, r) -> {
                Table t = new Table("NAME", "VERSION", "STATE", "PRIORITY", "MODE", "ATTACHED", "FAULTS", "INTERFACES", "SOURCE");
                for (ModuleInfo m : r.getModulesList()) {
                    t.row(m.getName(), m.getVersion(), state(m), m.getPriority(), m.getAttachMode(), m.getLiveAttachments(), m.getFaults(),
                            String.join(",", m.getInterfacesList()), m.getSource());
                }
                if (t.size() == 0) {
                    out.println("no modules loaded (put jars or .so files into the agent's modules folder, or: interlayer modules load FILE)");
                } else {
                    t.print(out);
                }
                for (ModuleInfo m : r.getModulesList()) {
                    for (StuckCall call : m.getStuckList()) {
                        out.println("STUCK " + describe(call) + "; revoke it to end its connections on the other event loops");
                    }
                }
                for (LoadFailure f : r.getFailuresList()) {
                    out.println("FAILED " + (f.getModule().isEmpty() ? "" : f.getModule() + " ") + "(" + f.getSource() + "): " + f.getError());
                }
                return Main.OK;
            });
        }
    }

    @Command(name = "load", mixinStandardHelpOptions = true, description = {"Upload a module jar, or a C module object (.so), to the agent and load its modules.",
            "Progress goes to standard error when it is a terminal, or with --progress."})
    static final class Load implements Callable<Integer> {
        /** Bytes per upload message (the IDL allows up to 1 MiB). */
        static final int CHUNK = 256 * 1024;

        @Spec CommandSpec spec;
        @Mixin ClientOptions o;

        @Parameters(paramLabel = "FILE", description = "the module jar or C module object (.so)")
        Path jar;

        @Option(names = "--progress", description = "show upload progress on standard error even when it is not a terminal")
        boolean progress;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            PrintWriter err = spec.commandLine().getErr();
            return Calls.run(err, () -> {
                if (!Files.isRegularFile(jar)) {
                    throw new CliFailure(Main.INVALID, jar + (Files.exists(jar) ? " is not a file" : " does not exist") + "; give the path of a module jar or C module object (.so)");
                }
                long size = Files.size(jar);
                String sha = sha256(jar);
                LoadHeader header = LoadHeader.newBuilder().setFileName(jar.getFileName().toString()).setSize(size).setSha256(sha).build();
                Calls.checked(LoadModuleRequest.newBuilder().setHeader(header).build());
                boolean show = progress || System.console() != null;
                try (ControlClient c = o.open()) {
                    LoadModuleResponse r = upload(c, header, show ? err : null);
                    if (o.json) {
                        Calls.json(out, r);
                        return Main.OK;
                    }
                    for (ModuleInfo m : r.getModulesList()) {
                        out.println("loaded " + m.getName() + "@" + m.getVersion() + ": " + state(m) + ", priority " + m.getPriority()
                                + " (sha256 " + r.getSha256().substring(0, 12) + ")");
                    }
                    return Main.OK;
                }
            });
        }

        private LoadModuleResponse upload(ControlClient c, LoadHeader header, PrintWriter progressOut) throws Exception {
            CompletableFuture<LoadModuleResponse> result = new CompletableFuture<>();
            Semaphore ready = new Semaphore(0);
            ClientCallStreamObserver<LoadModuleRequest>[] call = new ClientCallStreamObserver[1];
            c.modulesAsync().load(new ClientResponseObserver<LoadModuleRequest, LoadModuleResponse>() {
                @Override
                public void beforeStart(ClientCallStreamObserver<LoadModuleRequest> requestStream) {
                    call[0] = requestStream;
                    requestStream.setOnReadyHandler(ready::release);
                }

                @Override
                public void onNext(LoadModuleResponse value) {
                    result.complete(value);
                }

                @Override
                public void onError(Throwable t) {
                    result.completeExceptionally(t);
                }

                @Override
                public void onCompleted() {
                    result.complete(null);
                }
            });
            ClientCallStreamObserver<LoadModuleRequest> requests = call[0];
            requests.onNext(LoadModuleRequest.newBuilder().setHeader(header).build());
            long sent = 0;
            long total = header.getSize();
            long lastShown = -1;
            byte[] buf = new byte[CHUNK];
            try (InputStream in = Files.newInputStream(jar)) {
                int n;
                while ((n = in.readNBytes(buf, 0, buf.length)) > 0 && !result.isDone()) {
                    while (!requests.isReady() && !result.isDone()) {
                        ready.tryAcquire(50, TimeUnit.MILLISECONDS);
                    }
                    requests.onNext(LoadModuleRequest.newBuilder().setChunk(ByteString.copyFrom(buf, 0, n)).build());
                    sent += n;
                    long pct = total == 0 ? 100 : sent * 100 / total;
                    if (progressOut != null && pct != lastShown) {
                        progressOut.print("\ruploading " + header.getFileName() + ": " + pct + "% (" + human(sent) + " of " + human(total) + ")");
                        progressOut.flush();
                        lastShown = pct;
                    }
                }
            }
            if (!result.isDone()) {
                requests.onCompleted();
            }
            if (progressOut != null) {
                progressOut.println(result.isCompletedExceptionally() ? "" : " - loading");
                progressOut.flush();
            }
            try {
                LoadModuleResponse r = result.get(120, TimeUnit.SECONDS);
                if (r == null) {
                    throw new CliFailure(Main.FAILURE, "the agent ended the upload without an answer");
                }
                return r;
            } catch (ExecutionException e) {
                if (e.getCause() instanceof StatusRuntimeException s) {
                    throw Calls.failure(o, s);
                }
                throw new CliFailure(Main.FAILURE, "upload failed: " + e.getCause());
            }
        }

        static String sha256(Path f) throws IOException {
            try (InputStream in = Files.newInputStream(f)) {
                MessageDigest d = MessageDigest.getInstance("SHA-256");
                byte[] buf = new byte[64 * 1024];
                int n;
                while ((n = in.read(buf)) > 0) {
                    d.update(buf, 0, n);
                }
                return HexFormat.of().formatHex(d.digest());
            } catch (java.security.NoSuchAlgorithmException e) {
                throw new IOException("SHA-256 is not available", e);
            }
        }

        static String human(long bytes) {
            if (bytes < 1024) return bytes + " B";
            if (bytes < 1024 * 1024) return String.format(Locale.ROOT, "%.1f KiB", bytes / 1024.0);
            return String.format(Locale.ROOT, "%.1f MiB", bytes / (1024.0 * 1024));
        }
    }

    @Command(name = "unload", mixinStandardHelpOptions = true, description = "Unregister a module: no new connections, detached from every"
            + " connection, then unloaded.")
    static final class Unload implements Callable<Integer> {
        @Spec CommandSpec spec;
        @Mixin ClientOptions o;
        @Parameters(paramLabel = "NAME", description = "the module's name") String name;

        @Override
        public Integer call() {
            return Calls.run(spec.commandLine().getErr(), () -> {
                UnloadModuleRequest req = Calls.checked(UnloadModuleRequest.newBuilder().setName(name).build());
                try (ControlClient c = o.open()) {
                    print(spec.commandLine().getOut(), o, Calls.call(o, c, x -> x.modules().unload(req)));
                    return Main.OK;
                }
            });
        }
    }

    static void print(PrintWriter out, ClientOptions o, ModuleResponse r) {
        if (o.json) {
            Calls.json(out, r);
        } else {
            out.println(r.getMessage());
        }
    }

    /** The states a user can ask for. */
    enum Target {
        active(StateChange.ACTIVATE), inactive(StateChange.DEACTIVATE), deprecated(StateChange.DEPRECATE), unregister(StateChange.UNREGISTER),
        revoke(StateChange.REVOKE);

        final StateChange change;

        Target(StateChange c) {
            this.change = c;
        }
    }

    @Command(name = "state", mixinStandardHelpOptions = true, description = {"Change a module's lifecycle state:",
            "  active      attach to new connections and customize them",
            "  inactive    attach, but pass traffic untouched",
            "  deprecated  keep customizing current connections, attach to no new one",
            "  unregister  detach from every connection, then unload",
            "  revoke      detach everywhere at once, then unload"})
    static final class State implements Callable<Integer> {
        @Spec CommandSpec spec;
        @Mixin ClientOptions o;
        @Parameters(index = "0", paramLabel = "NAME", description = "the module's name") String name;
        @Parameters(index = "1", paramLabel = "STATE", description = "one of: ${COMPLETION-CANDIDATES}") Target state;

        @Override
        public Integer call() {
            return Calls.run(spec.commandLine().getErr(), () -> {
                SetStateRequest req = Calls.checked(SetStateRequest.newBuilder().setName(name).setState(state.change).build());
                try (ControlClient c = o.open()) {
                    print(spec.commandLine().getOut(), o, Calls.call(o, c, x -> x.modules().setState(req)));
                    return Main.OK;
                }
            });
        }
    }

    @Command(name = "priority", mixinStandardHelpOptions = true, description = "Change a module's chain position for new connections (lower runs first on SEND).")
    static final class Priority implements Callable<Integer> {
        @Spec CommandSpec spec;
        @Mixin ClientOptions o;
        @Parameters(index = "0", paramLabel = "NAME", description = "the module's name") String name;
        @Parameters(index = "1", paramLabel = "N", description = "the new priority, -1000000..1000000") int priority;

        @Override
        public Integer call() {
            return Calls.run(spec.commandLine().getErr(), () -> {
                SetPriorityRequest req = Calls.checked(SetPriorityRequest.newBuilder().setName(name).setPriority(priority).build());
                try (ControlClient c = o.open()) {
                    print(spec.commandLine().getOut(), o, Calls.call(o, c, x -> x.modules().setPriority(req)));
                    return Main.OK;
                }
            });
        }
    }

    @Command(name = "stats", mixinStandardHelpOptions = true, description = "Show per-module counters (all modules, or one).")
    static final class Stats implements Callable<Integer> {
        @Spec CommandSpec spec;
        @Mixin ClientOptions o;
        @Parameters(arity = "0..1", paramLabel = "NAME", description = "only this module") String name;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            return Calls.run(spec.commandLine().getErr(), () -> {
                ModuleStatsRequest req = Calls.checked(ModuleStatsRequest.newBuilder().setName(name == null ? "" : name).build());
                try (ControlClient c = o.open()) {
                    ModuleStatsResponse r = Calls.call(o, c, x -> x.modules().stats(req));
                    if (o.json) {
                        Calls.json(out, r);
                        return Main.OK;
                    }
                    Table t = new Table("MODULE", "ATTACHES", "LIVE", "DETACHES", "FAULTS", "CHUNKS S/R", "BYTES IN S/R", "BYTES OUT S/R", "VERDICTS");
                    for (ModuleStats s : r.getModulesList()) {
                        StringBuilder v = new StringBuilder();
                        s.getVerdictsMap().forEach((k, n) -> {
                            if (n > 0) v.append(v.isEmpty() ? "" : " ").append(k).append('=').append(n);
                        });
                        t.row(s.getName() + "@" + s.getVersion(), s.getAttaches(), s.getLive(), s.getDetaches(), s.getFaults(),
                                s.getChunksSend() + "/" + s.getChunksRecv(), s.getBytesInSend() + "/" + s.getBytesInRecv(),
                                s.getBytesOutSend() + "/" + s.getBytesOutRecv(), v);
                    }
                    t.print(out);
                    return Main.OK;
                }
            });
        }
    }
}
