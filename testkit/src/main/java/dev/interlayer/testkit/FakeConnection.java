package dev.interlayer.testkit;

import dev.interlayer.api.AppInfo;
import dev.interlayer.api.ConnectionInfo;
import dev.interlayer.api.Protocol;
import dev.interlayer.api.Role;
import dev.interlayer.api.Side;
import dev.interlayer.api.TlsInfo;
import java.net.InetSocketAddress;
import java.time.Instant;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A {@link ConnectionInfo} whose every field a test sets; the harness counts its bytes as the engine would.
 *
 * <p>Defaults: a TCP connection on listener {@code test} with role {@link Role#CLIENT}, local
 * {@code 127.0.0.1:40000}, remote {@code 192.0.2.1:443}, no known application, started at the epoch. Ids
 * are unique within the JVM unless set; both sockets plain unless given TLS with {@link #tls(Side, TlsInfo)}. Setters return {@code this}; set fields before attaching. The byte
 * counters are thread-safe: {@link ModuleHarness} adds to them as it reads each chunk from a source, before
 * any module, exactly like {@link ConnectionInfo#bytesSent()} in the agent.
 *
 * <pre>{@code
 * FakeConnection c = new FakeConnection().listener("web").role(Role.SERVER)
 *     .remote("198.51.100.7", 51234).app(new AppInfo(1234, 1234, "curl"));
 * HarnessConnection conn = harness.attach(c);
 * }</pre>
 */
public final class FakeConnection implements ConnectionInfo {

    private static final AtomicLong IDS = new AtomicLong(1);

    private long id = IDS.getAndIncrement();
    private Protocol protocol = Protocol.TCP;
    private String listener = "test";
    private Role role = Role.CLIENT;
    private InetSocketAddress local = new InetSocketAddress("127.0.0.1", 40000);
    private InetSocketAddress remote = new InetSocketAddress("192.0.2.1", 443);
    private AppInfo app;
    private Instant startedAt = Instant.EPOCH;
    private final AtomicLong bytesSent = new AtomicLong();
    private final AtomicLong bytesReceived = new AtomicLong();
    private TlsInfo localTls;
    private TlsInfo remoteTls;

    /** Sets the connection id. */
    public FakeConnection id(long id) {
        this.id = id;
        return this;
    }

    /** Sets the protocol. */
    public FakeConnection protocol(Protocol protocol) {
        this.protocol = protocol;
        return this;
    }

    /** Sets the listener name. */
    public FakeConnection listener(String listener) {
        this.listener = listener;
        return this;
    }

    /** Sets the listener role. */
    public FakeConnection role(Role role) {
        this.role = role;
        return this;
    }

    /** Sets the local application's address. */
    public FakeConnection local(String host, int port) {
        this.local = new InetSocketAddress(host, port);
        return this;
    }

    /** Sets the remote (network) address. */
    public FakeConnection remote(String host, int port) {
        this.remote = new InetSocketAddress(host, port);
        return this;
    }

    /** Sets the local process behind the connection (null = unknown). */
    public FakeConnection app(AppInfo app) {
        this.app = app;
        return this;
    }

    /** Sets the accept time. */
    public FakeConnection startedAt(Instant startedAt) {
        this.startedAt = startedAt;
        return this;
    }

    /**
     * Gives one socket of the connection TLS ({@link FakeTls}), as {@link ConnectionInfo#tls(Side)} reports it; null: plain.
     * Where the agent terminates TLS that is {@link Side#REMOTE} in the server role, {@link Side#LOCAL} in the client role.
     */
    public FakeConnection tls(Side side, TlsInfo tls) {
        if (side == Side.LOCAL) localTls = tls;
        else remoteTls = tls;
        return this;
    }

    /** Adds {@code n} to the bytes read from the local application; the harness calls it for every SEND chunk. */
    public FakeConnection addBytesSent(long n) {
        bytesSent.addAndGet(n);
        return this;
    }

    /** Adds {@code n} to the bytes read from the network; the harness calls it for every RECV chunk. */
    public FakeConnection addBytesReceived(long n) {
        bytesReceived.addAndGet(n);
        return this;
    }

    @Override public long id() { return id; }
    @Override public Protocol protocol() { return protocol; }
    @Override public String listener() { return listener; }
    @Override public Role role() { return role; }
    @Override public InetSocketAddress localAddress() { return local; }
    @Override public InetSocketAddress remoteAddress() { return remote; }
    @Override public AppInfo app() { return app; }
    @Override public Instant startedAt() { return startedAt; }
    @Override public long bytesSent() { return bytesSent.get(); }
    @Override public long bytesReceived() { return bytesReceived.get(); }
    @Override public TlsInfo tls(Side side) { return side == Side.LOCAL ? localTls : remoteTls; }

    @Override
    public String toString() {
        return "connection " + id + " on " + listener + " (" + role + ") " + local + " <-> " + remote;
    }
}
