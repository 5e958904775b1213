package dev.interlayer.control;

import dev.interlayer.control.v1.ConfigGrpc;
import dev.interlayer.control.v1.ConfigInfo;
import dev.interlayer.control.v1.ReloadConfigRequest;
import dev.interlayer.control.v1.ReloadConfigResponse;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;

/** The {@code Config} endpoint: reload the agent's config file without a restart. */
final class ConfigEndpoint extends ConfigGrpc.ConfigImplBase {

    private final ConfigReloads reloads;

    ConfigEndpoint(ConfigReloads reloads) {
        this.reloads = reloads;
    }

    /** The config in force and the last refused reload. */
    static ConfigInfo info(ConfigReloads.State s) {
        ConfigInfo.Builder b = ConfigInfo.newBuilder().setSource(s.source()).setLoadedAtMs(s.loadedAt().toEpochMilli());
        if (s.refused() != null && s.refusedAt() != null) {
            b.setRefused(s.refused()).setRefusedAtMs(s.refusedAt().toEpochMilli());
        }
        return b.build();
    }

    @Override
    public void reload(ReloadConfigRequest request, StreamObserver<ReloadConfigResponse> out) {
        if (reloads == null) {
            throw Status.FAILED_PRECONDITION.withDescription("this agent was not started from a config file: there is nothing to reload").asRuntimeException();
        }
        Caller c = SecurityModule.CALLER.get();
        ConfigReloads.Outcome o = reloads.reload("control call" + (c == null ? "" : " by " + c));
        out.onNext(ReloadConfigResponse.newBuilder().setApplied(o.applied()).addAllChanges(o.changes()).addAllProblems(o.problems())
                .addAllWarnings(o.warnings()).setConfig(info(reloads.state())).build());
        out.onCompleted();
    }
}
