package dev.interlayer.testkit;

import dev.interlayer.api.Attachment;
import dev.interlayer.api.ConnectionEvent;
import dev.interlayer.api.ControlRequest;
import dev.interlayer.api.ControlResponse;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.SocketModule;
import java.util.ArrayList;
import java.util.List;

/** A socket-only module for the testkit's own tests: answers {@code ping}, records the connection events. */
final class SocketOnly implements SocketModule<Void> {
    final List<ConnectionEvent> events = new ArrayList<>();

    @Override
    public ModuleDescriptor descriptor() {
        return ModuleDescriptor.builder("sock", "1.0.0").implement(InterfaceType.SOCKET, 1, 0).build();
    }

    @Override
    public ControlResponse control(ControlRequest request) {
        return request.command().equals("ping") ? ControlResponse.ok("pong") : ControlResponse.error("unknown");
    }

    @Override
    public void onEvent(Void state, Attachment attachment, ConnectionEvent event) {
        events.add(event);
    }
}
