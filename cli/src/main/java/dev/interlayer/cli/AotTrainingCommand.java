package dev.interlayer.cli;

import dev.interlayer.agent.Agent;
import dev.interlayer.agent.AgentConfig;
import dev.interlayer.agent.OneLineLogFormatter;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import java.util.logging.Level;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code interlayer aot-training}: the training run of the agent's ahead-of-time cache. The build runs it once under
 * {@code -XX:AOTCacheOutput} ({@code cli/pom.xml}); the JVM then writes, at exit, the classes this run loaded and
 * linked, and {@code ./interlayer run} starts from them (the build leaves the method profiles out: replayed at start
 * they slowed a module connection's warm-up, docs/performance.md).
 *
 * <p>It runs an agent in this process from a config it writes, as {@code run} would, with the paths a deployment
 * uses, after a short warm-up ({@code agent.warm-up}): a listener without modules (the direct path), a client-role and a server-role listener back to back with the
 * {@code tag} sample module on both (the module path), a UDP listener, and the control socket. Blocking JDK sockets
 * drive kept-alive small requests, new connections, bulk transfers and datagrams through them, so that the classes
 * are the agent's and not a client's. Every exchange is checked; a failed one fails the run (and the build).
 *
 * <p>Hidden from help: it is a step of the build, not a command for users.
 */
@Command(name = "aot-training", hidden = true, mixinStandardHelpOptions = true,
        description = "The training run of the agent's ahead-of-time cache (run by the build under -XX:AOTCacheOutput).")
final class AotTrainingCommand implements Callable<Integer> {

    /** Size of a small request's body and of its reply. */
    private static final int SMALL_REQUEST = 64;
    private static final int SMALL_REPLY = 1024;
    /** Size of a bulk exchange's body and reply. */
    private static final int BULK = 256 * 1024;
    private static final int TIMEOUT_MS = 30_000;
    private static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();

    @Option(names = "--seconds", defaultValue = "12", description = "How long the load runs. Default ${DEFAULT-VALUE}.")
    int seconds;

    @Spec
    CommandSpec spec;

    private final LongAdder exchanges = new LongAdder();
    private final LongAdder datagrams = new LongAdder();

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        Path modules = DemoCommand.findSampleModules();
        if (modules == null) {
            err.println("interlayer: aot-training: the sample module jars were not found next to interlayer.jar or in "
                    + "-Dinterlayer.sampleModules; build them with ./mvnw -pl cli -am package -DskipTests");
            return Main.FAILURE;
        }
        OneLineLogFormatter.install(Level.WARNING);
        Path work = Files.createTempDirectory("interlayer-aot-training-");
        try (Backend backend = new Backend()) {
            Path config = work.resolve("agent.yaml");
            Files.writeString(config, config(modules, backend));
            long started = System.nanoTime();
            try (Agent agent = Agent.start(AgentConfig.load(config))) {
                if (!agent.registry().failures().isEmpty()) {
                    agent.registry().failures().forEach(f -> err.println("interlayer: aot-training: " + f.source() + ": " + f.error()));
                    return Main.FAILURE;
                }
                load(agent);
            }
            out.printf("aot-training: %d exchanges and %d datagrams through the agent in %.1f s%n", exchanges.sum(), datagrams.sum(),
                    (System.nanoTime() - started) / 1e9);
            return Main.OK;
        } finally {
            DemoCommand.deleteTree(work);
        }
    }

    private static String config(Path modules, Backend backend) throws IOException {
        String up = "127.0.0.1:" + backend.tcp.getLocalPort();
        int pairIn = freePort();
        return "# written by interlayer aot-training\n"
                + "agent:\n  control: {socket: control.sock}\n"
                + "  warm-up: {before-start: 500ms}\n" // so that the warm-up's classes are in the cache too
                + "listeners:\n"
                + "  - {name: plain, listen: 127.0.0.1:0, upstream: " + up + ", role: client}\n"
                + "  - {name: pair-in, listen: 127.0.0.1:" + pairIn + ", upstream: " + up + ", role: server}\n"
                + "  - {name: pair-out, listen: 127.0.0.1:0, upstream: 127.0.0.1:" + pairIn + ", role: client}\n"
                + "  - {name: udp, listen: 127.0.0.1:0, upstream: 127.0.0.1:" + backend.udp.getLocalPort() + ", protocol: udp, role: client}\n"
                + "modules:\n"
                + "  - name: tag\n    jar: " + modules.resolve("module-tag.jar") + "\n"
                + "    selector: {listener: [pair-out, pair-in]}\n";
    }

    /** The load: every kind of exchange at once on every path, for {@link #seconds}. */
    private void load(Agent agent) throws Exception {
        InetSocketAddress plain = agent.listeners().get("plain");
        InetSocketAddress pair = agent.listeners().get("pair-out");
        InetSocketAddress udp = agent.listeners().get("udp");
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        List<Callable<Void>> clients = new ArrayList<>();
        for (InetSocketAddress to : List.of(plain, pair)) {
            for (int i = 0; i < 6; i++) {
                clients.add(() -> keptAlive(to, SMALL_REQUEST, SMALL_REPLY, end));
            }
            clients.add(() -> newConnections(to, end));
            clients.add(() -> keptAlive(to, BULK, BULK, end));
        }
        clients.add(() -> datagrams(udp, end));
        ExecutorService pool = Executors.newFixedThreadPool(clients.size());
        try {
            for (Future<Void> f : pool.invokeAll(clients)) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
    }

    private Void keptAlive(InetSocketAddress to, int request, int reply, long end) throws IOException {
        try (Socket s = connect(to)) {
            DataOutputStream o = new DataOutputStream(s.getOutputStream());
            DataInputStream in = new DataInputStream(s.getInputStream());
            byte[] body = new byte[request];
            byte[] answer = new byte[reply];
            while (System.nanoTime() < end) {
                exchange(o, in, body, answer);
            }
        }
        return null;
    }

    private Void newConnections(InetSocketAddress to, long end) throws IOException {
        byte[] body = new byte[SMALL_REQUEST];
        byte[] answer = new byte[SMALL_REPLY];
        while (System.nanoTime() < end) {
            try (Socket s = connect(to)) {
                exchange(new DataOutputStream(s.getOutputStream()), new DataInputStream(s.getInputStream()), body, answer);
            }
        }
        return null;
    }

    /** One request: the reply's length, the body's length, the body; the backend answers with that many bytes. */
    private void exchange(DataOutputStream o, DataInputStream in, byte[] body, byte[] answer) throws IOException {
        Arrays.fill(body, (byte) exchanges.intValue());
        o.writeInt(answer.length);
        o.writeInt(body.length);
        o.write(body);
        o.flush();
        in.readFully(answer);
        if (answer[0] != body[0] || answer[answer.length - 1] != body[0]) {
            throw new IOException("a reply through the agent was not the backend's: the training is not valid");
        }
        exchanges.increment();
    }

    private Void datagrams(InetSocketAddress to, long end) throws IOException {
        try (DatagramSocket s = new DatagramSocket(new InetSocketAddress(LOOPBACK, 0))) {
            s.setSoTimeout(TIMEOUT_MS);
            byte[] payload = new byte[200];
            byte[] back = new byte[2048];
            while (System.nanoTime() < end) {
                Arrays.fill(payload, (byte) datagrams.intValue());
                s.send(new DatagramPacket(payload, payload.length, to));
                DatagramPacket p = new DatagramPacket(back, back.length);
                s.receive(p);
                if (p.getLength() != payload.length || back[0] != payload[0]) {
                    throw new IOException("a datagram through the agent did not come back as sent: the training is not valid");
                }
                datagrams.increment();
            }
        }
        return null;
    }

    /** A port free now, for the listener the other one forwards to. */
    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, LOOPBACK)) {
            return s.getLocalPort();
        }
    }

    private static Socket connect(InetSocketAddress to) throws IOException {
        Socket s = new Socket();
        s.setTcpNoDelay(true);
        s.connect(to, TIMEOUT_MS);
        s.setSoTimeout(TIMEOUT_MS);
        return s;
    }

    /** The upstream: answers each request with the asked number of bytes, all equal to the body's first; echoes datagrams. */
    private static final class Backend implements AutoCloseable {
        final ServerSocket tcp = new ServerSocket(0, 128, LOOPBACK);
        final DatagramSocket udp = new DatagramSocket(new InetSocketAddress(LOOPBACK, 0));
        private final ExecutorService threads = Executors.newCachedThreadPool();
        private final ConcurrentLinkedQueue<Socket> open = new ConcurrentLinkedQueue<>();

        Backend() throws IOException {
            threads.submit(this::accept);
            threads.submit(this::echo);
        }

        private Void accept() throws IOException {
            while (!tcp.isClosed()) {
                Socket s;
                try {
                    s = tcp.accept();
                } catch (SocketException closed) {
                    return null;
                }
                open.add(s);
                threads.submit(() -> serve(s));
            }
            return null;
        }

        private Void serve(Socket s) throws IOException {
            try (s; InputStream raw = s.getInputStream(); OutputStream o = s.getOutputStream()) {
                DataInputStream in = new DataInputStream(raw);
                byte[] buf = new byte[BULK];
                while (true) {
                    int reply;
                    try {
                        reply = in.readInt();
                    } catch (IOException ended) {
                        return null;
                    }
                    int body = in.readInt();
                    if (reply > BULK || body > BULK || reply < 1 || body < 1) {
                        throw new IOException("aot-training backend: a request asks for " + reply + " bytes with a body of " + body);
                    }
                    in.readFully(buf, 0, body);
                    Arrays.fill(buf, 1, reply, buf[0]);
                    o.write(buf, 0, reply);
                    o.flush();
                }
            } catch (SocketException closed) {
                return null;
            }
        }

        private Void echo() {
            byte[] buf = new byte[2048];
            try {
                while (true) {
                    DatagramPacket p = new DatagramPacket(buf, buf.length);
                    udp.receive(p);
                    udp.send(new DatagramPacket(buf, p.getLength(), p.getSocketAddress()));
                }
            } catch (IOException closed) {
                return null;
            }
        }

        @Override
        public void close() {
            try {
                tcp.close();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            } finally {
                udp.close();
                open.forEach(s -> {
                    try {
                        s.close();
                    } catch (IOException ignored) {
                        // closing anyway
                    }
                });
                threads.shutdownNow();
            }
        }
    }
}
