package dev.interlayer.engine;

import dev.interlayer.api.AppInfo;
import java.io.IOException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * Finds the local process behind a TCP socket through /proc: the socket's inode from /proc/net/tcp{,6},
 * then the process holding {@code socket:[inode]} among /proc/PID/fd, then its command name.
 *
 * <p>Linux only; seeing other users' processes needs root. Costs a scan of /proc, so it runs only when
 * a selector or a module asks for the application.
 */
final class ProcLookup {

    private ProcLookup() {}

    /** The process whose TCP socket has local address {@code local} and peer {@code peer}, or null. */
    static AppInfo find(InetSocketAddress local, InetSocketAddress peer) {
        return find(local, peer, false);
    }

    /**
     * The process whose UDP socket sends from {@code local} to {@code peer}, or null: a connected socket shows the
     * peer, an unconnected one shows none ({@code 0.0.0.0:0}), and a socket bound to the wildcard address shows
     * only the port.
     */
    static AppInfo findUdp(InetSocketAddress local, InetSocketAddress peer) {
        return find(local, peer, true);
    }

    private static AppInfo find(InetSocketAddress local, InetSocketAddress peer, boolean udp) {
        if (local == null || peer == null || !Files.isDirectory(Path.of("/proc/net"))) {
            return null;
        }
        try {
            long inode = udp ? udpInode(local, peer) : inode(local, peer);
            if (inode <= 0) {
                return null;
            }
            String needle = "socket:[" + inode + "]";
            try (DirectoryStream<Path> procs = Files.newDirectoryStream(Path.of("/proc"), p -> p.getFileName().toString().chars().allMatch(Character::isDigit))) {
                for (Path proc : procs) {
                    try (DirectoryStream<Path> fds = Files.newDirectoryStream(proc.resolve("fd"))) {
                        for (Path fd : fds) {
                            try {
                                if (needle.equals(Files.readSymbolicLink(fd).toString())) {
                                    int pid = Integer.parseInt(proc.getFileName().toString());
                                    String comm = Files.readString(proc.resolve("comm")).trim();
                                    int tgid = tgid(proc, pid);
                                    return new AppInfo(pid, tgid, comm);
                                }
                            } catch (IOException ignored) {
                                // the fd closed while we looked
                            }
                        }
                    } catch (IOException | SecurityException ignored) {
                        // another user's process, or it exited
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            return null;
        }
        return null;
    }

    private static int tgid(Path proc, int pid) {
        try {
            for (String line : Files.readAllLines(proc.resolve("status"))) {
                if (line.startsWith("Tgid:")) {
                    return Integer.parseInt(line.substring(5).trim());
                }
            }
        } catch (IOException | NumberFormatException ignored) {
            // fall back to the pid, which is the tgid for the process entry we scanned
        }
        return pid;
    }

    private static long inode(InetSocketAddress local, InetSocketAddress peer) throws IOException {
        String l = hex(local);
        String r = hex(peer);
        for (String file : List.of("/proc/net/tcp", "/proc/net/tcp6")) {
            Path p = Path.of(file);
            if (!Files.exists(p)) continue;
            for (String line : Files.readAllLines(p)) {
                String[] f = line.trim().split("\\s+");
                if (f.length < 10 || !f[1].contains(":")) continue;
                if (f[1].equalsIgnoreCase(l) && f[2].equalsIgnoreCase(r) || f[1].equalsIgnoreCase(mapped(local)) && f[2].equalsIgnoreCase(mapped(peer))) {
                    return Long.parseLong(f[9]);
                }
            }
        }
        return -1;
    }

    private static long udpInode(InetSocketAddress local, InetSocketAddress peer) throws IOException {
        String port = String.format(Locale.ROOT, ":%04X", local.getPort());
        List<String> locals = List.of(hex(local), mapped(local));
        List<String> peers = List.of(hex(peer), mapped(peer));
        long loose = -1;
        for (String file : List.of("/proc/net/udp", "/proc/net/udp6")) {
            Path p = Path.of(file);
            if (!Files.exists(p)) continue;
            for (String line : Files.readAllLines(p)) {
                String[] f = line.trim().split("\\s+");
                if (f.length < 10 || !f[1].contains(":") || !f[1].toUpperCase(Locale.ROOT).endsWith(port)) continue;
                boolean localExact = locals.contains(f[1].toUpperCase(Locale.ROOT));
                boolean localAny = f[1].substring(0, f[1].indexOf(':')).chars().allMatch(ch -> ch == '0');
                if (!localExact && !localAny) continue;
                boolean peerExact = peers.contains(f[2].toUpperCase(Locale.ROOT));
                boolean peerNone = f[2].chars().allMatch(ch -> ch == '0' || ch == ':');
                if (localExact && peerExact) return Long.parseLong(f[9]);
                if (peerExact || peerNone) loose = Long.parseLong(f[9]);
            }
        }
        return loose;
    }

    /** /proc/net/tcp's address form: the address as little-endian 32-bit words in hex, then the port. */
    private static String hex(InetSocketAddress a) {
        InetAddress ia = a.getAddress();
        byte[] b = ia.getAddress();
        StringBuilder sb = new StringBuilder();
        for (int w = 0; w < b.length; w += 4) {
            for (int i = 3; i >= 0; i--) sb.append(String.format(Locale.ROOT, "%02X", b[w + i] & 0xFF));
        }
        return sb.append(':').append(String.format(Locale.ROOT, "%04X", a.getPort())).toString();
    }

    /** The IPv4-mapped IPv6 form (::ffff:a.b.c.d) under which dual-stack sockets appear in tcp6. */
    private static String mapped(InetSocketAddress a) {
        if (!(a.getAddress() instanceof Inet4Address)) return "-";
        byte[] v4 = a.getAddress().getAddress();
        StringBuilder sb = new StringBuilder("0000000000000000FFFF0000");
        for (int i = 3; i >= 0; i--) sb.append(String.format(Locale.ROOT, "%02X", v4[i] & 0xFF));
        return sb.append(':').append(String.format(Locale.ROOT, "%04X", a.getPort())).toString();
    }
}
