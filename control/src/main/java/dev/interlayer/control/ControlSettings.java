package dev.interlayer.control;

import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;

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
 */
public record ControlSettings(Path socket, Tls tls, Path policy, Path auditFile, int auditCapacity, boolean security,
                              AuditLog.FileOptions auditFiles) {

    /** Decisions kept in memory by default. */
    public static final int DEFAULT_AUDIT_CAPACITY = 10_000;

    /** Settings with the default audit file options. */
    public ControlSettings(Path socket, Tls tls, Path policy, Path auditFile, int auditCapacity, boolean security) {
        this(socket, tls, policy, auditFile, auditCapacity, security, AuditLog.FileOptions.DEFAULT);
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
        return new ControlSettings(socket, tls, file, auditFile, auditCapacity, security, auditFiles);
    }

    /** The same settings with a remote mutual-TLS listener. */
    public ControlSettings withTls(Tls t) {
        return new ControlSettings(socket, t, policy, auditFile, auditCapacity, security, auditFiles);
    }

    /** The same settings with the security module's checks on or off. */
    public ControlSettings withSecurity(boolean on) {
        return new ControlSettings(socket, tls, policy, auditFile, auditCapacity, on, auditFiles);
    }

    /** The same settings with an audit file kept as {@code options} say. */
    public ControlSettings withAuditFile(Path file, AuditLog.FileOptions options) {
        return new ControlSettings(socket, tls, policy, file, auditCapacity, security, options);
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
