package dev.interlayer.control;

import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * How an agent's control endpoint is set up ({@code agent.control} in the agent's YAML).
 *
 * @param socket the Unix domain socket path (created with mode 0666: the policy, not the file mode, decides who may do what)
 * @param tls the optional remote listener with mutual TLS, or null
 * @param policy the policy file, watched and reloaded on change, or null for the built-in default policy
 * @param auditFile the append-only audit file (one JSON object per line), or null for the in-memory log only
 * @param auditCapacity how many decisions the in-memory audit log keeps
 * @param security false switches the security module's checks off; only for benchmarks, never from a config
 * @param auditFiles how the audit file is kept: its size before rotation, the rotated files kept, the group that may read it
 * @param limits what one caller may hold of the endpoint
 * @param attachSocket the attach socket (programmatic attach by the application, {@link AttachServer}), or null for none
 */
public record ControlSettings(Path socket, Tls tls, Path policy, Path auditFile, int auditCapacity, boolean security,
                              AuditLog.FileOptions auditFiles, Limits limits, Path attachSocket) {

    /** Decisions kept in memory by default. */
    public static final int DEFAULT_AUDIT_CAPACITY = 10_000;

    /** Settings with the default audit file options and limits. */
    public ControlSettings(Path socket, Tls tls, Path policy, Path auditFile, int auditCapacity, boolean security) {
        this(socket, tls, policy, auditFile, auditCapacity, security, AuditLog.FileOptions.DEFAULT, Limits.DEFAULT);
    }

    /** Settings with the attach socket beside the control socket ({@link #defaultAttachSocket}). */
    public ControlSettings(Path socket, Tls tls, Path policy, Path auditFile, int auditCapacity, boolean security, AuditLog.FileOptions auditFiles,
                           Limits limits) {
        this(socket, tls, policy, auditFile, auditCapacity, security, auditFiles, limits, defaultAttachSocket(socket));
    }

    /**
     * The attach socket beside control socket {@code socket}: its name without {@code .sock}, then {@code -attach.sock}
     * ({@code /run/interlayer/control.sock}: {@code /run/interlayer/control-attach.sock}).
     */
    public static Path defaultAttachSocket(Path socket) {
        String name = socket.getFileName().toString();
        return socket.resolveSibling((name.endsWith(".sock") ? name.substring(0, name.length() - 5) : name) + "-attach.sock");
    }

    /**
     * Bounds on what callers may hold, so that no local user can exhaust the endpoint.
     *
     * @param connectionsPerUid connections one uid may hold open at once on the Unix socket; root and the
     *                          agent's own user are not limited (they can stop the agent anyway)
     * @param handshakeTimeout how long a new connection may take to complete the TLS handshake and send the
     *                         HTTP/2 preface every gRPC client starts with
     * @param idleTimeout how long a connection may stay open without a call before the agent closes it
     */
    public record Limits(int connectionsPerUid, Duration handshakeTimeout, Duration idleTimeout) {
        /** 32 connections per uid, 10 s to start, 5 minutes idle. */
        public static final Limits DEFAULT = new Limits(32, Duration.ofSeconds(10), Duration.ofMinutes(5));

        public Limits {
            if (connectionsPerUid < 1 || handshakeTimeout.isZero() || handshakeTimeout.isNegative() || idleTimeout.compareTo(Duration.ofSeconds(1)) < 0) {
                throw new IllegalArgumentException("control limits: at least 1 connection per uid, a handshake timeout above 0,"
                        + " an idle timeout of at least 1 s");
            }
        }
    }

    /**
     * The remote listener.
     *
     * @param listen the address to bind
     * @param cert the agent's certificate chain (PEM)
     * @param key the agent's private key (PEM, PKCS#8)
     * @param clientCa the CA certificates (PEM) that client certificates must chain to
     */
    public record Tls(InetSocketAddress listen, Path cert, Path key, Path clientCa) {}

    /** A Unix socket at {@code socket} with the default policy and an in-memory audit log. */
    public static ControlSettings at(Path socket) {
        return new ControlSettings(socket, null, null, null, DEFAULT_AUDIT_CAPACITY, true);
    }

    /** The same settings with another policy file. */
    public ControlSettings withPolicy(Path file) {
        return new ControlSettings(socket, tls, file, auditFile, auditCapacity, security, auditFiles, limits, attachSocket);
    }

    /** The same settings with a remote mutual-TLS listener. */
    public ControlSettings withTls(Tls t) {
        return new ControlSettings(socket, t, policy, auditFile, auditCapacity, security, auditFiles, limits, attachSocket);
    }

    /** The same settings with the security module's checks on or off. */
    public ControlSettings withSecurity(boolean on) {
        return new ControlSettings(socket, tls, policy, auditFile, auditCapacity, on, auditFiles, limits, attachSocket);
    }

    /** The same settings with an audit file kept as {@code options} say. */
    public ControlSettings withAuditFile(Path file, AuditLog.FileOptions options) {
        return new ControlSettings(socket, tls, policy, file, auditCapacity, security, options, limits, attachSocket);
    }

    /** The same settings with another attach socket (null: none). */
    public ControlSettings withAttachSocket(Path p) {
        return new ControlSettings(socket, tls, policy, auditFile, auditCapacity, security, auditFiles, limits, p);
    }

    /** The same settings with other limits. */
    public ControlSettings withLimits(Limits l) {
        return new ControlSettings(socket, tls, policy, auditFile, auditCapacity, security, auditFiles, l, attachSocket);
    }

    /**
     * The control socket an agent uses when its config names none, and the CLI's default:
     * {@code $INTERLAYER_SOCKET} if set; for root {@code /run/interlayer/control.sock}; for other users
     * {@code $XDG_RUNTIME_DIR/interlayer/control.sock}, or {@code /tmp/interlayer-<uid>/control.sock}
     * without a runtime directory.
     */
    public static Path defaultSocket() {
        String env = System.getenv("INTERLAYER_SOCKET");
        if (env != null && !env.isBlank()) {
            return Path.of(env);
        }
        long uid = Policy.processUid();
        if (uid == 0) {
            return Path.of("/run/interlayer/control.sock");
        }
        String xdg = System.getenv("XDG_RUNTIME_DIR");
        if (xdg != null && !xdg.isBlank() && Files.isDirectory(Path.of(xdg))) {
            return Path.of(xdg, "interlayer", "control.sock");
        }
        return Path.of("/tmp", "interlayer-" + uid, "control.sock");
    }

    /**
     * The socket a CLI should try when none is given: {@link #defaultSocket()}, or the system agent's
     * {@code /run/interlayer/control.sock} when the user's own default does not exist but that one does.
     */
    public static Path clientDefaultSocket() {
        Path own = defaultSocket();
        Path system = Path.of("/run/interlayer/control.sock");
        if (!Files.exists(own) && Files.exists(system) && System.getenv("INTERLAYER_SOCKET") == null) {
            return system;
        }
        return own;
    }
}
