package dev.interlayer.orchestrator;

import dev.interlayer.control.ControlSettings;
import dev.interlayer.control.Policy;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;

/**
 * How an orchestrator runs ({@code interlayer orchestrator} options).
 *
 * @param dataDir its data folder: keys, and the embedded database's binaries and cluster
 * @param databaseUrl an external PostgreSQL (JDBC URL), or null for the embedded one
 * @param databaseUser the external database's user (with {@code databaseUrl})
 * @param databasePassword the external database's password (with {@code databaseUrl})
 * @param pgUser the system user the embedded PostgreSQL runs as when the orchestrator runs as root
 * @param socket the Unix socket operators call (the {@code interlayer fleet} commands)
 * @param listen the TCP address agents connect to (TLS)
 * @param names the host names and addresses the orchestrator's TLS certificate carries (what agents connect to)
 * @param policy the policy file, or null for the built-in one
 * @param auditFile the audit file, or null for the in-memory log only
 * @param dashboard where the dashboard's web page is served (HTTP), or null for none
 */
public record OrchestratorSettings(Path dataDir, String databaseUrl, String databaseUser, String databasePassword, String pgUser, Path socket,
                                   InetSocketAddress listen, List<String> names, Path policy, Path auditFile,
                                   InetSocketAddress dashboard) {

    /** The port agents connect to by default. */
    public static final int DEFAULT_PORT = 7543;

    public OrchestratorSettings {
        names = List.copyOf(names);
    }

    /** Settings with the embedded database in {@code dataDir}, a socket there, TLS on {@code listen}, the default policy. */
    public static OrchestratorSettings embedded(Path dataDir, InetSocketAddress listen) {
        return new OrchestratorSettings(dataDir, null, null, null, EmbeddedDatabase.DEFAULT_USER, defaultSocket(), listen, Authority.defaultNames(), null, null, null);
    }

    /** The same settings with another socket. */
    public OrchestratorSettings withSocket(Path s) {
        return new OrchestratorSettings(dataDir, databaseUrl, databaseUser, databasePassword, pgUser, s, listen, names, policy, auditFile, dashboard);
    }

    /** The same settings with a policy file. */
    public OrchestratorSettings withPolicy(Path p) {
        return new OrchestratorSettings(dataDir, databaseUrl, databaseUser, databasePassword, pgUser, socket, listen, names, p, auditFile, dashboard);
    }

    /** The same settings with the dashboard served on {@code d}. */
    public OrchestratorSettings withDashboard(InetSocketAddress d) {
        return new OrchestratorSettings(dataDir, databaseUrl, databaseUser, databasePassword, pgUser, socket, listen, names, policy, auditFile, d);
    }

    /**
     * The orchestrator's socket when none is given: {@code $INTERLAYER_ORCHESTRATOR_SOCKET}; for root
     * {@code /run/interlayer/orchestrator.sock}; else {@code orchestrator.sock} beside the user's agent socket.
     */
    public static Path defaultSocket() {
        String env = System.getenv("INTERLAYER_ORCHESTRATOR_SOCKET");
        if (env != null && !env.isBlank()) {
            return Path.of(env);
        }
        if (Policy.processUid() == 0) {
            return Path.of("/run/interlayer/orchestrator.sock");
        }
        return ControlSettings.defaultSocket().resolveSibling("orchestrator.sock");
    }
}
