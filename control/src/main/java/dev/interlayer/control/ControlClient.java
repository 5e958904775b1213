package dev.interlayer.control;

import dev.interlayer.control.v1.AuditGrpc;
import dev.interlayer.control.v1.ConfigGrpc;
import dev.interlayer.control.v1.ConnectionsGrpc;
import dev.interlayer.control.v1.EventsGrpc;
import dev.interlayer.control.v1.HealthGrpc;
import dev.interlayer.control.v1.ListenersGrpc;
import dev.interlayer.control.v1.ModulesGrpc;
import dev.interlayer.control.v1.PolicyGrpc;
import io.grpc.ManagedChannel;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * A connection to an agent's control endpoint, over its Unix socket or over mutual TLS, with a stub for
 * each endpoint. Used by the CLI and the tests.
 *
 * <pre>{@code
 * try (ControlClient c = ControlClient.unix(Path.of("/run/interlayer/control.sock"))) {
 *     c.health().check(HealthRequest.getDefaultInstance()).getStatus();   // "serving"
 * }
 * }</pre>
 */
public final class ControlClient implements AutoCloseable {

    private final ManagedChannel channel;
    private final EventLoopGroup group;
    private final String target;

    private ControlClient(ManagedChannel channel, EventLoopGroup group, String target) {
        this.channel = channel;
        this.group = group;
        this.target = target;
    }

    /** A client of the agent serving {@code socket}. Connects on the first call. */
    public static ControlClient unix(Path socket) {
        return unix(socket, null);
    }

    /**
     * A client of the agent serving {@code socket} that runs its connection on {@code shared} (an epoll
     * event loop group the caller owns and closes), so that many clients need not start a thread each.
     */
    public static ControlClient unix(Path socket, EventLoopGroup shared) {
        QuietKeepAlive.install();
        EventLoopGroup group = shared != null ? shared : new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        ManagedChannel ch = NettyChannelBuilder.forAddress(new DomainSocketAddress(socket.toString()))
                .channelType(EpollDomainSocketChannel.class)
                .eventLoopGroup(group)
                .usePlaintext()
                .maxInboundMessageSize(64 * 1024 * 1024)
                .build();
        return new ControlClient(ch, shared != null ? null : group, socket.toString());
    }

    /**
     * A client of the agent's mutual-TLS listener at {@code host:port}, presenting {@code cert}/{@code key}
     * and trusting the agent's certificate if it chains to {@code ca}.
     *
     * @throws IOException if a PEM file cannot be read
     */
    public static ControlClient tls(String host, int port, Path cert, Path key, Path ca) throws IOException {
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        try {
            ManagedChannel ch = NettyChannelBuilder.forAddress(host, port)
                    .channelType(EpollSocketChannel.class)
                    .eventLoopGroup(group)
                    .sslContext(GrpcSslContexts.configure(SslContextBuilder.forClient().keyManager(cert.toFile(), key.toFile())
                            .trustManager(ca.toFile()), SslProvider.JDK).build())
                    .maxInboundMessageSize(64 * 1024 * 1024)
                    .build();
            return new ControlClient(ch, group, host + ":" + port);
        } catch (IOException | RuntimeException e) {
            group.shutdownGracefully(0, 0, TimeUnit.SECONDS);
            throw e instanceof IOException io ? io : new IOException(e.getMessage(), e);
        }
    }

    /** Where it connects: the socket path or {@code host:port}. */
    public String target() {
        return target;
    }

    public ManagedChannel channel() {
        return channel;
    }

    public ModulesGrpc.ModulesBlockingStub modules() {
        return ModulesGrpc.newBlockingStub(channel);
    }

    public ModulesGrpc.ModulesStub modulesAsync() {
        return ModulesGrpc.newStub(channel);
    }

    public ConnectionsGrpc.ConnectionsBlockingStub connections() {
        return ConnectionsGrpc.newBlockingStub(channel);
    }

    public ListenersGrpc.ListenersBlockingStub listeners() {
        return ListenersGrpc.newBlockingStub(channel);
    }

    public EventsGrpc.EventsBlockingStub events() {
        return EventsGrpc.newBlockingStub(channel);
    }

    public AuditGrpc.AuditBlockingStub audit() {
        return AuditGrpc.newBlockingStub(channel);
    }

    public PolicyGrpc.PolicyBlockingStub policy() {
        return PolicyGrpc.newBlockingStub(channel);
    }

    public ConfigGrpc.ConfigBlockingStub config() {
        return ConfigGrpc.newBlockingStub(channel);
    }

    public HealthGrpc.HealthBlockingStub health() {
        return HealthGrpc.newBlockingStub(channel);
    }

    /** The {@code Upgrade} service (a new agent process taking over this agent's listeners). */
    public dev.interlayer.control.v1.UpgradeGrpc.UpgradeBlockingStub upgrade() {
        return dev.interlayer.control.v1.UpgradeGrpc.newBlockingStub(channel);
    }

    @Override
    public void close() {
        channel.shutdownNow();
        try {
            channel.awaitTermination(2, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (group != null) {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(3, TimeUnit.SECONDS);
        }
    }
}
