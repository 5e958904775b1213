package dev.interlayer.engine;

import dev.interlayer.api.ConnectionEvent;
import dev.interlayer.api.ConnectionInfo;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.Role;
import dev.interlayer.runtime.LoadedModule;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufHolder;
import io.netty.channel.EventLoop;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.MockTicker;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;

/**
 * A real {@link DatagramFlow} (the engine's own per-datagram code) between two Netty {@link EmbeddedChannel}s instead of
 * UDP sockets, opened by an {@link EmbeddedEngine}: the listener's socket on the peer's side, the flow's upstream socket
 * on the other. Each {@link #read} is one datagram; what the engine sends is collected datagram by datagram.
 */
public final class EmbeddedFlow {

    private final EmbeddedEngine host;
    private final LoopChannel listenSide;
    private final LoopChannel upstream;
    private final DatagramFlow flow;
    /** The direction of datagrams from the peer (arriving at the listener). */
    private final Direction fromPeer;
    private final List<List<byte[]>> out = List.of(new ArrayList<>(), new ArrayList<>());

    EmbeddedFlow(EmbeddedEngine host, ConnectionInfo info, List<LoadedModule> modules) {
        this.host = host;
        boolean client = info.role() == Role.CLIENT;
        this.fromPeer = client ? Direction.SEND : Direction.RECV;
        InetSocketAddress peer = client ? info.localAddress() : info.remoteAddress();
        InetSocketAddress target = client ? info.remoteAddress() : info.localAddress();
        ListenerSpec spec = ListenerSpec.udp(info.listener(), info.role(), new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), target);
        this.listenSide = new LoopChannel(host.ticker(), host.loop());
        this.upstream = new LoopChannel(host.ticker(), host.loop());
        UdpListener listener = new UdpListener(host.engine(), spec, listenSide);
        this.flow = new DatagramFlow(host.engine(), listener, host.nextId(info), peer, host.slot(), host.holdLimit());
        flow.knownApp(info.app());
        flow.startConnected(modules, upstream);
        host.runUntilIdle();
    }

    /** The flow as the modules see it ({@code attachment.connection()}). */
    public ConnectionInfo info() {
        return flow;
    }

    /** One datagram arrives in direction {@code d} (SEND: from the local application's side, RECV: from the network's). */
    public void read(Direction d, byte[] bytes) {
        if (d == fromPeer) {
            flow.fromPeer(listenSide.alloc().buffer(bytes.length).writeBytes(bytes));
        } else {
            upstream.pipeline().fireChannelRead(upstream.alloc().buffer(bytes.length).writeBytes(bytes));
        }
        host.runUntilIdle();
    }

    /** The control plane detaches {@code module} from this flow (reason REQUESTED); false if it is not attached. */
    public boolean detach(String module) {
        return flow.detach(module, DetachReason.REQUESTED);
    }

    /** Fires {@code event} at every attached module with an event hook. */
    public void fire(ConnectionEvent event) {
        flow.chain().fireEvent(event);
    }

    /** Every datagram the engine has sent in direction {@code d} so far, in order. */
    public List<byte[]> delivered(Direction d) {
        return List.copyOf(out.get(d.ordinal()));
    }

    /** Bytes {@code module} holds; 0 if it is not attached. */
    public long heldBytes(String module) {
        DatagramAttachment a = flow.chain().find(module);
        return a == null ? 0 : a.heldBytes();
    }

    /** Bytes the modules hold or have queued on the flow. */
    public long heldBytes() {
        return flow.heldNow();
    }

    /** True if {@code module} is attached. */
    public boolean isAttached(String module) {
        return flow.chain().find(module) != null;
    }

    /** Timers {@code module} scheduled on this flow that have not fired or been cancelled; 0 if it is not attached. */
    public int pendingTimers(String module) {
        DatagramAttachment a = flow.chain().find(module);
        return a == null ? 0 : a.pendingTimers();
    }

    /** True while the flow is open. */
    public boolean isOpen() {
        return !flow.isClosed();
    }

    /** True once the flow ended by an abort (a module's abort or ERROR, a fail-closed fault). */
    public boolean wasAborted() {
        return flow.aborted();
    }

    /** Why the flow ended, or null while open. */
    public String closeReason() {
        return flow.isClosed() ? flow.closeReason() : null;
    }

    /** Ends the flow (the modules are detached, CLOSED). */
    public void close() {
        closeQuietly();
        host.runUntilIdle();
    }

    // ---- for the EmbeddedEngine -----------------------------------------------------------------------

    void closeQuietly() {
        if (!flow.isClosed()) {
            flow.close("the test closed the flow");
        }
    }

    boolean pump() {
        boolean busy = listenSide.hasPendingTasks() || upstream.hasPendingTasks();
        listenSide.runPendingTasks();
        upstream.runPendingTasks();
        collect(listenSide, fromPeer == Direction.SEND ? Direction.RECV : Direction.SEND);
        collect(upstream, fromPeer);
        listenSide.checkException();
        upstream.checkException();
        return busy;
    }

    /** Datagrams written to {@code ch} went out in direction {@code d}. */
    private void collect(LoopChannel ch, Direction d) {
        Object msg;
        while ((msg = ch.readOutbound()) != null) {
            try {
                ByteBuf b = msg instanceof ByteBufHolder h ? h.content() : (ByteBuf) msg;
                byte[] bytes = new byte[b.readableBytes()];
                b.getBytes(b.readerIndex(), bytes);
                out.get(d.ordinal()).add(bytes);
            } finally {
                ReferenceCountUtil.release(msg);
            }
        }
    }

    void releaseAll() {
        collect(listenSide, fromPeer == Direction.SEND ? Direction.RECV : Direction.SEND);
        collect(upstream, fromPeer);
        listenSide.finishAndReleaseAll();
        upstream.finishAndReleaseAll();
    }

    /** An embedded channel on the engine's {@link EmbeddedLoop}. */
    private static final class LoopChannel extends EmbeddedChannel {
        /* Set after the super constructor, which already reads eventLoop() while registering; no initializer. */
        private EventLoop loop;

        LoopChannel(MockTicker ticker, EventLoop loop) {
            super(EmbeddedChannel.builder().ticker(ticker));
            this.loop = loop;
        }

        @Override
        public EventLoop eventLoop() {
            EventLoop l = loop;
            return l != null ? l : super.eventLoop();
        }
    }
}
