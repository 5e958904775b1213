package dev.interlayer.engine;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.UnknownHostException;

/**
 * The original destination of a redirected UDP datagram, from the kernel's connection tracking (ctnetlink, one
 * {@code IPCTNL_MSG_CT_GET} by the reply tuple: one hash lookup). UDP has no {@code SO_ORIGINAL_DST}: the getsockopt
 * serves TCP sockets only, and the intercepting listener's one socket receives every flow. The redirect made a
 * conntrack entry whose reply tuple is {@code listener → peer} and whose original tuple is {@code peer → original
 * destination}; the entry exists when the datagram is read (it is confirmed as the packet leaves the output path).
 *
 * <p>Needs CAP_NET_ADMIN (as the redirect rules do). One {@link Netlink} socket per thread.
 */
final class Conntrack {

    private static final int NETLINK_NETFILTER = 12;
    /** (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET. */
    private static final int CT_GET = (1 << 8) | 1;
    private static final int CTA_TUPLE_ORIG = 1;
    private static final int CTA_TUPLE_REPLY = 2;
    private static final int CTA_TUPLE_IP = 1;
    private static final int CTA_TUPLE_PROTO = 2;
    private static final int CTA_IP_V4_SRC = 1;
    private static final int CTA_IP_V4_DST = 2;
    private static final int CTA_IP_V6_SRC = 3;
    private static final int CTA_IP_V6_DST = 4;
    private static final int CTA_PROTO_NUM = 1;
    private static final int CTA_PROTO_SRC_PORT = 2;
    private static final int CTA_PROTO_DST_PORT = 3;
    private static final int IPPROTO_UDP = 17;
    /** Header, nfgenmsg, then the reply tuple: 4 + (ip: 4 + 2 addresses of 4 + 16) + (proto: 4 + 8 + 8 + 8). */
    private static final int REQUEST_V6 = 16 + 4 + 4 + 4 + 40 + 28;

    private static final ThreadLocal<Conntrack> PER_THREAD = ThreadLocal.withInitial(Conntrack::new);

    private final Netlink netlink = new Netlink(NETLINK_NETFILTER);
    private final MemorySegment req = Arena.ofAuto().allocate(REQUEST_V6, 8);
    private final MemorySegment resp = Arena.ofAuto().allocate(8192, 8);

    private Conntrack() {}

    /**
     * The original tuple of the UDP datagram from {@code peer} to the listener at {@code listener} (IPv4, or IPv6 when
     * both are IPv6 addresses; Java gives an IPv4-mapped one as IPv4, and conntrack keeps such a datagram as IPv4): {source,
     * destination} before the redirect, or null: the kernel has no such entry (the datagram was sent to the listener
     * directly), or it cannot be asked. The source differs from {@code peer} when one application socket sends to two
     * destinations: the kernel gives the second a port of its own, so that their reply tuples differ.
     */
    static InetSocketAddress[] originalUdp(InetSocketAddress peer, InetSocketAddress listener) {
        if (Netlink.UNAVAILABLE != null || listener == null || (peer.getAddress() instanceof Inet4Address) != (listener.getAddress() instanceof Inet4Address)) {
            return null;
        }
        return PER_THREAD.get().query(peer, listener);
    }

    /**
     * {@link #originalUdp} for a datagram from {@code peer} to some address of this host, on {@code port}, when the socket
     * cannot say which (an IPv6 datagram at a listener bound to {@code [::]}): asks for each address of the peer's family
     * this host has until the kernel knows one (a hash lookup each; a host has few addresses). Null if none.
     */
    static InetSocketAddress[] originalUdpToAny(InetSocketAddress peer, int port) {
        if (Netlink.UNAVAILABLE != null) return null;
        try {
            for (var i = NetworkInterface.getNetworkInterfaces(); i.hasMoreElements(); ) {
                for (var a = i.nextElement().getInetAddresses(); a.hasMoreElements(); ) {
                    InetAddress local = a.nextElement();
                    if ((local instanceof Inet4Address) != (peer.getAddress() instanceof Inet4Address)) continue;
                    // without the scope: the kernel's tuple has none, and a link-local address must match its bytes
                    InetSocketAddress[] found = PER_THREAD.get().query(peer, new InetSocketAddress(InetAddress.getByAddress(local.getAddress()), port));
                    if (found != null) return found;
                }
            }
        } catch (java.io.IOException e) {
            return null; // the interfaces cannot be listed: not intercepted, as for a datagram sent directly
        }
        return null;
    }

    private InetSocketAddress[] query(InetSocketAddress peer, InetSocketAddress listener) {
        boolean v4 = peer.getAddress() instanceof Inet4Address;
        int len = v4 ? 4 : 16;
        int request = REQUEST_V6 - 2 * (16 - len);
        req.fill((byte) 0);
        Netlink.header(req, request, CT_GET, Netlink.NLM_F_REQUEST);
        // nfgenmsg: family, version 0, resource id 0
        req.set(ValueLayout.JAVA_BYTE, 16, (byte) (v4 ? LinuxSockets.AF_INET : LinuxSockets.AF_INET6));
        int at = attr(20, CTA_TUPLE_REPLY | Netlink.NLA_F_NESTED, request - 20);
        at = attr(at, CTA_TUPLE_IP | Netlink.NLA_F_NESTED, 4 + 2 * (4 + len));
        at = address(attr(at, v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, 4 + len), listener);
        at = address(attr(at, v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, 4 + len), peer);
        at = attr(at, CTA_TUPLE_PROTO | Netlink.NLA_F_NESTED, 28);
        req.set(ValueLayout.JAVA_BYTE, attr(at, CTA_PROTO_NUM, 5), (byte) IPPROTO_UDP);
        at += 8;
        req.set(Netlink.NET_SHORT, attr(at, CTA_PROTO_SRC_PORT, 6), (short) listener.getPort());
        at += 8;
        req.set(Netlink.NET_SHORT, attr(at, CTA_PROTO_DST_PORT, 6), (short) peer.getPort());
        long n = netlink.exchange(req, request, resp);
        if (n < 20 || resp.get(ValueLayout.JAVA_SHORT, 4) == Netlink.NLMSG_ERROR) return null; // ENOENT: not redirected
        int end = (int) Math.min(n, Integer.toUnsignedLong(resp.get(ValueLayout.JAVA_INT, 0)));
        int orig = find(20, end, CTA_TUPLE_ORIG);
        if (orig < 0) return null;
        int origEnd = orig + length(orig);
        int ip = find(orig + 4, origEnd, CTA_TUPLE_IP);
        int proto = find(orig + 4, origEnd, CTA_TUPLE_PROTO);
        if (ip < 0 || proto < 0) return null;
        InetSocketAddress src = address(find(ip + 4, ip + length(ip), v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC),
                find(proto + 4, proto + length(proto), CTA_PROTO_SRC_PORT), len);
        InetSocketAddress dst = address(find(ip + 4, ip + length(ip), v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST),
                find(proto + 4, proto + length(proto), CTA_PROTO_DST_PORT), len);
        return src == null || dst == null ? null : new InetSocketAddress[] {src, dst};
    }

    /**
     * The address of the answer's address attribute ({@code len} bytes: IPv4 or IPv6) at {@code ip} and port attribute at
     * {@code port}; null if either is missing.
     */
    private InetSocketAddress address(int ip, int port, int len) {
        if (ip < 0 || port < 0 || length(ip) < 4 + len) return null;
        byte[] addr = new byte[len];
        MemorySegment.copy(resp, ValueLayout.JAVA_BYTE, ip + 4, addr, 0, len);
        try {
            return new InetSocketAddress(InetAddress.getByAddress(addr), Short.toUnsignedInt(resp.get(Netlink.NET_SHORT, port + 4)));
        } catch (UnknownHostException e) {
            throw new IllegalStateException(e); // four or sixteen bytes are always an address
        }
    }

    /** Writes an attribute header at {@code at} ({@code length} including the header); returns where its payload starts. */
    private int attr(int at, int type, int length) {
        req.set(ValueLayout.JAVA_SHORT, at, (short) length);
        req.set(ValueLayout.JAVA_SHORT, at + 2, (short) type);
        return at + 4;
    }

    private int address(int at, InetSocketAddress a) {
        byte[] b = a.getAddress().getAddress();
        MemorySegment.copy(b, 0, req, ValueLayout.JAVA_BYTE, at, b.length);
        return at + b.length;
    }

    private int length(int at) {
        return Short.toUnsignedInt(resp.get(ValueLayout.JAVA_SHORT, at));
    }

    /** The offset of the attribute of {@code type} among those in [{@code from}, {@code to}) of the answer, or -1. */
    private int find(int from, int to, int type) {
        int at = from;
        while (at + 4 <= to) {
            int len = length(at);
            if (len < 4 || at + len > to) return -1;
            if ((resp.get(ValueLayout.JAVA_SHORT, at + 2) & 0x3fff) == type) return at;
            at += (len + 3) & ~3;
        }
        return -1;
    }
}
