package dev.interlayer.control;

import dev.interlayer.api.InterfaceVersion;
import dev.interlayer.api.Verdict;
import dev.interlayer.control.v1.Connection;
import dev.interlayer.control.v1.LoadFailure;
import dev.interlayer.control.v1.ModuleInfo;
import dev.interlayer.control.v1.ModuleState;
import dev.interlayer.control.v1.ModuleStats;
import dev.interlayer.control.v1.StuckCall;
import dev.interlayer.engine.ConnectionSnapshot;
import dev.interlayer.runtime.Failure;
import dev.interlayer.runtime.Hooks;
import dev.interlayer.runtime.LoadedModule;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Locale;

/** Conversions from the runtime's and engine's types to the IDL's messages. */
final class Protos {

    private Protos() {}

    static ModuleInfo module(LoadedModule m) {
        return module(m, List.of());
    }

    /** {@link #module(LoadedModule)} with the calls into it that are stuck now (of all the engine's, those of {@code m}). */
    static ModuleInfo module(LoadedModule m, List<dev.interlayer.engine.StuckCall> stuck) {
        ModuleInfo.Builder b = ModuleInfo.newBuilder()
                .setName(m.name())
                .setVersion(m.version())
                .setState(state(m.state()))
                .setPriority(m.priority())
                .setAttachMode(m.attachMode().name().toLowerCase(Locale.ROOT))
                .setSelector(String.valueOf(m.selector()))
                .setSource(m.pkg().location())
                .setLiveAttachments(m.liveAttachments())
                .setFaults(m.faults())
                .setLastFault(m.lastFault() == null ? "" : m.lastFault())
                .setLoadedAtMs(m.loadedAt().toEpochMilli())
                .setDescription(m.descriptor().description() == null ? "" : m.descriptor().description());
        for (InterfaceVersion v : m.descriptor().interfaces().values()) {
            b.addInterfaces(v.type().id() + " " + v.major() + "." + v.minor());
        }
        b.addAllHooks(Hooks.names(m.hooks()));
        for (dev.interlayer.engine.StuckCall c : stuck) {
            if (c.moduleId().equals(m.id())) b.addStuck(stuck(c));
        }
        return b.build();
    }

    static StuckCall stuck(dev.interlayer.engine.StuckCall c) {
        return StuckCall.newBuilder()
                .setModule(c.moduleId())
                .setHook(c.hook() == null ? "?" : c.hook())
                .setConnectionId(Math.max(0, c.connectionId()))
                .setThread(c.thread())
                .setRunningMs(c.running().toMillis())
                .setAt(c.at())
                .build();
    }

    static ModuleState state(dev.interlayer.runtime.ModuleState s) {
        return switch (s) {
            case ACTIVE -> ModuleState.ACTIVE;
            case INACTIVE -> ModuleState.INACTIVE;
            case DEPRECATED -> ModuleState.DEPRECATED;
            case UNREGISTERING -> ModuleState.UNREGISTERING;
            case REVOKED -> ModuleState.REVOKED;
            case FAILED -> ModuleState.FAILED;
        };
    }

    static LoadFailure failure(Failure f) {
        return LoadFailure.newBuilder().setSource(f.source()).setModule(f.module() == null ? "" : f.module()).setError(f.error())
                .setAtMs(f.at().toEpochMilli()).build();
    }

    static ModuleStats stats(LoadedModule m) {
        dev.interlayer.runtime.ModuleStats.Snapshot s = m.stats();
        ModuleStats.Builder b = ModuleStats.newBuilder().setName(m.name()).setVersion(m.version())
                .setAttaches(s.attaches()).setDeclines(s.declines()).setDetaches(s.detaches()).setLive(s.live()).setFaults(s.faults())
                .setChunksSend(s.chunks()[0]).setChunksRecv(s.chunks()[1])
                .setBytesInSend(s.bytesIn()[0]).setBytesInRecv(s.bytesIn()[1])
                .setBytesOutSend(s.bytesOut()[0]).setBytesOutRecv(s.bytesOut()[1])
                .setInjected(s.injected());
        for (Verdict.Kind k : Verdict.Kind.values()) {
            b.putVerdicts(k.name(), s.verdicts(k));
        }
        return b.build();
    }

    static Connection connection(ConnectionSnapshot c) {
        return Connection.newBuilder().setId(c.id()).setListener(c.listener()).setLocal(address(c.local())).setRemote(address(c.remote()))
                .setApp(c.app() == null ? "" : c.app()).setStartedAtMs(c.startedAt() == null ? 0 : c.startedAt().toEpochMilli())
                .setBytesSent(c.bytesSent()).setBytesReceived(c.bytesReceived()).addAllModules(c.modules()).setTls(c.tls() == null ? "" : c.tls()).build();
    }

    static String address(InetSocketAddress a) {
        if (a == null) {
            return "";
        }
        String host = a.getAddress() == null ? a.getHostString() : a.getAddress().getHostAddress();
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + a.getPort();
    }
}
