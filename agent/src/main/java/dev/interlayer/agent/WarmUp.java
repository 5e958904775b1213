package dev.interlayer.agent;

import dev.interlayer.agent.AgentConfig.Listener;
import dev.interlayer.api.AttachMode;
import dev.interlayer.api.Protocol;
import dev.interlayer.api.Role;
import dev.interlayer.engine.Engine;
import dev.interlayer.engine.EngineException;
import dev.interlayer.engine.ListenerSpec;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleRegistry;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.System.Logger.Level;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;

/**
 * The agent's warm-up ({@code agent.warm-up}): before it takes over a running agent's sockets, or before it opens its
 * listeners when the config asks, the agent sends made-up requests and replies through listeners of its own on
 * loopback, so that the JIT has compiled the connection path before the first user's byte: accepting, connecting
 * upstream, the direct path, the channel path, and the hooks of the modules that allow it
 * ({@code ModuleDescriptor#warmUp()}; a module that logs, counts across connections or rate-limits does not).
 *
 * <p>For each set of modules a configured TCP listener would run (the listener's own entries plus the global modules
 * whose selector names it or no listener), it starts a chain of four listeners, client role and server role by turns,
 * each with that set, in front of a loopback backend of its own: the bytes between a client-role and the next
 * server-role listener are what two agents running the same modules put on the wire, so a module that transforms on
 * one side and undoes it on the other (tag) sees valid input on both. Threads with blocking sockets then run, for the set time, kept-alive small requests, pipelined bursts and
 * one exchange per new connection through each chain; every reply is checked.
 *
 * <p>It never stops a start: a failure is logged and the agent goes on. When it ends, its connections are closed and
 * the counters it moved (listeners, direct path, splice, modules) are set back, so that what the agent reports counts
 * users' traffic only. TLS, SNI-routed, UDP and intercepting listeners are not warmed as such; the TCP path they share
 * is, when a plain listener is configured.
 */
final class WarmUp {

    private static final System.Logger LOG = System.getLogger("interlayer.agent");
    private static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();
    /** Longest a warm-up socket waits for a connect or a reply: a warm-up that stalls must not hold the start for long. */
    private static final int TIMEOUT_MS = 2_000;
    /** Largest request body and reply the backend handles. */
    private static final int MAX_BODY = 16 * 1024;
    /** Requests in one pipelined burst. */
    private static final int BURST = 32;
    /** At most this many module sets get a chain of listeners (the rest share the path those warm). */
    private static final int MAX_CHAINS = 4;
    /**
     * Listeners per chain: two pairs of a client-role and a server-role listener, so each exchange of the (JIT-compiled
     * too) client threads crosses the agent's path four times; against one pair, a fresh tag pair then served 0.64–0.72×
     * the HAProxy pair's SET rate instead of 0.59–0.63× (docs/performance.md).
     */
    private static final int HOPS = 4;

    private final Engine engine;
    private final LongAdder exchanges = new LongAdder();
    private final LongAdder failures = new LongAdder();
    private final Queue<Socket> clients = new ConcurrentLinkedQueue<>();
    private volatile String firstFailure;

    private WarmUp(Engine engine) {
        this.engine = engine;
    }

    /**
     * Runs the warm-up for {@code length} on {@code engine}, whose configured listeners have not started yet; logs what
     * it did; never throws.
     *
     * @param why "before the takeover" or "before the listeners open", for the log line
     */
    static void run(AgentConfig config, ModuleRegistry registry, Engine engine, Duration length, String why) {
        long started = System.nanoTime();
        List<List<String>> sets = moduleSets(config, registry);
        if (sets.isEmpty()) {
            LOG.log(Level.INFO, "warm-up skipped: no plain TCP listener to warm (TLS, SNI-routed, UDP and intercepting ones are not warmed)");
            return;
        }
        WarmUp w = new WarmUp(engine);
        try (Backend backend = new Backend()) {
            List<InetSocketAddress> fronts = new ArrayList<>();
            for (int i = 0; i < sets.size(); i++) {
                fronts.add(w.chain(i + 1, sets.get(i), backend.address()));
            }
            w.load(fronts, started + length.toNanos());
        } catch (EngineException | IOException | RuntimeException e) {
            LOG.log(Level.WARNING, "warm-up stopped early: {0}; the agent starts anyway (its first connections run slower)", e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            int reset = engine.endWarmUp(Duration.ofSeconds(2));
            Set<String> used = new LinkedHashSet<>();
            sets.forEach(used::addAll);
            for (String name : used) {
                registry.find(name).ifPresent(m -> m.totals().reset());
            }
            String modules = used.isEmpty() ? "no module" : "modules " + String.join(", ", used);
            LOG.log(Level.INFO, "warm-up {0}: {1} exchanges through {2} chain(s) of " + HOPS + " listeners ({3}) in {4} ms{5}{6}", why, w.exchanges.sum(),
                    sets.size(), modules, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started),
                    w.failures.sum() == 0 ? "" : "; " + w.failures.sum() + " failed, the first: " + w.firstFailure,
                    reset == 0 ? "" : "; " + reset + " connection(s) reset at its end");
        }
    }

    /**
     * The distinct module sets of the config's plain TCP listeners (no TLS, no SNI routes), each the names of the modules
     * that allow warm-up, in the listener's order; at most {@link #MAX_CHAINS}.
     */
    static List<List<String>> moduleSets(AgentConfig config, ModuleRegistry registry) {
        Set<List<String>> sets = new LinkedHashSet<>();
        for (Listener l : config.listeners()) {
            if (l.protocol() != Protocol.TCP || l.tls() != null || l.upstreamTls() != null || l.sni() != null) continue;
            List<String> names = new ArrayList<>();
            for (String named : Agent.spec(config, l).attach()) {
                registry.find(named).filter(m -> m.descriptor().warmUp()).ifPresent(m -> names.add(m.name()));
            }
            for (LoadedModule m : registry.attachOrder()) {
                if (m.attachMode() != AttachMode.GLOBAL || !m.descriptor().warmUp() || !m.serves(Protocol.TCP)) continue;
                if (!m.selector().listeners().isEmpty() && !m.selector().listeners().contains(l.name())) continue;
                if (m.selector().protocol() != null && m.selector().protocol() != Protocol.TCP) continue;
                if (!names.contains(m.name())) names.add(m.name());
            }
            sets.add(List.copyOf(names));
            if (sets.size() == MAX_CHAINS) break;
        }
        return List.copyOf(sets);
    }

    /**
     * Starts warm-up chain {@code n}: {@link #HOPS} listeners back to back, client role and server role by turns, each
     * with {@code modules}; returns the first one's address.
     */
    private InetSocketAddress chain(int n, List<String> modules, InetSocketAddress backend) throws EngineException {
        InetSocketAddress any = new InetSocketAddress(LOOPBACK, 0);
        InetSocketAddress next = backend;
        for (int hop = HOPS; hop >= 1; hop--) {
            Role role = hop % 2 == 0 ? Role.SERVER : Role.CLIENT;
            next = engine.startWarmUp(new ListenerSpec("warm-up-" + n + "-" + hop, Protocol.TCP, role, any, next, java.util.Map.of(), modules));
        }
        return next;
    }

    /** Runs the clients against every chain until {@code end} ({@link System#nanoTime()}), then closes them. */
    private void load(List<InetSocketAddress> fronts, long end) throws InterruptedException {
        List<Runnable> work = new ArrayList<>();
        for (InetSocketAddress to : fronts) {
            work.add(() -> keptAlive(to, 0, end));
            for (int i = 0; i < 4; i++) {
                int seed = i;
                work.add(() -> bursts(to, seed, end));
            }
            work.add(() -> newConnections(to, end));
        }
        ExecutorService pool = Executors.newFixedThreadPool(work.size(), Thread.ofPlatform().name("interlayer-warm-up-", 0).daemon().factory());
        try {
            work.forEach(pool::execute);
            pool.shutdown();
            long wait = end - System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(TIMEOUT_MS);
            if (!pool.awaitTermination(Math.max(0, wait), TimeUnit.NANOSECONDS)) {
                closeClients(); // a client stuck on a reply: its socket closes under it
                pool.awaitTermination(TIMEOUT_MS, TimeUnit.MILLISECONDS);
            }
        } finally {
            pool.shutdownNow();
            closeClients();
        }
    }

    private void keptAlive(InetSocketAddress to, int seed, long end) {
        try (Socket s = connect(to)) {
            DataOutputStream o = new DataOutputStream(s.getOutputStream());
            DataInputStream in = new DataInputStream(s.getInputStream());
            int i = seed;
            while (System.nanoTime() < end) {
                send(o, i, 64 + (i * 37) % 512, 64 + (i * 101) % 2048);
                o.flush();
                receive(in, i, 64 + (i * 101) % 2048);
                i++;
            }
        } catch (IOException e) {
            failed(e);
        }
    }

    private void bursts(InetSocketAddress to, int seed, long end) {
        try (Socket s = connect(to)) {
            DataOutputStream o = new DataOutputStream(new java.io.BufferedOutputStream(s.getOutputStream(), 64 * 1024));
            DataInputStream in = new DataInputStream(new java.io.BufferedInputStream(s.getInputStream(), 64 * 1024));
            int i = seed * 7;
            while (System.nanoTime() < end) {
                for (int k = 0; k < BURST; k++) {
                    send(o, i + k, 32 + (i + k) % 512, 16 + (i + k) % 64);
                }
                o.flush();
                for (int k = 0; k < BURST; k++) {
                    receive(in, i + k, 16 + (i + k) % 64);
                }
                i += BURST;
            }
        } catch (IOException e) {
            failed(e);
        }
    }

    private void newConnections(InetSocketAddress to, long end) {
        int i = 0;
        while (System.nanoTime() < end) {
            try (Socket s = connect(to)) {
                DataOutputStream o = new DataOutputStream(s.getOutputStream());
                send(o, i, 100, 300);
                o.flush();
                receive(new DataInputStream(s.getInputStream()), i, 300);
            } catch (IOException e) {
                failed(e);
                return;
            }
            i++;
        }
    }

    /** One request: the reply's length, the body's length, the body (every byte {@code (byte) i}). */
    private static void send(DataOutputStream o, int i, int body, int reply) throws IOException {
        o.writeInt(reply);
        o.writeInt(body);
        for (int k = 0; k < body; k++) {
            o.write(i);
        }
    }

    /** Reads one reply of {@code len} bytes, each of which must be {@code (byte) i}. */
    private void receive(DataInputStream in, int i, int len) throws IOException {
        byte[] b = new byte[len];
        in.readFully(b);
        if (b[0] != (byte) i || b[len - 1] != (byte) i) {
            throw new IOException("a reply through the warm-up listeners was not the backend's (a module changed the bytes, or does not"
                    + " undo on one side what it did on the other)");
        }
        exchanges.increment();
    }

    private void failed(IOException e) {
        failures.increment();
        if (firstFailure == null) firstFailure = e.getMessage() == null ? e.toString() : e.getMessage();
    }

    private Socket connect(InetSocketAddress to) throws IOException {
        Socket s = new Socket();
        clients.add(s);
        s.setTcpNoDelay(true);
        s.connect(to, TIMEOUT_MS);
        s.setSoTimeout(TIMEOUT_MS);
        return s;
    }

    private void closeClients() {
        for (Socket s; (s = clients.poll()) != null; ) {
            try {
                s.close();
            } catch (IOException ignored) {
                // closing anyway
            }
        }
    }

    /** The upstream of the warm-up: answers each request with the asked number of bytes, all equal to the body's first. */
    private static final class Backend implements AutoCloseable {
        private final ServerSocket server = new ServerSocket(0, 256, LOOPBACK);
        private final ExecutorService threads = Executors.newCachedThreadPool(Thread.ofPlatform().name("interlayer-warm-up-backend-", 0)
                .daemon().factory());
        private final Queue<Socket> open = new ConcurrentLinkedQueue<>();

        Backend() throws IOException {
            threads.execute(this::accept);
        }

        InetSocketAddress address() {
            return new InetSocketAddress(LOOPBACK, server.getLocalPort());
        }

        private void accept() {
            while (!server.isClosed()) {
                Socket s;
                try {
                    s = server.accept();
                } catch (IOException closed) {
                    return;
                }
                open.add(s);
                threads.execute(() -> serve(s));
            }
        }

        private void serve(Socket s) {
            try (s; InputStream raw = new java.io.BufferedInputStream(s.getInputStream(), 64 * 1024);
                 OutputStream out = new java.io.BufferedOutputStream(s.getOutputStream(), 64 * 1024)) {
                DataInputStream in = new DataInputStream(raw);
                byte[] buf = new byte[MAX_BODY];
                while (true) {
                    int reply;
                    try {
                        reply = in.readInt();
                    } catch (IOException ended) {
                        return;
                    }
                    int body = in.readInt();
                    if (reply < 1 || reply > MAX_BODY || body < 1 || body > MAX_BODY) return; // not the warm-up's: drop it
                    in.readFully(buf, 0, body);
                    java.util.Arrays.fill(buf, 1, reply, buf[0]);
                    out.write(buf, 0, reply);
                    if (raw.available() == 0) out.flush(); // a pipelined burst gets its replies in one write
                }
            } catch (SocketException closed) {
                // the warm-up ended
            } catch (IOException e) {
                // the client saw it too and counts it
            } finally {
                open.remove(s);
            }
        }

        @Override
        public void close() {
            try {
                server.close();
            } catch (IOException ignored) {
                // closing anyway
            }
            for (Socket s; (s = open.poll()) != null; ) {
                try {
                    s.close();
                } catch (IOException ignored) {
                    // closing anyway
                }
            }
            threads.shutdownNow();
        }
    }
}
