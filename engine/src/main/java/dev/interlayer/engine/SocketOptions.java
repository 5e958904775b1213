package dev.interlayer.engine;

import dev.interlayer.api.SocketOption;
import io.netty.channel.ChannelOption;

/** The one mapping from the SDK's {@link SocketOption} to Netty's channel options, for the stream and datagram paths. */
final class SocketOptions {

    private SocketOptions() {}

    /** The Netty option that sets or reads {@code o} on a channel. */
    @SuppressWarnings("unchecked")
    static <T> ChannelOption<T> of(SocketOption o) {
        return (ChannelOption<T>) switch (o) {
            case TCP_NODELAY -> ChannelOption.TCP_NODELAY;
            case SO_KEEPALIVE -> ChannelOption.SO_KEEPALIVE;
            case SO_RCVBUF -> ChannelOption.SO_RCVBUF;
            case SO_SNDBUF -> ChannelOption.SO_SNDBUF;
            case IP_TOS -> ChannelOption.IP_TOS;
            case SO_LINGER -> ChannelOption.SO_LINGER;
        };
    }

    /** True if {@code o} means something on a UDP socket (buffer sizes, TOS); the config refuses the others for UDP. */
    static boolean forUdp(SocketOption o) {
        return o == SocketOption.SO_RCVBUF || o == SocketOption.SO_SNDBUF || o == SocketOption.IP_TOS;
    }
}
