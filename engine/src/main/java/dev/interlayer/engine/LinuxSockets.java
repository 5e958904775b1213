package dev.interlayer.engine;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.ByteOrder;

/**
 * The socket system calls of the direct path ({@link DirectConnection}, {@link DirectListener}) through the JDK's
 * foreign function API, each returning {@code -errno} on failure: exactly the calls the path needs and no more
 * (a Netty channel adds {@code getsockname}, {@code getpeername} and {@code getsockopt} calls per socket).
 *
 * <p>One instance per event loop: its scratch memory (the captured errno, a socket address, an option value) is
 * used by that loop's thread only; the read buffer is the loop's too, and never holds bytes between two calls.
 */
final class LinuxSockets {

    static final int EAGAIN = 11;
    static final int EINTR = 4;
    static final int EINPROGRESS = 115;
    static final int AF_INET = 2;
    static final int AF_INET6 = 10;
    private static final int SOCK_STREAM = 1;
    private static final int SOCK_NONBLOCK = 0x800;
    private static final int SOCK_CLOEXEC = 0x80000;
    static final int SOL_SOCKET = 1;
    static final int SO_REUSEADDR = 2;
    static final int SO_ERROR = 4;
    static final int SO_SNDBUF = 7;
    static final int SO_RCVBUF = 8;
    static final int SO_KEEPALIVE = 9;
    static final int SO_LINGER = 13;
    static final int SO_REUSEPORT = 15;
    static final int IPPROTO_IP = 0;
    static final int IP_TOS = 1;
    static final int IPPROTO_TCP = 6;
    static final int TCP_NODELAY = 1;
    static final int IPPROTO_IPV6 = 41;
    static final int IPV6_TCLASS = 67;
    /** The mark of a socket's packets, which nftables' {@code meta mark} sees (setting it needs CAP_NET_ADMIN). */
    static final int SO_MARK = 36;
    /** The destination a NAT redirect rewrote, on the redirected socket ({@code linux/netfilter_ipv4.h}). */
    static final int SO_ORIGINAL_DST = 80;
    /** Its IPv6 form ({@code IP6T_SO_ORIGINAL_DST}, at the IPv6 level). */
    static final int IP6T_SO_ORIGINAL_DST = 80;
    static final int SHUT_WR = 1;
    private static final int F_DUPFD_CLOEXEC = 1030;
    private static final int MSG_DONTWAIT = 0x40;
    private static final int MSG_NOSIGNAL = 0x4000;

    /** Bytes of the read buffer: one read's most. */
    static final int READ_BUFFER = 64 * 1024;

    private static final MethodHandle SOCKET;
    private static final MethodHandle SETSOCKOPT;
    private static final MethodHandle GETSOCKOPT;
    private static final MethodHandle BIND;
    private static final MethodHandle LISTEN;
    private static final MethodHandle ACCEPT4;
    private static final MethodHandle CONNECT;
    private static final MethodHandle GETSOCKNAME;
    private static final MethodHandle RECV;
    private static final MethodHandle SEND;
    private static final MethodHandle SHUTDOWN;
    private static final MethodHandle CLOSE;
    private static final MethodHandle FCNTL;
    /** Why the direct path is unavailable on this platform, or null. */
    static final String UNAVAILABLE;

    static {
        MethodHandle[] h = new MethodHandle[13];
        String why = Libc.UNSUPPORTED == null ? null : "the direct path is " + Libc.UNSUPPORTED;
        if (why == null) {
            try {
                ValueLayout i = ValueLayout.JAVA_INT;
                ValueLayout l = ValueLayout.JAVA_LONG;
                ValueLayout a = ValueLayout.ADDRESS;
                h[0] = Libc.bind("socket", FunctionDescriptor.of(i, i, i, i));
                h[1] = Libc.bind("setsockopt", FunctionDescriptor.of(i, i, i, i, a, i));
                h[2] = Libc.bind("getsockopt", FunctionDescriptor.of(i, i, i, i, a, a));
                h[3] = Libc.bind("bind", FunctionDescriptor.of(i, i, a, i));
                h[4] = Libc.bind("listen", FunctionDescriptor.of(i, i, i));
                h[5] = Libc.bind("accept4", FunctionDescriptor.of(i, i, a, a, i));
                h[6] = Libc.bind("connect", FunctionDescriptor.of(i, i, a, i));
                h[7] = Libc.bind("getsockname", FunctionDescriptor.of(i, i, a, a));
                // recv and send take the buffer as a plain address (a long): no memory segment per call
                h[8] = Libc.bind("recv", FunctionDescriptor.of(l, i, l, l, i));
                h[9] = Libc.bind("send", FunctionDescriptor.of(l, i, l, l, i));
                h[10] = Libc.bind("shutdown", FunctionDescriptor.of(i, i, i));
                h[11] = Libc.bind("close", FunctionDescriptor.of(i, i));
                h[12] = Libc.bind("fcntl", FunctionDescriptor.of(i, i, i, i), Linker.Option.firstVariadicArg(2));
            } catch (RuntimeException | Error e) {
                why = "the foreign function API cannot bind the socket calls (" + e
                        + "); start the JVM with --enable-native-access=ALL-UNNAMED";
            }
        }
        SOCKET = h[0];
        SETSOCKOPT = h[1];
        GETSOCKOPT = h[2];
        BIND = h[3];
        LISTEN = h[4];
        ACCEPT4 = h[5];
        CONNECT = h[6];
        GETSOCKNAME = h[7];
        RECV = h[8];
        SEND = h[9];
        SHUTDOWN = h[10];
        CLOSE = h[11];
        FCNTL = h[12];
        UNAVAILABLE = why;
    }

    private static final ValueLayout.OfShort NET_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    /** Freed by the garbage collector once no listener or connection refers to this any more. */
    private final Arena arena = Arena.ofAuto();
    private final MemorySegment state = arena.allocate(Libc.STATE);
    /** A sockaddr_in or sockaddr_in6 (128 bytes: a sockaddr_storage), its length, and an option value. */
    private final MemorySegment addr = arena.allocate(128, 8);
    private final MemorySegment addrLen = arena.allocate(ValueLayout.JAVA_INT);
    private final MemorySegment opt = arena.allocate(8, 8);
    private final MemorySegment optLen = arena.allocate(ValueLayout.JAVA_INT);
    /** The read buffer of this loop: bytes go from it straight to the other socket. */
    final long readBuffer = arena.allocate(READ_BUFFER, 64).address();

    private int errno() {
        return Libc.errno(state);
    }

    /** A non-blocking TCP socket of {@code address}'s family, or {@code -errno}. */
    int socket(InetSocketAddress address) {
        int family = address.getAddress() instanceof Inet4Address ? AF_INET : AF_INET6;
        try {
            int r = (int) SOCKET.invokeExact(state, family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            return r >= 0 ? r : -errno();
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** Sets an int option: 0 or {@code -errno}. */
    int setInt(int fd, int level, int name, int value) {
        opt.set(ValueLayout.JAVA_INT, 0, value);
        try {
            int r = (int) SETSOCKOPT.invokeExact(state, fd, level, name, opt, 4);
            return r == 0 ? 0 : -errno();
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** Sets {@code SO_LINGER}: on with {@code seconds} (0 = close resets), or off for a negative value. */
    int setLinger(int fd, int seconds) {
        opt.set(ValueLayout.JAVA_INT, 0, seconds < 0 ? 0 : 1);
        opt.set(ValueLayout.JAVA_INT, 4, Math.max(0, seconds));
        try {
            int r = (int) SETSOCKOPT.invokeExact(state, fd, SOL_SOCKET, SO_LINGER, opt, 8);
            return r == 0 ? 0 : -errno();
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** Reads {@code SO_LINGER}: the seconds, -1 when off, or {@code Integer.MIN_VALUE} if the call fails. */
    int getLinger(int fd) {
        optLen.set(ValueLayout.JAVA_INT, 0, 8);
        try {
            int r = (int) GETSOCKOPT.invokeExact(state, fd, SOL_SOCKET, SO_LINGER, opt, optLen);
            if (r != 0) return Integer.MIN_VALUE;
            return opt.get(ValueLayout.JAVA_INT, 0) == 0 ? -1 : opt.get(ValueLayout.JAVA_INT, 4);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** Reads an int option: its value, or {@code -errno} (an option's value is never negative here). */
    int getInt(int fd, int level, int name) {
        return (int) getUnsigned(fd, level, name);
    }

    /** Reads an int option whose 32 bits are all value (a mark): its value from 0 to 2^32-1, or {@code -errno}. */
    long getUnsigned(int fd, int level, int name) {
        optLen.set(ValueLayout.JAVA_INT, 0, 4);
        try {
            int r = (int) GETSOCKOPT.invokeExact(state, fd, level, name, opt, optLen);
            return r == 0 ? Integer.toUnsignedLong(opt.get(ValueLayout.JAVA_INT, 0)) : -errno();
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    int bind(int fd, InetSocketAddress a) {
        int len = encode(a);
        try {
            int r = (int) BIND.invokeExact(state, fd, addr, len);
            return r == 0 ? 0 : -errno();
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    int listen(int fd, int backlog) {
        try {
            int r = (int) LISTEN.invokeExact(state, fd, backlog);
            return r == 0 ? 0 : -errno();
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** Accepts one connection, non-blocking: its fd, or {@code -errno} ({@code -EAGAIN}: none waiting); see {@link #peer()}. */
    int accept(int fd) {
        addrLen.set(ValueLayout.JAVA_INT, 0, 128);
        try {
            for (;;) {
                int r = (int) ACCEPT4.invokeExact(state, fd, addr, addrLen, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (r >= 0) return r;
                int e = errno();
                if (e != EINTR) return -e;
            }
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** The peer address of the connection {@link #accept} returned last. */
    InetSocketAddress peer() {
        return decode();
    }

    /** Starts a non-blocking connect: 0 (connected), {@code -EINPROGRESS}, or {@code -errno}. */
    int connect(int fd, InetSocketAddress a) {
        int len = encode(a);
        try {
            for (;;) {
                int r = (int) CONNECT.invokeExact(state, fd, addr, len);
                if (r == 0) return 0;
                int e = errno();
                if (e != EINTR) return -e;
            }
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** The local address of {@code fd}, or null if the call fails. */
    InetSocketAddress localAddress(int fd) {
        addrLen.set(ValueLayout.JAVA_INT, 0, 128);
        try {
            int r = (int) GETSOCKNAME.invokeExact(state, fd, addr, addrLen);
            return r == 0 ? decode() : null;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /**
     * The destination the client asked for before a NAT redirect rewrote it to this accepted socket, or null if the
     * connection was not redirected (conntrack has no NAT for it) or {@code fd} is not such a socket.
     */
    InetSocketAddress originalDestination(int fd, boolean ipv6) {
        addrLen.set(ValueLayout.JAVA_INT, 0, 128);
        try {
            int r = (int) GETSOCKOPT.invokeExact(state, fd, ipv6 ? IPPROTO_IPV6 : IPPROTO_IP, ipv6 ? IP6T_SO_ORIGINAL_DST : SO_ORIGINAL_DST,
                    addr, addrLen);
            return r == 0 ? decode() : null;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** Reads into {@code len} bytes at {@code address}: the count, 0 at end of stream, {@code -EAGAIN}, or {@code -errno}. */
    long recv(int fd, long address, long len) {
        try {
            for (;;) {
                long r = (long) RECV.invokeExact(state, fd, address, len, 0);
                if (r >= 0) return r;
                int e = errno();
                if (e != EINTR) return -e;
            }
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** Writes up to {@code len} bytes from {@code address} without blocking: the count (0: would block) or {@code -errno}. */
    long send(int fd, long address, long len) {
        try {
            for (;;) {
                long r = (long) SEND.invokeExact(state, fd, address, len, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (r >= 0) return r;
                int e = errno();
                if (e == EAGAIN) return 0;
                if (e != EINTR) return -e;
            }
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    int shutdown(int fd, int how) {
        try {
            int r = (int) SHUTDOWN.invokeExact(state, fd, how);
            return r == 0 ? 0 : -errno();
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** A second descriptor of {@code fd}'s socket (close-on-exec), or {@code -errno}. */
    int duplicate(int fd) {
        try {
            int r = (int) FCNTL.invokeExact(state, fd, F_DUPFD_CLOEXEC, 0);
            return r >= 0 ? r : -errno();
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    void close(int fd) {
        try {
            int ignored = (int) CLOSE.invokeExact(state, fd);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** Writes {@code a} into the address scratch as a sockaddr_in or sockaddr_in6; returns its length. */
    private int encode(InetSocketAddress a) {
        InetAddress ip = a.getAddress();
        addr.fill((byte) 0);
        if (ip instanceof Inet4Address) {
            addr.set(ValueLayout.JAVA_SHORT, 0, (short) AF_INET);
            addr.set(NET_SHORT, 2, (short) a.getPort());
            MemorySegment.copy(ip.getAddress(), 0, addr, ValueLayout.JAVA_BYTE, 4, 4);
            return 16;
        }
        addr.set(ValueLayout.JAVA_SHORT, 0, (short) AF_INET6);
        addr.set(NET_SHORT, 2, (short) a.getPort());
        MemorySegment.copy(ip.getAddress(), 0, addr, ValueLayout.JAVA_BYTE, 8, 16);
        addr.set(ValueLayout.JAVA_INT, 24, ((Inet6Address) ip).getScopeId());
        return 28;
    }

    private InetSocketAddress decode() {
        int family = addr.get(ValueLayout.JAVA_SHORT, 0);
        int port = Short.toUnsignedInt(addr.get(NET_SHORT, 2));
        try {
            if (family == AF_INET) {
                byte[] b = new byte[4];
                MemorySegment.copy(addr, ValueLayout.JAVA_BYTE, 4, b, 0, 4);
                return new InetSocketAddress(InetAddress.getByAddress(b), port);
            }
            byte[] b = new byte[16];
            MemorySegment.copy(addr, ValueLayout.JAVA_BYTE, 8, b, 0, 16);
            int scope = addr.get(ValueLayout.JAVA_INT, 24);
            return new InetSocketAddress(scope == 0 ? InetAddress.getByAddress(b) : Inet6Address.getByAddress(null, b, scope), port);
        } catch (UnknownHostException e) {
            throw new AssertionError(e); // only thrown for a wrong length
        }
    }

    /** The message of an errno a socket call can fail with, as the JDK words it. */
    static String describe(int errno) {
        return switch (errno) {
            case 104 -> "Connection reset by peer";
            case 32 -> "Broken pipe";
            case 111 -> "Connection refused";
            case 110 -> "Connection timed out";
            case 113 -> "No route to host";
            case 101 -> "Network is unreachable";
            case 99 -> "Cannot assign requested address";
            case 98 -> "Address already in use";
            case 24 -> "Too many open files";
            case 9 -> "Bad file descriptor";
            case 13 -> "Permission denied";
            default -> "errno " + errno;
        };
    }
}
