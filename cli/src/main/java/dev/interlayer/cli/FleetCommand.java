package dev.interlayer.cli;

import com.google.protobuf.ByteString;
import com.google.protobuf.MessageOrBuilder;
import dev.interlayer.control.Constraints;
import dev.interlayer.control.ControlClient;
import dev.interlayer.orchestrator.OrchestratorSettings;
import dev.interlayer.orchestrator.v1.AgentStatus;
import dev.interlayer.orchestrator.v1.ChangeResponse;
import dev.interlayer.orchestrator.v1.DeployRequest;
import dev.interlayer.orchestrator.v1.DeployResponse;
import dev.interlayer.orchestrator.v1.Deployment;
import dev.interlayer.orchestrator.v1.FleetGrpc;
import dev.interlayer.orchestrator.v1.Label;
import dev.interlayer.orchestrator.v1.ModuleRef;
import dev.interlayer.orchestrator.v1.OrchestratorProto;
import dev.interlayer.orchestrator.v1.ReportedModule;
import dev.interlayer.orchestrator.v1.AbortRolloutRequest;
import dev.interlayer.orchestrator.v1.RevokeRequest;
import dev.interlayer.orchestrator.v1.RolloutRequest;
import dev.interlayer.orchestrator.v1.RolloutStatus;
import dev.interlayer.orchestrator.v1.RolloutsRequest;
import dev.interlayer.orchestrator.v1.RotateRequest;
import dev.interlayer.orchestrator.v1.SetPriorityRequest;
import dev.interlayer.orchestrator.v1.SetStateRequest;
import dev.interlayer.orchestrator.v1.StatusRequest;
import dev.interlayer.orchestrator.v1.StatusResponse;
import dev.interlayer.orchestrator.v1.Target;
import dev.interlayer.orchestrator.v1.TokenRequest;
import dev.interlayer.orchestrator.v1.UploadHeader;
import dev.interlayer.orchestrator.v1.UploadRequest;
import dev.interlayer.orchestrator.v1.UploadResponse;
import dev.interlayer.orchestrator.v1.VerifyRequest;
import dev.interlayer.runtime.ModuleLoadException;
import dev.interlayer.runtime.ModuleRegistry;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code interlayer fleet ...}: operations on the fleet, through an orchestrator's Unix socket. */
@Command(name = "fleet", mixinStandardHelpOptions = true,
        description = "Manage a fleet of agents through an orchestrator (see docs/orchestrator.md).",
        subcommands = {FleetCommand.Token.class, FleetCommand.Upload.class, FleetCommand.Deploy.class, FleetCommand.Rotate.class,
                FleetCommand.Toggle.class, FleetCommand.Priority.class, FleetCommand.Deprecate.class, FleetCommand.Revoke.class,
                FleetCommand.Status.class, FleetCommand.Verify.class, FleetCommand.Rollout.class})
final class FleetCommand implements Runnable {

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new picocli.CommandLine.ParameterException(spec.commandLine(), "missing command: use one of token, upload, deploy, rotate,"
                + " toggle, priority, deprecate, revoke, status, verify, rollout");
    }

    /** The orchestrator's socket and the output format, for every fleet command. */
    static final class Where {
        @Option(names = "--socket", paramLabel = "PATH", description = "the orchestrator's socket (default: $INTERLAYER_ORCHESTRATOR_SOCKET,"
                + " else /run/interlayer/orchestrator.sock for root)")
        Path socket;

        @Option(names = "--json", description = "print JSON for scripts instead of text")
        boolean json;

        private static final class Checks {
            static final Constraints CONSTRAINTS = Constraints.resource("/interlayer/orchestrator/v1/constraints.yaml",
                    dev.interlayer.control.Idl.of(OrchestratorProto.getDescriptor()));
        }

        Path path() {
            return socket != null ? socket : OrchestratorSettings.defaultSocket();
        }

        <T extends com.google.protobuf.Message> T checked(T request) {
            Checks.CONSTRAINTS.check(request).ifPresent(v -> {
                throw new CliFailure(Main.INVALID, "invalid request: " + v.message());
            });
            return request;
        }

        /** Opens the socket, calls, maps errors; prints JSON or {@code text}. */
        <R extends MessageOrBuilder> int call(CommandSpec spec, Function<FleetGrpc.FleetBlockingStub, R> call, Calls.Text<R> text) {
            PrintWriter out = spec.commandLine().getOut();
            return Calls.run(spec.commandLine().getErr(), () -> {
                try (ControlClient c = ControlClient.unix(path())) {
                    R r;
                    try {
                        r = call.apply(FleetGrpc.newBlockingStub(c.channel()).withDeadlineAfter(60, TimeUnit.SECONDS));
                    } catch (StatusRuntimeException e) {
                        throw failure(e);
                    }
                    if (json) {
                        Calls.json(out, r);
                        return Main.OK;
                    }
                    return text.print(out, r);
                }
            });
        }

        CliFailure failure(StatusRuntimeException e) {
            String d = e.getStatus().getDescription() == null ? e.getStatus().getCode().toString() : e.getStatus().getDescription();
            return switch (e.getStatus().getCode()) {
                case UNAVAILABLE -> Files.exists(path()) && !d.contains("database")
                        ? new CliFailure(Main.UNREACHABLE, "no orchestrator answers at " + path() + " (" + d + "); it may have stopped")
                        : Files.exists(path()) ? new CliFailure(Main.FAILURE, d)
                        : new CliFailure(Main.UNREACHABLE, "no orchestrator at " + path() + ": start one with interlayer orchestrator, or give its socket with --socket PATH");
                case PERMISSION_DENIED, UNAUTHENTICATED -> new CliFailure(Main.DENIED, d);
                case INVALID_ARGUMENT -> new CliFailure(Main.INVALID, d);
                default -> new CliFailure(Main.FAILURE, d);
            };
        }
    }

    @Command(name = "token", mixinStandardHelpOptions = true, description = "Make a one-time enrollment token for an agent: put it into the"
            + " file its agent.orchestrator.token-file names.")
    static final class Token implements Callable<Integer> {
        @Spec
        CommandSpec spec;
        @picocli.CommandLine.Mixin
        Where where;
        @Parameters(paramLabel = "AGENT", description = "the name the agent gets (its certificate's CN)")
        String agent;
        @Option(names = "--label", paramLabel = "KEY=VALUE", description = "a label of the agent, for deploy --to label=KEY=VALUE; repeat for several")
        List<String> labels = new ArrayList<>();
        @Option(names = "--ttl", paramLabel = "SECONDS", defaultValue = "3600", description = "how long the token may be used (default: ${DEFAULT-VALUE})")
        int ttl;

        @Override
        public Integer call() {
            TokenRequest.Builder b = TokenRequest.newBuilder().setAgent(agent).setTtlSeconds(ttl);
            for (String l : labels) {
                int eq = l.indexOf('=');
                if (eq <= 0) {
                    spec.commandLine().getErr().println("interlayer: --label " + l + ": expected KEY=VALUE, e.g. zone=eu");
                    return Main.USAGE;
                }
                b.addLabels(Label.newBuilder().setKey(l.substring(0, eq)).setValue(l.substring(eq + 1)));
            }
            TokenRequest r = where.checked(b.build());
            return where.call(spec, s -> s.token(r), (out, t) -> {
                out.println(t.getToken());
                spec.commandLine().getErr().println("interlayer: one-time token for agent " + agent + ", valid until "
                        + Instant.ofEpochMilli(t.getExpiresUnixMs()) + "; it is shown once");
                return Main.OK;
            });
        }
    }

    @Command(name = "upload", mixinStandardHelpOptions = true, description = "Upload a module jar: the orchestrator signs it with its"
            + " module-signing key and keeps it; every agent checks that signature before loading it.")
    static final class Upload implements Callable<Integer> {
        @Spec
        CommandSpec spec;
        @picocli.CommandLine.Mixin
        Where where;
        @Parameters(paramLabel = "JAR", description = "the module jar")
        Path jar;

        @Override
        public Integer call() {
            PrintWriter err = spec.commandLine().getErr();
            return Calls.run(err, () -> {
                if (!Files.isReadable(jar)) {
                    throw new CliFailure(Main.USAGE, jar + (Files.exists(jar) ? " cannot be read" : " does not exist"));
                }
                byte[] bytes = Files.readAllBytes(jar);
                List<ModuleRef> modules = modules(jar);
                UploadHeader header = where.checked(UploadHeader.newBuilder().setFileName(jar.getFileName().toString()).setSize(bytes.length)
                        .setSha256(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes))).addAllModules(modules).build());
                try (ControlClient c = ControlClient.unix(where.path())) {
                    CompletableFuture<UploadResponse> done = new CompletableFuture<>();
                    StreamObserver<UploadRequest> up = FleetGrpc.newStub(c.channel()).withDeadlineAfter(120, TimeUnit.SECONDS).upload(new StreamObserver<>() {
                        @Override
                        public void onNext(UploadResponse r) {
                            done.complete(r);
                        }

                        @Override
                        public void onError(Throwable t) {
                            done.completeExceptionally(t);
                        }

                        @Override
                        public void onCompleted() {
                            // the answer came in onNext
                        }
                    });
                    up.onNext(UploadRequest.newBuilder().setHeader(header).build());
                    for (int off = 0; off < bytes.length; off += 1 << 20) {
                        up.onNext(UploadRequest.newBuilder().setChunk(ByteString.copyFrom(bytes, off, Math.min(1 << 20, bytes.length - off))).build());
                    }
                    up.onCompleted();
                    UploadResponse r;
                    try {
                        r = done.get(130, TimeUnit.SECONDS);
                    } catch (java.util.concurrent.ExecutionException e) {
                        throw e.getCause() instanceof StatusRuntimeException s ? where.failure(s) : new CliFailure(Main.FAILURE, e.getCause().toString());
                    }
                    if (where.json) {
                        Calls.json(spec.commandLine().getOut(), r);
                        return Main.OK;
                    }
                    spec.commandLine().getOut().println((r.getAlready() ? "already uploaded: " : "uploaded and signed: ") + ids(r.getModulesList())
                            + " (" + jar.getFileName() + ", SHA-256 " + r.getSha256() + ")");
                    return Main.OK;
                }
            });
        }

        /** The modules the jar declares, read from their descriptors (nothing is initialised). */
        private static List<ModuleRef> modules(Path jar) {
            List<ModuleRef> out = new ArrayList<>();
            try (ModuleRegistry r = new ModuleRegistry()) {
                r.loadJar(jar, null, d -> {
                    out.add(ModuleRef.newBuilder().setName(d.name()).setVersion(d.version()).build());
                    return false;
                });
            } catch (ModuleLoadException e) {
                throw new CliFailure(Main.FAILURE, jar + " is not a module jar the agents could load: " + e.getMessage());
            }
            if (out.isEmpty()) {
                throw new CliFailure(Main.FAILURE, jar + " declares no module; check it with: interlayer check-module " + jar);
            }
            return out;
        }
    }

    @Command(name = "deploy", mixinStandardHelpOptions = true, description = "Deploy an uploaded MODULE@VERSION to all agents, the agents with"
            + " a label, or one agent; a newer deployment of the module to the same target replaces the older.")
    static final class Deploy implements Callable<Integer> {
        @Spec
        CommandSpec spec;
        @picocli.CommandLine.Mixin
        Where where;
        @Parameters(paramLabel = "MODULE@VERSION", description = "e.g. tag@1.0.0")
        String module;
        @Option(names = "--to", required = true, paramLabel = "TARGET", description = "all, label=KEY=VALUE, or agent=NAME")
        String to;

        @Override
        public Integer call() {
            return Calls.run(spec.commandLine().getErr(), () -> {
                DeployRequest r = where.checked(DeployRequest.newBuilder().setModule(moduleRef(module)).setTarget(target("--to", to)).build());
                return where.call(spec, s -> s.deploy(r), (out, d) -> {
                    out.println("deployed " + module + " to " + to + " (revision " + d.getRevision() + "); "
                            + (d.getAgentsCount() == 0 ? "it selects no enrolled agent now" : "agents: " + String.join(", ", d.getAgentsList())));
                    return Main.OK;
                });
            });
        }
    }

    /** all, label=KEY=VALUE or agent=NAME as a Target, or a usage failure naming {@code option}. */
    static Target target(String option, String to) {
        Target.Builder t = Target.newBuilder();
        if (to.equals("all")) {
            t.setKind(Target.Kind.ALL);
        } else if (to.startsWith("label=")) {
            t.setKind(Target.Kind.LABEL).setValue(to.substring(6));
        } else if (to.startsWith("agent=")) {
            t.setKind(Target.Kind.AGENT).setValue(to.substring(6));
        } else {
            throw new CliFailure(Main.USAGE, option + " " + to + ": expected all, label=KEY=VALUE or agent=NAME");
        }
        return t.build();
    }

    static String target(Target t) {
        return t.getKind() == Target.Kind.ALL ? "all" : t.getKind().name().toLowerCase() + "=" + t.getValue();
    }

    /** MODULE@VERSION as a ModuleRef, or a usage failure. */
    static ModuleRef moduleRef(String module) {
        int at = module.indexOf('@');
        if (at <= 0) {
            throw new CliFailure(Main.USAGE, module + ": expected MODULE@VERSION, e.g. tag@1.0.0");
        }
        return ModuleRef.newBuilder().setName(module.substring(0, at)).setVersion(module.substring(at + 1)).build();
    }

    /** Prints what a change of live deployments did. */
    static int changed(PrintWriter out, String what, ChangeResponse c) {
        out.println(what + " (revision " + c.getRevision() + ", " + c.getDeployments() + " deployment(s)); "
                + (c.getAgentsCount() == 0 ? "they select no enrolled agent now" : "agents: " + String.join(", ", c.getAgentsList())));
        return Main.OK;
    }

    @Command(name = "rotate", mixinStandardHelpOptions = true, description = "Rotate a module to another uploaded version wherever it is"
            + " deployed: on each agent the new version attaches to new connections, the old one is deprecated (it keeps the connections"
            + " it has and unloads after the last).")
    static final class Rotate implements Callable<Integer> {
        @Spec
        CommandSpec spec;
        @picocli.CommandLine.Mixin
        Where where;
        @Parameters(paramLabel = "MODULE@VERSION", description = "the version to rotate to, e.g. tag@1.1.0")
        String module;

        @Override
        public Integer call() {
            return Calls.run(spec.commandLine().getErr(), () -> {
                RotateRequest r = where.checked(RotateRequest.newBuilder().setModule(moduleRef(module)).build());
                return where.call(spec, s -> s.rotate(r), (out, c) -> changed(out, "rotated to " + module, c));
            });
        }
    }

    @Command(name = "toggle", mixinStandardHelpOptions = true, description = "Switch a deployed module on or off on every agent: an"
            + " inactive module stays attached to its connections but passes their bytes untouched.")
    static final class Toggle implements Callable<Integer> {
        @Spec
        CommandSpec spec;
        @picocli.CommandLine.Mixin
        Where where;
        @Parameters(paramLabel = "MODULE", description = "the module's name")
        String module;
        @picocli.CommandLine.ArgGroup(exclusive = true, multiplicity = "1")
        Which which;

        static final class Which {
            @Option(names = "--active", required = true, description = "customize the traffic again")
            boolean active;
            @Option(names = "--inactive", required = true, description = "pass the traffic untouched")
            boolean inactive;
        }

        @Override
        public Integer call() {
            String state = which.active ? "ACTIVE" : "INACTIVE";
            SetStateRequest r = where.checked(SetStateRequest.newBuilder().setModule(module).setState(state).build());
            return where.call(spec, s -> s.setState(r), (out, c) -> changed(out, module + " is " + state.toLowerCase(), c));
        }
    }

    @Command(name = "priority", mixinStandardHelpOptions = true, description = "Set a deployed module's priority on every agent (lower"
            + " attaches first); new connections use it, open ones keep their order.")
    static final class Priority implements Callable<Integer> {
        @Spec
        CommandSpec spec;
        @picocli.CommandLine.Mixin
        Where where;
        @Parameters(index = "0", paramLabel = "MODULE", description = "the module's name")
        String module;
        @Parameters(index = "1", paramLabel = "N", description = "the priority, -1000000..1000000")
        int priority;

        @Override
        public Integer call() {
            SetPriorityRequest r = where.checked(SetPriorityRequest.newBuilder().setModule(module).setPriority(priority).build());
            return where.call(spec, s -> s.setPriority(r), (out, c) -> changed(out, module + " has priority " + priority, c));
        }
    }

    @Command(name = "deprecate", mixinStandardHelpOptions = true, description = "Deprecate a deployed module on every agent: it keeps"
            + " customizing the connections it has and attaches to no new one (fleet toggle MODULE --active undoes it).")
    static final class Deprecate implements Callable<Integer> {
        @Spec
        CommandSpec spec;
        @picocli.CommandLine.Mixin
        Where where;
        @Parameters(paramLabel = "MODULE", description = "the module's name")
        String module;

        @Override
        public Integer call() {
            SetStateRequest r = where.checked(SetStateRequest.newBuilder().setModule(module).setState("DEPRECATED").build());
            return where.call(spec, s -> s.setState(r), (out, c) -> changed(out, module + " is deprecated", c));
        }
    }

    @Command(name = "revoke", mixinStandardHelpOptions = true, description = "Revoke a module on every agent: it is detached from every"
            + " connection at once and unloaded.")
    static final class Revoke implements Callable<Integer> {
        @Spec
        CommandSpec spec;
        @picocli.CommandLine.Mixin
        Where where;
        @Parameters(paramLabel = "MODULE", description = "the module's name")
        String module;

        @Override
        public Integer call() {
            RevokeRequest r = where.checked(RevokeRequest.newBuilder().setModule(module).build());
            return where.call(spec, s -> s.revoke(r), (out, d) -> {
                out.println("revoked " + module + " (revision " + d.getRevision() + ", " + d.getDeployments() + " deployment(s) ended)");
                return Main.OK;
            });
        }
    }

    @Command(name = "status", mixinStandardHelpOptions = true, description = "Agents, their modules and versions, when each was last seen,"
            + " and what each did with its desired state; then the live deployments. With AGENT: that agent and its history (the revisions"
            + " it was sent, applied and refused, and when; its connections to the orchestrator).")
    static final class Status implements Callable<Integer> {
        @Spec
        CommandSpec spec;
        @picocli.CommandLine.Mixin
        Where where;
        @Parameters(arity = "0..1", paramLabel = "AGENT", description = "one agent, with its newest 100 events")
        String agent;

        @Override
        public Integer call() {
            StatusRequest q = where.checked(StatusRequest.newBuilder().setAgent(agent == null ? "" : agent).build());
            return where.call(spec, s -> s.status(q), (out, r) -> {
                print(out, r);
                if (agent != null) {
                    for (AgentStatus a : r.getAgentsList()) {
                        out.println("history of " + a.getName() + " (newest first):");
                        a.getHistoryList().forEach(h -> out.println("  " + h));
                    }
                }
                return Main.OK;
            });
        }

        static void print(PrintWriter out, StatusResponse r) {
            out.println("fleet revision " + r.getRevision() + ", " + r.getAgentsCount() + " agent(s)");
            for (AgentStatus a : r.getAgentsList()) {
                String seen = a.getLastSeenUnixMs() == 0 ? "never" : Instant.ofEpochMilli(a.getLastSeenUnixMs()).toString();
                out.println("agent " + a.getName() + (a.getLabelsCount() == 0 ? "" : " " + labels(a.getLabelsList())) + ": "
                        + (a.getConnected() ? "connected" : "not connected") + ", last seen " + seen + ", " + a.getAck()
                        + " (desired revision " + a.getDesiredRevision() + ", applied " + a.getAppliedRevision() + ")"
                        + (a.getAckReason().isEmpty() ? "" : ": " + a.getAckReason()) + ", " + a.getConnections() + " connection(s)"
                        + (a.getReplica().isEmpty() ? "" : ", via " + a.getReplica()));
                switch (a.getIntegrity()) {
                    case MISMATCH, NO_ANSWER -> out.println("  ! integrity " + a.getIntegrity() + " at " + Instant.ofEpochMilli(a.getIntegrityUnixMs())
                            + ": " + a.getIntegrityReason());
                    case VERIFIED -> out.println("  integrity VERIFIED at " + Instant.ofEpochMilli(a.getIntegrityUnixMs()));
                    default -> { }
                }
                for (ReportedModule m : a.getModulesList()) {
                    out.println("  " + m.getName() + "@" + m.getVersion() + " " + m.getState() + " (" + m.getSource() + ", priority "
                            + m.getPriority() + ", " + m.getLive() + " live, " + m.getFaults() + " faults)");
                }
            }
            for (Deployment d : r.getDeploymentsList()) {
                out.println("deployment " + d.getModule().getName() + "@" + d.getModule().getVersion() + " to " + target(d.getTarget())
                        + " (revision " + d.getRevision() + ")");
            }
            r.getRolloutsList().forEach(x -> Rollout.print(out, x));
            out.println(Rollout.leader(r.getLeader()));
        }

        private static String labels(List<Label> l) {
            return "[" + String.join(",", l.stream().map(x -> x.getKey() + "=" + x.getValue()).toList()) + "]";
        }
    }

    @Command(name = "verify", mixinStandardHelpOptions = true, description = "Challenge agents to prove which module jars they run: each"
            + " signs a fresh nonce and the SHA-256 of every package it has loaded with its certificate's key; the orchestrator checks the"
            + " signature and the hashes against what it deployed. Exits 1 if an agent does not match or does not answer.")
    static final class Verify implements Callable<Integer> {
        @Spec
        CommandSpec spec;
        @picocli.CommandLine.Mixin
        Where where;
        @Parameters(arity = "0..1", paramLabel = "AGENT", description = "one agent (default: every enrolled agent)")
        String agent;

        @Override
        public Integer call() {
            VerifyRequest q = where.checked(VerifyRequest.newBuilder().setAgent(agent == null ? "" : agent).build());
            return where.call(spec, s -> s.verify(q), (out, r) -> {
                int code = Main.OK;
                for (AgentStatus a : r.getAgentsList()) {
                    out.println(a.getName() + ": " + a.getIntegrity() + (a.getIntegrityReason().isEmpty() ? "" : ": " + a.getIntegrityReason()));
                    if (a.getIntegrity() != dev.interlayer.orchestrator.v1.Integrity.VERIFIED) {
                        code = Main.FAILURE;
                    }
                }
                return code;
            });
        }
    }

    @Command(name = "rollout", mixinStandardHelpOptions = true, description = "Roll out an uploaded MODULE@VERSION in stages: first to the"
            + " canary agents (the old version deprecated there, open connections keep it); once each applied it and the bake time passed"
            + " with the canary's faults of the version at most --max-faults, to the rest of the target. More faults, or a canary agent"
            + " refusing it, rolls it back by itself. The leading orchestrator runs it; fleet rollout status shows its progress.",
            subcommands = {Rollout.Show.class, Rollout.Abort.class})
    static final class Rollout implements Callable<Integer> {
        @Spec
        CommandSpec spec;
        @picocli.CommandLine.Mixin
        Where where;
        // not required for picocli, which would then ask them of the subcommands too: checked in call()
        @Parameters(arity = "0..1", paramLabel = "MODULE@VERSION", description = "the version to roll out, e.g. tag@1.1.0")
        String module;
        @Option(names = "--canary", paramLabel = "TARGET", description = "the canary agents (required): label=KEY=VALUE or agent=NAME")
        String canary;
        @Option(names = "--to", paramLabel = "TARGET", description = "where it goes after the canary: all, label=KEY=VALUE or agent=NAME"
                + " (default: wherever the module is deployed now)")
        String to;
        @Option(names = "--max-faults", paramLabel = "N", defaultValue = "0", description = "the canary's faults of the new version that"
                + " are tolerated; one more rolls it back (default: ${DEFAULT-VALUE})")
        int maxFaults;
        @Option(names = "--bake", paramLabel = "SECONDS", defaultValue = "60", description = "how long the canary runs it, every canary"
                + " agent applied, before the rest gets it (default: ${DEFAULT-VALUE})")
        int bake;

        @Override
        public Integer call() {
            return Calls.run(spec.commandLine().getErr(), () -> {
                if (module == null || canary == null) {
                    throw new CliFailure(Main.USAGE, "fleet rollout needs MODULE@VERSION and --canary TARGET, e.g. fleet rollout tag@1.1.0"
                            + " --canary label=ring=canary; or a command: status, abort");
                }
                if (maxFaults < 0 || bake < 0) {
                    throw new CliFailure(Main.USAGE, "--max-faults and --bake are at least 0");
                }
                RolloutRequest.Builder b = RolloutRequest.newBuilder().setModule(moduleRef(module)).setCanary(target("--canary", canary))
                        .setMaxFaults(maxFaults).setBakeSeconds(bake);
                if (to != null) {
                    b.setTarget(target("--to", to));
                }
                RolloutRequest r = where.checked(b.build());
                return where.call(spec, s -> s.rollout(r), (out, x) -> {
                    out.println("started rollout " + x.getId() + " of " + module + " (revision " + x.getRevision() + "): canary " + canary + " ("
                            + x.getTotal() + " agent(s)), then " + (to == null ? "wherever " + r.getModule().getName() + " is deployed" : to)
                            + "; follow it with: interlayer fleet rollout status " + x.getId());
                    return Main.OK;
                });
            });
        }

        /** Which replica leads, as status prints it. */
        static String leader(String leader) {
            return leader.isEmpty() ? "no orchestrator leads now (rollouts wait)" : "leader: " + leader;
        }

        static void print(PrintWriter out, RolloutStatus x) {
            out.println("rollout " + x.getId() + " " + x.getModule().getName() + "@" + x.getModule().getVersion() + " (from "
                    + (x.getPreviousCount() == 0 ? "none" : String.join(", ", x.getPreviousList())) + "): " + x.getPhase() + ", "
                    + x.getApplied() + "/" + x.getTotal() + " applied, " + x.getFaults() + " fault(s) (max " + x.getMaxFaults() + "); canary "
                    + target(x.getCanary()) + ", then " + (x.hasTarget() ? target(x.getTarget()) : "its live deployments") + ", bake "
                    + x.getBakeSeconds() + " s" + (x.getBakeUntilUnixMs() == 0 ? "" : " (until " + Instant.ofEpochMilli(x.getBakeUntilUnixMs()) + ")")
                    + "; started " + Instant.ofEpochMilli(x.getCreatedUnixMs()) + " by " + x.getCreatedBy()
                    + (x.getReason().isEmpty() ? "" : "\n  " + x.getReason()));
        }

        @Command(name = "status", mixinStandardHelpOptions = true, description = "The rollouts (newest 50, or one) with their phase, the"
                + " agents that applied each, the canary's faults and why one waits or was rolled back; and which orchestrator runs them.")
        static final class Show implements Callable<Integer> {
            @Spec
            CommandSpec spec;
            @picocli.CommandLine.Mixin
            Where where;
            @Parameters(arity = "0..1", paramLabel = "ID", description = "one rollout")
            Long id;

            @Override
            public Integer call() {
                RolloutsRequest q = where.checked(RolloutsRequest.newBuilder().setId(id == null ? 0 : id).build());
                return where.call(spec, s -> s.rollouts(q), (out, r) -> {
                    if (r.getRolloutsCount() == 0) {
                        out.println("no rollouts");
                    }
                    r.getRolloutsList().forEach(x -> print(out, x));
                    out.println(Rollout.leader(r.getLeader()));
                    return Main.OK;
                });
            }
        }

        @Command(name = "abort", mixinStandardHelpOptions = true, description = "Stop a rollout and roll it back: the deployments it made end,"
                + " the ones it replaced return; agents go back to the previous version.")
        static final class Abort implements Callable<Integer> {
            @Spec
            CommandSpec spec;
            @picocli.CommandLine.Mixin
            Where where;
            @Parameters(paramLabel = "ID", description = "the rollout (fleet rollout status lists them)")
            long id;

            @Override
            public Integer call() {
                AbortRolloutRequest q = where.checked(AbortRolloutRequest.newBuilder().setId(id).build());
                return where.call(spec, s -> s.abortRollout(q), (out, x) -> {
                    out.println("aborted rollout " + x.getId() + " of " + x.getModule().getName() + "@" + x.getModule().getVersion()
                            + "; rolled back (revision " + x.getRevision() + ")");
                    return Main.OK;
                });
            }
        }
    }

    private static String ids(List<ModuleRef> m) {
        return String.join(", ", m.stream().map(x -> x.getName() + "@" + x.getVersion()).toList());
    }
}
