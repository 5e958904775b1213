package dev.interlayer.engine;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.Inet4Address;
import java.net.InetSocketAddress;

/**
 * The inode and owner uid of one TCP socket, by its exact 4-tuple, from the kernel's {@code sock_diag} netlink interface
 * ({@code SOCK_DIAG_BY_FAMILY} without a dump: one hash lookup in the kernel, where reading /proc/net/tcp walks every
 * socket of the namespace, TIME_WAIT ones included, and costs milliseconds on a busy host).
 *
 * <p>One {@link Netlink} socket per thread.
 */
final class SockDiag {

    private static final int NETLINK_SOCK_DIAG = 4;
    private static final int SOCK_DIAG_BY_FAMILY = 20;
    private static final int IPPROTO_TCP = 6;
    private static final int REQUEST = 16 + 56;

    /** Why sock_diag is not used here, or null. */
    static final String UNAVAILABLE = Netlink.UNAVAILABLE;

    private static final ThreadLocal<SockDiag> PER_THREAD = ThreadLocal.withInitial(SockDiag::new);

    private final Netlink netlink = new Netlink(NETLINK_SOCK_DIAG);
    private final Arena arena = Arena.ofAuto();
    private final MemorySegment req = arena.allocate(REQUEST, 8);
    private final MemorySegment resp = arena.allocate(8192, 8);

    private SockDiag() {}

    /** The answer for a socket the kernel does not have. */
    static final long[] NONE = new long[0];

    /**
     * {inode, uid} of the TCP socket with local address {@code local} and peer {@code peer} (IPv4 or IPv6; an IPv4
     * pair is also looked for among dual-stack sockets); {@link #NONE} if the kernel has no such socket; null if
     * sock_diag cannot answer here (then /proc/net/tcp must).
     */
    static long[] tcp(InetSocketAddress local, InetSocketAddress peer) {
        if (UNAVAILABLE != null) return null;
        SockDiag d = PER_THREAD.get();
        boolean v4 = local.getAddress() instanceof Inet4Address;
        long[] r = d.query(v4 ? LinuxSockets.AF_INET : LinuxSockets.AF_INET6, local, peer, false);
        if (r == NONE && v4) r = d.query(LinuxSockets.AF_INET6, local, peer, true);
        return r;
    }

    private long[] query(int family, InetSocketAddress local, InetSocketAddress peer, boolean mapped) {
        req.fill((byte) 0);
        Netlink.header(req, REQUEST, SOCK_DIAG_BY_FAMILY, Netlink.NLM_F_REQUEST);
        // inet_diag_req_v2 at 16: family, protocol, ext, pad, states, then the socket id
        req.set(ValueLayout.JAVA_BYTE, 16, (byte) family);
        req.set(ValueLayout.JAVA_BYTE, 17, (byte) IPPROTO_TCP);
        req.set(ValueLayout.JAVA_INT, 20, -1);
        req.set(Netlink.NET_SHORT, 24, (short) local.getPort());
        req.set(Netlink.NET_SHORT, 26, (short) peer.getPort());
        address(28, local, mapped);
        address(44, peer, mapped);
        req.set(ValueLayout.JAVA_INT, 64, -1); // cookie: INET_DIAG_NOCOOKIE
        req.set(ValueLayout.JAVA_INT, 68, -1);
        long n = netlink.exchange(req, REQUEST, resp);
        if (n < 0) return null; // no answer: unknown
        if (n < 16 + 72) return NONE; // an error answer (no such socket)
        if (resp.get(ValueLayout.JAVA_SHORT, 4) != SOCK_DIAG_BY_FAMILY) {
            return NONE; // NLMSG_ERROR: no such socket (ENOENT)
        }
        // inet_diag_msg at 16: uid at +64, inode at +68
        long uid = Integer.toUnsignedLong(resp.get(ValueLayout.JAVA_INT, 16 + 64));
        long inode = Integer.toUnsignedLong(resp.get(ValueLayout.JAVA_INT, 16 + 68));
        return inode == 0 ? NONE : new long[] {inode, uid};
    }

    /** Writes {@code a}'s address as 16 bytes at {@code offset} (IPv4 in the first four, or IPv4-mapped IPv6). */
    private void address(long offset, InetSocketAddress a, boolean mapped) {
        byte[] b = a.getAddress().getAddress();
        if (b.length == 4 && mapped) {
            req.set(ValueLayout.JAVA_BYTE, offset + 10, (byte) 0xff);
            req.set(ValueLayout.JAVA_BYTE, offset + 11, (byte) 0xff);
            MemorySegment.copy(b, 0, req, ValueLayout.JAVA_BYTE, offset + 12, 4);
        } else {
            MemorySegment.copy(b, 0, req, ValueLayout.JAVA_BYTE, offset, b.length);
        }
    }
}
