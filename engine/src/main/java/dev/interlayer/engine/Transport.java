package dev.interlayer.engine;

import io.netty.channel.Channel;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketProtocolFamily;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import java.net.Inet4Address;
import java.net.InetSocketAddress;

/**
 * The socket transport: native epoll where it loads, NIO otherwise.
 *
 * <p>With epoll, sockets take the family of their address: an IPv4 listener or upstream gets an IPv4 socket,
 * not a dual-stack IPv6 one (no {@code IPV6_V6ONLY} call per socket, no v4-mapped addresses in the kernel's path).
 *
 * @param name "epoll" or "nio"
 * @param ioHandler event-loop I/O handler factory
 * @param whyNotNative why epoll is not used, or null
 */
record Transport(String name, IoHandlerFactory ioHandler, String whyNotNative) {

    static Transport choose(boolean preferNative) {
        if (preferNative && Epoll.isAvailable()) {
            return new Transport("epoll", new EngineEpoll(), null);
        }
        String why = !preferNative ? "native transport disabled by configuration"
                : String.valueOf(Epoll.unavailabilityCause());
        return new Transport("nio", NioIoHandler.newFactory(), why);
    }

    boolean isEpoll() {
        return whyNotNative == null;
    }

    /** A listening channel for {@code bind}. */
    ServerChannel newServerChannel(InetSocketAddress bind) {
        return isEpoll() ? new EpollServerSocketChannel(family(bind)) : new NioServerSocketChannel();
    }

    /** An unconnected channel for a connection to {@code target}. */
    Channel newChannel(InetSocketAddress target) {
        return isEpoll() ? new EpollSocketChannel(family(target)) : new NioSocketChannel();
    }

    /**
     * A channel for a connected socket the direct path accepted or connected ({@link DirectConnection}; epoll only),
     * configured as the engine's channels are, reading off until the connection asks.
     */
    Channel adopt(int fd) {
        Channel ch = new EpollSocketChannel(fd);
        configure(ch);
        return ch;
    }

    /** The engine's settings of a connection's channel: allocators, write water mark, half-closure; reading off. */
    static void configure(Channel ch) {
        io.netty.channel.ChannelConfig cfg = ch.config();
        cfg.setAutoRead(false);
        cfg.setAllocator(Engine.ALLOCATOR);
        cfg.setRecvByteBufAllocator(Engine.RECV);
        cfg.setWriteBufferWaterMark(Engine.WATER_MARK);
        cfg.setOption(io.netty.channel.ChannelOption.ALLOW_HALF_CLOSURE, true);
    }

    private static SocketProtocolFamily family(InetSocketAddress a) {
        return a.getAddress() instanceof Inet4Address ? SocketProtocolFamily.INET : SocketProtocolFamily.INET6;
    }
}
