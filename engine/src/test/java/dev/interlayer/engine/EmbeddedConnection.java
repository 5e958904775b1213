package dev.interlayer.engine;

import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.Module;
import dev.interlayer.api.Role;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleConfig;
import dev.interlayer.runtime.ModuleLoadException;
import dev.interlayer.runtime.ModuleRegistry;
import dev.interlayer.runtime.PackageRef;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelConfig;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPromise;
import io.netty.channel.DefaultChannelConfig;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.MockTicker;
import io.netty.util.concurrent.Ticker;
import java.io.ByteArrayOutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real {@link ProxyConnection} (the engine's own per-chunk code, end of stream, close and reset) between two Netty
 * {@link EmbeddedChannel}s instead of sockets, for tests that need the engine's exact behaviour without the timing of a
 * network.
 *
 * <pre>
 *  read(SEND, …) ──▶ [local]  ──▶ SEND: modules ──▶ [remote] ──▶ delivered(SEND), finSent(SEND)
 *  delivered(RECV) ◀── [local] ◀── RECV: modules ◀── [remote] ◀── read(RECV, …)
 * </pre>
 *
 * <p>The modules are loaded into a real {@link ModuleRegistry} and attached through its matching, as for an accepted
 * connection (ordered by priority); the connection starts through {@link ProxyConnection#startConnected}, which skips
 * only the upstream connect. Each side is a channel that, like a TCP socket, can shut its output (the engine sends its
 * FIN there) and tells a reset (SO_LINGER 0, then close) from a graceful close. What the engine writes is collected
 * once it is flushed, as a socket would send it.
 *
 * <p>Time: both channels' event loops read one {@link MockTicker}, which moves only in {@link #advance}; timers
 * ({@code attachment.schedule}) fire then, in due order, with everything they cause run before the next millisecond.
 * Nothing runs by itself: {@link #runUntilIdle()} runs what the engine queued on its loop (injects, output queued
 * behind them, hold accounting, the end of stream walking the chain).
 *
 * <pre>{@code
 * try (EmbeddedConnection c = new EmbeddedConnection(List.of(module))) {
 *     c.read(Direction.SEND, "hello".getBytes());
 *     c.endInput(Direction.SEND);
 *     c.runUntilIdle();
 *     assertThat(c.delivered(Direction.SEND)).isEqualTo("hello".getBytes());
 *     assertThat(c.finSent(Direction.SEND)).isTrue();
 * }
 * }</pre>
 *
 * <p>Threading: an embedded channel's event loop is the thread that drives it; call everything from one thread.
 * Buffers: {@link #close()} releases whatever is left, so a test with leak detection sees only the engine's leaks.
 */
public final class EmbeddedConnection implements AutoCloseable {

    /** How many rounds of queued tasks {@link #runUntilIdle} runs before it calls the loop a livelock. */
    private static final int MAX_ROUNDS = 100_000;

    private final ModuleRegistry registry;
    private final Engine engine;
    private final MockTicker ticker = Ticker.newMockTicker();
    private final PeerChannel local = new PeerChannel(ticker);
    private final PeerChannel remote = new PeerChannel(ticker);
    private final ProxyConnection conn;

    /**
     * Loads {@code modules} (ordered by their descriptors' priorities, ties in the order given) and starts a connection
     * through them, running what attaching queued.
     *
     * @throws IllegalStateException if some module does not attach or the connection closed while starting
     */
    public EmbeddedConnection(List<? extends Module<?>> modules) throws ModuleLoadException {
        this.registry = new ModuleRegistry();
        for (Module<?> m : modules) {
            registry.add(m, PackageRef.builtin(m.getClass().getSimpleName(), m.getClass().getClassLoader()), (ModuleConfig) null);
        }
        EngineOptions options = EngineOptions.defaults().withIoThreads(1);
        this.engine = new Engine(registry, options);
        InetSocketAddress any = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
        ListenerSpec spec = ListenerSpec.tcp("embedded", Role.CLIENT, any, new InetSocketAddress(InetAddress.getLoopbackAddress(), 9));
        this.conn = new ProxyConnection(engine, 1, spec, local, new Watchdog.Slot(Thread.currentThread()), options.holdLimit(), null, 0, 0);
        List<LoadedModule> attach = registry.candidates(conn);
        if (attach.size() != modules.size()) {
            throw new IllegalStateException("expected " + modules.size() + " modules to attach, the registry matched " + attach.size());
        }
        conn.startConnected(attach, remote);
        runUntilIdle();
        if (conn.isClosed()) {
            throw new IllegalStateException("the embedded connection closed while starting: " + conn.closeReason());
        }
    }

    /**
     * Hands {@code bytes} to the connection as one transport read in direction {@code d} (SEND: read from the local
     * application's side, RECV: from the network's), as the transport does: channelRead, then channelReadComplete. While
     * the engine has paused reading that side (auto-read off) the read waits, as it would in the socket's buffer.
     */
    public void read(Direction d, byte[] bytes) {
        PeerChannel from = source(d);
        ByteBuf chunk = from.alloc().buffer(bytes.length).writeBytes(bytes);
        from.backlog.add(chunk);
        from.deliver();
    }

    /** The sender of direction {@code d} half-closes: the engine sees the end of input after every byte read before it. */
    public void endInput(Direction d) {
        PeerChannel from = source(d);
        from.backlog.add(END);
        from.deliver();
    }

    /** The control plane detaches {@code module} from this connection (reason REQUESTED); false if it is not attached. */
    public boolean detach(String module) {
        return conn.detach(module, DetachReason.REQUESTED);
    }

    /**
     * Runs what is queued on the connection's event loop, and timers due now, until nothing is left; collects what the
     * engine flushed.
     *
     * @throws IllegalStateException if the loop never runs dry (a task that keeps queuing itself)
     */
    public void runUntilIdle() {
        for (int round = 0; round < MAX_ROUNDS; round++) {
            local.runPendingTasks();
            remote.runPendingTasks();
            local.deliver();
            remote.deliver();
            local.collect();
            remote.collect();
            local.checkException();
            remote.checkException();
            if (!local.hasPendingTasks() && !remote.hasPendingTasks() && !local.canDeliver() && !remote.canDeliver()) {
                return;
            }
        }
        throw new IllegalStateException("the event loop still had work after " + MAX_ROUNDS + " rounds");
    }

    /**
     * Moves the loop's clock forward by {@code by}, a millisecond at a time, running until idle after each step, so a
     * timer's effects happen before a later timer fires, as on a real loop.
     */
    public void advance(Duration by) {
        long left = by.toNanos();
        runUntilIdle();
        while (left > 0) {
            long step = Math.min(left, TimeUnit.MILLISECONDS.toNanos(1));
            ticker.advance(step, TimeUnit.NANOSECONDS);
            left -= step;
            runUntilIdle();
        }
    }

    /** Every byte the engine has sent in direction {@code d} so far (to the network for SEND), in order. */
    public byte[] delivered(Direction d) {
        return target(d).out.toByteArray();
    }

    /** True once the engine has sent the FIN of direction {@code d} (shut the output of its target). */
    public boolean finSent(Direction d) {
        return target(d).outputShut;
    }

    /** Bytes the engine wrote in direction {@code d} after it had sent the FIN there (a socket would have failed them). */
    public long bytesAfterFin(Direction d) {
        return target(d).bytesAfterFin;
    }

    /** True while the connection is open. */
    public boolean isOpen() {
        return !conn.isClosed();
    }

    /** True once the engine reset the connection (SO_LINGER 0, then close) rather than closing it gracefully. */
    public boolean wasReset() {
        return local.lingerZero || remote.lingerZero;
    }

    /** Why the connection closed, or null while open. */
    public String closeReason() {
        return conn.isClosed() ? conn.closeReason() : null;
    }

    /** Closes the connection gracefully if it is still open and releases everything the channels still hold. */
    @Override
    public void close() {
        try {
            if (!conn.isClosed()) {
                conn.closeGracefully("the test is done");
            }
            runUntilIdle();
        } finally {
            local.releaseAll();
            remote.releaseAll();
            engine.close();
            registry.close();
        }
    }

    private PeerChannel source(Direction d) {
        return d == Direction.SEND ? local : remote;
    }

    private PeerChannel target(Direction d) {
        return d == Direction.SEND ? remote : local;
    }

    /** The end of input, queued in a side's backlog behind the bytes read before it. */
    private static final Object END = new Object();

    /**
     * One side of the connection: an embedded channel that, like a TCP socket, shuts its output ({@link DuplexChannel}), and
     * records a reset (the engine sets SO_LINGER 0 before it closes a socket to reset it).
     */
    private static final class PeerChannel extends EmbeddedChannel implements DuplexChannel {

        private final ByteArrayOutputStream out = new ByteArrayOutputStream();
        /** Reads (ByteBuf) and the end of input ({@link #END}) not yet handed to the engine, in order. */
        private final ArrayDeque<Object> backlog = new ArrayDeque<>();
        private boolean outputShut;
        private boolean inputShut;
        private boolean lingerZero;
        private long bytesAfterFin;
        /**
         * Made on first use, and deliberately without an initializer: the super constructor registers the channel, which
         * reads the config, before this class's field initializers run (an initializer would then overwrite it).
         */
        private RecordingConfig config;

        PeerChannel(MockTicker ticker) {
            super(EmbeddedChannel.builder().ticker(ticker));
        }

        @Override
        public ChannelConfig config() {
            if (config == null) {
                config = new RecordingConfig(this);
            }
            return config;
        }

        /** True if a read or the end waits and the engine reads this side now. */
        boolean canDeliver() {
            return !backlog.isEmpty() && isOpen() && config().isAutoRead();
        }

        /** Hands the backlog to the engine while it reads this side, one transport read per chunk. */
        void deliver() {
            while (canDeliver()) {
                Object next = backlog.poll();
                if (next == END) {
                    inputShut = true;
                    pipeline().fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
                } else {
                    pipeline().fireChannelRead(next);
                    pipeline().fireChannelReadComplete();
                }
            }
        }

        /** Moves what the engine flushed to this side into {@link #out}, releasing the buffers. */
        void collect() {
            Object msg;
            while ((msg = readOutbound()) != null) {
                try {
                    if (msg instanceof ByteBuf b && b.isReadable()) {
                        if (outputShut) {
                            bytesAfterFin += b.readableBytes();
                        } else {
                            byte[] bytes = new byte[b.readableBytes()];
                            b.getBytes(b.readerIndex(), bytes);
                            out.writeBytes(bytes);
                        }
                    }
                } finally {
                    ReferenceCountUtil.release(msg);
                }
            }
        }

        void releaseAll() {
            collect();
            for (Object o : backlog) {
                ReferenceCountUtil.release(o);
            }
            backlog.clear();
            finishAndReleaseAll();
        }

        @Override
        public boolean isInputShutdown() {
            return inputShut;
        }

        @Override
        public ChannelFuture shutdownInput() {
            return shutdownInput(newPromise());
        }

        @Override
        public ChannelFuture shutdownInput(ChannelPromise promise) {
            inputShut = true;
            return promise.setSuccess();
        }

        @Override
        public boolean isOutputShutdown() {
            return outputShut;
        }

        @Override
        public ChannelFuture shutdownOutput() {
            return shutdownOutput(newPromise());
        }

        /** The FIN: what was flushed before it is collected first, so a byte written after it is counted as such. */
        @Override
        public ChannelFuture shutdownOutput(ChannelPromise promise) {
            collect();
            outputShut = true;
            return promise.setSuccess();
        }

        @Override
        public boolean isShutdown() {
            return (inputShut && outputShut) || !isActive();
        }

        @Override
        public ChannelFuture shutdown() {
            return shutdown(newPromise());
        }

        @Override
        public ChannelFuture shutdown(ChannelPromise promise) {
            shutdownInput();
            return shutdownOutput(promise);
        }

        /** The channel's options, remembering the one a reset sets. */
        private final class RecordingConfig extends DefaultChannelConfig {
            RecordingConfig(PeerChannel ch) {
                super(ch);
            }

            @Override
            public <T> boolean setOption(ChannelOption<T> option, T value) {
                if (option == ChannelOption.SO_LINGER) {
                    lingerZero = Integer.valueOf(0).equals(value);
                    return true;
                }
                return super.setOption(option, value);
            }
        }
    }
}
