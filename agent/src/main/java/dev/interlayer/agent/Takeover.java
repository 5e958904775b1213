package dev.interlayer.agent;

import dev.interlayer.control.ControlClient;
import dev.interlayer.control.v1.HandedListener;
import dev.interlayer.control.v1.TakeoverRequest;
import dev.interlayer.control.v1.TakeoverResponse;
import dev.interlayer.engine.Engine;
import dev.interlayer.engine.EngineException;
import dev.interlayer.engine.ListenerSpec;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollChannelOption;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.channel.unix.DomainSocketReadMode;
import io.netty.channel.unix.FileDescriptor;
import io.netty.handler.codec.LineBasedFrameDecoder;
import io.netty.util.ReferenceCountUtil;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The new agent's side of a takeover ({@code interlayer run --takeover}; the running agent's side is
 * {@link HandoverServer}): asks the agent on a control socket for its listening sockets, receives them, starts each
 * listener of the same name and address on them ({@link #start}), then tells the old agent to stop accepting and waits
 * until it has given up its control socket ({@link #release}). Sockets no listener took are closed with {@link #close}.
 */
public final class Takeover implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.agent");
    /** How long the control call and receiving the sockets may take. */
    private static final Duration CALL = Duration.ofSeconds(10);

    private final String oldPid;
    private final Map<String, Inherited> listeners;
    private final EventLoopGroup group;
    private final Channel channel;
    private final CompletableFuture<Void> released;

    /** A listener of the old agent and its sockets, in this process; {@code taken} once a listener runs on them. */
    private static final class Inherited {
        final HandedListener listener;
        final List<Integer> fds;
        boolean taken;

        Inherited(HandedListener listener, List<Integer> fds) {
            this.listener = listener;
            this.fds = fds;
        }
    }

    private Takeover(String oldPid, Map<String, Inherited> listeners, EventLoopGroup group, Channel channel, CompletableFuture<Void> released) {
        this.oldPid = oldPid;
        this.listeners = listeners;
        this.group = group;
        this.channel = channel;
        this.released = released;
    }

    /**
     * Asks the agent serving {@code controlSocket} for its listening sockets. Empty, with a warning logged, when no agent
     * serves it (no socket file, or nobody listening on it): the new agent then binds its listeners itself.
     *
     * @param drain how long the old agent lets its connections finish; null: its {@code agent.stop-timeout}
     * @throws AgentException if the agent refuses (the security module's rule, or it cannot hand over now) or the sockets
     *         do not arrive from it while it lives; nothing of the old agent has changed then
     */
    public static java.util.Optional<Takeover> fetch(Path controlSocket, Duration drain) throws AgentException {
        if (!Files.exists(controlSocket)) {
            LOG.log(Level.WARNING, "takeover: no agent serves {0} (no such socket); binding the listeners as a normal start", controlSocket);
            return java.util.Optional.empty();
        }
        TakeoverResponse r;
        try (ControlClient c = ControlClient.unix(controlSocket)) {
            r = c.upgrade().withDeadlineAfter(CALL.toMillis(), TimeUnit.MILLISECONDS).takeover(TakeoverRequest.newBuilder()
                    .setPid(ProcessHandle.current().pid()).setDrainMs(drain == null ? 0 : drain.toMillis()).build());
        } catch (StatusRuntimeException e) {
            Status.Code code = e.getStatus().getCode();
            if (code == Status.Code.UNAVAILABLE && e.getCause() != null) { // the transport's: nobody listens (an agent's own refusal has no cause)
                LOG.log(Level.WARNING, "takeover: no agent answers on {0} ({1}); binding the listeners as a normal start", controlSocket,
                        e.getCause().getMessage());
                return java.util.Optional.empty();
            }
            if (code == Status.Code.DEADLINE_EXCEEDED) {
                throw new AgentException("takeover: the agent on " + controlSocket + " did not answer within " + CALL.toSeconds()
                        + " s (" + e.getStatus().getDescription() + "); it serves on unchanged. On a host this busy, retry the upgrade", e);
            }
            throw new AgentException("takeover: the agent on " + controlSocket + " refused it: " + code + ": " + e.getStatus().getDescription()
                    + (code == Status.Code.PERMISSION_DENIED ? "; run the new agent as root or as the running agent's user, or grant Upgrade.Takeover"
                    + " in its control policy" : ""), e);
        }
        try {
            return java.util.Optional.of(receive(r));
        } catch (AgentException e) {
            if (ProcessHandle.of(r.getPid()).map(ProcessHandle::isAlive).orElse(false)) {
                throw e;
            }
            LOG.log(Level.WARNING, "takeover: process {0} died during the handover ({1}); binding the listeners as a normal start",
                    String.valueOf(r.getPid()), e.getMessage());
            return java.util.Optional.empty();
        }
    }

    /** Connects to the handover socket, presents the token and receives every socket {@code r} announces. */
    private static Takeover receive(TakeoverResponse r) throws AgentException {
        int expected = r.getListenersList().stream().mapToInt(HandedListener::getSockets).sum();
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        List<Integer> fds = new ArrayList<>();
        CompletableFuture<Void> received = new CompletableFuture<>();
        CompletableFuture<Void> released = new CompletableFuture<>();
        Channel ch = null;
        try {
            ch = new Bootstrap().group(group).channel(EpollDomainSocketChannel.class)
                    .option(EpollChannelOption.DOMAIN_SOCKET_READ_MODE, DomainSocketReadMode.FILE_DESCRIPTORS)
                    .handler(new Receiver(expected, fds, received, released))
                    .connect(new DomainSocketAddress(r.getHandoverSocket())).syncUninterruptibly().channel();
            ch.writeAndFlush(Unpooled.copiedBuffer(r.getToken() + "\n", StandardCharsets.UTF_8));
            received.get(CALL.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException | ExecutionException | TimeoutException | RuntimeException e) {
            if (ch != null) ch.close().awaitUninterruptibly();
            group.shutdownGracefully(0, 0, TimeUnit.SECONDS);
            synchronized (fds) {
                fds.forEach(Takeover::closeQuietly);
            }
            throw new AgentException("takeover: the listening sockets of process " + r.getPid() + " did not arrive over " + r.getHandoverSocket() + " ("
                    + (e instanceof TimeoutException ? "none within " + CALL.toSeconds() + " s" : e.getCause() != null ? e.getCause() : e)
                    + "); the old agent keeps serving: try again, or stop it and start without --takeover", e);
        }
        Map<String, Inherited> byName = new LinkedHashMap<>();
        int i = 0;
        for (HandedListener l : r.getListenersList()) {
            byName.put(l.getName(), new Inherited(l, List.copyOf(fds.subList(i, i + l.getSockets()))));
            i += l.getSockets();
        }
        LOG.log(Level.INFO, "takeover: received {0} listening socket(s) of {1} listener(s) from process {2}", fds.size(), byName.size(), String.valueOf(r.getPid()));
        return new Takeover(String.valueOf(r.getPid()), byName, group, ch, released);
    }

    /**
     * Starts {@code spec} on the old agent's sockets of the listener of that name, protocol and address; binds it afresh,
     * saying so, if the old agent had it on another address or protocol, and silently if it had no listener of that name.
     */
    public InetSocketAddress start(Engine engine, ListenerSpec spec) throws EngineException {
        Inherited in = listeners.get(spec.name());
        if (in == null) {
            return engine.start(spec);
        }
        String protocol = spec.protocol().name().toLowerCase(Locale.ROOT);
        String wanted = Agent.address(spec.listen());
        String had = in.listener.getListen();
        boolean same = protocol.equals(in.listener.getProtocol()) && (wanted.equals(had)
                || spec.listen().getPort() == 0 && wanted.substring(0, wanted.lastIndexOf(':')).equals(had.substring(0, had.lastIndexOf(':'))));
        if (!same) {
            LOG.log(Level.WARNING, "takeover: listener {0} was {1} {2} in process {3}, the config says {4} {5}: binding it afresh; the old"
                    + " socket closes with the old agent", spec.name(), in.listener.getProtocol(), had, oldPid, protocol, wanted);
            return engine.start(spec);
        }
        InetSocketAddress at = engine.adopt(spec, in.fds);
        in.taken = true;
        LOG.log(Level.INFO, "takeover: listener {0} serves on the {1} socket(s) of process {2} on {3}", spec.name(), in.fds.size(), oldPid, had);
        return at;
    }

    /**
     * Tells the old agent that the listeners run here: it stops accepting and gives up its control socket. Waits for that
     * (at most {@link HandoverServer#WAIT}); if the old agent went away meanwhile, that is logged and the start goes on.
     */
    public void release() {
        channel.writeAndFlush(Unpooled.copiedBuffer(HandoverServer.BOUND + "\n", StandardCharsets.UTF_8));
        try {
            released.get(HandoverServer.WAIT.toMillis(), TimeUnit.MILLISECONDS);
            LOG.log(Level.INFO, "takeover: process {0} stopped accepting and gave up its control socket; it drains its connections", oldPid);
        } catch (ExecutionException | TimeoutException e) {
            LOG.log(Level.WARNING, "takeover: process {0} did not confirm it stopped accepting ({1}); going on", oldPid,
                    e instanceof TimeoutException ? "no answer within " + HandoverServer.WAIT.toSeconds() + " s" : e.getCause().getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Closes the handover connection and the inherited sockets no listener took (their listeners end with the old agent). */
    @Override
    public void close() {
        channel.close().awaitUninterruptibly();
        group.shutdownGracefully(0, 0, TimeUnit.SECONDS);
        for (Inherited in : listeners.values()) {
            if (!in.taken) {
                in.fds.forEach(Takeover::closeQuietly);
            }
        }
    }

    private static void closeQuietly(int fd) {
        try {
            new FileDescriptor(fd).close();
        } catch (IOException e) {
            LOG.log(Level.DEBUG, "cannot close inherited socket {0}: {1}", fd, e.toString());
        }
    }

    /**
     * The handover connection: first the sockets (file descriptor read mode), then, once all have come, lines (byte mode):
     * {@code released}, or the end of the connection.
     */
    private static final class Receiver extends ChannelInboundHandlerAdapter {
        private final int expected;
        private final List<Integer> fds;
        private final CompletableFuture<Void> received;
        private final CompletableFuture<Void> released;

        Receiver(int expected, List<Integer> fds, CompletableFuture<Void> received, CompletableFuture<Void> released) {
            this.expected = expected;
            this.fds = fds;
            this.received = received;
            this.released = released;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            if (expected == 0) {
                allReceived(ctx);
            }
            ctx.fireChannelActive();
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof FileDescriptor fd) {
                synchronized (fds) {
                    fds.add(fd.intValue());
                    if (fds.size() == expected) {
                        allReceived(ctx);
                    }
                }
                return;
            }
            try {
                if (msg instanceof ByteBuf line && line.toString(StandardCharsets.UTF_8).equals(HandoverServer.RELEASED)) {
                    released.complete(null);
                }
            } finally {
                ReferenceCountUtil.release(msg);
            }
        }

        /** Every socket is here: the old agent sends only lines from now on. */
        private void allReceived(ChannelHandlerContext ctx) {
            ((EpollDomainSocketChannel) ctx.channel()).config().setReadMode(DomainSocketReadMode.BYTES);
            ctx.pipeline().addBefore(ctx.name(), "lines", new LineBasedFrameDecoder(256));
            received.complete(null);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            IOException gone = new IOException("the handover connection closed");
            received.completeExceptionally(gone);
            released.completeExceptionally(gone);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            received.completeExceptionally(cause);
            released.completeExceptionally(cause);
            ctx.close();
        }
    }
}
