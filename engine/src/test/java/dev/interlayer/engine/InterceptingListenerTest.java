package dev.interlayer.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.api.Protocol;
import dev.interlayer.api.Role;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledOnOs;
import org.junit.jupiter.api.condition.OS;

/**
 * The intercepting listener without nftables: what reaches it without a redirect has no original destination and is
 * reset (forwarding it to the listener itself would be a loop), and the listener goes on. The redirected path, which
 * needs root and network namespaces, is {@code it/InterceptionTest}.
 */
@EnabledOnOs(OS.LINUX)
class InterceptingListenerTest {

    private final EngineFixture fx = new EngineFixture();

    @AfterEach
    void close() {
        fx.close();
    }

    @Test
    void aConnectionThatWasNotRedirectedIsResetAndTheListenerGoesOn() throws Exception {
        InetSocketAddress at = fx.engine.start(ListenerSpec.intercepting("intercept", Protocol.TCP, Role.CLIENT, new InetSocketAddress("127.0.0.1", 0), 0x1e5, Map.of(),
                List.of()));
        for (int i = 0; i < 3; i++) {
            try (Socket s = EngineFixture.connect(at)) {
                s.setSoTimeout(5000);
                InputStream in = s.getInputStream();
                int first;
                try {
                    first = in.read();
                } catch (SocketException reset) {
                    first = -1;
                }
                assertThat(first).as("nothing is forwarded: the connection ends").isEqualTo(-1);
            }
        }
        assertThat(fx.engine.listeners()).containsKey("intercept");
        assertThat(fx.engine.connectionCount()).isZero();
    }

    @Test
    void anInterceptingListenerHasNoUpstreamAndNoTls() {
        assertThatThrownBy(() -> ListenerSpec.intercepting("i", Protocol.TCP, Role.CLIENT, new InetSocketAddress("127.0.0.1", 0), 0, Map.of(), List.of()))
                .hasMessageContaining("not 0");
        assertThatThrownBy(() -> new ListenerSpec("i", dev.interlayer.api.Protocol.TCP, dev.interlayer.api.Role.CLIENT,
                new InetSocketAddress("127.0.0.1", 0), new InetSocketAddress("127.0.0.1", 1), null, null, null, null, null, null, 7))
                .hasMessageContaining("without upstream");
    }
}
