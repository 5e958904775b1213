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
 * Finds the local process behind a TCP socket: first, while interception runs, in the eBPF map of who connected each
 * TCP socket ({@link BpfSocketOwners}: one {@code bpf(2)} call gives the connecting process's tgid and uid); else (UDP, a
 * connection the map does not have, no map) the socket's inode and owner uid from the kernel's sock_diag netlink
 * interface by the exact 4-tuple ({@link SockDiag}; /proc/net/tcp{,6} where that is unavailable, and for UDP),
 * then the process holding {@code socket:[inode]} among /proc/PID/fd ({@link Owners}: a cache, searched in the order that
 * finds a new connection's process soonest, never all of /proc unless nothing else has it), then its command name and
 * executable (cached per process, checked against its start time) and, when asked, its cgroup. The socket's owner uid
 * alone ({@link #uid}) needs only the first step; an intercepted TCP connection has it without this class, in its
 * accepted socket's mark ({@link Intercepted#socketUid}). {@link ProcessLookups} counts the lookups.
 *
 * <p>Linux only; seeing other users' processes needs root. Runs only when a selector or a module asks for the application.
 */
final class ProcLookup {

    private ProcLookup() {}

    /** The eBPF map of who connected each TCP socket, while one is attached ({@link BpfSocketOwners#attach}); null: none. */
    static volatile BpfSocketOwners bpf;

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

    /**
     * The uid owning the TCP socket with local address {@code local} and peer {@code peer} (the uid that connected it, when
     * the eBPF map has it), without its process; -1 if unknown.
     */
    static int uid(InetSocketAddress local, InetSocketAddress peer) {
        long connected = connector(local, peer);
        if (connected >= 0) {
            ProcessLookups.BY_BPF.increment();
            return (int) connected;
        }
        long[] s = socket(local, peer, false);
        return s == null ? -1 : (int) s[1];
    }

    /** The uid owning the UDP socket that sends from {@code local} to {@code peer} (as {@link #findUdp}), without its process; -1 if unknown. */
    static int udpUid(InetSocketAddress local, InetSocketAddress peer) {
        long[] s = socket(local, peer, true);
        return s == null ? -1 : (int) s[1];
    }

    /** The cgroup2 path of process {@code pid}, cached with the process (read again after a second); null if unknown. */
    static String cgroup(int pid) {
        return OWNERS.cgroup(pid);
    }

    /**
     * Who connected the TCP socket, from the eBPF map: tgid in the high 32 bits, uid in the low; -1 if no map is attached or
     * it does not have the socket (counted as a miss).
     */
    private static long connector(InetSocketAddress local, InetSocketAddress peer) {
        BpfSocketOwners b = bpf;
        if (b == null || local == null || peer == null) return -1;
        long connected = b.lookup(local, peer);
        if (connected < 0) ProcessLookups.BPF_MISSES.increment();
        return connected;
    }

    /** The socket's {inode, uid}, or null if not found. */
    private static long[] socket(InetSocketAddress local, InetSocketAddress peer, boolean udp) {
        if (local == null || peer == null || !Files.isDirectory(Path.of("/proc/net"))) {
            return null;
        }
        ProcessLookups.BY_SOCKET.increment();
        try {
            long[] inodeUid = udp ? udpInode(local, peer) : SockDiag.tcp(local, peer);
            if (inodeUid == null && !udp) inodeUid = inode(local, peer); // no sock_diag here: /proc/net/tcp, which walks every socket
            return inodeUid == null || inodeUid.length == 0 || inodeUid[0] <= 0 ? null : inodeUid;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    private static AppInfo find(InetSocketAddress local, InetSocketAddress peer, boolean udp) {
        ProcessLookups.BY_PROCESS.increment();
        long connected = udp ? -1 : connector(local, peer);
        if (connected >= 0) {
            int pid = (int) (connected >>> 32);
            try {
                Owners.Known p = OWNERS.details(pid);
                if (p != null) {
                    ProcessLookups.BY_BPF.increment();
                    return new AppInfo(pid, pid, p.comm, (int) connected, p.exe);
                }
            } catch (IOException | RuntimeException e) {
                // gone while read: as below
            }
            // the process that connected has exited (it may have handed the socket on): the socket table knows who holds it
        }
        long[] inodeUid = socket(local, peer, udp);
        if (inodeUid == null) return null;
        try {
            int pid = OWNERS.pidOf(inodeUid[0]);
            if (pid <= 0) return null;
            // /proc lists thread-group leaders only, and a socket belongs to the whole thread group: the pid found is the tgid
            Owners.Known p = OWNERS.details(pid);
            return p == null ? null : new AppInfo(pid, pid, p.comm, (int) inodeUid[1], p.exe);
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /** The cache of socket owners every lookup shares. */
    static final Owners OWNERS = new Owners();

    /**
     * Which process holds a socket inode: a map from the inodes seen so far to their process and descriptor, filled a
     * whole process at a time, and per process its command name, executable and start time. A new socket is looked for
     * first among the processes that owned the last sockets looked up (an application opens many connections), reading
     * only their descriptors that are new or were sockets (files, pipes and the like are remembered), then among
     * processes started since /proc was last listed, and only then among the rest. A process whose /proc/PID/fd is gone
     * is forgotten. Thread-safe (one lookup at a time: they share the maps).
     */
    static final class Owners {
        /** Inodes remembered at most; beyond, the map starts again (inodes of closed sockets are never reused soon). */
        private static final int MAX_INODES = 1 << 16;
        private static final int RECENT = 16;
        /**
         * How long a process's details are trusted before its start time is read again: a pid is reused only after the
         * kernel has handed out every other pid (pid_max, 4,194,304 on 64-bit), which takes far longer than this.
         */
        private static final long RECHECK_NANOS = 1_000_000_000L;
        /** inode → pid in the high half, descriptor number in the low half. */
        private final java.util.Map<Long, Long> owner = new java.util.HashMap<>();
        private final java.util.Map<Integer, Known> processes = new java.util.HashMap<>();
        private final java.util.ArrayDeque<Integer> recent = new java.util.ArrayDeque<>();
        private java.util.Set<Integer> listed = java.util.Set.of();
        /** Lookups answered by the map, by a recent owner, by a new process, by the rest of /proc, and not found. */
        final java.util.concurrent.atomic.LongAdder mapHits = new java.util.concurrent.atomic.LongAdder();
        final java.util.concurrent.atomic.LongAdder recentHits = new java.util.concurrent.atomic.LongAdder();
        final java.util.concurrent.atomic.LongAdder newProcessHits = new java.util.concurrent.atomic.LongAdder();
        final java.util.concurrent.atomic.LongAdder fullScans = new java.util.concurrent.atomic.LongAdder();
        final java.util.concurrent.atomic.LongAdder misses = new java.util.concurrent.atomic.LongAdder();

        /** What is remembered of one process. */
        static final class Known {
            /** Descriptors that were not sockets when last read: skipped when the process is searched for a new socket. */
            final java.util.Set<Integer> others = new java.util.HashSet<>();
            String comm;
            String exe;
            String start;
            long checked;
            /** The descriptor of the last socket looked up: a process that closes a connection and opens another reuses it. */
            int lastSocket = -1;
            /** Its cgroup2 path when last read, and when: a process may be moved to another cgroup. */
            String cgroup;
            long cgroupChecked;
        }

        /** {@code pid}'s cgroup2 path, read again when older than {@link #RECHECK_NANOS}; null if it exited. */
        synchronized String cgroup(int pid) {
            Known p = processes.get(pid);
            long now = System.nanoTime();
            if (p != null && p.cgroup != null && now - p.cgroupChecked < RECHECK_NANOS) return p.cgroup;
            String c = Cgroup2.of(pid);
            if (p != null) {
                p.cgroup = c;
                p.cgroupChecked = now;
            }
            return c;
        }

        /** The pid holding {@code socket:[inode]}, or -1. */
        synchronized int pidOf(long inode) {
            Long known = owner.get(inode);
            if (known != null && holds((int) (known >>> 32), known.intValue(), inode)) {
                mapHits.increment();
                return found((int) (known >>> 32));
            }
            for (Integer pid : recent) {
                Known p = processes.get(pid);
                if (p != null && holds(pid, p.lastSocket, inode)) { // the descriptor of its last socket, closed and reused
                    recentHits.increment();
                    return found(pid);
                }
            }
            for (Integer pid : List.copyOf(recent)) {
                if (scan(pid, inode, true)) {
                    recentHits.increment();
                    return found(pid);
                }
            }
            for (Integer pid : List.copyOf(recent)) {
                if (scan(pid, inode, false)) {
                    recentHits.increment();
                    return found(pid);
                }
            }
            java.util.Set<Integer> now = pids();
            java.util.Set<Integer> before = listed;
            listed = now;
            processes.keySet().retainAll(now);
            recent.retainAll(now);
            for (Integer pid : now) {
                if (!before.contains(pid) && !recent.contains(pid) && scan(pid, inode, false)) {
                    newProcessHits.increment();
                    return found(pid);
                }
            }
            fullScans.increment();
            for (Integer pid : now) {
                if (before.contains(pid) && !recent.contains(pid) && scan(pid, inode, false)) return found(pid);
            }
            misses.increment();
            return -1;
        }

        /** {@code pid}'s command name and executable (null if another user's and the agent is not root), or null if it exited. */
        synchronized Known details(int pid) throws IOException {
            Known p = processes.computeIfAbsent(pid, k -> new Known());
            long now = System.nanoTime();
            if (p.start != null && now - p.checked < RECHECK_NANOS) return p;
            Path proc = Path.of("/proc", Integer.toString(pid));
            String start;
            try {
                start = startTime(Files.readString(proc.resolve("stat")));
            } catch (IOException e) {
                forget(pid);
                return null;
            }
            if (!start.equals(p.start)) { // first seen, or the pid now names another process
                p.comm = Files.readString(proc.resolve("comm")).trim();
                try {
                    p.exe = Files.readSymbolicLink(proc.resolve("exe")).toString();
                } catch (IOException | SecurityException e) {
                    p.exe = null; // another user's process, and the agent is not root
                }
                p.start = start;
            }
            p.checked = now;
            return p;
        }

        /** Whether {@code pid} is remembered (its descriptors or details). */
        synchronized boolean knows(int pid) {
            return processes.containsKey(pid) || recent.contains(pid);
        }

        private int found(int pid) {
            recent.remove(pid);
            recent.addFirst(pid);
            if (recent.size() > RECENT) recent.removeLast();
            return pid;
        }

        private void forget(int pid) {
            processes.remove(pid);
            recent.remove(pid);
        }

        /** The process still has the socket at that descriptor (the pid may be another process by now, or the socket closed). */
        private static boolean holds(int pid, int fd, long inode) {
            if (fd < 0) return false;
            try {
                return Files.readSymbolicLink(Path.of("/proc", Integer.toString(pid), "fd", Integer.toString(fd)))
                        .toString().equals("socket:[" + inode + "]");
            } catch (IOException | SecurityException e) {
                return false; // closed, or the process exited
            }
        }

        /**
         * Reads {@code pid}'s descriptors ({@code quick}: only those not known as non-sockets), remembering each socket it
         * holds; true if one is {@code inode}. A process whose descriptors are gone is forgotten.
         */
        private boolean scan(int pid, long inode, boolean quick) {
            String dir = "/proc/" + pid + "/fd";
            String[] fds = new java.io.File(dir).list();
            if (fds == null) { // it exited, or another user's process and the agent is not root
                forget(pid);
                return false;
            }
            Known p = processes.computeIfAbsent(pid, k -> new Known());
            if (!quick) p.others.clear();
            if (owner.size() > MAX_INODES) owner.clear();
            boolean hit = false;
            for (String name : fds) {
                int fd = Integer.parseInt(name);
                if (quick && p.others.contains(fd)) continue;
                try {
                    String link = Files.readSymbolicLink(Path.of(dir, name)).toString();
                    if (link.startsWith("socket:[")) {
                        long i = Long.parseLong(link, 8, link.length() - 1, 10);
                        owner.put(i, (long) pid << 32 | fd);
                        if (i == inode) {
                            hit = true;
                            p.lastSocket = fd;
                        }
                    } else {
                        p.others.add(fd);
                    }
                } catch (IOException | NumberFormatException ignored) {
                    // the fd closed while we looked
                }
            }
            return hit;
        }

        /** Field 22 of /proc/PID/stat, the start time in clock ticks since boot (after the command name, which may hold spaces). */
        private static String startTime(String stat) {
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return f[19];
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
