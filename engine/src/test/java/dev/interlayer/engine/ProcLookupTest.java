package dev.interlayer.engine;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.api.AppInfo;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledOnOs;
import org.junit.jupiter.api.condition.OS;

/** The process behind a real TCP socket, found from /proc: this JVM's own client sockets. */
@EnabledOnOs(OS.LINUX)
class ProcLookupTest {

    @Test
    void aClientSocketIsTracedToThisProcessItsUserAndItsExecutable() throws Exception {
        try (ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
             Socket client = new Socket(server.getInetAddress(), server.getLocalPort());
             Socket accepted = server.accept()) {
            AppInfo app = ProcLookup.find((InetSocketAddress) client.getLocalSocketAddress(), (InetSocketAddress) client.getRemoteSocketAddress());
            assertThat(app).isNotNull();
            assertThat(app.tgid()).isEqualTo(ProcessHandle.current().pid());
            assertThat(app.uid()).isEqualTo(new com.sun.security.auth.module.UnixSystem().getUid());
            assertThat(Path.of(app.exe())).isEqualTo(Path.of(ProcessHandle.current().info().command().orElseThrow()).toRealPath());
            assertThat(app.name()).isEqualTo(Files.readString(Path.of("/proc/self/comm")).strip());
        }
    }

    @Test
    void theSocketOwnersUidAloneNeedsNoSearchForTheProcessAndTheCgroupIsTheKernels() throws Exception {
        ProcLookup.Owners o = ProcLookup.OWNERS;
        try (ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
             Socket client = new Socket(server.getInetAddress(), server.getLocalPort());
             Socket accepted = server.accept()) {
            long searches = o.mapHits.sum() + o.recentHits.sum() + o.newProcessHits.sum() + o.fullScans.sum() + o.misses.sum();
            int uid = ProcLookup.uid((InetSocketAddress) client.getLocalSocketAddress(), (InetSocketAddress) client.getRemoteSocketAddress());
            assertThat(uid).isEqualTo(new com.sun.security.auth.module.UnixSystem().getUid());
            assertThat(o.mapHits.sum() + o.recentHits.sum() + o.newProcessHits.sum() + o.fullScans.sum() + o.misses.sum())
                    .as("searches of /proc for the owner").isEqualTo(searches);
        }
        String kernels = Files.readAllLines(Path.of("/proc/self/cgroup")).stream().filter(l -> l.startsWith("0::")).findFirst()
                .map(l -> l.substring(3)).orElse(null);
        assertThat(ProcLookup.cgroup((int) ProcessHandle.current().pid())).isEqualTo(kernels);
    }

    @Test
    void aNewSocketOfTheSameProcessIsFoundAmongRecentOwnersWithoutAScanOfAllProcesses() throws Exception {
        try (ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            for (int i = 0; i < 2; i++) { // the first may scan /proc (a cold cache); the second must not
                long scans = ProcLookup.OWNERS.fullScans.sum();
                try (Socket client = new Socket(server.getInetAddress(), server.getLocalPort()); Socket accepted = server.accept()) {
                    AppInfo app = ProcLookup.find((InetSocketAddress) client.getLocalSocketAddress(),
                            (InetSocketAddress) client.getRemoteSocketAddress());
                    assertThat(app.tgid()).isEqualTo(ProcessHandle.current().pid());
                    if (i == 1) assertThat(ProcLookup.OWNERS.fullScans.sum()).isEqualTo(scans);
                }
            }
        }
    }

    @Test
    void connectionsOfOtherProcessesAreTracedToTheirPidAndExecutableAndADeadProcessIsForgotten() throws Exception {
        try (ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            Process sleep = connected(server, "sleep 60");
            Process tail = connected(server, "tail -f /dev/null");
            try (Socket fromSleep = server.accept(); Socket fromTail = server.accept()) {
                for (Socket accepted : java.util.List.of(fromSleep, fromTail)) {
                    AppInfo app = ProcLookup.find((InetSocketAddress) accepted.getRemoteSocketAddress(),
                            (InetSocketAddress) accepted.getLocalSocketAddress());
                    Process child = app.tgid() == sleep.pid() ? sleep : tail;
                    assertThat((long) app.tgid()).isIn(sleep.pid(), tail.pid());
                    assertThat(Path.of(app.exe())).isEqualTo(Path.of(child.info().command().orElseThrow()).toRealPath());
                    assertThat(app.name()).isEqualTo(child == sleep ? "sleep" : "tail");
                }
                assertThat(ProcLookup.OWNERS.knows((int) sleep.pid())).isTrue();
                sleep.destroy();
                sleep.waitFor();
                // the next lookup looks at the recent owners first, finds the dead one's descriptors gone and forgets it
                AppInfo again = ProcLookup.find((InetSocketAddress) fromTail.getRemoteSocketAddress(),
                        (InetSocketAddress) fromTail.getLocalSocketAddress());
                assertThat((long) again.tgid()).isEqualTo(tail.pid());
                try (Socket client = new Socket(server.getInetAddress(), server.getLocalPort()); Socket accepted = server.accept()) {
                    assertThat(ProcLookup.find((InetSocketAddress) client.getLocalSocketAddress(),
                            (InetSocketAddress) client.getRemoteSocketAddress()).tgid()).isEqualTo(ProcessHandle.current().pid());
                }
                assertThat(ProcLookup.OWNERS.knows((int) sleep.pid())).isFalse();
            } finally {
                sleep.destroyForcibly();
                tail.destroyForcibly();
            }
        }
    }

    @Test
    void theSameSocketAgainIsAMapHitAndANewOneOfTheSameProcessARecentOwnerHit() throws Exception {
        try (ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
             Socket client = new Socket(server.getInetAddress(), server.getLocalPort());
             Socket accepted = server.accept()) {
            InetSocketAddress local = (InetSocketAddress) client.getLocalSocketAddress();
            InetSocketAddress peer = (InetSocketAddress) client.getRemoteSocketAddress();
            ProcLookup.find(local, peer);
            long map = ProcLookup.OWNERS.mapHits.sum();
            long recent = ProcLookup.OWNERS.recentHits.sum();
            assertThat(ProcLookup.find(local, peer).tgid()).isEqualTo(ProcessHandle.current().pid());
            assertThat(ProcLookup.OWNERS.mapHits.sum()).isEqualTo(map + 1);
            try (Socket second = new Socket(server.getInetAddress(), server.getLocalPort()); Socket accepted2 = server.accept()) {
                ProcLookup.find((InetSocketAddress) second.getLocalSocketAddress(), (InetSocketAddress) second.getRemoteSocketAddress());
            }
            assertThat(ProcLookup.OWNERS.recentHits.sum()).isEqualTo(recent + 1);
        }
    }

    /** A child process that connects to {@code server} and then runs {@code command} holding the connection as fd 3. */
    private static Process connected(ServerSocket server, String command) throws java.io.IOException {
        return new ProcessBuilder("bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/" + server.getLocalPort() + " && exec " + command)
                .redirectErrorStream(true).start();
    }

    @Test
    void aSocketNobodyHoldsHasNoProcess() {
        assertThat(ProcLookup.find(new InetSocketAddress("127.0.0.1", 1), new InetSocketAddress("127.0.0.1", 2))).isNull();
    }
}
