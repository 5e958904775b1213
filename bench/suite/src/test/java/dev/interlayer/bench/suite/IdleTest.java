package dev.interlayer.bench.suite;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The idle benchmark's two NIO ends against each other, without a proxy between them. */
class IdleTest {

    private static List<Integer> freePorts(int n) throws Exception {
        List<ServerSocket> held = new ArrayList<>();
        List<Integer> ports = new ArrayList<>();
        try {
            for (int i = 0; i < n; i++) {
                ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
                held.add(s);
                ports.add(s.getLocalPort());
            }
        } finally {
            for (ServerSocket s : held) {
                s.close();
            }
        }
        return ports;
    }

    @Test
    void connectionsAreSpreadOverPortsAndSourceAddressesAndEachIsEchoedAndHeld() throws Exception {
        List<Integer> ports = freePorts(3);
        List<String> sources = List.of("127.0.9.2", "127.0.9.3", "127.0.9.4");
        try (Idle.Upstream up = new Idle.Upstream(ports)) {
            List<SocketChannel> conns = Idle.open(600, ports, sources, 64, 30_000);
            try {
                assertThat(conns).hasSize(600);
                Set<String> pairs = new HashSet<>();
                for (SocketChannel c : conns) {
                    InetSocketAddress local = (InetSocketAddress) c.getLocalAddress();
                    InetSocketAddress remote = (InetSocketAddress) c.getRemoteAddress();
                    pairs.add(local.getHostString() + "->" + remote.getPort());
                }
                assertThat(pairs).hasSize(3);   // connection i: source i % 3, port i % 3
                for (int i = 0; i < 50 && up.open() < 600; i++) {
                    Thread.sleep(20);
                }
                assertThat(up.open()).isEqualTo(600);
            } finally {
                Idle.closeAll(conns);
            }
            for (int i = 0; i < 250 && up.open() > 0; i++) {
                Thread.sleep(20);
            }
            assertThat(up.open()).isZero();
            assertThat(up.failure()).isNull();
        }
    }

    @Test
    void routesStayWithinTheConnectionsPerListener() {
        assertThat(Idle.routesFor(1, 10_000)).isEqualTo(1);
        assertThat(Idle.routesFor(10_000, 10_000)).isEqualTo(1);
        assertThat(Idle.routesFor(50_000, 10_000)).isEqualTo(5);
        assertThat(Idle.routesFor(50_001, 10_000)).isEqualTo(6);
    }
}
