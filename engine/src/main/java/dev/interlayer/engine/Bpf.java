package dev.interlayer.engine;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;

/**
 * The {@code bpf(2)} system call, through libc's {@code syscall} (glibc has no wrapper for it), and the few commands
 * {@link BpfSocketOwners} needs: create a map, load a program (with the verifier's log when it refuses), attach it by a
 * link, look up a map element. Every {@code attr} is a zeroed {@code union bpf_attr} of {@link #ATTR} bytes,
 * its fields at the offsets of include/uapi/linux/bpf.h. Results are the kernel's: a descriptor or 0, or -errno.
 */
final class Bpf {

    /** Commands ({@code enum bpf_cmd}). */
    static final int MAP_CREATE = 0, MAP_LOOKUP_ELEM = 1, PROG_LOAD = 5, LINK_CREATE = 28;
    /** Map type, program types ({@code enum bpf_map_type}, {@code enum bpf_prog_type}) and attach points ({@code enum bpf_attach_type}). */
    static final int MAP_TYPE_LRU_HASH = 9;
    static final int PROG_TYPE_SOCK_OPS = 13, PROG_TYPE_CGROUP_SOCK_ADDR = 18;
    static final int CGROUP_SOCK_OPS = 3, CGROUP_INET4_CONNECT = 10, CGROUP_INET6_CONNECT = 11;
    /** Helper function ids ({@code enum bpf_func_id}). */
    static final int MAP_LOOKUP = 1, MAP_UPDATE = 2, MAP_DELETE = 3, GET_CURRENT_PID_TGID = 14, GET_CURRENT_UID_GID = 15,
            GET_SOCKET_COOKIE = 46, GET_NETNS_COOKIE = 122;
    /** Bytes of the {@code union bpf_attr} passed: more than any command here reads (the kernel wants the rest zero). */
    static final int ATTR = 128;

    private static final int SOL_SOCKET = 1;
    private static final int SO_NETNS_COOKIE = 71;

    private static final MethodHandle SYSCALL;
    private static final MethodHandle CLOSE;
    private static final MethodHandle SOCKET;
    private static final MethodHandle GETSOCKOPT;
    private static final MethodHandle OPEN;
    /** The bpf system call's number on this architecture. */
    private static final long NR_BPF;
    /** Why bpf(2) cannot be called here, or null. */
    static final String UNAVAILABLE;

    static {
        MethodHandle[] h = new MethodHandle[5];
        String why = Libc.UNSUPPORTED;
        long nr = System.getProperty("os.arch", "").equals("aarch64") ? 280 : 321;
        if (why == null) {
            try {
                ValueLayout i = ValueLayout.JAVA_INT;
                ValueLayout l = ValueLayout.JAVA_LONG;
                ValueLayout a = ValueLayout.ADDRESS;
                h[0] = Libc.bind("syscall", FunctionDescriptor.of(l, l, i, a, i), Linker.Option.firstVariadicArg(1));
                h[1] = Libc.bind("close", FunctionDescriptor.of(i, i));
                h[2] = Libc.bind("socket", FunctionDescriptor.of(i, i, i, i));
                h[3] = Libc.bind("getsockopt", FunctionDescriptor.of(i, i, i, i, a, a));
                h[4] = Libc.bind("open", FunctionDescriptor.of(i, a, i));
            } catch (RuntimeException | Error e) {
                why = "the foreign function API cannot bind libc's syscall (" + e + "); start the JVM with --enable-native-access=ALL-UNNAMED";
            }
        }
        SYSCALL = h[0];
        CLOSE = h[1];
        SOCKET = h[2];
        GETSOCKOPT = h[3];
        OPEN = h[4];
        NR_BPF = nr;
        UNAVAILABLE = why;
    }

    private Bpf() {}

    /** {@code bpf(cmd, attr, ATTR)}: the kernel's result, or -errno; {@code state} takes the errno. */
    static long call(MemorySegment state, int cmd, MemorySegment attr) {
        try {
            long r = (long) SYSCALL.invokeExact(state, NR_BPF, cmd, attr, ATTR);
            return r < 0 ? -Libc.errno(state) : r;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** A zeroed {@code union bpf_attr} in {@code arena}. */
    static MemorySegment attr(Arena arena) {
        return arena.allocate(ATTR, 8);
    }

    static void close(int fd) {
        if (fd < 0) return;
        try (Arena arena = Arena.ofConfined()) {
            int ignored = (int) CLOSE.invokeExact(arena.allocate(Libc.STATE), fd);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** A BPF_MAP_TYPE_LRU_HASH map: its descriptor, or -errno. */
    static int lruHash(Arena arena, MemorySegment state, String name, int keySize, int valueSize, int entries) {
        MemorySegment a = attr(arena);
        a.set(ValueLayout.JAVA_INT, 0, MAP_TYPE_LRU_HASH);
        a.set(ValueLayout.JAVA_INT, 4, keySize);
        a.set(ValueLayout.JAVA_INT, 8, valueSize);
        a.set(ValueLayout.JAVA_INT, 12, entries);
        name(a, 28, name);
        return (int) call(state, MAP_CREATE, a);
    }

    /**
     * Loads {@code program} as {@code type} expecting {@code attachType}: its descriptor.
     *
     * @throws IllegalStateException if the kernel refuses it, with the errno and the verifier's last words
     */
    static int load(Arena arena, MemorySegment state, String name, int type, int attachType, BpfAsm program) {
        MemorySegment insns = program.assemble(arena);
        MemorySegment license = arena.allocateFrom("Apache-2.0", StandardCharsets.US_ASCII);
        MemorySegment a = attr(arena);
        a.set(ValueLayout.JAVA_INT, 0, type);
        a.set(ValueLayout.JAVA_INT, 4, program.size());
        a.set(ValueLayout.JAVA_LONG, 8, insns.address());
        a.set(ValueLayout.JAVA_LONG, 16, license.address());
        name(a, 48, name);
        a.set(ValueLayout.JAVA_INT, 68, attachType);
        long fd = call(state, PROG_LOAD, a);
        if (fd < 0) {
            // again with the verifier's log, which says why (not asked the first time: a log too long for its buffer fails the load)
            MemorySegment log = arena.allocate(64 * 1024);
            a.set(ValueLayout.JAVA_INT, 24, 1);
            a.set(ValueLayout.JAVA_INT, 28, (int) log.byteSize());
            a.set(ValueLayout.JAVA_LONG, 32, log.address());
            long again = call(state, PROG_LOAD, a);
            if (again >= 0) return (int) again;
            String words = log.getString(0, StandardCharsets.US_ASCII).strip();
            int last = words.lastIndexOf('\n', Math.max(0, words.length() - 400));
            throw new IllegalStateException("the kernel refused program " + name + " (errno " + -fd + ")"
                    + (words.isEmpty() ? "" : "; verifier: " + words.substring(last + 1).replace('\n', ' ')));
        }
        return (int) fd;
    }

    /** Attaches program {@code prog} to the cgroup {@code cgroupFd} at {@code attachType} by a link: the link's descriptor, or -errno. */
    static int link(Arena arena, MemorySegment state, int prog, int cgroupFd, int attachType) {
        MemorySegment a = attr(arena);
        a.set(ValueLayout.JAVA_INT, 0, prog);
        a.set(ValueLayout.JAVA_INT, 4, cgroupFd);
        a.set(ValueLayout.JAVA_INT, 8, attachType);
        return (int) call(state, LINK_CREATE, a);
    }

    /** A read-only descriptor of directory {@code dir} (a cgroup, to attach to), or -errno. */
    static int openDirectory(String dir) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(Libc.STATE);
            int fd = (int) OPEN.invokeExact(state, arena.allocateFrom(dir), 0x80000 /* O_RDONLY | O_CLOEXEC */);
            return fd < 0 ? -Libc.errno(state) : fd;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /**
     * The cookie of the network namespace of this process (socket option SO_NETNS_COOKIE, Linux 5.14), the one the programs
     * see for sockets of this namespace; 0 if it cannot be read.
     */
    static long netnsCookie() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(Libc.STATE);
            int s = (int) SOCKET.invokeExact(state, LinuxSockets.AF_INET, 2 /* SOCK_DGRAM */, 0);
            if (s < 0) return 0;
            try {
                MemorySegment value = arena.allocate(ValueLayout.JAVA_LONG);
                MemorySegment len = arena.allocateFrom(ValueLayout.JAVA_INT, 8);
                int r = (int) GETSOCKOPT.invokeExact(state, s, SOL_SOCKET, SO_NETNS_COOKIE, value, len);
                return r == 0 ? value.get(ValueLayout.JAVA_LONG, 0) : 0;
            } finally {
                close(s);
            }
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    private static void name(MemorySegment attr, long offset, String name) {
        byte[] b = name.getBytes(StandardCharsets.US_ASCII);
        MemorySegment.copy(b, 0, attr, ValueLayout.JAVA_BYTE, offset, Math.min(b.length, 15));
    }
}
