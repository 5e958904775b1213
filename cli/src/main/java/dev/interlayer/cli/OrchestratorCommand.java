package dev.interlayer.cli;

import dev.interlayer.agent.OneLineLogFormatter;
import dev.interlayer.orchestrator.Authority;
import dev.interlayer.orchestrator.EmbeddedDatabase;
import dev.interlayer.orchestrator.Orchestrator;
import dev.interlayer.orchestrator.OrchestratorException;
import dev.interlayer.orchestrator.OrchestratorSettings;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.logging.Level;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code interlayer orchestrator}: runs an orchestrator until SIGINT or SIGTERM. */
@Command(name = "orchestrator", mixinStandardHelpOptions = true,
        description = {"Run an orchestrator that manages a fleet of agents, until Ctrl-C or SIGTERM (see docs/orchestrator.md).",
                "Without --database-url it runs its own PostgreSQL with the data in --data-dir."})
final class OrchestratorCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--data-dir", paramLabel = "DIR", defaultValue = "/var/lib/interlayer/orchestrator",
            description = "keys (CA, module signing) and the embedded database (default: ${DEFAULT-VALUE})")
    Path dataDir;

    @Option(names = "--listen", paramLabel = "HOST:PORT", defaultValue = "0.0.0.0:" + OrchestratorSettings.DEFAULT_PORT,
            description = "where agents connect, with TLS (default: ${DEFAULT-VALUE})")
    String listen;

    @Option(names = "--name", paramLabel = "NAME", description = "a host name or address agents use to reach the orchestrator, for its"
            + " certificate; repeat for several (default: localhost, 127.0.0.1, ::1 and this host's name)")
    List<String> names;

    @Option(names = "--socket", paramLabel = "PATH", description = "the operators' Unix socket (default: $INTERLAYER_ORCHESTRATOR_SOCKET,"
            + " else /run/interlayer/orchestrator.sock for root)")
    Path socket;

    @Option(names = "--policy", paramLabel = "FILE", description = "the policy file (default: the built-in one: root may do all, others read)")
    Path policy;

    @Option(names = "--audit-file", paramLabel = "FILE", description = "append every decision of the security module to FILE (JSON lines)")
    Path audit;

    @Option(names = "--database-url", paramLabel = "JDBC-URL", description = "an external PostgreSQL, e.g. jdbc:postgresql://db:5432/interlayer;"
            + " user and password from $INTERLAYER_DATABASE_USER and $INTERLAYER_DATABASE_PASSWORD")
    String databaseUrl;

    @Option(names = "--database-user", paramLabel = "USER", defaultValue = EmbeddedDatabase.DEFAULT_USER,
            description = "the system user the embedded PostgreSQL runs as when the orchestrator runs as root; created if missing (default: ${DEFAULT-VALUE})")
    String pgUser;

    @Option(names = "--dashboard", paramLabel = "HOST:PORT", description = "serve the read-only dashboard (a web page) on HOST:PORT, e.g."
            + " 127.0.0.1:7544; the policy decides who may read it (by default every user of this host)")
    String dashboard;

    /** {@code HOST:PORT} of {@code option}, or null after saying what is wrong. */
    private static InetSocketAddress address(String option, String value, PrintWriter err) {
        int colon = value.lastIndexOf(':');
        try {
            return new InetSocketAddress(value.substring(0, colon).replace("[", "").replace("]", ""), Integer.parseInt(value.substring(colon + 1)));
        } catch (RuntimeException e) {
            err.println("interlayer: " + option + " " + value + ": expected HOST:PORT, e.g. " + (option.equals("--listen") ? "0.0.0.0:"
                    + OrchestratorSettings.DEFAULT_PORT : "127.0.0.1:7544"));
            return null;
        }
    }

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        InetSocketAddress agents = address("--listen", listen, err);
        InetSocketAddress web = dashboard == null ? null : address("--dashboard", dashboard, err);
        if (agents == null || dashboard != null && web == null) {
            return Main.USAGE;
        }
        OrchestratorSettings s = new OrchestratorSettings(dataDir.toAbsolutePath(), databaseUrl, System.getenv("INTERLAYER_DATABASE_USER"),
                System.getenv("INTERLAYER_DATABASE_PASSWORD"), pgUser, socket != null ? socket : OrchestratorSettings.defaultSocket(), agents,
                names == null || names.isEmpty() ? Authority.defaultNames() : names, policy, audit, web);
        OneLineLogFormatter.install(Level.INFO);
        Orchestrator o;
        try {
            o = Orchestrator.start(s);
        } catch (OrchestratorException e) {
            err.println("interlayer: the orchestrator did not start: " + e.getMessage());
            return Main.FAILURE;
        }
        CountDownLatch stopped = RunCommand.stopOnSignal("orchestrator", o::close, err);
        out.println("interlayer: orchestrator running (Ctrl-C or SIGTERM to stop)");
        out.println("  operators: " + o.socket());
        out.println("  agents:    " + RunCommand.hostPort(o.agentAddress()) + " (TLS; give agents " + o.caFile() + " as agent.orchestrator.ca)");
        if (o.dashboardAddress() != null) {
            out.println("  dashboard: http://" + RunCommand.hostPort(o.dashboardAddress()) + "/");
        }
        out.flush();
        RunCommand.awaitQuietly(stopped);
        return Main.OK;
    }
}
