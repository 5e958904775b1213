package dev.interlayer.cli;

import dev.interlayer.agent.Agent;
import dev.interlayer.agent.AgentConfig;
import dev.interlayer.agent.AgentException;
import dev.interlayer.agent.ConfigException;
import dev.interlayer.agent.OneLineLogFormatter;
import dev.interlayer.api.ControlRequest;
import dev.interlayer.api.ControlResponse;
import dev.interlayer.api.SocketModule;
import dev.interlayer.api.Verdict;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleStats;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * {@code interlayer demo}: two agents back to back between a real TCP client and server, with a wire tap
 * between the agents, showing the traffic being customized and every module's counters.
 *
 * <pre>
 *   client ──▶ client agent ══▶ wire tap ══▶ server agent ──▶ server        (all on 127.0.0.1)
 *              tag, tcplog,                  tag, tcplog
 *              hold-release, ratelimit
 * </pre>
 *
 * <p>The agents load the real sample module jars and run from YAML configs the demo writes, exactly as
 * {@code interlayer run} would. Everything runs in this process and is closed before it returns.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"Show Interlayer at work: a TCP client and server with two agents and sample modules between them.",
                "Everything runs on 127.0.0.1 in this process: client agent (tag, tcplog, hold-release, ratelimit), a wire tap that",
                "shows the bytes between the agents, server agent (tag, tcplog). Checks the server got exactly what the client sent,",
                "measures the hold delay and the rate limit, reads tcplog's records through its control request and prints every",
                "module's counters. Takes a few seconds; exit 0 if every check passed, 1 otherwise."})
final class DemoCommand implements Callable<Integer> {

    /** Payload bytes between two tags. */
    static final int TAG_EVERY = 100;
    /** How long hold-release holds each chunk on the client agent's SEND side. */
    static final int HOLD_MS = 200;
    /** The client agent's SEND rate limit, in KiB/s of wire bytes (tags included). */
    static final int RATE_KIB = 192;
    /** The rate limit's burst, in KiB. */
    static final int BURST_KIB = 16;
    /** Size of the bulk transfer's payload. */
    static final int BULK_BYTES = 256 * 1024;
    /** Bytes the wire tap keeps of each direction of each connection, for the excerpts. */
    static final int TAP_KEEP = 4096;
    /** Reads the wire tap times per connection for the rate fit. */
    static final int MAX_SAMPLES = 20_000;

    private static final String[] JARS = {"module-tag.jar", "module-tcplog.jar", "module-hold-release.jar", "module-ratelimit.jar"};
    private static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();

    @Spec
    CommandSpec spec;

    private PrintWriter out;
    private final List<String> failures = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
        out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        Path modules = findSampleModules();
        if (modules == null) {
            err.println("interlayer: demo: the sample module jars (" + String.join(", ", JARS) + ") were not found next to interlayer.jar,"
                    + " in -Dinterlayer.sampleModules or in cli/target/sample-modules; build them with ./mvnw -pl cli -am package -DskipTests"
                    + " (./interlayer does this on first use)");
            return Main.FAILURE;
        }
        OneLineLogFormatter.install(Level.WARNING); // module faults and load problems still show
        Path work = Files.createTempDirectory("interlayer-demo-");
        try {
            return run(modules, work, err);
        } finally {
            deleteTree(work);
        }
    }

    private int run(Path modules, Path work, PrintWriter err) throws Exception {
        long started = System.nanoTime();
        try (Server server = new Server();
             Agent serverAgent = startAgent(work, "server-agent", "server", server.address(), modules, false, err);
             Tap tap = new Tap(serverAgent.listeners().get("in"));
             Agent clientAgent = startAgent(work, "client-agent", "client", tap.address(), modules, true, err)) {
            InetSocketAddress entry = clientAgent.listeners().get("out");
            header(modules, work, entry, tap, serverAgent, server);

            // 1. A short message: the tags are visible on the wire, the hold delay is measured.
            byte[] hello = ("Hello from a plain TCP client. Neither this client nor the server knows about Interlayer: the agents"
                    + " between them insert a tag every " + TAG_EVERY + " bytes and take it out again before delivery.")
                    .getBytes(StandardCharsets.US_ASCII);
            section("1. hello: the client sends " + hello.length + " bytes, half-closes, and reads the server's reply");
            Exchange one = exchange(entry, hello, server, tap);
            report(one, true);
            if (one.served.bytes > 0) {
                double latencyMs = (one.served.firstByteNanos - one.writeStartNanos) / 1e6;
                out.printf(Locale.ROOT, "  hold delay:   the first byte reached the server %.0f ms after the client wrote it"
                        + " (hold-release holds each SEND chunk %d ms)%n", latencyMs, HOLD_MS);
                check(latencyMs >= HOLD_MS * 0.9, "the hold delay was " + Math.round(latencyMs) + " ms, expected at least " + HOLD_MS + " ms");
            } else {
                out.println("  hold delay:   not measured: no byte reached the server");
            }

            // 2. A bulk transfer: exact delivery and the rate limit's effect.
            byte[] bulk = bulk(BULK_BYTES);
            section("2. bulk: the client sends " + String.format(Locale.ROOT, "%,d", bulk.length) + " bytes through the rate limit");
            Exchange two = exchange(entry, bulk, server, tap);
            report(two, false);
            double seconds = (two.tap.lastUpNanos - two.tap.firstUpNanos) / 1e9;
            double steady = two.tap.steadyRate() / 1024.0;
            out.printf(Locale.ROOT, "  rate limit:   %,d wire bytes arrived over %.2f s; steady rate %.0f KiB/s (least-squares fit over %d reads"
                    + " at the tap)%n", two.tap.upBytes, seconds, steady, two.tap.samples);
            out.printf(Locale.ROOT, "                ratelimit is set to %d KiB/s with a %d KiB burst; payload rate %.0f KiB/s (tags are %.0f%%"
                    + " of the wire bytes)%n", RATE_KIB, BURST_KIB, steady * bulk.length / Math.max(1, two.tap.upBytes),
                    100.0 * (two.tap.upBytes - bulk.length) / Math.max(1, two.tap.upBytes));
            check(steady <= RATE_KIB * 1.2, "the steady wire rate was " + Math.round(steady) + " KiB/s, above the " + RATE_KIB + " KiB/s limit");
            check(steady >= RATE_KIB * 0.5, "the steady wire rate was " + Math.round(steady) + " KiB/s, far below the " + RATE_KIB + " KiB/s limit");

            // 3. What the modules saw.
            awaitNoConnections(clientAgent, serverAgent);
            section("3. tcplog records, read through its control request (dump)");
            tcplog("client agent", clientAgent);
            tcplog("server agent", serverAgent);
            section("4. module counters (LoadedModule.stats)");
            counters(clientAgent, serverAgent);
        } catch (AgentException | ConfigException e) {
            err.println("interlayer: demo: an agent did not start: " + e.getMessage());
            return Main.FAILURE;
        }
        out.println();
        double total = (System.nanoTime() - started) / 1e9;
        if (failures.isEmpty()) {
            out.printf(Locale.ROOT, "OK: all checks passed in %.1f s; agents, tap, client and server closed.%n", total);
            out.flush();
            return Main.OK;
        }
        out.flush();
        failures.forEach(f -> err.println("interlayer: demo: FAILED: " + f));
        err.flush();
        return Main.FAILURE;
    }

    // ---- set-up ----------------------------------------------------------------------------------

    /** The sample module folder: next to interlayer.jar, then -Dinterlayer.sampleModules, then cli/target/sample-modules. */
    static Path findSampleModules() {
        List<Path> candidates = new ArrayList<>();
        try {
            Path self = Path.of(DemoCommand.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            candidates.add((Files.isRegularFile(self) ? self.getParent() : self).resolve("sample-modules"));
            if (!Files.isRegularFile(self) && self.getParent() != null) {
                candidates.add(self.getParent().resolve("sample-modules")); // target/classes → target/sample-modules
            }
        } catch (URISyntaxException | RuntimeException e) {
            // no code source: fall through to the other places
        }
        String prop = System.getProperty("interlayer.sampleModules");
        if (prop != null && !prop.isBlank()) {
            candidates.add(Path.of(prop));
        }
        candidates.add(Path.of("cli", "target", "sample-modules"));
        for (Path c : candidates) {
            if (Stream.of(JARS).allMatch(j -> Files.isRegularFile(c.resolve(j)))) {
                return c.toAbsolutePath().normalize();
            }
        }
        return null;
    }

    private Agent startAgent(Path work, String name, String role, InetSocketAddress upstream, Path modules, boolean client, PrintWriter err)
            throws IOException, ConfigException, AgentException {
        Path dir = Files.createDirectories(work.resolve(name));
        Files.createDirectories(dir.resolve("modules"));
        String listener = client ? "out" : "in";
        StringBuilder yaml = new StringBuilder()
                .append("# ").append(name).append(": written by interlayer demo\n")
                .append("agent:\n  modules-dir: modules\n  hook-budget: 500ms\n  control: {socket: control.sock}\n")
                .append("listeners:\n")
                .append("  - name: ").append(listener).append('\n')
                .append("    listen: 127.0.0.1:0\n")
                .append("    upstream: ").append(RunCommand.hostPort(upstream)).append('\n')
                .append("    role: ").append(role).append('\n')
                .append("    options: {tcp-nodelay: true}\n")
                .append("modules:\n")
                .append(module(modules, "tag", "every: " + TAG_EVERY))
                .append(module(modules, "tcplog", "capacity: 64"));
        if (client) {
            yaml.append(module(modules, "hold-release", "delay: " + HOLD_MS + "ms, direction: send"))
                .append(module(modules, "ratelimit", "rate: " + RATE_KIB + "KiB, burst: " + BURST_KIB + "KiB, direction: send"));
        }
        Path config = dir.resolve(name + ".yaml");
        Files.writeString(config, yaml);
        Agent agent = Agent.start(AgentConfig.load(config));
        if (!agent.registry().failures().isEmpty()) {
            agent.registry().failures().forEach(f -> err.println("interlayer: demo: " + f.source() + ": " + f.error()));
            agent.close();
            throw new AgentException(name + " could not load its sample modules (see above); rebuild them with ./mvnw -pl cli -am package -DskipTests", null);
        }
        return agent;
    }

    private static String module(Path modules, String name, String params) {
        return "  - name: " + name + "\n    jar: " + modules.resolve("module-" + name + ".jar") + "\n    params: {" + params + "}\n";
    }

    private void header(Path modules, Path work, InetSocketAddress entry, Tap tap, Agent serverAgent, Server server) {
        out.println("Interlayer demo: a real TCP client and server, two agents back to back, a wire tap between them (all on 127.0.0.1).");
        out.println();
        out.printf("  client ──▶ client agent %s ══▶ wire tap %s ══▶ server agent %s ──▶ server %s%n",
                RunCommand.hostPort(entry), RunCommand.hostPort(tap.address()), RunCommand.hostPort(serverAgent.listeners().get("in")),
                RunCommand.hostPort(server.address()));
        out.printf("             role client: tag (every %d bytes),           role server: tag (every %d bytes),%n", TAG_EVERY, TAG_EVERY);
        out.printf("             tcplog, hold-release (%d ms on SEND),         tcplog%n", HOLD_MS);
        out.printf("             ratelimit (%d KiB/s on SEND)%n", RATE_KIB);
        out.println();
        out.println("  modules from " + modules);
        out.println("  agent configs in " + work + " (client-agent/, server-agent/)");
    }

    // ---- one exchange ----------------------------------------------------------------------------

    /** What one connection did, seen from the client, the server and the wire tap. */
    record Exchange(byte[] sent, byte[] reply, long writeStartNanos, long replyNanos, Served served, TapRecord tap) {}

    private Exchange exchange(InetSocketAddress entry, byte[] payload, Server server, Tap tap) throws Exception {
        byte[] reply;
        long t0;
        long t1;
        try (Socket s = new Socket()) {
            s.connect(entry, 5000);
            s.setSoTimeout(15_000);
            t0 = System.nanoTime();
            OutputStream o = s.getOutputStream();
            o.write(payload);
            o.flush();
            s.shutdownOutput();
            reply = s.getInputStream().readAllBytes();
            t1 = System.nanoTime();
        }
        Served served = server.results.poll(10, TimeUnit.SECONDS);
        TapRecord rec = tap.records.poll(10, TimeUnit.SECONDS);
        if (served == null || rec == null) {
            throw new IOException("the " + (served == null ? "server" : "wire tap") + " saw no connection within 10 s");
        }
        if (!rec.done.await(10, TimeUnit.SECONDS)) {
            throw new IOException("the connection through the wire tap did not close within 10 s");
        }
        return new Exchange(payload, reply, t0, t1, served, rec);
    }

    private void report(Exchange x, boolean showWholeMessage) {
        String sentSha = sha256(x.sent);
        long tags = (x.tap.upBytes - x.sent.length);
        out.printf(Locale.ROOT, "  client sent:  %,9d bytes  sha256 %s%n", x.sent.length, sentSha.substring(0, 16));
        if (tags >= 0) {
            long n = tags / TagText.LENGTH;
            out.printf(Locale.ROOT, "  on the wire:  %,9d bytes  (+%,d: %d tag%s inserted by the client agent's tag module)%n", x.tap.upBytes, tags,
                    n, n == 1 ? "" : "s");
        } else {
            out.printf(Locale.ROOT, "  on the wire:  %,9d bytes  (%,d fewer than the client sent: bytes were lost before the wire)%n", x.tap.upBytes, -tags);
        }
        byte[] wire = x.tap.up.toByteArray();
        if (showWholeMessage && wire.length > 0) {
            out.println("  wire bytes, client agent → server agent:");
            for (String line : wrap(escape(wire, wire.length), 100)) {
                out.println("    " + line);
            }
        }
        int at = indexOf(wire, TagText.BYTES);
        if (at >= 0) {
            int from = Math.max(0, (at - 16) & ~15);
            out.println("  first tag at wire offset " + at + ":");
            for (String line : hexdump(wire, from, Math.min(wire.length, from + 64))) {
                out.println("    " + line);
            }
        } else {
            out.println("  no tag seen in the first " + wire.length + " wire bytes");
        }
        boolean exact = x.served.bytes == x.sent.length && x.served.sha256.equals(sentSha);
        out.printf(Locale.ROOT, "  server got:   %,9d bytes  sha256 %s  %s%n", x.served.bytes, x.served.sha256.substring(0, 16),
                exact ? "= what the client sent (tags removed by the server agent)" : "DIFFERENT from what the client sent");
        check(exact, "the server received " + x.served.bytes + " bytes (sha256 " + x.served.sha256 + "), not the " + x.sent.length
                + " bytes the client sent (sha256 " + sentSha + ")");
        String replyText = new String(x.reply, StandardCharsets.US_ASCII).strip();
        boolean replyOk = new String(x.reply, StandardCharsets.US_ASCII).equals(x.served.reply);
        out.printf(Locale.ROOT, "  reply:        %,9d bytes on the wire back, %,d delivered: \"%s\" %s%n", x.tap.downBytes, x.reply.length, replyText,
                replyOk ? "(intact)" : "(DIFFERENT from what the server sent)");
        check(replyOk, "the reply arrived as '" + replyText + "', the server sent '" + x.served.reply.strip() + "'");
    }

    // ---- tcplog, counters ------------------------------------------------------------------------

    private void tcplog(String agentName, Agent agent) {
        LoadedModule m = agent.registry().find("tcplog").orElse(null);
        if (m == null) {
            check(false, agentName + " has no tcplog module");
            return;
        }
        ControlResponse r = m.callModuleWide("control",
                () -> ((SocketModule<?>) m.module()).control(new ControlRequest("dump", new byte[0], "interlayer demo")));
        List<String> lines = r.bodyText().lines().filter(l -> !l.isBlank()).toList();
        out.println("  " + agentName + ": " + lines.size() + " record" + (lines.size() == 1 ? "" : "s") + (r.ok() ? "" : " (control failed: " + r.bodyText() + ")"));
        for (String l : lines) {
            out.println("    " + l);
        }
        check(r.ok() && lines.size() == 2, agentName + "'s tcplog returned " + lines.size() + " records, expected 2 (one per connection)");
    }

    private void counters(Agent clientAgent, Agent serverAgent) {
        out.printf("  %-7s %-18s %-8s %5s  %-28s %-28s %-22s %8s %6s%n", "agent", "module", "state", "conns",
                "SEND chunks: bytes in → out", "RECV chunks: bytes in → out", "verdicts", "injected", "faults");
        for (Agent a : List.of(clientAgent, serverAgent)) {
            String who = a == clientAgent ? "client" : "server";
            List<LoadedModule> mods = new ArrayList<>(a.registry().modules());
            mods.sort(Comparator.comparingInt(LoadedModule::priority));
            for (LoadedModule m : mods) {
                ModuleStats.Snapshot s = m.stats();
                StringBuilder v = new StringBuilder();
                for (Verdict.Kind k : Verdict.Kind.values()) {
                    if (s.verdicts(k) > 0) {
                        v.append(v.isEmpty() ? "" : " ").append(k).append(' ').append(s.verdicts(k));
                    }
                }
                out.printf(Locale.ROOT, "  %-7s %-18s %-8s %5d  %-28s %-28s %-22s %,8d %6d%n", who, m.id(), m.state(), s.attaches(),
                        flow(s, 0), flow(s, 1), v.isEmpty() ? "-" : v, s.injected(), s.faults());
                check(s.faults() == 0, "module " + m.id() + " on the " + who + " agent faulted: " + m.lastFault());
            }
        }
        out.println("  (tcplog implements only the socket interface: it has no data hooks and costs nothing per chunk)");
    }

    private static String flow(ModuleStats.Snapshot s, int d) {
        if (s.chunks()[d] == 0) {
            return "-";
        }
        return String.format(Locale.ROOT, "%,d: %,d → %,d", s.chunks()[d], s.bytesIn()[d], s.bytesOut()[d]);
    }

    private void awaitNoConnections(Agent... agents) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (System.nanoTime() < deadline) {
            if (Stream.of(agents).allMatch(a -> a.engine().connections().isEmpty())) {
                return;
            }
            Thread.sleep(20);
        }
    }

    private void section(String title) {
        out.println();
        out.println(title);
    }

    private void check(boolean ok, String failure) {
        if (!ok) {
            failures.add(failure);
        }
    }

    // ---- the server ------------------------------------------------------------------------------

    /** What the server saw of one connection. */
    record Served(long bytes, String sha256, long firstByteNanos, long lastByteNanos, String reply) {}

    /** A plain TCP server: reads a connection to its end, answers with the byte count and SHA-256, closes. */
    static final class Server implements AutoCloseable {
        final ServerSocket socket;
        final BlockingQueue<Served> results = new LinkedBlockingQueue<>();
        private final Thread acceptor;

        Server() throws IOException {
            socket = new ServerSocket(0, 50, LOOPBACK);
            acceptor = daemon("demo-server", () -> {
                while (!socket.isClosed()) {
                    Socket s;
                    try {
                        s = socket.accept();
                    } catch (IOException e) {
                        return;
                    }
                    daemon("demo-server-conn", () -> serve(s)).start();
                }
            });
            acceptor.start();
        }

        InetSocketAddress address() {
            return (InetSocketAddress) socket.getLocalSocketAddress();
        }

        private void serve(Socket s) {
            try (s) {
                MessageDigest md = MessageDigest.getInstance("SHA-256");
                InputStream in = s.getInputStream();
                byte[] buf = new byte[64 * 1024];
                long n = 0;
                long first = 0;
                long last = 0;
                int r;
                while ((r = in.read(buf)) > 0) {
                    last = System.nanoTime();
                    if (n == 0) first = last;
                    md.update(buf, 0, r);
                    n += r;
                }
                String sha = HexFormat.of().formatHex(md.digest());
                String reply = "received " + n + " bytes, sha256 " + sha.substring(0, 16) + "..., thanks!\n";
                s.getOutputStream().write(reply.getBytes(StandardCharsets.US_ASCII));
                s.shutdownOutput();
                results.add(new Served(n, sha, first, last, reply));
            } catch (IOException e) {
                results.add(new Served(-1, "(" + e + ")", 0, 0, ""));
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException("this JDK has no SHA-256", e);
            }
        }

        @Override
        public void close() throws Exception {
            socket.close();
            acceptor.join(2000);
        }
    }

    // ---- the wire tap ----------------------------------------------------------------------------

    /** What the wire tap saw of one connection: byte counts, first bytes and timing of each direction. */
    static final class TapRecord {
        final ByteArrayOutputStream up = new ByteArrayOutputStream();
        final ByteArrayOutputStream down = new ByteArrayOutputStream();
        volatile long upBytes;
        volatile long downBytes;
        volatile long firstUpNanos;
        volatile long lastUpNanos;
        /** Arrival time and running total of each read toward the server, for the rate fit. */
        final long[] sampleNanos = new long[MAX_SAMPLES];
        final long[] sampleBytes = new long[MAX_SAMPLES];
        volatile int samples;

        /** Bytes per second toward the server: the slope of a least-squares line through (time, bytes so far). */
        double steadyRate() {
            int n = samples;
            if (n < 2) {
                return 0;
            }
            double mt = 0;
            double mb = 0;
            for (int i = 0; i < n; i++) {
                mt += (sampleNanos[i] - sampleNanos[0]) / 1e9;
                mb += sampleBytes[i];
            }
            mt /= n;
            mb /= n;
            double num = 0;
            double den = 0;
            for (int i = 0; i < n; i++) {
                double t = (sampleNanos[i] - sampleNanos[0]) / 1e9 - mt;
                num += t * (sampleBytes[i] - mb);
                den += t * t;
            }
            return den == 0 ? 0 : num / den;
        }
        final CountDownLatch done = new CountDownLatch(2);
    }

    /** A relay between the two agents that keeps the first bytes of each direction and counts the rest. */
    static final class Tap implements AutoCloseable {
        final ServerSocket socket;
        final BlockingQueue<TapRecord> records = new LinkedBlockingQueue<>();
        private final Thread acceptor;

        Tap(InetSocketAddress target) throws IOException {
            socket = new ServerSocket(0, 50, LOOPBACK);
            acceptor = daemon("demo-tap", () -> {
                while (!socket.isClosed()) {
                    try {
                        Socket a = socket.accept();
                        Socket b = new Socket();
                        b.connect(target, 5000);
                        TapRecord rec = new TapRecord();
                        records.add(rec);
                        daemon("demo-tap-up", () -> pump(a, b, rec, true)).start();
                        daemon("demo-tap-down", () -> pump(b, a, rec, false)).start();
                    } catch (IOException e) {
                        return;
                    }
                }
            });
            acceptor.start();
        }

        InetSocketAddress address() {
            return (InetSocketAddress) socket.getLocalSocketAddress();
        }

        private static void pump(Socket from, Socket to, TapRecord rec, boolean up) {
            byte[] buf = new byte[64 * 1024];
            try {
                InputStream in = from.getInputStream();
                OutputStream o = to.getOutputStream();
                int r;
                while ((r = in.read(buf)) > 0) {
                    long now = System.nanoTime();
                    ByteArrayOutputStream keep = up ? rec.up : rec.down;
                    if (keep.size() < TAP_KEEP) {
                        keep.write(buf, 0, Math.min(r, TAP_KEEP - keep.size()));
                    }
                    if (up) {
                        if (rec.upBytes == 0) rec.firstUpNanos = now;
                        rec.lastUpNanos = now;
                        rec.upBytes += r;
                        int i = rec.samples;
                        if (i < MAX_SAMPLES) {
                            rec.sampleNanos[i] = now;
                            rec.sampleBytes[i] = rec.upBytes;
                            rec.samples = i + 1;
                        }
                    } else {
                        rec.downBytes += r;
                    }
                    o.write(buf, 0, r);
                }
                to.shutdownOutput(); // pass the half-close on
            } catch (IOException e) {
                // a reset: the other pump sees it too
            } finally {
                rec.done.countDown();
                if (rec.done.getCount() == 0) {
                    closeQuietly(from);
                    closeQuietly(to);
                }
            }
        }

        @Override
        public void close() throws Exception {
            socket.close();
            acceptor.join(2000);
        }
    }

    // ---- helpers ---------------------------------------------------------------------------------

    /** The tag module's default tag, which the demo looks for on the wire. */
    static final class TagText {
        static final byte[] BYTES = "<interlayer-layer4.5-sample-tag>".getBytes(StandardCharsets.US_ASCII);
        static final int LENGTH = BYTES.length;

        private TagText() {}
    }

    static byte[] bulk(int size) {
        ByteArrayOutputStream b = new ByteArrayOutputStream(size + 100);
        for (int i = 0; b.size() < size; i++) {
            b.writeBytes(String.format(Locale.ROOT, "line %06d: the quick brown fox jumps over the lazy dog%n", i).getBytes(StandardCharsets.US_ASCII));
        }
        byte[] all = b.toByteArray();
        byte[] out = new byte[size];
        System.arraycopy(all, 0, out, 0, size);
        return out;
    }

    static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("this JDK has no SHA-256", e);
        }
    }

    static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) continue outer;
            }
            return i;
        }
        return -1;
    }

    /** Printable ASCII as is, everything else escaped ({@code \n}, {@code \x00}). */
    static String escape(byte[] b, int len) {
        StringBuilder sb = new StringBuilder(len);
        for (int i = 0; i < len; i++) {
            int c = b[i] & 0xFF;
            if (c == '\n') sb.append("\\n");
            else if (c == '\r') sb.append("\\r");
            else if (c == '\\') sb.append("\\\\");
            else if (c >= 0x20 && c < 0x7F) sb.append((char) c);
            else sb.append(String.format("\\x%02x", c));
        }
        return sb.toString();
    }

    static List<String> wrap(String s, int width) {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < s.length(); i += width) {
            lines.add(s.substring(i, Math.min(s.length(), i + width)));
        }
        return lines;
    }

    /** Classic hexdump lines: offset, 16 bytes in hex, the printable characters. */
    static List<String> hexdump(byte[] b, int from, int to) {
        List<String> lines = new ArrayList<>();
        for (int off = from; off < to; off += 16) {
            StringBuilder hex = new StringBuilder();
            StringBuilder text = new StringBuilder();
            for (int i = 0; i < 16; i++) {
                if (off + i < to) {
                    int c = b[off + i] & 0xFF;
                    hex.append(String.format("%02x ", c));
                    text.append(c >= 0x20 && c < 0x7F ? (char) c : '.');
                } else {
                    hex.append("   ");
                }
                if (i == 7) hex.append(' ');
            }
            lines.add(String.format("%08x  %s |%s|", off, hex, text));
        }
        return lines;
    }

    private static Thread daemon(String name, Runnable r) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        return t;
    }

    private static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException e) {
            // closing anyway
        }
    }

    static void deleteTree(Path root) {
        try (Stream<Path> walk = Files.walk(root)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (IOException | UncheckedIOException e) {
            // a temporary folder left behind is harmless
        }
    }
}
