package dev.interlayer.engine;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.api.ClientHello;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.List;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import org.junit.jupiter.api.Test;

/** What a tls module is shown of a ClientHello: read from a real one, made by the JDK's TLS client. */
class TlsModuleBindingTest {

    /** The ClientHello body (from client_version on, as Netty's SniHandler hands it over) a JDK client sends. */
    private static ByteBuf clientHello(String sni, String... alpn) throws Exception {
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, null, null);
        SSLEngine e = ctx.createSSLEngine("peer.test", 443);
        e.setUseClientMode(true);
        SSLParameters p = e.getSSLParameters();
        p.setServerNames(List.of(new SNIHostName(sni)));
        p.setApplicationProtocols(alpn);
        p.setProtocols(new String[] {"TLSv1.3", "TLSv1.2"});
        e.setSSLParameters(p);
        ByteBuffer out = ByteBuffer.allocate(e.getSession().getPacketBufferSize());
        e.wrap(ByteBuffer.allocate(0), out);
        out.flip();
        assertThat(out.get()).as("a handshake record").isEqualTo((byte) 22);
        out.position(5); // record header
        assertThat(out.get()).as("a ClientHello").isEqualTo((byte) 1);
        int len = (out.get() & 0xff) << 16 | (out.get() & 0xff) << 8 | out.get() & 0xff;
        byte[] body = new byte[len];
        out.get(body);
        return Unpooled.wrappedBuffer(body);
    }

    @Test
    void readsOfferedAlpnVersionsAndCiphersFromARealClientHello() throws Exception {
        ByteBuf hello = clientHello("a.test", "h2", "http/1.1");
        try {
            InetSocketAddress from = new InetSocketAddress("127.0.0.1", 5555);
            ClientHello h = TlsModuleBinding.Hello.parse("web", from, "a.test", hello);
            assertThat(h.listener()).isEqualTo("web");
            assertThat(h.remoteAddress()).isEqualTo(from);
            assertThat(h.serverName()).isEqualTo("a.test");
            assertThat(h.alpn()).containsExactly("h2", "http/1.1");
            assertThat(h.versions()).containsExactly("TLSv1.3", "TLSv1.2");
            assertThat(h.cipherSuites()).contains(0x1301, 0x1302); // TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384
            assertThat(hello.readerIndex()).as("parsing does not consume the hello Netty still reads").isZero();
        } finally {
            hello.release();
        }
    }

    @Test
    void aTruncatedHelloGivesWhatWasReadAndNoAlpn() throws Exception {
        ByteBuf hello = clientHello("a.test", "h2");
        ByteBuf cut = hello.slice(0, 40);
        try {
            ClientHello h = TlsModuleBinding.Hello.parse("web", null, null, cut);
            assertThat(h.alpn()).isEmpty();
            assertThat(h.serverName()).isNull();
            ClientHello none = TlsModuleBinding.Hello.parse("web", null, null, null);
            assertThat(none.cipherSuites()).isEmpty();
        } finally {
            hello.release();
        }
    }
}
