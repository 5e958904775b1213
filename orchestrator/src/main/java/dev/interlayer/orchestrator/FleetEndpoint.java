package dev.interlayer.orchestrator;

import dev.interlayer.control.Caller;
import dev.interlayer.control.SecurityModule;
import dev.interlayer.orchestrator.v1.ChangeResponse;
import dev.interlayer.orchestrator.v1.AgentStatus;
import dev.interlayer.orchestrator.v1.DeployRequest;
import dev.interlayer.orchestrator.v1.DeployResponse;
import dev.interlayer.orchestrator.v1.FleetGrpc;
import dev.interlayer.orchestrator.v1.Label;
import dev.interlayer.orchestrator.v1.AbortRolloutRequest;
import dev.interlayer.orchestrator.v1.RevokeRequest;
import dev.interlayer.orchestrator.v1.RolloutPhase;
import dev.interlayer.orchestrator.v1.RolloutRequest;
import dev.interlayer.orchestrator.v1.RolloutStatus;
import dev.interlayer.orchestrator.v1.RolloutsRequest;
import dev.interlayer.orchestrator.v1.RolloutsResponse;
import dev.interlayer.orchestrator.v1.RevokeResponse;
import dev.interlayer.orchestrator.v1.RotateRequest;
import dev.interlayer.orchestrator.v1.SetPriorityRequest;
import dev.interlayer.orchestrator.v1.SetStateRequest;
import dev.interlayer.orchestrator.v1.StatusRequest;
import dev.interlayer.orchestrator.v1.StatusResponse;
import dev.interlayer.orchestrator.v1.Target;
import dev.interlayer.orchestrator.v1.TokenRequest;
import dev.interlayer.orchestrator.v1.TokenResponse;
import dev.interlayer.orchestrator.v1.UploadHeader;
import dev.interlayer.orchestrator.v1.UploadRequest;
import dev.interlayer.orchestrator.v1.UploadResponse;
import dev.interlayer.orchestrator.v1.VerifyRequest;
import dev.interlayer.orchestrator.v1.VerifyResponse;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.io.ByteArrayOutputStream;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;

/** {@code Fleet}: what operators do to the fleet (upload, deploy, rotate, state, priority, revoke, status, enrollment tokens). */
final class FleetEndpoint extends FleetGrpc.FleetImplBase {

    private static final System.Logger LOG = System.getLogger("interlayer.orchestrator");
    static final String TOKEN_PREFIX = "ilt1.";

    private final Store store;
    private final Authority authority;
    private final AgentStreams streams;
    private final RolloutStore rollouts;
    private final SecureRandom random = new SecureRandom();

    FleetEndpoint(Store store, Authority authority, AgentStreams streams) {
        this.store = store;
        this.authority = authority;
        this.streams = streams;
        this.rollouts = new RolloutStore(store);
    }

    private static String who() {
        Caller c = SecurityModule.CALLER.get();
        return c == null ? "unknown" : c.toString();
    }

    /** The status a store problem becomes. */
    static StatusRuntimeException status(Store.Refused e) {
        return (e.notFound() ? Status.NOT_FOUND : Status.FAILED_PRECONDITION).withDescription(e.getMessage()).asRuntimeException();
    }

    static StatusRuntimeException status(Store.Unavailable e) {
        return Status.UNAVAILABLE.withDescription(e.getMessage()).asRuntimeException();
    }

    @Override
    public StreamObserver<UploadRequest> upload(StreamObserver<UploadResponse> out) {
        return new StreamObserver<>() {
            private UploadHeader header;
            private final ByteArrayOutputStream jar = new ByteArrayOutputStream();
            private boolean failed;

            @Override
            public void onNext(UploadRequest r) {
                if (failed) {
                    return;
                }
                if (r.hasHeader()) {
                    header = r.getHeader();
                    return;
                }
                if (jar.size() + r.getChunk().size() > header.getSize()) {
                    failed = true;
                    out.onError(Status.INVALID_ARGUMENT.withDescription("the upload carried more than the " + header.getSize()
                            + " bytes its header announced").asRuntimeException());
                    return;
                }
                jar.writeBytes(r.getChunk().toByteArray());
            }

            @Override
            public void onError(Throwable t) {
                failed = true; // the client went away: nothing stored
            }

            @Override
            public void onCompleted() {
                if (failed) {
                    return;
                }
                byte[] bytes = jar.toByteArray();
                if (bytes.length != header.getSize()) {
                    out.onError(Status.INVALID_ARGUMENT.withDescription("the upload ended after " + bytes.length + " of the " + header.getSize()
                            + " bytes its header announced; send the whole jar").asRuntimeException());
                    return;
                }
                String sha = sha256(bytes);
                if (!header.getSha256().isEmpty() && !header.getSha256().equals(sha)) {
                    out.onError(Status.INVALID_ARGUMENT.withDescription("the upload's SHA-256 is " + sha + " but the header says "
                            + header.getSha256() + "; the jar was damaged on the way").asRuntimeException());
                    return;
                }
                if (bytes.length < 4 || bytes[0] != 'P' || bytes[1] != 'K') {
                    out.onError(Status.INVALID_ARGUMENT.withDescription(header.getFileName() + " is not a jar (no zip header); upload a module jar")
                            .asRuntimeException());
                    return;
                }
                try {
                    byte[] signature = authority.signJar(bytes);
                    boolean added = store.addArtifact(new Store.Artifact(sha, header.getFileName(), bytes.length, signature, bytes),
                            header.getModulesList(), who());
                    LOG.log(Level.INFO, "orchestrator: {0} uploaded {1} ({2}, SHA-256 {3}){4}", who(), header.getFileName(),
                            ids(header), sha, added ? "" : ": the same jar was uploaded before");
                    out.onNext(UploadResponse.newBuilder().setSha256(sha).addAllModules(header.getModulesList()).setAlready(!added).build());
                    out.onCompleted();
                } catch (Store.Refused e) {
                    out.onError(status(e));
                } catch (Store.Unavailable e) {
                    out.onError(status(e));
                } catch (GeneralSecurityException e) {
                    out.onError(Status.INTERNAL.withDescription("cannot sign the jar: " + e.getMessage()).asRuntimeException());
                }
            }
        };
    }

    private static String ids(UploadHeader h) {
        return String.join(", ", h.getModulesList().stream().map(m -> m.getName() + "@" + m.getVersion()).toList());
    }

    @Override
    public void deploy(DeployRequest r, StreamObserver<DeployResponse> out) {
        Target t = checked(r.getTarget());
        answer(out, () -> {
            Store.Change c = store.deploy(r.getModule(), t, who());
            LOG.log(Level.INFO, "orchestrator: {0} deployed {1}@{2} to {3} (revision {4,number,#}; selects {5})", who(), r.getModule().getName(),
                    r.getModule().getVersion(), target(t), c.revision(), c.agents());
            streams.changed();
            return DeployResponse.newBuilder().setRevision(c.revision()).addAllAgents(c.agents()).build();
        });
    }

    /** {@code t}, or INVALID_ARGUMENT saying what is wrong with it. */
    private static Target checked(Target t) {
        String problem = switch (t.getKind()) {
            case ALL -> t.getValue().isEmpty() ? null : "a deployment to all agents takes no value";
            case LABEL -> t.getValue().matches("[a-z0-9][a-z0-9._/-]{0,62}=[A-Za-z0-9._-]{0,63}") ? null
                    : "a label target is KEY=VALUE (e.g. label=zone=eu), got '" + t.getValue() + "'";
            case AGENT -> t.getValue().matches("[a-z0-9][a-z0-9.-]{0,62}") ? null : "an agent target names an agent, got '" + t.getValue() + "'";
            default -> "the target must be all, label=KEY=VALUE or agent=NAME";
        };
        if (problem != null) {
            throw Status.INVALID_ARGUMENT.withDescription(problem).asRuntimeException();
        }
        return t;
    }

    static String target(Target t) {
        return switch (t.getKind()) {
            case ALL -> "all";
            case LABEL -> "label=" + t.getValue();
            case AGENT -> "agent=" + t.getValue();
            default -> "?";
        };
    }

    @Override
    public void revoke(RevokeRequest r, StreamObserver<RevokeResponse> out) {
        answer(out, () -> {
            Store.Change c = store.revoke(r.getModule());
            LOG.log(Level.INFO, "orchestrator: {0} revoked {1} (revision {2,number,#}, {3} deployment(s) ended)", who(), r.getModule(), c.revision(), c.count());
            streams.changed();
            return RevokeResponse.newBuilder().setRevision(c.revision()).setDeployments(c.count()).build();
        });
    }

    @Override
    public void rotate(RotateRequest r, StreamObserver<ChangeResponse> out) {
        String id = r.getModule().getName() + "@" + r.getModule().getVersion();
        change(out, () -> store.rotate(r.getModule(), who()), "rotated " + r.getModule().getName() + " to " + id);
    }

    @Override
    public void setState(SetStateRequest r, StreamObserver<ChangeResponse> out) {
        change(out, () -> store.setState(r.getModule(), r.getState()), "set " + r.getModule() + " " + r.getState());
    }

    @Override
    public void setPriority(SetPriorityRequest r, StreamObserver<ChangeResponse> out) {
        change(out, () -> store.setPriority(r.getModule(), r.getPriority()), "set the priority of " + r.getModule() + " to " + r.getPriority());
    }

    @FunctionalInterface
    private interface StoreChange {
        Store.Change run() throws Store.Refused;
    }

    /** Runs a change of live deployments, logs it, sends the agents their new desired state and answers. */
    private void change(StreamObserver<ChangeResponse> out, StoreChange change, String what) {
        answer(out, () -> {
            Store.Change c = change.run();
            LOG.log(Level.INFO, "orchestrator: {0} {1} (revision {2,number,#}, {3} deployment(s); selects {4})", who(), what, c.revision(), c.count(),
                    c.agents());
            streams.changed();
            return ChangeResponse.newBuilder().setRevision(c.revision()).setDeployments(c.count()).addAllAgents(c.agents()).build();
        });
    }

    @Override
    public void status(StatusRequest r, StreamObserver<StatusResponse> out) {
        answer(out, () -> store.status(r.getAgent().isEmpty() ? null : r.getAgent()));
    }

    @Override
    public void verify(VerifyRequest r, StreamObserver<VerifyResponse> out) {
        try {
            StatusResponse before = store.status(r.getAgent().isEmpty() ? null : r.getAgent());
            List<String> agents = before.getAgentsList().stream().map(AgentStatus::getName).toList();
            streams.verify(agents);
            LOG.log(Level.INFO, "orchestrator: {0} challenged {1} to prove the jars they run", who(), agents);
            StatusResponse after = store.status(r.getAgent().isEmpty() ? null : r.getAgent());
            out.onNext(VerifyResponse.newBuilder().addAllAgents(after.getAgentsList()).build());
            out.onCompleted();
        } catch (Store.Refused e) {
            throw status(e);
        } catch (Store.Unavailable e) {
            throw status(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw Status.UNAVAILABLE.withDescription("the orchestrator is stopping").asRuntimeException();
        }
    }

    @FunctionalInterface
    private interface Answer<T> {
        T run() throws Store.Refused;
    }

    /** Answers with what {@code answer} makes, or with the status its refusal or the database's failure becomes. */
    private static <T> void answer(StreamObserver<T> out, Answer<T> answer) {
        try {
            out.onNext(answer.run());
            out.onCompleted();
        } catch (Store.Refused e) {
            throw status(e);
        } catch (Store.Unavailable e) {
            throw status(e);
        }
    }

    @Override
    public void rollout(RolloutRequest r, StreamObserver<RolloutStatus> out) {
        if (r.getCanary().getKind() == Target.Kind.ALL) {
            throw Status.INVALID_ARGUMENT.withDescription("the canary is some agents, not all: label=KEY=VALUE or agent=NAME").asRuntimeException();
        }
        Target canary = checked(r.getCanary());
        Target target = r.hasTarget() ? checked(r.getTarget()) : null;
        answer(out, () -> {
            RolloutStore.Rollout ro = rollouts.start(r.getModule(), canary, target, r.getMaxFaults(), r.getBakeSeconds(), who());
            LOG.log(Level.INFO, "orchestrator: {0} started {1}: canary {2}, then {3} (max faults {4}, bake {5} s; revision {6,number,#})", who(),
                    ro.title(), target(canary), target == null ? "its live deployments" : target(target), r.getMaxFaults(), r.getBakeSeconds(),
                    ro.stepRevision());
            streams.changed();
            return ro.status();
        });
    }

    @Override
    public void rollouts(RolloutsRequest r, StreamObserver<RolloutsResponse> out) {
        answer(out, () -> {
            RolloutsResponse.Builder b = RolloutsResponse.newBuilder();
            rollouts.list(r.getId()).forEach(x -> b.addRollouts(x.status()));
            String leader = store.read(Leadership::leader);
            if (leader != null) {
                b.setLeader(leader);
            }
            return b.build();
        });
    }

    @Override
    public void abortRollout(AbortRolloutRequest r, StreamObserver<RolloutStatus> out) {
        answer(out, () -> {
            RolloutStore.Rollout ro = rollouts.rollBack(r.getId(), RolloutPhase.ABORTED, "aborted by " + who());
            LOG.log(Level.INFO, "orchestrator: {0} aborted {1}; rolled back (revision {2,number,#})", who(), ro.title(), ro.stepRevision());
            streams.changed();
            return ro.status();
        });
    }

    @Override
    public void token(TokenRequest r, StreamObserver<TokenResponse> out) {
        long ttl = r.getTtlSeconds() == 0 ? 3600 : r.getTtlSeconds();
        if (ttl < 60) {
            throw Status.INVALID_ARGUMENT.withDescription("a token must live at least 60 seconds; got " + ttl).asRuntimeException();
        }
        byte[] b = new byte[32];
        random.nextBytes(b);
        String token = TOKEN_PREFIX + Base64.getUrlEncoder().withoutPadding().encodeToString(b);
        Instant expires = Instant.now().plus(Duration.ofSeconds(ttl));
        List<String> labels = new ArrayList<>();
        for (Label l : r.getLabelsList()) {
            labels.add(l.getKey() + "=" + l.getValue());
        }
        try {
            store.addToken(hash(token), r.getAgent(), labels, expires, who());
        } catch (Store.Unavailable e) {
            throw status(e);
        }
        LOG.log(Level.INFO, "orchestrator: {0} made an enrollment token for agent {1} {2}, valid until {3}", who(), r.getAgent(), labels, expires);
        out.onNext(TokenResponse.newBuilder().setToken(token).setExpiresUnixMs(expires.toEpochMilli()).build());
        out.onCompleted();
    }

    /** The hash a token is stored as. */
    static String hash(String token) {
        return sha256(token.strip().getBytes(StandardCharsets.UTF_8));
    }

    static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
