package dev.interlayer.control;

import dev.interlayer.control.v1.AttachProcessRequest;
import dev.interlayer.control.v1.AttachProcessResponse;
import dev.interlayer.control.v1.DetachProcessRequest;
import dev.interlayer.engine.ProcessAttachments;
import java.time.Duration;

/**
 * {@code Connections.AttachProcess} and {@code DetachProcess} for one proven caller, whichever transport carried them (the
 * control socket's gRPC, the attach socket's lines): the process is the caller's own ({@code SO_PEERCRED}), never one the
 * request names.
 */
final class ProcessAttach {

    private ProcessAttach() {}

    /** Registers the request's module for the caller's process. */
    static AttachProcessResponse attach(ControlTarget target, Caller caller, AttachProcessRequest r) throws ProcessAttachments.Refused {
        ProcessAttachments.Registration reg = target.engine().processAttachments().add(pid(caller), r.getModule(), r.getVersion(), r.getConnections(),
                r.getSeconds() == 0 ? null : Duration.ofSeconds(r.getSeconds()));
        String id = target.registry().find(r.getModule()).map(m -> m.id()).orElse(r.getModule());
        String until = (r.getConnections() > 0 ? " for " + r.getConnections() + " connection(s)" : "")
                + (r.getSeconds() > 0 ? " for " + r.getSeconds() + " s" : "");
        return AttachProcessResponse.newBuilder().setId(reg.id()).setModule(id)
                .setMessage(id + " attaches to the connections process " + reg.pid() + " opens from now on" + until + " (registration " + reg.id() + ")")
                .build();
    }

    /** Ends one of the caller's registrations. */
    static AttachProcessResponse detach(ControlTarget target, Caller caller, DetachProcessRequest r) throws ProcessAttachments.Refused {
        if (!target.engine().processAttachments().remove(r.getId(), pid(caller))) {
            throw new ProcessAttachments.Refused("process " + caller.pid() + " holds no registration " + r.getId());
        }
        return AttachProcessResponse.newBuilder().setId(r.getId()).setMessage("registration " + r.getId() + " ended").build();
    }

    private static int pid(Caller caller) throws ProcessAttachments.Refused {
        if (caller == null || caller.pid() <= 0) {
            throw new ProcessAttachments.Refused("the caller is not a process on this host (only a caller on a Unix socket has a pid the kernel"
                    + " proves); ask through the control socket or the attach socket");
        }
        return (int) caller.pid();
    }
}
