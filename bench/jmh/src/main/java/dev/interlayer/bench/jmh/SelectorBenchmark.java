package dev.interlayer.bench.jmh;

import dev.interlayer.api.AppInfo;
import dev.interlayer.api.ByteView;
import dev.interlayer.api.ConnectionInfo;
import dev.interlayer.api.Side;
import dev.interlayer.api.TlsInfo;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.Protocol;
import dev.interlayer.api.Role;
import dev.interlayer.api.Selector;
import dev.interlayer.api.StreamContext;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.Verdict;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleConfig;
import dev.interlayer.runtime.ModuleRegistry;
import dev.interlayer.runtime.PackageRef;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Selector matching for a new connection: the registry's {@code candidates} (what the engine calls for every
 * accepted connection) over {@code selectors} loaded modules, each with its own selector, in attach order.
 * One operation is one new connection; 1% of the selectors match it.
 *
 * <ul>
 *   <li>{@code cidr}: each selector lists 4 remote CIDR blocks (3 IPv4 /24s and an IPv6 /64).
 *   <li>{@code ports}: each selector lists 3 remote port ranges.
 *   <li>{@code listeners}: each selector names 3 listeners.
 *   <li>{@code mixed}: listener, remote ports and remote CIDRs, where the listener and port always match so every
 *       selector is checked down to its CIDR list (the slowest path short of app/pid lookups, which read /proc).
 *   <li>{@code tls}: a TLS connection (server name {@code api.example.com}, client certificate {@code CN=alice,O=Example});
 *       each selector names 3 server names, one of them a wildcard that matches, and a subject pattern, so every selector
 *       is checked down to the client certificate's subject.
 * </ul>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class SelectorBenchmark {

    @Param({"1000"})
    public int selectors;

    @Param({"cidr", "ports", "listeners", "mixed", "tls"})
    public String kind;

    private ModuleRegistry registry;
    private ConnectionInfo connection;
    private int expected;

    /** A stream module with a given name; what it does with bytes does not matter here. */
    public static final class Named implements StreamModule<Void> {
        private final String name;

        public Named(String name) {
            this.name = name;
        }

        @Override
        public ModuleDescriptor descriptor() {
            return ModuleDescriptor.builder(name, "1.0.0").implement(InterfaceType.STREAM, 1, 1).build();
        }

        @Override
        public Verdict onSend(Void state, StreamContext ctx, ByteView data) {
            return Verdict.PASS;
        }
    }

    /** The new connection being matched: listener "web", 127.0.0.1:40000 to 10.1.2.3:443. */
    record Conn(String listener, InetSocketAddress localAddress, InetSocketAddress remoteAddress) implements ConnectionInfo {
        @Override public long id() { return 1; }
        @Override public Protocol protocol() { return Protocol.TCP; }
        @Override public Role role() { return Role.CLIENT; }
        @Override public AppInfo app() { return null; }
        @Override public Instant startedAt() { return Instant.EPOCH; }
        @Override public long bytesSent() { return 0; }
        @Override public long bytesReceived() { return 0; }
        @Override public TlsInfo tls(Side side) { return side == Side.LOCAL ? TLS : null; }
    }

    /** What the {@code tls} kind's connection negotiated on its accepted socket (the local one: a client-role listener). */
    static final TlsInfo TLS = new TlsInfo() {
        @Override public String protocol() { return "TLSv1.3"; }
        @Override public String cipherSuite() { return "TLS_AES_128_GCM_SHA256"; }
        @Override public String serverName() { return "api.example.com"; }
        @Override public String alpn() { return "h2"; }
        @Override public boolean resumed() { return false; }
        @Override public List<java.security.cert.X509Certificate> peerCertificates() { return List.of(); }
        @Override public String peerSubject() { return "CN=alice,OU=Eng,O=Example"; }
        @Override public String identity() { return null; }
    };

    static Selector selector(String kind, int i, SplittableRandom r) {
        boolean hit = i % 100 == 0;
        Selector.Builder b = Selector.builder();
        String cidrs0 = "10." + (2 + r.nextInt(250)) + "." + r.nextInt(256) + ".0/24";
        String cidrs1 = "192.168." + r.nextInt(256) + ".0/24";
        String cidrs2 = hit ? "10.1.2.0/24" : "172.16." + r.nextInt(256) + ".0/24";
        String cidrs3 = "fd00:" + Integer.toHexString(r.nextInt(0x10000)) + "::/64";
        int p = 1024 + r.nextInt(50_000);
        String ports = p + "-" + (p + 100) + "," + (p + 200) + "," + (hit ? "400-500" : (p + 300) + "-" + (p + 400));
        switch (kind) {
            case "cidr" -> b.remoteCidrs(cidrs0, cidrs1, cidrs2, cidrs3);
            case "ports" -> b.remotePorts(ports);
            case "listeners" -> b.listeners("l" + i, "m" + i, hit ? "web" : "n" + i);
            case "mixed" -> b.listeners("web", "l" + i).remotePorts("1-1000," + ports).remoteCidrs(cidrs0, cidrs1, cidrs2, cidrs3);
            case "tls" -> b.tlsSni("s" + i + ".example.org", "*.example.com", "t" + i + ".example.net")
                    .tlsSubjects(hit ? "O=Example,OU=Eng" : "O=Org" + i);
            default -> throw new IllegalArgumentException("kind must be cidr, ports, listeners, mixed or tls, not " + kind);
        }
        return b.build();
    }

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        // a thousand "module loaded" lines say nothing here
        Logger.getLogger("").setLevel(java.util.logging.Level.WARNING);
        registry = new ModuleRegistry();
        SplittableRandom r = new SplittableRandom(42);
        for (int i = 0; i < selectors; i++) {
            Named m = new Named(String.format("sel-%04d", i));
            Selector s = selector(kind, i, r);
            registry.add(m, PackageRef.builtin("sel-" + i, Named.class.getClassLoader()),
                    new ModuleConfig(m.name, null, null, s, null, null, null, Map.of()));
        }
        connection = new Conn("web", new InetSocketAddress(InetAddress.getLoopbackAddress(), 40000),
                new InetSocketAddress(InetAddress.ofLiteral("10.1.2.3"), 443));
        expected = (selectors + 99) / 100;
        List<LoadedModule> got = registry.candidates(connection);
        if (got.size() != expected) {
            throw new IllegalStateException(kind + ": " + got.size() + " of " + selectors + " selectors matched, expected " + expected);
        }
    }

    @Benchmark
    public List<LoadedModule> newConnection() {
        return registry.candidates(connection);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        registry.close();
    }
}
