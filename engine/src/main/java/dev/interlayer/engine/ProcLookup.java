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
 * Finds the local process behind a TCP socket: the socket's inode and owner uid from the kernel's sock_diag netlink
 * interface by the exact 4-tuple ({@link SockDiag}; /proc/net/tcp{,6} where that is unavailable, and for UDP),
 * then the process holding {@code socket:[inode]} among /proc/PID/fd ({@link Owners}: a cache, searched in the order that
 * finds a new connection's process soonest, never all of /proc unless nothing else has it), then its command name and
 * executable.
 *
 * <p>Linux only; seeing other users' processes needs root. Runs only when a selector or a module asks for the application.
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
            long[] inodeUid = udp ? udpInode(local, peer) : SockDiag.tcp(local, peer);
            if (inodeUid == null && !udp) inodeUid = inode(local, peer); // no sock_diag here: /proc/net/tcp, which walks every socket
            if (inodeUid == null || inodeUid.length == 0 || inodeUid[0] <= 0) {
                return null;
            }
            int pid = OWNERS.pidOf(inodeUid[0]);
            if (pid <= 0) return null;
            Path proc = Path.of("/proc", Integer.toString(pid));
            String comm = Files.readString(proc.resolve("comm")).trim();
            // /proc lists thread-group leaders only, and a socket belongs to the whole thread group: the pid found is the tgid
            int tgid = pid;
            String exe;
            try {
                exe = Files.readSymbolicLink(Path.of("/proc", Integer.toString(tgid), "exe")).toString();
            } catch (IOException | SecurityException e) {
                exe = null; // another user's process, and the agent is not root
            }
            return new AppInfo(pid, tgid, comm, (int) inodeUid[1], exe);
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /** The cache of socket owners every lookup shares. */
    static final Owners OWNERS = new Owners();

    /**
     * Which process holds a socket inode: a map from the inodes seen so far to their process, filled a whole process at a
     * time. A new socket is looked for first among the processes that owned the last sockets looked up (an application
     * opens many connections), then among processes started since /proc was last listed, and only then among the rest.
     * Thread-safe (one lookup at a time: they share the maps).
     */
    static final class Owners {
        /** Inodes remembered at most; beyond, the map starts again (inodes of closed sockets are never reused soon). */
        private static final int MAX_INODES = 1 << 16;
        private static final int RECENT = 16;
        private final java.util.Map<Long, Integer> owner = new java.util.HashMap<>();
        private final java.util.ArrayDeque<Integer> recent = new java.util.ArrayDeque<>();
        private java.util.Set<Integer> listed = java.util.Set.of();
        /** Lookups answered by the map, by a recent owner, by a new process, by the rest of /proc, and not found. */
        final java.util.concurrent.atomic.LongAdder mapHits = new java.util.concurrent.atomic.LongAdder();
        final java.util.concurrent.atomic.LongAdder recentHits = new java.util.concurrent.atomic.LongAdder();
        final java.util.concurrent.atomic.LongAdder newProcessHits = new java.util.concurrent.atomic.LongAdder();
        final java.util.concurrent.atomic.LongAdder fullScans = new java.util.concurrent.atomic.LongAdder();
        final java.util.concurrent.atomic.LongAdder misses = new java.util.concurrent.atomic.LongAdder();

        /** The pid holding {@code socket:[inode]}, or -1. */
        synchronized int pidOf(long inode) {
            Integer known = owner.get(inode);
            if (known != null && holds(known, inode)) {
                mapHits.increment();
                return known;
            }
            for (Integer pid : List.copyOf(recent)) {
                if (scan(pid, inode)) {
                    recentHits.increment();
                    return found(pid);
                }
            }
            java.util.Set<Integer> now = pids();
            java.util.Set<Integer> before = listed;
            listed = now;
            for (Integer pid : now) {
                if (!before.contains(pid) && !recent.contains(pid) && scan(pid, inode)) {
                    newProcessHits.increment();
                    return found(pid);
                }
            }
            fullScans.increment();
            for (Integer pid : now) {
                if (before.contains(pid) && !recent.contains(pid) && scan(pid, inode)) return found(pid);
            }
            misses.increment();
            return -1;
        }

        private int found(int pid) {
            recent.remove(pid);
            recent.addFirst(pid);
            if (recent.size() > RECENT) recent.removeLast();
            return pid;
        }

        /** The process still has the socket (the pid may be another process by now, or the socket closed and the number reused). */
        private static boolean holds(int pid, long inode) {
            // the inode is the one /proc/net/tcp shows for the 4-tuple now: only the pid can be stale; confirming it costs one
            // directory read of that process, much less than finding it again
            String needle = "socket:[" + inode + "]";
            try (DirectoryStream<Path> fds = Files.newDirectoryStream(Path.of("/proc", Integer.toString(pid), "fd"))) {
                for (Path fd : fds) {
                    try {
                        if (needle.equals(Files.readSymbolicLink(fd).toString())) return true;
                    } catch (IOException ignored) {
                        // the fd closed while we looked
                    }
                }
            } catch (IOException | SecurityException ignored) {
                // it exited
            }
            return false;
        }

        /** Reads {@code pid}'s descriptors, remembering each socket it holds; true if one is {@code inode}. */
        private boolean scan(int pid, long inode) {
            boolean hit = false;
            if (owner.size() > MAX_INODES) owner.clear();
            try (DirectoryStream<Path> fds = Files.newDirectoryStream(Path.of("/proc", Integer.toString(pid), "fd"))) {
                for (Path fd : fds) {
                    try {
                        String link = Files.readSymbolicLink(fd).toString();
                        if (link.startsWith("socket:[")) {
                            long i = Long.parseLong(link, 8, link.length() - 1, 10);
                            owner.put(i, pid);
                            if (i == inode) hit = true;
                        }
                    } catch (IOException | NumberFormatException ignored) {
                        // the fd closed while we looked
                    }
                }
            } catch (IOException | SecurityException ignored) {
                // another user's process, or it exited
            }
            return hit;
        }

        private static java.util.Set<Integer> pids() throws java.io.UncheckedIOException {
            java.util.Set<Integer> out = new java.util.HashSet<>();
            try (DirectoryStream<Path> procs = Files.newDirectoryStream(Path.of("/proc"))) {
                for (Path p : procs) {
                    String n = p.getFileName().toString();
                    if (!n.isEmpty() && n.chars().allMatch(Character::isDigit)) out.add(Integer.parseInt(n));
                }
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            return out;
        }
    }

    /** The TCP socket's {inode, uid}, or null. */
    private static long[] inode(InetSocketAddress local, InetSocketAddress peer) throws IOException {
        String l = hex(local);
        String r = hex(peer);
        for (String file : List.of("/proc/net/tcp", "/proc/net/tcp6")) {
            Path p = Path.of(file);
            if (!Files.exists(p)) continue;
            for (String line : Files.readAllLines(p)) {
                String[] f = line.trim().split("\\s+");
                if (f.length < 10 || !f[1].contains(":")) continue;
                if (f[1].equalsIgnoreCase(l) && f[2].equalsIgnoreCase(r) || f[1].equalsIgnoreCase(mapped(local)) && f[2].equalsIgnoreCase(mapped(peer))) {
                    return new long[] {Long.parseLong(f[9]), Long.parseLong(f[7])};
                }
            }
        }
        return null;
    }

    /** The UDP socket's {inode, uid}, or null. */
    private static long[] udpInode(InetSocketAddress local, InetSocketAddress peer) throws IOException {
        String port = String.format(Locale.ROOT, ":%04X", local.getPort());
        List<String> locals = List.of(hex(local), mapped(local));
        List<String> peers = List.of(hex(peer), mapped(peer));
        long[] loose = null;
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
                if (localExact && peerExact) return new long[] {Long.parseLong(f[9]), Long.parseLong(f[7])};
                if (peerExact || peerNone) loose = new long[] {Long.parseLong(f[9]), Long.parseLong(f[7])};
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
