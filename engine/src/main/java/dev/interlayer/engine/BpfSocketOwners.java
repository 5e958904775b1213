package dev.interlayer.engine;

import static dev.interlayer.engine.BpfAsm.DW;
import static dev.interlayer.engine.BpfAsm.R0;
import static dev.interlayer.engine.BpfAsm.R1;
import static dev.interlayer.engine.BpfAsm.R10;
import static dev.interlayer.engine.BpfAsm.R2;
import static dev.interlayer.engine.BpfAsm.R3;
import static dev.interlayer.engine.BpfAsm.R4;
import static dev.interlayer.engine.BpfAsm.R6;
import static dev.interlayer.engine.BpfAsm.R7;
import static dev.interlayer.engine.BpfAsm.W;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Who connected each local TCP socket, recorded by the kernel as the connection starts: eBPF programs attached to the
 * root of the cgroup2 tree (so they run for every process of the host) fill a map from a socket's 4-tuple to the
 * process (tgid) and user that called {@code connect()}, and {@link ProcLookup} reads it with one {@code bpf(2)} call
 * instead of a sock_diag query and a search of /proc/PID/fd.
 *
 * <p>One sock_ops program where the kernel allows it (recent kernels let every program type call the pid and uid
 * helpers, 6.18 does; the verifier decides, on load): at {@code TCP_CONNECT_CB}, which runs in the connecting process within its
 * {@code connect()} just before the SYN leaves, it has the whole 4-tuple and the caller's tgid and uid, and stores them
 * in the map keyed by (network namespace cookie, family, local port, remote port, local address, remote address).
 * Where the verifier refuses that, three programs: the cgroup {@code connect4}/{@code connect6} hooks (which have the
 * pid and uid helpers everywhere, but run before the kernel picks the local port) store socket cookie → (tgid, uid) in
 * a small map, and the sock_ops program moves it to the 4-tuple map. The maps are LRU hashes: entries of closed
 * connections stay until newer ones push them out, so the map never fills and costs a fixed amount of kernel memory.
 * Every program returns 1 (allow: the connect hooks' verdict, sock_ops ignores it) and writes nothing into any
 * connection.
 *
 * <p>Attached by {@code BPF_LINK_CREATE} (alongside any other programs on the root cgroup: a cgroup link attaches as
 * multi): a link is detached when its last descriptor closes, so {@link #close}, the agent's exit or its death by any
 * signal removes the programs; nothing stays attached. Needs CAP_BPF and CAP_NET_ADMIN (or CAP_SYS_ADMIN), cgroup2 and
 * Linux 5.15 (sock_ops {@code bpf_get_netns_cookie}). {@link #open} checks the result on a connection of its own before
 * it is used: a kernel that records something else, or an agent in another pid namespace than the host's (the kernel's
 * pids are the host's), is refused there.
 *
 * <p>Lifecycle: {@link #open} → attached → {@link #close} → detached (idempotent). Lookups are thread-safe.
 */
final class BpfSocketOwners implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.engine");

    /** Entries of the 4-tuple map: connections remembered at most. */
    static final int ENTRIES = 1 << 16;
    /** Entries of the cookie map: connects between the two hooks (the same system call), and ones that failed between. */
    static final int PENDING = 4096;
    /** The 4-tuple key: netns cookie 8, family 4, local port 4, remote port 4, local address 16, remote address 16, padding 4. */
    static final int KEY = 56;
    /** The value: tgid 4, uid 4. */
    static final int VALUE = 8;
    /** The programs' names, as bpftool and BPF_OBJ_GET_INFO_BY_FD show them. */
    static final String CONNECT4 = "il_connect4", CONNECT6 = "il_connect6", SOCK_OPS = "il_sockops";

    private static final int AF_INET = 2, AF_INET6 = 10;
    private static final int IPPROTO_TCP = 6;
    private static final int SOCK_OPS_TCP_CONNECT_CB = 3;
    /** Offsets in the programs' contexts (struct bpf_sock_addr, struct bpf_sock_ops). */
    private static final int ADDR_PROTOCOL = 36;
    private static final int OPS_OP = 0, OPS_FAMILY = 20, OPS_REMOTE_IP4 = 24, OPS_LOCAL_IP4 = 28, OPS_REMOTE_IP6 = 32,
            OPS_LOCAL_IP6 = 48, OPS_REMOTE_PORT = 64, OPS_LOCAL_PORT = 68;

    private final int map;
    private final int[] links;
    /** The cookie of this process's network namespace: only its sockets are looked up. */
    private final long netns;
    /** Kernel memory the maps take (their memlock), bytes. */
    final long memory;
    /** Programs attached: 1 (sock_ops alone) or 3 (sock_ops and the two connect hooks). */
    final int programs;
    private final ThreadLocal<Query> perThread = ThreadLocal.withInitial(Query::new);
    private volatile boolean closed;

    private BpfSocketOwners(int map, int[] links, long netns, long memory) {
        this.map = map;
        this.links = links;
        this.programs = links.length;
        this.netns = netns;
        this.memory = memory;
    }

    /**
     * Opens the map and hands it to {@link ProcLookup}, logging where it is attached and what it costs; or logs one line
     * saying why it cannot be used (then lookups use sock_diag as before) and returns null. Never fails otherwise: the
     * map is a shortcut, not a requirement.
     */
    static BpfSocketOwners attach() {
        return attach(true);
    }

    /** As {@link #attach()}; {@code oneProgram} false: the three-program shape even where one program would load (tests). */
    static BpfSocketOwners attach(boolean oneProgram) {
        try {
            BpfSocketOwners owners = open(oneProgram);
            ProcLookup.bpf = owners;
            LOG.log(Level.INFO, "process lookups read who connected each TCP socket from an eBPF map filled at connect() ({0}"
                            + " linked to the cgroup2 root {1}, {2} entries, {3} KiB of kernel memory)",
                    owners.programs == 1 ? "one sock_ops program" : "three programs", Cgroup2.mount(), ENTRIES, owners.memory / 1024);
            return owners;
        } catch (IllegalStateException e) {
            LOG.log(Level.INFO, "process lookups use sock_diag: the eBPF connect programs cannot be used here: {0}", e.getMessage());
            return null;
        }
    }

    /**
     * Loads and attaches the programs and checks them on a loopback connection of this process: one sock_ops program
     * where the verifier lets it call the pid and uid helpers (and {@code oneProgram}), else the three-program shape.
     *
     * @throws IllegalStateException saying why they cannot be used here (no privilege, no cgroup2, a kernel that refuses
     *         them or records something else); nothing stays attached then
     */
    static BpfSocketOwners open(boolean oneProgram) {
        if (Bpf.UNAVAILABLE != null) throw new IllegalStateException(Bpf.UNAVAILABLE);
        Path cgroup = Cgroup2.mount();
        if (cgroup == null) throw new IllegalStateException("no cgroup2 tree is mounted (/proc/self/mountinfo has none) to attach to");
        long netns = Bpf.netnsCookie();
        if (netns == 0) throw new IllegalStateException("the network namespace cookie cannot be read (SO_NETNS_COOKIE needs Linux 5.14)");
        int pending = -1, map = -1, cg = -1;
        int[] progs = {-1, -1, -1};
        int[] links = {-1, -1, -1};
        boolean done = false;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(Libc.STATE);
            map = Bpf.lruHash(arena, state, "il_owners", KEY, VALUE, ENTRIES);
            if (map < 0) {
                throw new IllegalStateException("the kernel refused a " + ENTRIES + "-entry BPF map (errno " + -map + ")"
                        + (map == -1 || map == -13 ? ": the agent needs CAP_BPF and CAP_NET_ADMIN, or CAP_SYS_ADMIN" : ""));
            }
            if (oneProgram) {
                try {
                    progs[0] = Bpf.load(arena, state, SOCK_OPS, Bpf.PROG_TYPE_SOCK_OPS, Bpf.CGROUP_SOCK_OPS, sockOps(-1, map));
                } catch (IllegalStateException older) {
                    // this kernel does not let sock_ops call the pid and uid helpers: the three-program shape
                }
            }
            int[] types = {Bpf.CGROUP_SOCK_OPS};
            if (progs[0] < 0) {
                pending = Bpf.lruHash(arena, state, "il_pending", 8, VALUE, PENDING);
                if (pending < 0) throw new IllegalStateException("the kernel refused a " + PENDING + "-entry BPF map (errno " + -pending + ")");
                progs[0] = Bpf.load(arena, state, SOCK_OPS, Bpf.PROG_TYPE_SOCK_OPS, Bpf.CGROUP_SOCK_OPS, sockOps(pending, map));
                progs[1] = Bpf.load(arena, state, CONNECT4, Bpf.PROG_TYPE_CGROUP_SOCK_ADDR, Bpf.CGROUP_INET4_CONNECT, connect(pending));
                progs[2] = Bpf.load(arena, state, CONNECT6, Bpf.PROG_TYPE_CGROUP_SOCK_ADDR, Bpf.CGROUP_INET6_CONNECT, connect(pending));
                types = new int[] {Bpf.CGROUP_SOCK_OPS, Bpf.CGROUP_INET4_CONNECT, Bpf.CGROUP_INET6_CONNECT};
            }
            cg = Bpf.openDirectory(cgroup.toString());
            if (cg < 0) throw new IllegalStateException("the cgroup2 root " + cgroup + " cannot be opened (errno " + -cg + ")");
            // the sock_ops program first: a connect the connect hooks record is always moved
            for (int i = 0; i < types.length; i++) {
                links[i] = Bpf.link(arena, state, progs[i], cg, types[i]);
                if (links[i] < 0) {
                    throw new IllegalStateException("the kernel refused to attach a program to the cgroup2 root " + cgroup + " (errno "
                            + -links[i] + ")" + (links[i] == -1 ? ": another program is attached there exclusively (not multi)" : ""));
                }
            }
            long memory = memlock(map) + (pending < 0 ? 0 : memlock(pending));
            BpfSocketOwners owners = new BpfSocketOwners(map, java.util.Arrays.copyOf(links, types.length), netns, memory);
            owners.check();
            done = true;
            return owners;
        } finally {
            // the links hold the programs, the programs the cookie map: only the 4-tuple map and the links stay open
            for (int p : progs) Bpf.close(p);
            Bpf.close(pending);
            Bpf.close(cg);
            if (!done) {
                for (int l : links) Bpf.close(l);
                Bpf.close(map);
            }
        }
    }

    /**
     * The cgroup connect4/connect6 program: for a TCP socket, cookie → (tgid, uid) of the connecting process into
     * {@code pending}; always 1 (allow the connect).
     */
    private static BpfAsm connect(int pending) {
        return new BpfAsm()
                .mov(R6, R1)
                .load(W, R2, R6, ADDR_PROTOCOL)
                .jneImm(R2, IPPROTO_TCP, "out")
                .mov(R1, R6)
                .call(Bpf.GET_SOCKET_COOKIE)
                .store(DW, R10, -8, R0)
                .call(Bpf.GET_CURRENT_PID_TGID)
                .rshImm(R0, 32)
                .store(W, R10, -16, R0)
                .call(Bpf.GET_CURRENT_UID_GID) // uid in the low half
                .store(W, R10, -12, R0)
                .loadMap(R1, pending)
                .mov(R2, R10).addImm(R2, -8)
                .mov(R3, R10).addImm(R3, -16)
                .movImm(R4, 0)
                .call(Bpf.MAP_UPDATE)
                .label("out")
                .movImm(R0, 1)
                .exit();
    }

    /**
     * The sock_ops program: at TCP_CONNECT_CB (in the connecting process, within {@code connect()}, just before the SYN
     * leaves) the socket's 4-tuple → (tgid, uid) into {@code owners}, the key laid out as {@link Query#key} writes it. With
     * {@code pending} -1 it asks the helpers for the tgid and uid; else it takes what the connect hook left under the
     * socket's cookie in {@code pending} (and removes it), and does nothing for a socket that has none.
     */
    private static BpfAsm sockOps(int pending, int owners) {
        BpfAsm a = new BpfAsm()
                .mov(R6, R1)
                .load(W, R2, R6, OPS_OP)
                .jneImm(R2, SOCK_OPS_TCP_CONNECT_CB, "out");
        if (pending >= 0) {
            a.mov(R1, R6)
                    .call(Bpf.GET_SOCKET_COOKIE)
                    .store(DW, R10, -8, R0)
                    .loadMap(R1, pending)
                    .mov(R2, R10).addImm(R2, -8)
                    .call(Bpf.MAP_LOOKUP)
                    .jeqImm(R0, 0, "out")
                    .mov(R7, R0); // the value (tgid, uid)
        } else {
            a.call(Bpf.GET_CURRENT_PID_TGID)
                    .rshImm(R0, 32)
                    .store(W, R10, -72, R0)
                    .call(Bpf.GET_CURRENT_UID_GID) // uid in the low half
                    .store(W, R10, -68, R0)
                    .mov(R7, R10).addImm(R7, -72); // the value, r10-72 to r10-64
        }
        for (int off = -64; off < -8; off += 8) a.storeImm(DW, R10, off, 0); // the key, r10-64 to r10-8
        a.mov(R1, R6)
                .call(Bpf.GET_NETNS_COOKIE)
                .store(DW, R10, -64, R0)
                .load(W, R2, R6, OPS_FAMILY).store(W, R10, -56, R2)
                .load(W, R3, R6, OPS_LOCAL_PORT).store(W, R10, -52, R3)
                .load(W, R3, R6, OPS_REMOTE_PORT).store(W, R10, -48, R3)
                .jneImm(R2, AF_INET, "v6")
                .load(W, R3, R6, OPS_LOCAL_IP4).store(W, R10, -44, R3)
                .load(W, R3, R6, OPS_REMOTE_IP4).store(W, R10, -28, R3)
                .ja("store")
                .label("v6");
        for (int i = 0; i < 16; i += 4) a.load(W, R3, R6, OPS_LOCAL_IP6 + i).store(W, R10, -44 + i, R3);
        for (int i = 0; i < 16; i += 4) a.load(W, R3, R6, OPS_REMOTE_IP6 + i).store(W, R10, -28 + i, R3);
        a.label("store")
                .loadMap(R1, owners)
                .mov(R2, R10).addImm(R2, -64)
                .mov(R3, R7)
                .movImm(R4, 0)
                .call(Bpf.MAP_UPDATE);
        if (pending >= 0) {
            a.loadMap(R1, pending)
                    .mov(R2, R10).addImm(R2, -8)
                    .call(Bpf.MAP_DELETE);
        }
        return a.label("out")
                .movImm(R0, 1)
                .exit();
    }

    /**
     * A connection of this process must be found with this process's pid, else the map is not to be trusted.
     *
     * @throws IllegalStateException if it is not (the caller closes)
     */
    private void check() {
        long found;
        try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
             Socket client = new Socket(server.getInetAddress(), server.getLocalPort());
             Socket accepted = server.accept()) {
            found = lookup((InetSocketAddress) client.getLocalSocketAddress(), (InetSocketAddress) client.getRemoteSocketAddress());
        } catch (IOException e) {
            throw new IllegalStateException("the check connection on loopback failed: " + e.getMessage());
        }
        long pid = ProcessHandle.current().pid();
        if (found >>> 32 != pid) {
            throw new IllegalStateException(found < 0 ? "a connection of the agent's own was not recorded"
                    : "a connection of the agent's own was recorded as pid " + (found >>> 32) + ", not " + pid
                    + " (the agent runs in a pid namespace other than the host's)");
        }
    }

    /**
     * Who connected the TCP socket with local address {@code local} and peer {@code peer} in this network namespace:
     * tgid in the high 32 bits, uid in the low; -1 if the map does not have it (connected before the programs were attached,
     * in another network namespace, pushed out by newer connections, or closed).
     */
    long lookup(InetSocketAddress local, InetSocketAddress peer) {
        if (closed) return -1;
        Query q = perThread.get();
        boolean v4 = local.getAddress() instanceof Inet4Address;
        long r = q.lookup(map, v4 ? AF_INET : AF_INET6, local, peer, false);
        if (r < 0 && v4) r = q.lookup(map, AF_INET6, local, peer, true); // a dual-stack socket connects as IPv6
        return r;
    }

    /** Detaches the programs (closing the links) and frees the maps. Idempotent. */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        if (ProcLookup.bpf == this) ProcLookup.bpf = null;
        for (int l : links) Bpf.close(l);
        Bpf.close(map);
    }

    /** The map's kernel memory as /proc/self/fdinfo shows it (memlock); 0 if unknown. */
    private static long memlock(int fd) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/fdinfo/" + fd))) {
                if (line.startsWith("memlock:")) return Long.parseLong(line.substring(8).trim());
            }
        } catch (IOException | NumberFormatException e) {
            return 0;
        }
        return 0;
    }

    /** One thread's buffers for a lookup: the bpf_attr, the key and the value, allocated once. */
    private final class Query {
        private final Arena arena = Arena.ofAuto();
        private final MemorySegment state = arena.allocate(Libc.STATE);
        private final MemorySegment attr = Bpf.attr(arena);
        private final MemorySegment key = arena.allocate(KEY, 8);
        private final MemorySegment value = arena.allocate(VALUE, 8);

        Query() {
            attr.set(ValueLayout.JAVA_LONG, 8, key.address());
            attr.set(ValueLayout.JAVA_LONG, 16, value.address());
        }

        long lookup(int fd, int family, InetSocketAddress local, InetSocketAddress peer, boolean mapped) {
            key(family, local, peer, mapped);
            attr.set(ValueLayout.JAVA_INT, 0, fd);
            long r = Bpf.call(state, Bpf.MAP_LOOKUP_ELEM, attr);
            if (r < 0) return -1; // ENOENT: not recorded
            return (long) value.get(ValueLayout.JAVA_INT, 0) << 32 | Integer.toUnsignedLong(value.get(ValueLayout.JAVA_INT, 4));
        }

        /**
         * The key as the sock_ops program writes it from {@code struct bpf_sock_ops}: the local port as a number, the remote
         * port as the kernel loads it (network order, in the upper half of its word), addresses in network order.
         */
        private void key(int family, InetSocketAddress local, InetSocketAddress peer, boolean mapped) {
            key.fill((byte) 0);
            key.set(ValueLayout.JAVA_LONG, 0, netns);
            key.set(ValueLayout.JAVA_INT, 8, family);
            key.set(ValueLayout.JAVA_INT, 12, local.getPort());
            key.set(ValueLayout.JAVA_BYTE, 18, (byte) (peer.getPort() >> 8));
            key.set(ValueLayout.JAVA_BYTE, 19, (byte) peer.getPort());
            address(20, local, mapped);
            address(36, peer, mapped);
        }

        private void address(long offset, InetSocketAddress a, boolean mapped) {
            byte[] b = a.getAddress().getAddress();
            if (mapped) {
                key.set(ValueLayout.JAVA_BYTE, offset + 10, (byte) 0xff);
                key.set(ValueLayout.JAVA_BYTE, offset + 11, (byte) 0xff);
                MemorySegment.copy(b, 0, key, ValueLayout.JAVA_BYTE, offset + 12, 4);
            } else {
                MemorySegment.copy(b, 0, key, ValueLayout.JAVA_BYTE, offset, b.length);
            }
        }
    }
}
