package dev.interlayer.engine;

import static dev.interlayer.engine.VerdictTest.waitFor;
import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.api.Protocol;
import dev.interlayer.api.Role;
import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.engine.testing.TestServer;
import java.io.ByteArrayOutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The engine side of TLS passthrough: a real client hello (the JDK's, for a server name) reaches the backend of its route
 * byte for byte, with what follows it; a socket module's onConnect sees the route's address and may redirect it.
 */
class SniPassthroughEngineTest {

    private EngineFixture fx;

    @BeforeEach
    void start() {
        fx = new EngineFixture();
    }

    @AfterEach
    void stop() {
        fx.close();
    }

    /** The first flight of a JDK TLS client asking for {@code serverName}: its client hello record(s). */
    static byte[] clientHello(String serverName) throws Exception {
        SSLEngine e = SSLContext.getDefault().createSSLEngine(serverName, 443);
        e.setUseClientMode(true);
        SSLParameters p = e.getSSLParameters();
        p.setServerNames(List.of(new SNIHostName(serverName)));
        e.setSSLParameters(p);
        ByteBuffer out = ByteBuffer.allocate(e.getSession().getPacketBufferSize());
        e.wrap(ByteBuffer.allocate(0), out);
        return Arrays.copyOf(out.array(), out.position());
    }

    private InetSocketAddress listen(Map<String, InetSocketAddress> routes, InetSocketAddress fallback) throws EngineException {
        ListenerSpec spec = new ListenerSpec("edge", Protocol.TCP, Role.SERVER, new InetSocketAddress("127.0.0.1", 0), fallback, Map.of(),
                List.of(), null, null, null, new SniRoutes(routes, null));
        return fx.engine.start(spec);
    }

    @Test
    void theHelloAndWhatFollowsReachTheRoutesBackendByteForByte() throws Exception {
        ByteArrayOutputStream gotA = new ByteArrayOutputStream();
        ByteArrayOutputStream gotDefault = new ByteArrayOutputStream();
        try (TestServer a = TestServer.echo(gotA); TestServer d = TestServer.echo(gotDefault)) {
            InetSocketAddress at = listen(Map.of("a.test", a.address()), d.address());
            byte[] hello = clientHello("a.test");
            byte[] after = "bytes after the hello, as they were".getBytes();
            try (Socket s = EngineFixture.connect(at)) {
                s.getOutputStream().write(hello);
                s.getOutputStream().write(after);
                byte[] back = s.getInputStream().readNBytes(hello.length + after.length);
                assertThat(Arrays.copyOf(back, hello.length)).as("echoed by a.test's backend").isEqualTo(hello);
            }
            waitFor(() -> gotA.size() == hello.length + after.length);
            byte[] all = gotA.toByteArray();
            assertThat(Arrays.copyOf(all, hello.length)).isEqualTo(hello);
            assertThat(Arrays.copyOfRange(all, hello.length, all.length)).isEqualTo(after);
            assertThat(gotDefault.size()).isZero();
        }
    }

    @Test
    void onConnectSeesTheRoutesAddressAndMayRedirectIt() throws Exception {
        ByteArrayOutputStream gotOther = new ByteArrayOutputStream();
        try (TestServer a = TestServer.echo(); TestServer other = TestServer.echo(gotOther)) {
            SocketHooksTest.Sock m = new SocketHooksTest.Sock("redirect");
            m.redirectTo = other.address();
            fx.add(m);
            InetSocketAddress at = listen(Map.of("a.test", a.address()), null);
            byte[] hello = clientHello("a.test");
            try (Socket s = EngineFixture.connect(at)) {
                s.getOutputStream().write(hello);
                assertThat(s.getInputStream().readNBytes(hello.length)).isEqualTo(hello);
            }
            assertThat(m.connectTargets).as("onConnect saw the route's upstream").containsExactly(a.address());
            waitFor(() -> gotOther.size() == hello.length);
            assertThat(gotOther.toByteArray()).isEqualTo(hello);
        }
    }
}
