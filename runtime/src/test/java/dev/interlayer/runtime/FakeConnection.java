package dev.interlayer.runtime;

import dev.interlayer.api.AppInfo;
import dev.interlayer.api.ConnectionInfo;
import dev.interlayer.api.Protocol;
import dev.interlayer.api.Role;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Instant;

/**
 * A connection as the engine would describe it, with fields tests set directly; defaults to a TCP
 * client-side connection from 127.0.0.1:40000 to 10.1.2.3:443 on listener "main" with no app info.
 */
class FakeConnection implements ConnectionInfo {

    Protocol protocol = Protocol.TCP;
    String listener = "main";
    Role role = Role.CLIENT;
    InetSocketAddress local = address("127.0.0.1", 40000);
    InetSocketAddress remote = address("10.1.2.3", 443);
    AppInfo app;
    /** What TLS negotiated on the local and the remote socket (null: plain). */
    dev.interlayer.api.TlsInfo localTls;
    dev.interlayer.api.TlsInfo remoteTls;

    static InetSocketAddress address(String literal, int port) {
        return new InetSocketAddress(InetAddress.ofLiteral(literal), port);
    }

    FakeConnection local(String literal, int port) {
        local = address(literal, port);
        return this;
    }

    FakeConnection remote(String literal, int port) {
        remote = address(literal, port);
        return this;
    }

    FakeConnection app(int pid, int tgid, String name) {
        app = new AppInfo(pid, tgid, name);
        return this;
    }

    FakeConnection app(AppInfo info) {
        app = info;
        return this;
    }

    FakeConnection listener(String name) {
        listener = name;
        return this;
    }

    FakeConnection protocol(Protocol p) {
        protocol = p;
        return this;
    }

    @Override public long id() { return 1; }
    @Override public Protocol protocol() { return protocol; }
    @Override public String listener() { return listener; }
    @Override public Role role() { return role; }
    @Override public InetSocketAddress localAddress() { return local; }
    @Override public InetSocketAddress remoteAddress() { return remote; }
    @Override public AppInfo app() { return app; }
    @Override public Instant startedAt() { return Instant.EPOCH; }
    @Override public long bytesSent() { return 0; }
    @Override public long bytesReceived() { return 0; }
    @Override public dev.interlayer.api.TlsInfo tls(dev.interlayer.api.Side side) { return side == dev.interlayer.api.Side.LOCAL ? localTls : remoteTls; }
}
