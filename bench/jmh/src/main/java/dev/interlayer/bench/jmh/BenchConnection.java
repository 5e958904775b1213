package dev.interlayer.bench.jmh;

import dev.interlayer.api.Direction;
import dev.interlayer.api.Module;
import dev.interlayer.engine.EmbeddedConnection;
import dev.interlayer.engine.EmbeddedEngine;
import dev.interlayer.runtime.ModuleClassLoader;
import dev.interlayer.runtime.ModuleConfig;
import dev.interlayer.runtime.ModuleLoadException;
import io.netty.buffer.ByteBuf;
import java.net.InetSocketAddress;
import java.time.Instant;
import java.util.List;

/**
 * One connection of the engine's {@link EmbeddedEngine} for the benchmarks: the agent's own per-chunk code, with what
 * it sends counted and freed at once rather than kept.
 */
final class BenchConnection implements AutoCloseable {

    private final EmbeddedEngine engine;
    private final EmbeddedConnection conn;

    /** Loads {@code modules} (in this order, all at the default priority) and starts a connection through them. */
    BenchConnection(List<? extends Module<?>> modules) throws ModuleLoadException {
        EmbeddedEngine.Builder b = EmbeddedEngine.builder().discardOutput();
        int i = 0;
        for (Module<?> m : modules) {
            // A module from a jar has a class loader of its own, which the engine makes the thread's context class
            // loader during each of its calls: give every module one, so the benchmark pays that switch too.
            // (a module loaded from a jar, as PreemptionBenchmark loads one, keeps its own)
            ClassLoader own = m.getClass().getClassLoader() instanceof ModuleClassLoader jar ? jar
                    : new ClassLoader("bench-module-" + i++, m.getClass().getClassLoader()) {};
            b.module(m, ModuleConfig.defaults(m.descriptor().name()), own);
        }
        this.engine = b.build();
        Info info = new Info();
        this.conn = engine.connect(info, engine.registry().candidates(info));
        if (!conn.isOpen()) {
            throw new IllegalStateException("the benchmark connection closed while starting: " + conn.closeReason());
        }
    }

    /** Loads the modules of the C object {@code so} (see {@code ModuleRegistry.loadNative}) and starts a connection through them. */
    BenchConnection(java.nio.file.Path so) throws ModuleLoadException {
        this.engine = EmbeddedEngine.builder().discardOutput().build();
        engine.registry().load(so, ModuleConfig::defaults);
        Info info = new Info();
        this.conn = engine.connect(info, engine.registry().candidates(info));
        if (!conn.isOpen()) {
            throw new IllegalStateException("the benchmark connection closed while starting: " + conn.closeReason());
        }
    }

    /** Hands {@code chunk} (owned by the engine from here) to the connection as one transport read in direction {@code d}. */
    void read(Direction d, ByteBuf chunk) {
        conn.read(d, chunk);
    }

    /** Runs what the engine queued on its loop (inject, hold accounting). */
    void runPendingTasks() {
        engine.runUntilIdle();
    }

    /** Bytes the engine has written out in direction {@code d}. */
    long delivered(Direction d) {
        return conn.deliveredBytes(d);
    }

    boolean isOpen() {
        return conn.isOpen();
    }

    String closeReason() {
        return conn.closeReason();
    }

    @Override
    public void close() {
        engine.close();
    }

    /** A TCP connection on listener {@code bench}, role CLIENT, from the loopback. */
    private static final class Info implements dev.interlayer.api.ConnectionInfo {
        @Override public long id() { return 1; }
        @Override public dev.interlayer.api.Protocol protocol() { return dev.interlayer.api.Protocol.TCP; }
        @Override public String listener() { return "bench"; }
        @Override public dev.interlayer.api.Role role() { return dev.interlayer.api.Role.CLIENT; }
        @Override public InetSocketAddress localAddress() { return new InetSocketAddress("127.0.0.1", 40000); }
        @Override public InetSocketAddress remoteAddress() { return new InetSocketAddress("127.0.0.1", 9); }
        @Override public dev.interlayer.api.AppInfo app() { return null; }
        @Override public Instant startedAt() { return Instant.EPOCH; }
        @Override public long bytesSent() { return 0; }
        @Override public long bytesReceived() { return 0; }
    }
}
