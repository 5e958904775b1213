package dev.interlayer.engine;

import dev.interlayer.api.Direction;
import dev.interlayer.api.Module;
import dev.interlayer.api.Role;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleClassLoader;
import dev.interlayer.runtime.ModuleConfig;
import dev.interlayer.runtime.ModuleLoadException;
import dev.interlayer.runtime.ModuleRegistry;
import dev.interlayer.runtime.PackageRef;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.ChannelPromise;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.util.ReferenceCountUtil;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;

/**
 * A real {@link ProxyConnection} (the engine's own per-chunk code) between two Netty {@link EmbeddedChannel}s
 * instead of sockets, for benchmarks: {@link #read} hands a chunk to the connection exactly as the transport
 * does (channelRead, then channelReadComplete on the pipeline of the side it was read from), and a sink at each
 * side frees what the engine writes there and counts its bytes.
 *
 * <p>The modules are loaded into a real {@link ModuleRegistry} and attached through the registry's matching
 * ({@code candidates}), as the engine does for an accepted connection, each with a class loader of its own as a
 * module from a jar has; the connection starts through
 * {@link ProxyConnection#startConnected}, which skips only the upstream connect. The watchdog slot is not
 * registered with a watchdog thread: the per-call enter/exit cost on the hot path is the same.
 *
 * <p>Single-threaded: an embedded channel's event loop is whatever thread drives it; call everything from
 * one thread (JMH's {@code Scope.Thread} state).
 */
public final class EmbeddedConnection implements AutoCloseable {

    /** Frees what the engine writes to one side and counts its bytes. */
    private static final class Sink extends ChannelOutboundHandlerAdapter {
        long bytes;
        long writes;

        @Override
        public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
            if (msg instanceof ByteBuf b) {
                bytes += b.readableBytes();
            }
            writes++;
            ReferenceCountUtil.release(msg);
            promise.trySuccess();
        }

        @Override
        public void flush(ChannelHandlerContext ctx) {
            // nothing is queued: write() already freed it
        }
    }

    private final ModuleRegistry registry;
    private final Engine engine;
    private final EmbeddedChannel local;
    private final EmbeddedChannel remote;
    private final Sink atLocal = new Sink();
    private final Sink atRemote = new Sink();
    private final ProxyConnection conn;

    /** Loads {@code modules} (in this order, all at the default priority) and starts a connection through them. */
    public EmbeddedConnection(List<? extends Module<?>> modules) throws ModuleLoadException {
        this.registry = new ModuleRegistry();
        for (Module<?> m : modules) {
            // A module from a jar has a class loader of its own, which the engine makes the thread's context class
            // loader during each of its calls: give every module one, so the benchmark pays that switch too (a module
            // loaded from a jar, as PreemptionBenchmark loads one, keeps its own).
            ClassLoader own = m.getClass().getClassLoader() instanceof ModuleClassLoader jar ? jar
                    : new ClassLoader("bench-module-" + registry.modules().size(), m.getClass().getClassLoader()) {};
            registry.add(m, PackageRef.builtin(m.getClass().getSimpleName(), own), (ModuleConfig) null);
        }
        EngineOptions options = EngineOptions.defaults().withIoThreads(1);
        this.engine = new Engine(registry, options);
        this.local = new EmbeddedChannel();
        this.remote = new EmbeddedChannel();
        local.pipeline().addLast("sink", atLocal);
        remote.pipeline().addLast("sink", atRemote);
        InetSocketAddress any = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
        ListenerSpec spec = ListenerSpec.tcp("bench", Role.CLIENT, any, new InetSocketAddress(InetAddress.getLoopbackAddress(), 9));
        this.conn = new ProxyConnection(engine, 1, spec, local, new Watchdog.Slot(Thread.currentThread()), options.holdLimit(), null, 0, 0);
        List<LoadedModule> attach = registry.candidates(conn);
        if (attach.size() != modules.size()) {
            throw new IllegalStateException("expected " + modules.size() + " modules to attach, the registry matched " + attach.size());
        }
        conn.startConnected(attach, remote);
        if (conn.isClosed()) {
            throw new IllegalStateException("the benchmark connection closed while starting: " + conn.closeReason());
        }
    }

    /**
     * Hands {@code chunk} (owned by the engine from here) to the connection as one transport read in
     * direction {@code d}: SEND is read from the local application's side, RECV from the network's.
     */
    public void read(Direction d, ByteBuf chunk) {
        EmbeddedChannel from = d == Direction.SEND ? local : remote;
        from.pipeline().fireChannelRead(chunk);
        from.pipeline().fireChannelReadComplete();
    }

    /** Runs what the engine queued on the connection's event loop (inject, hold accounting). */
    public void runPendingTasks() {
        local.runPendingTasks();
    }

    /** Bytes the engine has written out in direction {@code d} (to the remote side for SEND). */
    public long delivered(Direction d) {
        return d == Direction.SEND ? atRemote.bytes : atLocal.bytes;
    }

    /** Writes the engine has made in direction {@code d}. */
    public long writes(Direction d) {
        return d == Direction.SEND ? atRemote.writes : atLocal.writes;
    }

    /** True while the connection is open (a module fault or a limit would have closed it). */
    public boolean isOpen() {
        return !conn.isClosed();
    }

    /** Why the connection closed, or null. */
    public String closeReason() {
        return conn.closeReason();
    }

    @Override
    public void close() {
        conn.closeGracefully("benchmark done");
        local.runPendingTasks();
        local.finishAndReleaseAll();
        remote.finishAndReleaseAll();
        engine.close();
        registry.close();
    }
}
