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
import java.nio.file.Files;
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

    private static final int CAP_SYS_ADMIN = 21, CAP_BPF = 39;
    /** bpf(2) commands that list the kernel's programs ({@code enum bpf_cmd}). */
    private static final int PROG_GET_NEXT_ID = 11, PROG_GET_FD_BY_ID = 13, OBJ_GET_INFO_BY_FD = 15;

    private BpfSocketOwners owners;

    @BeforeEach
    void attach() throws Exception {
        // skipped only where bpf is truly unavailable; where it is, the programs must load and pass their own check
        assumeTrue(Cgroup2.mount() != null, "no cgroup2 tree is mounted here");
        long caps = Files.readAllLines(Path.of("/proc/self/status")).stream().filter(l -> l.startsWith("CapEff:"))
                .mapToLong(l -> Long.parseUnsignedLong(l.substring(7).strip(), 16)).findFirst().orElse(0);
        assumeTrue((caps & (1L << CAP_BPF | 1L << CAP_SYS_ADMIN)) != 0, "this JVM has neither CAP_BPF nor CAP_SYS_ADMIN");
        String[] version = System.getProperty("os.version").split("[.-]");
        int major = Integer.parseInt(version[0]), minor = Integer.parseInt(version[1]);
        assumeTrue(major > 5 || major == 5 && minor >= 15, "Linux " + System.getProperty("os.version") + " is older than 5.15");
        owners = BpfSocketOwners.attach();
        assertThat(owners).as("the programs attached (the log says why not)").isNotNull();
    }

    @AfterEach
    void close() {
        if (owners != null) owners.close();
    }

    @Test
    void aChildsConnectionIsFoundInTheMapWithItsPidUidCommandAndExecutable() throws Exception {
        aChildsConnectionIsFound();
    }

    @Test
    void theThreeProgramShapeOfOlderKernelsFindsItToo() throws Exception {
        owners.close();
        owners = BpfSocketOwners.attach(false);
        assertThat(owners.programs).isEqualTo(3);
        aChildsConnectionIsFound();
        assertThat(programs()).hasSize(3);
    }

    private void aChildsConnectionIsFound() throws Exception {
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
        assertThat(ours).as("our programs, loaded").hasSize(owners.programs);
        owners.close();
        assertThat(ProcLookup.bpf).isNull();
        waitUntilNoneOfOurs();
        try (ServerSocket server = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"));
             Socket client = new Socket(server.getInetAddress(), server.getLocalPort());
             Socket accepted = server.accept()) {
            assertThat(client.isConnected()).as("connections work with the programs gone").isTrue();
        }
    }

    @Test
    void aProcessKilledWithSignal9LeavesNoProgramOfOursInTheKernel() throws Exception {
        owners.close(); // only the child's programs from here on
        waitUntilNoneOfOurs();
        String java = ProcessHandle.current().info().command().orElseThrow();
        List<String> command = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path")));
        String logging = System.getProperty("java.util.logging.config.file"); // the tests' (warnings only), if set
        if (logging != null) command.add("-Djava.util.logging.config.file=" + logging);
        command.add(Attached.class.getName());
        Process child = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        try {
            String line = new java.io.BufferedReader(new java.io.InputStreamReader(child.getInputStream())).readLine();
            assertThat(line).as("the child's first line").isEqualTo("attached");
            assertThat(programs()).as("the child's programs").isNotEmpty();
        } finally {
            child.destroyForcibly(); // SIGKILL: no close, no shutdown hook
            child.waitFor(10, TimeUnit.SECONDS);
        }
        waitUntilNoneOfOurs();
    }

    /** A process that attaches the programs, says so, and waits to be killed. */
    static final class Attached {
        public static void main(String[] args) throws Exception {
            System.out.println(BpfSocketOwners.attach() != null ? "attached" : "not attached");
            System.out.flush();
            Thread.sleep(60_000);
        }
    }

    /** Waits for the kernel to free our programs (after an RCU grace period once detached and closed); fails after 10 s. */
    private static void waitUntilNoneOfOurs() throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        List<Integer> left = programs();
        while (!left.isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(20);
            left = programs();
        }
        assertThat(left).as("programs of ours still in the kernel").isEmpty();
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
                if (Bpf.call(state, PROG_GET_NEXT_ID, a) < 0) break;
                id = a.get(ValueLayout.JAVA_INT, 4);
                MemorySegment byId = Bpf.attr(arena);
                byId.set(ValueLayout.JAVA_INT, 0, id);
                int fd = (int) Bpf.call(state, PROG_GET_FD_BY_ID, byId);
                if (fd < 0) continue; // freed meanwhile
                info.fill((byte) 0);
                MemorySegment get = Bpf.attr(arena);
                get.set(ValueLayout.JAVA_INT, 0, fd);
                get.set(ValueLayout.JAVA_INT, 4, (int) info.byteSize());
                get.set(ValueLayout.JAVA_LONG, 8, info.address());
                long r = Bpf.call(state, OBJ_GET_INFO_BY_FD, get);
                Bpf.close(fd);
                // struct bpf_prog_info: name at 64
                if (r == 0 && names.contains(info.asSlice(64, 16).getString(0, StandardCharsets.US_ASCII))) out.add(id);
            }
        }
        return out;
    }
}
