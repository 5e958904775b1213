package dev.interlayer.engine;

import io.netty.channel.Channel;
import io.netty.channel.unix.UnixChannel;
import java.net.Inet6Address;
import java.net.InetSocketAddress;

/**
 * The socket calls of transparent interception: the original destination of a redirected connection, the uid of its
 * client's socket from the mark the interception table gave its SYN, and the mark on the agent's own upstream sockets.
 * Epoll channels only (their file descriptor is reachable); each call runs on the calling thread's own scratch memory.
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

    /**
     * The bit that says a mark carries a uid: the table's {@code uid} chain sets it with the client socket's owner uid (below
     * 2^31) in the other 31 bits on the SYN a redirect sends to the intercepting listener, and the kernel gives the SYN's mark
     * to the accepted socket ({@code net.ipv4.tcp_fwmark_accept}). A mark without it is none of the table's.
     */
    static final long UID_MARK = 0x8000_0000L;

    /**
     * The uid owning the client's socket of a redirected connection, from the {@code SO_MARK} of {@code accepted} (one
     * getsockopt: no netlink, no /proc); -1 if the mark carries none (a uid from 2^31 up, {@code tcp_fwmark_accept} off, a
     * SYN whose mark another rule changed): then the socket must be looked up.
     */
    static int socketUid(Channel accepted) {
        if (!(accepted instanceof UnixChannel u) || LinuxSockets.UNAVAILABLE != null) return -1;
        int uid = uidOf(SYS.get().getUnsigned(u.fd().intValue(), LinuxSockets.SOL_SOCKET, LinuxSockets.SO_MARK));
        if (uid >= 0) ProcessLookups.BY_MARK.increment();
        return uid;
    }

    /** The uid a socket mark (or {@code -errno}) carries, or -1. */
    static int uidOf(long mark) {
        return mark >= 0 && (mark & UID_MARK) != 0 ? (int) (mark & ~UID_MARK) : -1;
    }

    /** Sets {@code SO_MARK} on {@code upstream}'s socket: 0, or {@code -errno} (EPERM: no CAP_NET_ADMIN). */
    static int mark(Channel upstream, int mark) {
        if (!(upstream instanceof UnixChannel u) || LinuxSockets.UNAVAILABLE != null) return -95; // EOPNOTSUPP
        return SYS.get().setInt(u.fd().intValue(), LinuxSockets.SOL_SOCKET, LinuxSockets.SO_MARK, mark);
    }
}
