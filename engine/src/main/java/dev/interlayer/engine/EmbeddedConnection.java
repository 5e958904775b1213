package dev.interlayer.engine;

import dev.interlayer.api.ConnectionEvent;
import dev.interlayer.api.ConnectionInfo;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.OptionDecision;
import dev.interlayer.api.Role;
import dev.interlayer.api.Side;
import dev.interlayer.api.SocketDecision;
import dev.interlayer.api.SocketOption;
import dev.interlayer.runtime.LoadedModule;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelConfig;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelOutboundBuffer;
import io.netty.channel.ChannelPromise;
import io.netty.channel.DefaultChannelConfig;
import io.netty.channel.EventLoop;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.MockTicker;
import java.io.ByteArrayOutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.ArrayDeque;
import java.util.List;

/**
 * A real {@link ProxyConnection} (the engine's own per-chunk code, end of stream, close and reset) between two Netty
 * {@link EmbeddedChannel}s instead of sockets, opened by an {@link EmbeddedEngine}.
 *
 * <pre>
 *  read(SEND, …) ──▶ [local]  ──▶ SEND: modules ──▶ [remote] ──▶ delivered(SEND), finSent(SEND)
 *  delivered(RECV) ◀── [local] ◀── RECV: modules ◀── [remote] ◀── read(RECV, …)
 * </pre>
 *
 * <p>The connection starts through {@link ProxyConnection#startConnected}, which skips only the upstream connect: the
 * modules attach, the listener's socket options go through their {@code onSetOption}, CONNECTED is fired. Each side is
 * a channel that, like a TCP socket, can shut its output (the engine sends its FIN there), tells a reset (SO_LINGER 0,
 * then close) from a graceful close, and can be made unwritable (a peer that does not read). What the engine writes is
 * collected once it is flushed, as a socket would send it. Nothing runs by itself: {@link EmbeddedEngine#runUntilIdle()}
 * runs what the engine queued.
 *
 * <p>Buffers: {@link EmbeddedEngine#close()} releases whatever is left, so a test with leak detection sees only the
 * engine's (or a module's) leaks.
 */
public final class EmbeddedConnection {

    private final EmbeddedEngine host;
    private final PeerChannel local;
    private final PeerChannel remote;
    private final ProxyConnection conn;

    EmbeddedConnection(EmbeddedEngine host, ConnectionInfo info, List<LoadedModule> modules) {
        this.host = host;
        EmbeddedLoop loop = host.loop();
        boolean client = info.role() == Role.CLIENT;
        InetSocketAddress listen = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
        ListenerSpec spec = ListenerSpec.tcp(info.listener(), info.role(), listen, client ? info.remoteAddress() : info.localAddress());
        // the accepted socket's peer is the local application (CLIENT) or the network peer (SERVER)
        this.local = new PeerChannel(host.ticker(), loop, client ? info.localAddress() : null, host.discardOutput());
        this.remote = new PeerChannel(host.ticker(), loop, client ? null : info.remoteAddress(), host.discardOutput());
        PeerChannel accepted = client ? local : remote;
        this.conn = new ProxyConnection(host.engine(), host.nextId(info), spec, accepted, host.slot(), host.holdLimit(),
                info.startedAt(), 0, 0, null);
        conn.knownApp(info.app());
        conn.knownTls(info.tls(Side.LOCAL), info.tls(Side.REMOTE));
        conn.startConnected(modules, client ? remote : local);
        host.runUntilIdle();
    }

    /** The connection as the modules see it ({@code attachment.connection()}). */
    public ConnectionInfo info() {
        return conn;
    }

    /**
     * Hands {@code bytes} to the connection as one transport read in direction {@code d} (SEND: read from the local
     * application's side, RECV: from the network's): channelRead, then channelReadComplete. While the engine has paused
     * reading that side the read waits, as it would in the socket's buffer.
     */
    public void read(Direction d, byte[] bytes) {
        PeerChannel from = source(d);
        ByteBuf chunk = from.alloc().buffer(bytes.length).writeBytes(bytes);
        from.backlog.add(chunk);
        from.backlogBytes += bytes.length;
        from.deliver();
    }

    /**
     * Hands {@code chunk} (owned by the engine from here) to the connection as one transport read in direction {@code d},
     * at once: for benchmarks, which keep the engine's reading unpaused.
     */
    public void read(Direction d, ByteBuf chunk) {
        PeerChannel from = source(d);
        from.pipeline().fireChannelRead(chunk);
        from.pipeline().fireChannelReadComplete();
    }

    /** The sender of direction {@code d} half-closes: the engine sees the end of input after every byte read before it. */
    public void endInput(Direction d) {
        PeerChannel from = source(d);
        from.backlog.add(END);
        from.deliver();
    }

    /**
     * Makes the receiver of direction {@code d} stop ({@code false}) or resume reading, as a peer with a full window:
     * while it does not read, what the engine writes there stays in the channel's outbound buffer (not delivered) and the
     * channel is unwritable.
     */
    public void writable(Direction d, boolean writable) {
        PeerChannel t = target(d);
        t.reading = writable;
        ChannelOutboundBuffer b = t.unsafe().outboundBuffer();
        if (b != null) {
            b.setUserDefinedWritability(1, writable);
        }
        if (writable) {
            t.flush();
        }
    }

    /** The control plane detaches {@code module} from this connection (reason REQUESTED); false if it is not attached. */
    public boolean detach(String module) {
        return conn.detach(module, DetachReason.REQUESTED);
    }

    /** Fires {@code event} at every attached module with an event hook. */
    public void fire(ConnectionEvent event) {
        conn.chain().fireEvent(event);
    }

    /** What the modules' {@code onConnect} hooks decide for {@code target} (the first DENY, else REDIRECT or ALLOW). */
    public SocketDecision connect(InetSocketAddress target) {
        SocketDecision d = conn.chain().decide(true, target);
        return d == null ? SocketDecision.deny("the connection closed") : d;
    }

    /** What the modules' {@code onBind} hooks decide for {@code local} (null: an ephemeral address). */
    public SocketDecision bind(InetSocketAddress local) {
        SocketDecision d = conn.chain().decide(false, local);
        return d == null ? SocketDecision.deny("the connection closed") : d;
    }

    /** What the modules' {@code onSetOption} hooks decide for setting {@code option} to {@code value} on {@code side}. */
    public OptionDecision setOption(Side side, SocketOption option, Object value) {
        OptionDecision d = conn.chain().decideOption(side, option, value);
        return d == null ? OptionDecision.deny("the connection closed") : d;
    }

    /**
     * The value of {@code option} on {@code side} as the modules' {@code onGetOption} hooks report it, the socket having
     * {@code socketValue} (an embedded channel has no socket options of its own).
     */
    public Object getOption(Side side, SocketOption option, Object socketValue) {
        return conn.chain().reportedOption(side, option, socketValue);
    }

    /** Every byte the engine has sent in direction {@code d} so far (to the network for SEND), in order. */
    public byte[] delivered(Direction d) {
        return target(d).out.toByteArray();
    }

    /** How many bytes the engine has sent in direction {@code d}, whether kept or discarded. */
    public long deliveredBytes(Direction d) {
        return target(d).sentBytes;
    }

    /** True once the engine has sent the FIN of direction {@code d} (shut the output of its target). */
    public boolean finSent(Direction d) {
        return target(d).outputShut;
    }

    /** Bytes the engine wrote in direction {@code d} after it had sent the FIN there (a socket would have failed them). */
    public long bytesAfterFin(Direction d) {
        return target(d).bytesAfterFin;
    }

    /** True while the engine does not read the source of direction {@code d} (back-pressure). */
    public boolean isPaused(Direction d) {
        return conn.isPaused(d.ordinal());
    }

    /** Bytes given to {@link #read} for direction {@code d} that have not entered the chain yet (reading is paused). */
    public long pendingSource(Direction d) {
        return source(d).backlogBytes + conn.parkedBytes(d.ordinal());
    }

    /**
     * Bytes the modules hold or buffer (HOLD and NEED_MORE) plus bytes written to a peer that does not read: what the
     * hold limit bounds.
     */
    public long heldBytes() {
        return conn.reservedBytes() + local.unsent() + remote.unsent();
    }

    /** Bytes {@code module} holds or buffers; 0 if it is not attached. */
    public long heldBytes(String module) {
        RealAttachment a = conn.chain().find(module);
        return a == null ? 0 : a.heldBytes();
    }

    /** True if {@code module} is attached. */
    public boolean isAttached(String module) {
        return conn.chain().find(module) != null;
    }

    /** Timers {@code module} scheduled on this connection that have not fired or been cancelled; 0 if it is not attached. */
    public int pendingTimers(String module) {
        RealAttachment a = conn.chain().find(module);
        return a == null ? 0 : a.pendingTimers();
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

    /** Closes the connection gracefully (the modules are detached, CLOSED) if it is still open. */
    public void close() {
        closeQuietly();
        host.runUntilIdle();
    }

    /** Resets the connection, as {@code attachment.abort(reason)} does. */
    public void abort(String reason) {
        conn.abort(reason);
        host.runUntilIdle();
    }

    // ---- for the EmbeddedEngine -----------------------------------------------------------------------

    void closeQuietly() {
        if (!conn.isClosed()) {
            conn.closeGracefully("the test closed the connection");
        }
    }

    /** Runs the channels' own tasks, hands them what they can deliver and collects what they sent; true if anything was to do. */
    boolean pump() {
        boolean busy = local.hasPendingTasks() || remote.hasPendingTasks() || local.canDeliver() || remote.canDeliver();
        local.runPendingTasks();
        remote.runPendingTasks();
        local.deliver();
        remote.deliver();
        local.collect();
        remote.collect();
        local.checkException();
        remote.checkException();
        return busy;
    }

    void releaseAll() {
        local.releaseAll();
        remote.releaseAll();
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
     * One side of the connection: an embedded channel that, like a TCP socket, shuts its output ({@link DuplexChannel}),
     * records a reset (the engine sets SO_LINGER 0 before it closes a socket to reset it), and runs on the engine's
     * {@link EmbeddedLoop} (so work from a module's own thread is queued, not run on that thread).
     */
    private static final class PeerChannel extends EmbeddedChannel implements DuplexChannel {

        private final ByteArrayOutputStream out = new ByteArrayOutputStream();
        /** Reads (ByteBuf) and the end of input ({@link #END}) not yet handed to the engine, in order. */
        private final ArrayDeque<Object> backlog = new ArrayDeque<>();
        private long backlogBytes;
        private boolean outputShut;
        private boolean inputShut;
        private boolean lingerZero;
        private long bytesAfterFin;
        private long sentBytes;
        /** Counts what is sent without keeping it (benchmarks); set after construction. */
        private boolean discard;
        /** False while the peer does not read (see {@link EmbeddedConnection#writable}); set after construction. */
        private boolean reading;
        /*
         * Set after the super constructor, which registers the channel and so already reads eventLoop() and config():
         * until then those fall back to the embedded defaults. No initializers for them, or they would overwrite.
         */
        private EventLoop loop;
        private InetSocketAddress peer;
        private RecordingConfig config;

        PeerChannel(MockTicker ticker, EventLoop loop, InetSocketAddress peer, boolean discard) {
            super(EmbeddedChannel.builder().ticker(ticker));
            this.loop = loop;
            this.peer = peer;
            this.reading = true;
            this.discard = discard;
        }

        /** A peer that does not read takes nothing: the writes stay in the outbound buffer, as in a full socket. */
        @Override
        protected void doWrite(ChannelOutboundBuffer in) throws Exception {
            if (!reading) {
                return;
            }
            if (discard) {
                Object msg;
                while ((msg = in.current()) != null) {
                    if (msg instanceof ByteBuf b) sentBytes += b.readableBytes();
                    in.remove(); // releases it
                }
                return;
            }
            super.doWrite(in);
        }

        /** Bytes written and flushed but not taken by the peer. */
        long unsent() {
            ChannelOutboundBuffer b = unsafe().outboundBuffer();
            if (b == null) return 0;
            long[] n = {0};
            try {
                b.forEachFlushedMessage(msg -> {
                    if (msg instanceof ByteBuf buf) n[0] += buf.readableBytes();
                    return true;
                });
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
            return n[0];
        }

        @Override
        public EventLoop eventLoop() {
            EventLoop l = loop;
            return l != null ? l : super.eventLoop();
        }

        @Override
        public SocketAddress remoteAddress() {
            return peer != null ? peer : super.remoteAddress();
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
                    backlogBytes -= ((ByteBuf) next).readableBytes();
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
                            sentBytes += b.readableBytes();
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
            backlogBytes = 0;
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
