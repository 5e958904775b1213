package dev.interlayer.modules.tcplog;

import dev.interlayer.api.AppInfo;
import dev.interlayer.api.Attach;
import dev.interlayer.api.Attachment;
import dev.interlayer.api.ConnectionInfo;
import dev.interlayer.api.ControlRequest;
import dev.interlayer.api.ControlResponse;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.ModuleEnv;
import dev.interlayer.api.Param;
import dev.interlayer.api.Side;
import dev.interlayer.api.SocketModule;
import dev.interlayer.api.TlsInfo;
import java.net.InetSocketAddress;
import java.time.Instant;

/**
 * Records every connection it sees (addresses, listener, application, start, duration, bytes each way, why it
 * ended) into a bounded ring buffer that the control plane reads and switches: the analog of Apple's
 * {@code tcplognke} and its {@code tcplog} reader.
 *
 * <p>It implements only the {@code socket} interface, so it has no data hooks and costs nothing per chunk: the
 * byte counts come from {@link ConnectionInfo#bytesSent()} and {@link ConnectionInfo#bytesReceived()} at detach.
 *
 * <p>Each record is also published as an event of kind {@code record} as the connection ends, which
 * {@code interlayer log tail} shows live.
 *
 * <p>Control commands: {@code dump} (one JSON object per record and line, newest last), {@code on}, {@code off},
 * {@code clear}, {@code status}. Control runs on another thread than the event loops that detach, so the ring
 * is guarded by its own lock.
 *
 * <pre>{@code
 * harness.control("dump", "")   // as the control plane asks it; one line per connection:
 * {"id":7,"listener":"web","local":"127.0.0.1:8080","remote":"198.51.100.7:51234","app":"curl",...}
 * }</pre>
 *
 * <p>A connection with TLS on a socket (a listener's or an upstream's {@code tls:} block) has a {@code tls} object with one
 * entry per such socket, {@code remote} (the network peer's) and {@code local} (the local application's): what its
 * handshake negotiated, as {@link ConnectionInfo#tls(Side)} reports it at the end.
 *
 * <pre>{@code
 * ...,"reason":"closed","tls":{"remote":{"protocol":"TLSv1.3","cipher":"TLS_AES_128_GCM_SHA256","sni":"a.example.com",
 *     "alpn":"h2","resumed":false,"peer":"CN=alice,O=Example","identity":null}}}
 * }</pre>
 */
public final class TcpLogModule implements SocketModule<TcpLogModule.Start> {

    /**
     * Per-connection state: the connection (detach does not get the attachment, so the state keeps what it needs)
     * and when the module attached, on the module clock.
     *
     * @param connection what the engine knows of the connection; its byte counters are read at detach
     * @param nanos {@link ModuleEnv#nanoTime()} at attach
     */
    record Start(ConnectionInfo connection, long nanos) {}

    /**
     * One finished connection.
     *
     * @param id the connection id
     * @param listener the listener that accepted it
     * @param local the local application's address
     * @param remote the network peer's address
     * @param app the local process, or null when unknown
     * @param startedAt when it was accepted
     * @param durationNanos how long the module was attached
     * @param bytesSent bytes read from the local application
     * @param bytesReceived bytes read from the network
     * @param reason why the module left the connection
     * @param localTls what TLS negotiated on the local application's socket, or null (plain, or no completed handshake)
     * @param remoteTls what TLS negotiated on the network peer's socket, or null
     */
    record Entry(long id, String listener, InetSocketAddress local, InetSocketAddress remote, AppInfo app, Instant startedAt,
                 long durationNanos, long bytesSent, long bytesReceived, DetachReason reason, TlsInfo localTls, TlsInfo remoteTls) {

        String toJson() {
            StringBuilder b = new StringBuilder(256);
            b.append("{\"id\":").append(id);
            b.append(",\"listener\":"); str(b, listener);
            b.append(",\"local\":"); str(b, addr(local));
            b.append(",\"remote\":"); str(b, addr(remote));
            b.append(",\"app\":"); str(b, app == null ? null : app.name());
            if (app != null) {
                b.append(",\"pid\":").append(app.pid()).append(",\"tgid\":").append(app.tgid());
            }
            b.append(",\"start\":"); str(b, startedAt == null ? null : startedAt.toString());
            b.append(",\"durationMs\":").append(String.format(java.util.Locale.ROOT, "%.3f", durationNanos / 1e6));
            b.append(",\"bytesSent\":").append(bytesSent);
            b.append(",\"bytesReceived\":").append(bytesReceived);
            b.append(",\"reason\":"); str(b, reason.name().toLowerCase(java.util.Locale.ROOT));
            if (localTls != null || remoteTls != null) {
                b.append(",\"tls\":{");
                if (remoteTls != null) tls(b.append("\"remote\":"), remoteTls);
                if (localTls != null) tls(b.append(remoteTls != null ? ",\"local\":" : "\"local\":"), localTls);
                b.append('}');
            }
            return b.append('}').toString();
        }

        private static void tls(StringBuilder b, TlsInfo t) {
            b.append("{\"protocol\":"); str(b, t.protocol());
            b.append(",\"cipher\":"); str(b, t.cipherSuite());
            b.append(",\"sni\":"); str(b, t.serverName());
            b.append(",\"alpn\":"); str(b, t.alpn());
            b.append(",\"resumed\":").append(t.resumed());
            b.append(",\"peer\":"); str(b, t.peerSubject());
            b.append(",\"identity\":"); str(b, t.identity());
            b.append('}');
        }

        private static String addr(InetSocketAddress a) {
            if (a == null) {
                return null;
            }
            String host = a.getAddress() != null ? a.getAddress().getHostAddress() : a.getHostString();
            return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + a.getPort();
        }

        private static void str(StringBuilder b, String s) {
            if (s == null) {
                b.append("null");
                return;
            }
            b.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"' -> b.append("\\\"");
                    case '\\' -> b.append("\\\\");
                    case '\n' -> b.append("\\n");
                    case '\r' -> b.append("\\r");
                    case '\t' -> b.append("\\t");
                    default -> {
                        if (c < 0x20) {
                            b.append(String.format("\\u%04x", (int) c));
                        } else {
                            b.append(c);
                        }
                    }
                }
            }
            b.append('"');
        }
    }

    private ModuleEnv env;
    private volatile boolean enabled;
    // Ring buffer; guarded by "this" because detach (event loops) and control (control thread) race.
    private Entry[] ring;
    private int head;
    private int size;
    private long overwritten;

    @Override
    public ModuleDescriptor descriptor() {
        return ModuleDescriptor.builder("tcplog", "1.0.0")
                .description("records each connection (bytes each way, duration, addresses, app, what TLS negotiated) in a ring buffer read through control")
                .implement(InterfaceType.SOCKET, 1, 0)
                .priority(10)
                .param(Param.ofInt("capacity", 1024, "records kept; the oldest is overwritten when full"))
                .param(Param.ofBool("enabled", true, "record connections from the start (switch with control on/off)"))
                .build();
    }

    @Override
    public void init(ModuleEnv env) {
        int capacity = env.params().getInt("capacity");
        if (capacity < 1) {
            throw new IllegalArgumentException("capacity must be at least 1, got " + capacity);
        }
        this.env = env;
        this.ring = new Entry[capacity];
        this.enabled = env.params().getBool("enabled");
    }

    @Override
    public Attach<Start> attach(Attachment attachment) {
        // Attach even while off, so a connection open when logging is switched on is still recorded at its end.
        return Attach.with(new Start(attachment.connection(), env.nanoTime()));
    }

    @Override
    public void detach(Start start, DetachReason reason) {
        if (!enabled) {
            return;
        }
        ConnectionInfo c = start.connection();
        Entry e = new Entry(c.id(), c.listener(), c.localAddress(), c.remoteAddress(), c.app(), c.startedAt(),
                env.nanoTime() - start.nanos(), c.bytesSent(), c.bytesReceived(), reason, c.tls(Side.LOCAL), c.tls(Side.REMOTE));
        add(e);
        env.publish("record", e.toJson()); // live readers: interlayer log tail
    }

    @Override
    public ControlResponse control(ControlRequest request) {
        return switch (request.command()) {
            case "dump" -> ControlResponse.ok(dump());
            case "on" -> {
                enabled = true;
                yield ControlResponse.ok(status());
            }
            case "off" -> {
                enabled = false;
                yield ControlResponse.ok(status());
            }
            case "clear" -> {
                synchronized (this) {
                    java.util.Arrays.fill(ring, null);
                    head = 0;
                    size = 0;
                    overwritten = 0;
                }
                yield ControlResponse.ok(status());
            }
            case "status" -> ControlResponse.ok(status());
            default -> ControlResponse.error("unknown command '" + request.command() + "'; tcplog answers dump, on, off, clear, status");
        };
    }

    private synchronized void add(Entry e) {
        ring[(head + size) % ring.length] = e;
        if (size < ring.length) {
            size++;
        } else {
            head = (head + 1) % ring.length;
            overwritten++;
        }
    }

    private synchronized String dump() {
        StringBuilder b = new StringBuilder(size * 200);
        for (int i = 0; i < size; i++) {
            b.append(ring[(head + i) % ring.length].toJson()).append('\n');
        }
        return b.toString();
    }

    private synchronized String status() {
        return "{\"enabled\":" + enabled + ",\"capacity\":" + ring.length + ",\"records\":" + size + ",\"overwritten\":" + overwritten + "}\n";
    }
}
