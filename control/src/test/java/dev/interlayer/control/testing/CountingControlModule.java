package dev.interlayer.control.testing;

import dev.interlayer.api.ControlRequest;
import dev.interlayer.api.ControlResponse;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.SocketModule;
import java.util.concurrent.atomic.AtomicInteger;

/** A socket module named {@code ctl} that answers every control request and counts them (proof a handler ran). */
public final class CountingControlModule implements SocketModule<Object> {

    public final AtomicInteger calls = new AtomicInteger();
    private final String name;

    public CountingControlModule() {
        this("ctl");
    }

    public CountingControlModule(String name) {
        this.name = name;
    }

    @Override
    public ModuleDescriptor descriptor() {
        return ModuleDescriptor.builder(name, "1.0.0").implement(InterfaceType.SOCKET, 1, 0).build();
    }

    @Override
    public ControlResponse control(ControlRequest request) {
        int n = calls.incrementAndGet();
        return ControlResponse.ok("{\"command\":\"" + request.command() + "\",\"calls\":" + n + ",\"caller\":\"" + request.caller() + "\"}");
    }
}
