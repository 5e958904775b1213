package dev.interlayer.engine;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.ByteOrder;

/**
 * One netlink socket of one protocol ({@link SockDiag}'s sock_diag, {@link Conntrack}'s nfnetlink) for request and answer:
 * the kernel answers within the send, so the receive never waits (it does not block: no answer is "unknown").
 *
 * <p>Opened on first use in the network namespace of the process; not thread-safe: each user keeps one per thread.
 */
final class Netlink {

    private static final int AF_NETLINK = 16;
    private static final int SOCK_RAW = 3;
    private static final int SOCK_CLOEXEC = 0x80000;
    private static final int MSG_DONTWAIT = 0x40;
    /** The type of a netlink error answer (its errno follows the header). */
    static final int NLMSG_ERROR = 2;
    static final int NLM_F_REQUEST = 1;
    /** Flag of an attribute holding attributes. */
    static final int NLA_F_NESTED = 0x8000;
    static final ValueLayout.OfShort NET_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private static final MethodHandle SOCKET;
    private static final MethodHandle SEND;
    private static final MethodHandle RECV;
    /** Why netlink is not used here, or null. */
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

    private final int protocol;
    private final MemorySegment state = Arena.ofAuto().allocate(Libc.STATE);
    /** The netlink socket, -1 before it is opened, -2 if it cannot be (then every exchange says unknown). */
    private int fd = -1;

    Netlink(int protocol) {
        this.protocol = protocol;
    }

    /**
     * Sends the first {@code length} bytes of {@code req} and receives the kernel's answer into {@code resp}: the bytes
     * received, or -1 if the socket cannot be opened, the send fails or no answer came.
     */
    long exchange(MemorySegment req, int length, MemorySegment resp) {
        try {
            if (fd == -1) {
                int s = (int) SOCKET.invokeExact(state, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
                fd = s >= 0 ? s : -2;
            }
            if (fd < 0) return -1;
            long sent = (long) SEND.invokeExact(state, fd, req.address(), (long) length, 0);
            if (sent != length) return -1;
            long n = (long) RECV.invokeExact(state, fd, resp.address(), resp.byteSize(), MSG_DONTWAIT);
            return n < 0 ? -1 : n;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** Writes a netlink message header at 0 of {@code req}: {@code length}, {@code type}, {@code flags}, sequence and port 0. */
    static void header(MemorySegment req, int length, int type, int flags) {
        req.set(ValueLayout.JAVA_INT, 0, length);
        req.set(ValueLayout.JAVA_SHORT, 4, (short) type);
        req.set(ValueLayout.JAVA_SHORT, 6, (short) flags);
    }
}
