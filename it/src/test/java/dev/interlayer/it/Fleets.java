package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.cli.Main;
import dev.interlayer.orchestrator.v1.AgentStatus;
import dev.interlayer.orchestrator.v1.StatusResponse;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/**
 * What the orchestrator tests share: the {@code interlayer fleet} CLI on an orchestrator's socket, enrollment tokens,
 * agent configs that join an orchestrator, waiting on {@code fleet status}, and traffic through an agent (one message on
 * a new connection, or a connection held open across fleet operations).
 */
final class Fleets {

    private Fleets() {}

    /** What a CLI run printed and returned. */
    record Cli(int code, String out, String err) {}

    /** Runs {@code interlayer fleet ARGS --socket SOCKET} in this JVM. */
    static Cli fleet(Path socket, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        List<String> all = new ArrayList<>();
        all.add("fleet");
        all.addAll(List.of(args));
        all.add("--socket");
        all.add(socket.toString());
        int code = Main.execute(new PrintWriter(out), new PrintWriter(err), all.toArray(String[]::new));
        return new Cli(code, out.toString(), err.toString());
    }

    /** A one-time token for {@code agent} with {@code labels} (KEY=VALUE), written to {@code dir/AGENT.token}. */
    static Path token(Path socket, Path dir, String agent, String... labels) throws Exception {
        List<String> args = new ArrayList<>(List.of("token", agent));
        for (String l : labels) {
            args.add("--label");
            args.add(l);
        }
        Cli c = fleet(socket, args.toArray(String[]::new));
        assertThat(c.code()).as(c.err()).isZero();
        return Files.writeString(dir.resolve(agent + ".token"), c.out().strip());
    }

    /**
     * The config of agent {@code name}: its control socket in {@code dir}, joining the orchestrator at {@code addresses}
     * (a YAML scalar or flow list) with {@code token} and {@code ca}, one client-role listener on {@code listen} (0: any)
     * toward {@code upstream}.
     */
    static String agentYaml(Path dir, String name, String addresses, Path token, Path ca, int listen, InetSocketAddress upstream) {
        return """
                agent:
                  control: {socket: %s}
                  orchestrator: {address: %s, token-file: %s, ca: %s}
                listeners:
                  - name: out
                    listen: 127.0.0.1:%d
                    upstream: 127.0.0.1:%d
                    role: client
                """.formatted(dir.resolve(name + ".sock"), addresses, token, ca, listen, upstream.getPort());
    }

    /** {@code fleet status --json}, parsed. */
    static StatusResponse status(Path socket) {
        Cli c = fleet(socket, "status", "--json");
        assertThat(c.code()).as(c.err()).isZero();
        try {
            StatusResponse.Builder b = StatusResponse.newBuilder();
            com.google.protobuf.util.JsonFormat.parser().merge(c.out(), b);
            return b.build();
        } catch (Exception e) {
            throw new AssertionError(c.out(), e);
        }
    }

    /** Waits (60 s at most) until exactly {@code agents} are enrolled and each passes {@code each}. */
    static void waitForAgents(Path socket, String what, Predicate<AgentStatus> each, String... agents) throws Exception {
        waitForStatus(socket, what, s -> s.getAgentsCount() == agents.length && s.getAgentsList().stream().allMatch(each));
    }

    /** Waits (60 s at most) until {@code fleet status} passes {@code test}; returns that status. */
    static StatusResponse waitForStatus(Path socket, String what, Predicate<StatusResponse> test) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (true) {
            StatusResponse s = status(socket);
            if (test.test(s)) {
                return s;
            }
            assertThat(System.nanoTime()).as("not within 60 s: " + what + "; fleet status: " + s).isLessThan(deadline);
            Thread.sleep(200);
        }
    }

    /** Whether {@code a} reports {@code module}@{@code version} in {@code state}. */
    static boolean runs(AgentStatus a, String module, String version, String state) {
        return a.getModulesList().stream().anyMatch(m -> m.getName().equals(module) && m.getVersion().equals(version) && m.getState().equals(state));
    }

    /** Sends a message through the agent at {@code port} on a new connection and returns what the upstream received of it. */
    static String through(int port, ByteArrayOutputStream received, String message) throws Exception {
        synchronized (received) {
            received.reset();
        }
        byte[] m = message.getBytes(StandardCharsets.UTF_8);
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(10_000);
            OutputStream out = s.getOutputStream();
            out.write(m);
            out.flush();
            s.shutdownOutput();
            InputStream in = s.getInputStream();
            byte[] back = in.readAllBytes();
            assertThat(new String(back, StandardCharsets.UTF_8)).as("the reply through the agent").isEqualTo(message);
        }
        synchronized (received) {
            return received.toString(StandardCharsets.UTF_8);
        }
    }

    /** {@code s} with every character XOR {@code key}: what the marker module of that key makes of it. */
    static String xor(String s, int key) {
        char[] c = s.toCharArray();
        for (int i = 0; i < c.length; i++) {
            c[i] ^= key;
        }
        return new String(c);
    }

    static int freePort() throws Exception {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    static String java() {
        return System.getProperty("interlayer.java", Path.of(System.getProperty("java.home"), "bin", "java").toString());
    }

    /** The distribution jar ({@code interlayer.jar}), copied into {@code dir} once. */
    static Path distJar(Path dir) throws Exception {
        Path jar = dir.resolve("interlayer.jar");
        if (!Files.exists(jar)) {
            Files.copy(Path.of(System.getProperty("interlayer.distJar", "../cli/target/interlayer.jar")), jar);
        }
        return jar;
    }

    /** Starts {@code interlayer ARGS} from the distribution jar as a separate process (Netty leak detection paranoid), output to {@code log}. */
    static ProcessBuilder process(Path dir, Path log, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(java(), "--sun-misc-unsafe-memory-access=allow", "--enable-native-access=ALL-UNNAMED",
                "-Dio.netty.leakDetection.level=paranoid", "-jar", distJar(dir).toString()));
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
    }

    /** One connection through an agent, held open across fleet operations. */
    record Held(Socket socket, ByteArrayOutputStream received) implements AutoCloseable {
        static Held open(int port, ByteArrayOutputStream received) throws Exception {
            Socket s = new Socket("127.0.0.1", port);
            s.setSoTimeout(10_000);
            return new Held(s, received);
        }

        /** Sends {@code message}, reads its echo, returns what the upstream received of it. */
        String send(String message) throws Exception {
            synchronized (received) {
                received.reset();
            }
            byte[] m = message.getBytes(StandardCharsets.UTF_8);
            socket.getOutputStream().write(m);
            socket.getOutputStream().flush();
            byte[] back = socket.getInputStream().readNBytes(m.length);
            assertThat(new String(back, StandardCharsets.UTF_8)).as("the echo on the held connection").isEqualTo(message);
            synchronized (received) {
                return received.toString(StandardCharsets.UTF_8);
            }
        }

        /** {@link #send} on a new connection. */
        static String through(int port, ByteArrayOutputStream received, String message) throws Exception {
            try (Held h = open(port, received)) {
                return h.send(message);
            }
        }

        @Override
        public void close() throws Exception {
            socket.close();
        }
    }
}
