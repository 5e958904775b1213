package dev.interlayer.engine;

import io.netty.channel.Channel;
import io.netty.channel.unix.UnixChannel;
import java.net.Inet6Address;
import java.net.InetSocketAddress;

/**
 * The two socket calls of transparent interception: the original destination of a redirected connection and the mark
 * on the agent's own upstream sockets. Epoll channels only (their file descriptor is reachable); each call runs on the
 * calling thread's own scratch memory.
 */
final class Intercepted {

    private static final ThreadLocal<LinuxSockets> SYS = ThreadLocal.withInitial(LinuxSockets::new);

    private Intercepted() {}

    /** Why interception cannot run here (the socket calls or the epoll transport are missing), or null. */
    static String unavailable(Transport transport) {
        if (LinuxSockets.UNAVAILABLE != null) return "interception needs the Linux socket calls: " + LinuxSockets.UNAVAILABLE;
        if (!transport.isEpoll()) return "interception needs Netty's epoll transport, and this agent runs on " + transport.name();
        return null;
    }

    /** Where the client of {@code accepted} meant to connect before the redirect, or null (it was not redirected). */
    static InetSocketAddress originalDestination(Channel accepted) {
        if (!(accepted instanceof UnixChannel u) || LinuxSockets.UNAVAILABLE != null) return null;
        // (Java gives an IPv4-mapped address as an Inet4Address: Inet6Address is a real IPv6 socket)
        boolean v6 = accepted.localAddress() instanceof InetSocketAddress a && a.getAddress() instanceof Inet6Address;
        return SYS.get().originalDestination(u.fd().intValue(), v6);
    }

    /** Sets {@code SO_MARK} on {@code upstream}'s socket: 0, or {@code -errno} (EPERM: no CAP_NET_ADMIN). */
    static int mark(Channel upstream, int mark) {
        if (!(upstream instanceof UnixChannel u) || LinuxSockets.UNAVAILABLE != null) return -95; // EOPNOTSUPP
        return SYS.get().setInt(u.fd().intValue(), LinuxSockets.SOL_SOCKET, LinuxSockets.SO_MARK, mark);
    }
}
