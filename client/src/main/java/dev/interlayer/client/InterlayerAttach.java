package dev.interlayer.client;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Programmatic attach by the application itself: asks the local Interlayer agent to attach a module to the connections
 * this process opens from now on, until the returned handle is closed.
 *
 * <pre>{@code
 * try (var a = InterlayerAttach.attach("tag")) {
 *     // connections this process opens here (through the agent: intercepted, or to one of its listeners) get tag
 * }
 * // connections opened after close() do not; connections already open keep it
 * }</pre>
 *
 * <p>The agent knows who asks from the kernel ({@code SO_PEERCRED} on its attach socket), never from the request: a process
 * can only ask for itself, and the agent's control policy decides whether it may (by default only root and the agent's own
 * user may; the agent's docs say how to grant others). A registration is per process: the connections of every thread of
 * this JVM are covered while it lasts. It ends when {@link Attachment#close()} is called, when this process exits, or
 * after the connections or time it was given.
 *
 * <p>The attach socket is, in this order: {@code $INTERLAYER_ATTACH_SOCKET}; {@code $INTERLAYER_SOCKET} with
 * {@code .sock} replaced by {@code -attach.sock}; for root {@code /run/interlayer/control-attach.sock}; for other users
 * {@code $XDG_RUNTIME_DIR/interlayer/control-attach.sock}, or {@code /tmp/interlayer-UID/control-attach.sock} without a
 * runtime directory (the agent's defaults). {@link #at(Path)} names another.
 *
 * <p>Zero dependencies: the JDK's Unix domain sockets and the agent's line protocol.
 */
public final class InterlayerAttach {

    private static final int MAX_ANSWER = 4096;
    private final Path socket;

    private InterlayerAttach(Path socket) {
        this.socket = socket;
    }

    /** A client of the agent whose attach socket is {@code socket}. */
    public static InterlayerAttach at(Path socket) {
        return new InterlayerAttach(socket);
    }

    /** A client of the agent at the default attach socket (see the class comment). */
    public static InterlayerAttach local() {
        return at(defaultSocket());
    }

    /**
     * Attaches {@code module} to the connections this process opens from now on, through the agent at the default socket.
     *
     * @param module a module's name, optionally with {@code @VERSION} (the version it must be loaded at)
     * @throws AttachException if the agent refused, saying why (no such module, a global module, denied by its policy, ...)
     * @throws IOException if the agent cannot be reached
     */
    public static Attachment attach(String module) throws IOException {
        return local().attach(module, 0, null);
    }

    /**
     * Attaches {@code module} to the connections this process opens from now on, for at most {@code connections} of them
     * (0: no limit) and at most {@code time} (null: no limit).
     *
     * @throws AttachException if the agent refused, saying why
     * @throws IOException if the agent cannot be reached
     */
    public Attachment attach(String module, int connections, Duration time) throws IOException {
        if (module.isEmpty() || module.chars().anyMatch(c -> c <= ' ')) {
            throw new IllegalArgumentException("module '" + module + "': expected a module name (e.g. tag, or tag@1.0.0), without spaces");
        }
        if (connections < 0 || time != null && time.isNegative()) {
            throw new IllegalArgumentException("connections and time must not be negative");
        }
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(socket));
        } catch (IOException e) {
            ch.close();
            throw new IOException("cannot reach the Interlayer agent's attach socket " + socket + ": " + e.getMessage()
                    + "; is the agent running (its agent.control.attach-socket)? set INTERLAYER_ATTACH_SOCKET to its path", e);
        }
        try {
            String answer = ask(ch, "attach " + module + (connections > 0 ? " connections=" + connections : "")
                    + (time != null && !time.isZero() ? " seconds=" + Math.max(1, time.toSeconds()) : ""));
            String[] w = answer.split(" ", 3);
            return new Attachment(ch, Long.parseLong(w[1]), w.length > 2 ? w[2] : module);
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /** Sends one request line and reads its answer; an {@code error} answer is thrown. */
    private static String ask(SocketChannel ch, String line) throws IOException {
        ByteBuffer out = ByteBuffer.wrap((line + "\n").getBytes(StandardCharsets.UTF_8));
        while (out.hasRemaining()) {
            ch.write(out);
        }
        ByteBuffer in = ByteBuffer.allocate(MAX_ANSWER);
        while (true) {
            if (ch.read(in) < 0) {
                throw new IOException("the agent closed the attach socket without answering");
            }
            for (int i = 0; i < in.position(); i++) {
                if (in.get(i) == '\n') {
                    String answer = new String(in.array(), 0, i, StandardCharsets.UTF_8);
                    if (answer.startsWith("ok ")) return answer;
                    throw new AttachException(answer.startsWith("error ") ? answer.substring(6) : "unexpected answer: " + answer);
                }
            }
            if (!in.hasRemaining()) {
                throw new IOException("the agent's answer is longer than " + MAX_ANSWER + " bytes");
            }
        }
    }

    /** The agent's default attach socket (see the class comment). */
    public static Path defaultSocket() {
        String env = System.getenv("INTERLAYER_ATTACH_SOCKET");
        if (env != null && !env.isBlank()) return Path.of(env);
        String control = System.getenv("INTERLAYER_SOCKET");
        if (control != null && !control.isBlank()) {
            Path c = Path.of(control);
            String name = c.getFileName().toString();
            return c.resolveSibling((name.endsWith(".sock") ? name.substring(0, name.length() - 5) : name) + "-attach.sock");
        }
        long uid = uid();
        if (uid == 0) return Path.of("/run/interlayer/control-attach.sock");
        String xdg = System.getenv("XDG_RUNTIME_DIR");
        if (xdg != null && !xdg.isBlank() && Files.isDirectory(Path.of(xdg))) {
            return Path.of(xdg, "interlayer", "control-attach.sock");
        }
        return Path.of("/tmp", "interlayer-" + uid, "control-attach.sock");
    }

    private static long uid() {
        try {
            return ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).longValue();
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    /** The agent refused a request; the message is its reason. */
    public static final class AttachException extends IOException {
        AttachException(String reason) {
            super(reason);
        }
    }

    /** One registration: in force until {@link #close()} (or the process exits, or its limits are reached). */
    public static final class Attachment implements AutoCloseable {
        private final SocketChannel channel;
        private final long id;
        private final String module;

        private Attachment(SocketChannel channel, long id, String module) {
            this.channel = channel;
            this.id = id;
            this.module = module;
        }

        /** The registration's id in the agent. */
        public long id() {
            return id;
        }

        /** The module as the agent attaches it, {@code name@version}. */
        public String module() {
            return module;
        }

        /**
         * Ends the registration: connections opened from now on do not get the module (those open keep it). Waits for the
         * agent's answer, so a connection opened after this returns is not attached.
         */
        @Override
        public void close() throws IOException {
            if (!channel.isOpen()) return;
            try {
                ask(channel, "detach " + id);
            } catch (AttachException e) {
                // the registration already ended (its connections or time were used up): nothing to end
            } finally {
                channel.close();
            }
        }
    }
}
