package dev.interlayer.engine;

import io.netty.channel.Channel;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;

/**
 * The socket transport: native epoll where it loads, NIO otherwise.
 *
 * @param name "epoll" or "nio"
 * @param ioHandler event-loop I/O handler factory
 * @param serverChannel listening channel class
 * @param channel connection channel class
 * @param whyNotNative why epoll is not used, or null
 */
record Transport(String name, IoHandlerFactory ioHandler, Class<? extends ServerChannel> serverChannel,
                 Class<? extends Channel> channel, String whyNotNative) {

    static Transport choose(boolean preferNative) {
        if (preferNative && Epoll.isAvailable()) {
            return new Transport("epoll", new EngineEpoll(), EpollServerSocketChannel.class, EpollSocketChannel.class, null);
        }
        String why = !preferNative ? "native transport disabled by configuration"
                : String.valueOf(Epoll.unavailabilityCause());
        return new Transport("nio", NioIoHandler.newFactory(), NioServerSocketChannel.class, NioSocketChannel.class, why);
    }
}
