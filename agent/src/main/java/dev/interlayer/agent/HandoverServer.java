package dev.interlayer.agent;

import dev.interlayer.control.Caller;
import dev.interlayer.control.ControlException;
import dev.interlayer.control.Handover;
import dev.interlayer.control.v1.HandedListener;
import dev.interlayer.control.v1.TakeoverRequest;
import dev.interlayer.control.v1.TakeoverResponse;
import dev.interlayer.engine.Engine;
import dev.interlayer.engine.ListenerSpec;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.channel.unix.FileDescriptor;
import io.netty.handler.codec.LineBasedFrameDecoder;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The running agent's side of a takeover (the new agent's is {@link Takeover}). Once the security module has granted
 * {@code Upgrade.Takeover}, {@link #offer} opens a one-time Unix socket beside the control socket and answers with its
 * path, a token and the listeners in the order their sockets will come. On that socket the new agent sends the token as
 * a line; this side passes every listening socket (SCM_RIGHTS), waits for the line {@code bound}, then has the agent
 * stop accepting and give up its control socket ({@code release}), answers {@code released} and lets the agent drain.
 *
 * <p>Nothing is stopped before {@code bound}: if the new agent goes away earlier, this agent keeps serving. The socket
 * is removed after one connection, or after {@link #WAIT} without one.
 */
final class HandoverServer implements Handover {

    private static final System.Logger LOG = System.getLogger("interlayer.agent");
    /** How long the handover socket waits for the new agent to connect and to bind its listeners. */
    static final Duration WAIT = Duration.ofSeconds(30);
    static final String BOUND = "bound";
    static final String RELEASED = "released";

    private final Agent agent;
    private final Engine engine;
    private final Path controlSocket;
    private final AtomicBoolean busy = new AtomicBoolean();

    /** Hands over the listeners of {@code agent}, whose control endpoint serves {@code controlSocket}. */
    HandoverServer(Agent agent, Path controlSocket) {
        this.agent = agent;
        this.engine = agent.engine();
        this.controlSocket = controlSocket;
    }

    /** The handover socket beside {@code controlSocket}. */
    static Path socketFor(Path controlSocket) {
        return controlSocket.resolveSibling(controlSocket.getFileName() + ".handover");
    }

    @Override
    public TakeoverResponse offer(TakeoverRequest request, Caller caller) throws ControlException {
        if (!busy.compareAndSet(false, true)) {
            throw new ControlException("a takeover of this agent is already under way; wait for it to end (at most " + WAIT.toSeconds() + " s)");
        }
        try {
            if (!engine.interceptionRules().isEmpty()) {
                throw new ControlException("this agent intercepts (interception:), and a takeover does not carry its nftables table over;"
                        + " stop this agent, then start the new one without --takeover");
            }
            TakeoverResponse.Builder r = TakeoverResponse.newBuilder().setPid(ProcessHandle.current().pid());
            List<Integer> fds = new ArrayList<>();
            for (var e : engine.listeners().entrySet()) {
                String name = e.getKey();
                ListenerSpec spec = engine.listenerSpec(name).orElse(null);
                List<Integer> sockets = engine.listeningSockets(name);
                if (spec == null || sockets.isEmpty()) {
                    throw new ControlException("listener " + name + " cannot be handed over (" + (spec == null ? "it is stopping"
                            : "the engine does not run on native epoll") + "); stop this agent, then start the new one without --takeover");
                }
                r.addListeners(HandedListener.newBuilder().setName(name).setProtocol(spec.protocol().name().toLowerCase(Locale.ROOT))
                        .setListen(Agent.address(e.getValue())).setSockets(sockets.size()));
                fds.addAll(sockets);
            }
            String token = HexFormat.of().formatHex(new SecureRandom().generateSeed(16));
            Path path = socketFor(controlSocket);
            Duration drain = request.getDrainMs() > 0 ? Duration.ofMillis(request.getDrainMs()) : agent.config().agent().stopTimeout();
            open(path, token, fds, drain, request.getPid(), caller);
            LOG.log(Level.INFO, "takeover asked by {0} for process {1}: passing {2} listening socket(s) of {3} listener(s) over {4}",
                    caller, String.valueOf(request.getPid()), fds.size(), r.getListenersCount(), path);
            return r.setHandoverSocket(path.toString()).setToken(token).build();
        } catch (ControlException | RuntimeException e) {
            busy.set(false);
            throw e;
        }
    }

    /** Listens on {@code path} for the one connection that presents {@code token}. */
    private void open(Path path, String token, List<Integer> fds, Duration drain, long pid, Caller caller) throws ControlException {
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        CompletableFuture<Channel> server = new CompletableFuture<>();
        Runnable closeServer = () -> server.thenAccept(ch -> ch.close().addListener(x -> deleteQuietly(path)));
        try {
            Files.deleteIfExists(path);
            Channel ch = new ServerBootstrap().group(group).channel(EpollServerDomainSocketChannel.class)
                    .childHandler(new ChannelInitializer<EpollDomainSocketChannel>() {
                        @Override
                        protected void initChannel(EpollDomainSocketChannel c) {
                            closeServer.run(); // one connection only
                            c.pipeline().addLast(new LineBasedFrameDecoder(256), new Peer(token, fds, drain, String.valueOf(pid), caller));
                        }
                    })
                    .bind(new DomainSocketAddress(path.toString())).syncUninterruptibly().channel();
            server.complete(ch);
            Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rw-------"));
        } catch (IOException | RuntimeException e) {
            server.complete(null);
            deleteQuietly(path);
            group.shutdownGracefully(0, 0, TimeUnit.SECONDS);
            throw new ControlException("cannot open the handover socket " + path + ": " + e.getMessage() + "; check that the control socket's folder is writable");
        }
        group.schedule(() -> {
            if (server.join().isOpen()) {
                LOG.log(Level.WARNING, "takeover: no new agent connected to {0} within {1} s; this agent keeps serving", path, WAIT.toSeconds());
                closeServer.run();
                group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
                busy.set(false);
            }
        }, WAIT.toSeconds(), TimeUnit.SECONDS);
    }

    private static void deleteQuietly(Path path) {
        try {
            Files.deleteIfExists(path);
        } catch (IOException e) {
            LOG.log(Level.DEBUG, "cannot remove the handover socket {0}: {1}", path, e.toString());
        }
    }

    /** The new agent on the handover socket: token, then the sockets; {@code bound}, then the release. */
    private final class Peer extends SimpleChannelInboundHandler<ByteBuf> {
        private final String token;
        private final List<Integer> fds;
        private final Duration drain;
        private final String pid;
        private final Caller caller;
        private boolean passed;
        private boolean released;

        Peer(String token, List<Integer> fds, Duration drain, String pid, Caller caller) {
            this.token = token;
            this.fds = fds;
            this.drain = drain;
            this.pid = pid;
            this.caller = caller;
        }

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            ctx.executor().schedule(() -> {
                if (!released) {
                    LOG.log(Level.WARNING, "takeover: process {0} did not bind its listeners within {1} s; this agent keeps serving", pid, WAIT.toSeconds());
                    ctx.close();
                }
            }, WAIT.toSeconds(), TimeUnit.SECONDS);
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, ByteBuf line) {
            String text = line.toString(StandardCharsets.UTF_8);
            if (!passed) {
                if (!java.security.MessageDigest.isEqual(text.getBytes(StandardCharsets.UTF_8), token.getBytes(StandardCharsets.UTF_8))) {
                    LOG.log(Level.WARNING, "takeover: a process presented a wrong token on the handover socket; closed it, this agent keeps serving");
                    ctx.close();
                    return;
                }
                passed = true;
                for (int fd : fds) {
                    ctx.write(new FileDescriptor(fd));
                }
                ctx.flush();
            } else if (text.equals(BOUND) && !released) {
                released = true;
                LOG.log(Level.INFO, "takeover: process {0} (asked by {1}) serves the listeners now; this agent stops accepting and lets its"
                        + " connections finish within {2} ms", pid, caller, String.valueOf(drain.toMillis()));
                agent.stopAccepting();
                ctx.writeAndFlush(Unpooled.copiedBuffer(RELEASED + "\n", StandardCharsets.UTF_8)).addListener(ChannelFutureListener.CLOSE);
                Thread.ofPlatform().name("interlayer-drain").start(() -> agent.drain(drain, pid));
            } else {
                LOG.log(Level.WARNING, "takeover: unexpected line on the handover socket ({0} characters); closed it, this agent keeps serving", text.length());
                ctx.close();
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            if (!released) {
                LOG.log(Level.WARNING, "takeover: process {0} went away before it bound its listeners; this agent keeps serving", pid);
                busy.set(false);
            }
            ctx.channel().eventLoop().parent().shutdownGracefully(0, 1, TimeUnit.SECONDS);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            LOG.log(Level.WARNING, "takeover: handover socket failed: {0}", cause.toString());
            ctx.close();
        }
    }
}
