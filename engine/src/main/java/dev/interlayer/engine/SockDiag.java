package dev.interlayer.engine;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.net.Inet4Address;
import java.net.InetSocketAddress;
import java.nio.ByteOrder;

/**
 * The inode and owner uid of one TCP socket, by its exact 4-tuple, from the kernel's {@code sock_diag} netlink interface
 * ({@code SOCK_DIAG_BY_FAMILY} without a dump: one hash lookup in the kernel, where reading /proc/net/tcp walks every
 * socket of the namespace, TIME_WAIT ones included, and costs milliseconds on a busy host).
 *
 * <p>One netlink socket per thread, opened on first use in the network namespace of the process; the kernel answers
 * within the send, so the receive never waits (it does not block: a missing answer is "unknown").
 */
final class SockDiag {

    private static final int AF_NETLINK = 16;
    private static final int SOCK_RAW = 3;
    private static final int SOCK_CLOEXEC = 0x80000;
    private static final int NETLINK_SOCK_DIAG = 4;
    private static final int SOCK_DIAG_BY_FAMILY = 20;
    private static final int NLM_F_REQUEST = 1;
    private static final int IPPROTO_TCP = 6;
    private static final int MSG_DONTWAIT = 0x40;
    private static final int REQUEST = 16 + 56;
    private static final ValueLayout.OfShort NET_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private static final MethodHandle SOCKET;
    private static final MethodHandle SEND;
    private static final MethodHandle RECV;
    /** Why sock_diag is not used here, or null. */
    static final String UNAVAILABLE;

    static {
        MethodHandle[] h = new MethodHandle[3];
        String why = Libc.UNSUPPORTED;
        if (why == null) {
            try {
                ValueLayout i = ValueLayout.JAVA_INT;
                ValueLayout l = ValueLayout.JAVA_LONG;
                h[0] = Libc.bind("socket", FunctionDescriptor.of(i, i, i, i));
                h[1] = Libc.bind("send", FunctionDescriptor.of(l, i, l, l, i));
                h[2] = Libc.bind("recv", FunctionDescriptor.of(l, i, l, l, i));
            } catch (RuntimeException | Error e) {
                why = "the foreign function API cannot bind the netlink calls (" + e + ")";
            }
        }
        SOCKET = h[0];
        SEND = h[1];
        RECV = h[2];
        UNAVAILABLE = why;
    }

    private static final ThreadLocal<SockDiag> PER_THREAD = ThreadLocal.withInitial(SockDiag::new);

    private final Arena arena = Arena.ofAuto();
    private final MemorySegment state = arena.allocate(Libc.STATE);
    private final MemorySegment req = arena.allocate(REQUEST, 8);
    private final MemorySegment resp = arena.allocate(8192, 8);
    /** The netlink socket, -1 before it is opened, -2 if it cannot be (then every lookup says unknown). */
    private int fd = -1;

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
        try {
            if (fd == -1) {
                int s = (int) SOCKET.invokeExact(state, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
                fd = s >= 0 ? s : -2;
            }
            if (fd < 0) return null;
            req.fill((byte) 0);
            req.set(ValueLayout.JAVA_INT, 0, REQUEST);
            req.set(ValueLayout.JAVA_SHORT, 4, (short) SOCK_DIAG_BY_FAMILY);
            req.set(ValueLayout.JAVA_SHORT, 6, (short) NLM_F_REQUEST);
            // inet_diag_req_v2 at 16: family, protocol, ext, pad, states, then the socket id
            req.set(ValueLayout.JAVA_BYTE, 16, (byte) family);
            req.set(ValueLayout.JAVA_BYTE, 17, (byte) IPPROTO_TCP);
            req.set(ValueLayout.JAVA_INT, 20, -1);
            req.set(NET_SHORT, 24, (short) local.getPort());
            req.set(NET_SHORT, 26, (short) peer.getPort());
            address(28, local, mapped);
            address(44, peer, mapped);
            req.set(ValueLayout.JAVA_INT, 64, -1); // cookie: INET_DIAG_NOCOOKIE
            req.set(ValueLayout.JAVA_INT, 68, -1);
            long sent = (long) SEND.invokeExact(state, fd, req.address(), (long) REQUEST, 0);
            if (sent != REQUEST) return null;
            long n = (long) RECV.invokeExact(state, fd, resp.address(), resp.byteSize(), MSG_DONTWAIT);
            if (n < 0) return null; // no answer: unknown
            if (n < 16 + 72) return NONE; // an error answer (no such socket)
            if (resp.get(ValueLayout.JAVA_SHORT, 4) != SOCK_DIAG_BY_FAMILY) {
                return NONE; // NLMSG_ERROR: no such socket (ENOENT)
            }
            // inet_diag_msg at 16: uid at +64, inode at +68
            long uid = Integer.toUnsignedLong(resp.get(ValueLayout.JAVA_INT, 16 + 64));
            long inode = Integer.toUnsignedLong(resp.get(ValueLayout.JAVA_INT, 16 + 68));
            return inode == 0 ? NONE : new long[] {inode, uid};
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
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
