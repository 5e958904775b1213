package dev.interlayer.orchestrator;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Who owns a TCP client socket on this host: the kernel lists every socket with its owner's uid in {@code /proc/net/tcp}
 * and {@code /proc/net/tcp6}. For a connection from this host, the client's socket is the entry whose local address is
 * the connection's remote end and whose remote address is its local end. A process cannot forge that entry: it proves
 * the local user as {@code SO_PEERCRED} does on a Unix socket (a socket passed to another process keeps its opener's uid).
 */
final class LocalSockets {

    private LocalSockets() {}

    /** The uid owning the client socket of the connection {@code remote} → {@code local}, or -1 if it is not on this host. */
    static long uidOf(InetSocketAddress remote, InetSocketAddress local) {
        if (!remote.getAddress().isLoopbackAddress() && !isLocal(remote.getAddress())) {
            return -1;
        }
        for (String table : List.of("/proc/net/tcp", "/proc/net/tcp6")) {
            try {
                for (String line : Files.readAllLines(Path.of(table))) {
                    String[] f = line.strip().split("\\s+");
                    if (f.length > 7 && f[0].endsWith(":") && matches(f[1], remote) && matches(f[2], local)) {
                        return Long.parseLong(f[7]);
                    }
                }
            } catch (IOException | RuntimeException e) {
                // no such table (no IPv6), or not Linux: not proven
            }
        }
        return -1;
    }

    private static boolean isLocal(InetAddress a) {
        try {
            return java.net.NetworkInterface.getByInetAddress(a) != null;
        } catch (java.net.SocketException e) {
            return false;
        }
    }

    /** Whether {@code hex} ({@code 0100007F:1F90}: the address as the kernel stores it, in host byte order per 32-bit word) is {@code a}. */
    static boolean matches(String hex, InetSocketAddress a) {
        int colon = hex.indexOf(':');
        if (colon < 0 || Integer.parseInt(hex.substring(colon + 1), 16) != a.getPort()) {
            return false;
        }
        byte[] want = a.getAddress().getAddress();
        String addr = hex.substring(0, colon);
        byte[] got = new byte[addr.length() / 2];
        for (int word = 0; word < got.length / 4; word++) {
            for (int i = 0; i < 4; i++) { // each 32-bit word little-endian
                got[word * 4 + i] = (byte) Integer.parseInt(addr.substring(word * 8 + (3 - i) * 2, word * 8 + (3 - i) * 2 + 2), 16);
            }
        }
        if (got.length == 16 && want.length == 4) {
            // an IPv4 client of an IPv6 socket: ::ffff:a.b.c.d
            return java.util.Arrays.equals(got, 0, 12, new byte[] {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (byte) 0xff, (byte) 0xff}, 0, 12)
                    && java.util.Arrays.equals(got, 12, 16, want, 0, 4);
        }
        return java.util.Arrays.equals(got, want);
    }
}
