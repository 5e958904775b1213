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
    void aSocketNobodyHoldsHasNoProcess() {
        assertThat(ProcLookup.find(new InetSocketAddress("127.0.0.1", 1), new InetSocketAddress("127.0.0.1", 2))).isNull();
    }
}
