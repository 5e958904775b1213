package dev.interlayer.engine.testing;

import dev.interlayer.api.Module;
import dev.interlayer.api.Role;
import dev.interlayer.engine.Engine;
import dev.interlayer.engine.EngineException;
import dev.interlayer.engine.EngineOptions;
import dev.interlayer.engine.ListenerSpec;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleConfig;
import dev.interlayer.runtime.ModuleLoadException;
import dev.interlayer.runtime.ModuleRegistry;
import dev.interlayer.runtime.PackageRef;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.time.Duration;

/** A real registry and engine for tests, with in-process modules and loopback listeners. */
public final class EngineFixture implements AutoCloseable {

    public final ModuleRegistry registry;
    public final Engine engine;
    private int listeners;

    public EngineFixture() {
        this(EngineOptions.defaults().withIoThreads(2));
    }

    public EngineFixture(EngineOptions options) {
        this(options, 5);
    }

    public EngineFixture(EngineOptions options, int quarantineAfter) {
        registry = new ModuleRegistry(quarantineAfter);
        engine = new Engine(registry, options);
    }

    /** Adds an in-process module with its descriptor's defaults. */
    public LoadedModule add(Module<?> m) throws ModuleLoadException {
        return registry.add(m, PackageRef.builtin(m.getClass().getSimpleName(), m.getClass().getClassLoader()), null);
    }

    /** Adds an in-process module with a config. */
    public LoadedModule add(Module<?> m, ModuleConfig config) throws ModuleLoadException {
        return registry.add(m, PackageRef.builtin(m.getClass().getSimpleName(), m.getClass().getClassLoader()), config);
    }

    /** Loads the modules of a real jar (through the registry's class loader, as the agent does) with {@code config}. */
    public java.util.List<LoadedModule> addJar(java.nio.file.Path jar, ModuleConfig config) throws ModuleLoadException {
        return registry.loadJar(jar, name -> config);
    }

    /** Starts a listener forwarding to {@code upstream}; returns the bound address. */
    public InetSocketAddress listen(Role role, InetSocketAddress upstream) throws EngineException {
        return engine.start(ListenerSpec.tcp("l" + (++listeners), role, new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), upstream));
    }

    /** Connects a client socket with a read timeout. */
    public static Socket connect(InetSocketAddress a) throws IOException {
        Socket s = new Socket(a.getAddress(), a.getPort());
        s.setSoTimeout((int) Duration.ofSeconds(20).toMillis());
        s.setTcpNoDelay(true);
        return s;
    }

    @Override
    public void close() {
        engine.close();
        registry.close();
    }
}
