package dev.interlayer.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.interlayer.api.AppInfo;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledOnOs;
import org.junit.jupiter.api.condition.OS;

/**
 * The eBPF record of who connected each TCP socket, on the real kernel: programs loaded and linked to the cgroup2 root,
 * real processes connecting to a real listener, and the programs gone once the links close.
 */
@EnabledOnOs(OS.LINUX)
class BpfSocketOwnersTest {

    private BpfSocketOwners owners;

    @BeforeEach
    void attach() {
        owners = BpfSocketOwners.attach();
        // only where bpf is truly unavailable: attach() logged why
        assumeTrue(owners != null, "the eBPF programs cannot be loaded here (no CAP_BPF, no cgroup2 or an old kernel): see the log");
    }

    @AfterEach
    void close() {
        if (owners != null) owners.close();
    }

    @Test
    void aChildsConnectionIsFoundInTheMapWithItsPidUidCommandAndExecutable() throws Exception {
        try (ServerSocket server = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"))) {
            Process bash = new ProcessBuilder("bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/" + server.getLocalPort() + "; sleep 5; exit 0").start(); // not the last command: bash stays bash
            try (Socket accepted = server.accept()) {
                long bpf = ProcessLookups.BY_BPF.sum();
                long socket = ProcessLookups.BY_SOCKET.sum();
                AppInfo app = ProcLookup.find((InetSocketAddress) accepted.getRemoteSocketAddress(),
                        (InetSocketAddress) accepted.getLocalSocketAddress());
                assertThat(app).isNotNull();
                assertThat(app.tgid()).isEqualTo(bash.pid());
                assertThat(app.uid()).isEqualTo(new com.sun.security.auth.module.UnixSystem().getUid());
                assertThat(app.name()).isEqualTo("bash");
                assertThat(Path.of(app.exe())).isEqualTo(Path.of("/proc/" + bash.pid() + "/exe").toRealPath());
                assertThat(ProcessLookups.BY_BPF.sum()).as("answered by the map").isEqualTo(bpf + 1);
                assertThat(ProcessLookups.BY_SOCKET.sum()).as("no sock_diag query").isEqualTo(socket);
                assertThat(ProcLookup.uid((InetSocketAddress) accepted.getRemoteSocketAddress(),
                        (InetSocketAddress) accepted.getLocalSocketAddress())).isEqualTo(app.uid());
                assertThat(ProcessLookups.BY_SOCKET.sum()).as("no sock_diag query for the uid either").isEqualTo(socket);
            } finally {
                bash.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
            }
        }
    }

    @Test
    void anIpv6ConnectionIsFoundToo() throws Exception {
        InetAddress v6 = InetAddress.getByName("::1");
        try (ServerSocket server = new ServerSocket()) {
            try {
                server.bind(new InetSocketAddress(v6, 0));
            } catch (java.io.IOException e) {
                assumeTrue(false, "no IPv6 loopback here: " + e.getMessage());
            }
            try (Socket client = new Socket(v6, server.getLocalPort()); Socket accepted = server.accept()) {
                long found = owners.lookup((InetSocketAddress) accepted.getRemoteSocketAddress(), (InetSocketAddress) accepted.getLocalSocketAddress());
                assertThat(found >>> 32).isEqualTo(ProcessHandle.current().pid());
            }
        }
    }

    @Test
    void aConnectionMadeBeforeTheProgramsWereAttachedIsFoundThroughTheSocketTable() throws Exception {
        owners.close();
        try (ServerSocket server = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"));
             Socket client = new Socket(server.getInetAddress(), server.getLocalPort());
             Socket accepted = server.accept()) {
            owners = BpfSocketOwners.attach();
            assertThat(owners).isNotNull();
            long misses = ProcessLookups.BPF_MISSES.sum();
            long socket = ProcessLookups.BY_SOCKET.sum();
            AppInfo app = ProcLookup.find((InetSocketAddress) accepted.getRemoteSocketAddress(), (InetSocketAddress) accepted.getLocalSocketAddress());
            assertThat(app.tgid()).isEqualTo(ProcessHandle.current().pid());
            assertThat(ProcessLookups.BPF_MISSES.sum()).isEqualTo(misses + 1);
            assertThat(ProcessLookups.BY_SOCKET.sum()).isEqualTo(socket + 1);
        }
    }

    @Test
    void closingTheLinksLeavesNoProgramOfOursInTheKernel() throws Exception {
        List<Integer> ours = programs();
        assertThat(ours).as("our three programs, loaded").hasSize(3);
        owners.close();
        assertThat(ProcLookup.bpf).isNull();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        List<Integer> left = programs();
        while (!left.isEmpty() && System.nanoTime() < deadline) { // the kernel frees a program after an RCU grace period
            Thread.sleep(20);
            left = programs();
        }
        assertThat(left).as("programs of ours still in the kernel").isEmpty();
        try (ServerSocket server = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"));
             Socket client = new Socket(server.getInetAddress(), server.getLocalPort());
             Socket accepted = server.accept()) {
            assertThat(client.isConnected()).as("connections work with the programs gone").isTrue();
        }
    }

    @Test
    void aProgramTheVerifierRefusesIsRefusedInItsWords() {
        BpfAsm unset = new BpfAsm().exit(); // returns r0, never written
        try (Arena arena = Arena.ofConfined()) {
            assertThatThrownBy(() -> Bpf.load(arena, arena.allocate(Libc.STATE), "il_refused", Bpf.PROG_TYPE_SOCK_OPS, Bpf.CGROUP_SOCK_OPS, unset))
                    .isInstanceOf(IllegalStateException.class).hasMessageContaining("il_refused").hasMessageContaining("R0 !read_ok");
        }
    }

    /** The ids of the programs named as ours that the kernel holds (loaded: a program is freed once detached and closed). */
    private static List<Integer> programs() {
        List<String> names = List.of(BpfSocketOwners.CONNECT4, BpfSocketOwners.CONNECT6, BpfSocketOwners.SOCK_OPS);
        List<Integer> out = new ArrayList<>();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(Libc.STATE);
            MemorySegment info = arena.allocate(256, 8);
            int id = 0;
            while (true) {
                MemorySegment a = Bpf.attr(arena);
                a.set(ValueLayout.JAVA_INT, 0, id);
                if (Bpf.call(state, Bpf.PROG_GET_NEXT_ID, a) < 0) break;
                id = a.get(ValueLayout.JAVA_INT, 4);
                MemorySegment byId = Bpf.attr(arena);
                byId.set(ValueLayout.JAVA_INT, 0, id);
                int fd = (int) Bpf.call(state, Bpf.PROG_GET_FD_BY_ID, byId);
                if (fd < 0) continue; // freed meanwhile
                info.fill((byte) 0);
                MemorySegment get = Bpf.attr(arena);
                get.set(ValueLayout.JAVA_INT, 0, fd);
                get.set(ValueLayout.JAVA_INT, 4, (int) info.byteSize());
                get.set(ValueLayout.JAVA_LONG, 8, info.address());
                long r = Bpf.call(state, Bpf.OBJ_GET_INFO_BY_FD, get);
                Bpf.close(fd);
                // struct bpf_prog_info: name at 64
                if (r == 0 && names.contains(info.asSlice(64, 16).getString(0, StandardCharsets.US_ASCII))) out.add(id);
            }
        }
        return out;
    }
}
