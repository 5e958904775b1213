package dev.interlayer.cli;

import dev.interlayer.agent.Agent;
import dev.interlayer.agent.AgentConfig;
import dev.interlayer.agent.AgentException;
import dev.interlayer.agent.ConfigException;
import dev.interlayer.agent.OneLineLogFormatter;
import dev.interlayer.agent.Takeover;
import dev.interlayer.agent.logging.AgentLog;
import dev.interlayer.control.AuditLog;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.logging.Level;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import sun.misc.Signal;

/** {@code interlayer run}: runs an agent from a config until SIGINT or SIGTERM, or only checks the config. */
@Command(name = "run", mixinStandardHelpOptions = true,
        description = {"Run an agent from a YAML config until Ctrl-C or SIGTERM (or check the config).",
                "With --check, validate the config and the modules it names without binding anything."})
final class RunCommand implements Callable<Integer> {

    private static final System.Logger LOG = System.getLogger("interlayer.agent");

    @Spec
    CommandSpec spec;

    @Option(names = "--config", required = true, paramLabel = "FILE", description = "the agent's YAML config (see docs/config.md)")
    Path config;

    @Option(names = "--check", description = "validate the config and its modules, print OK or every problem, and exit (2 on problems)")
    boolean check;

    @Option(names = "--takeover", arity = "0..1", paramLabel = "SOCKET", fallbackValue = "",
            description = {"take over the listening sockets of the agent serving the control socket SOCKET (default: this config's"
                    + " agent.control.socket) without closing them; that agent stops accepting, lets its connections finish and exits 0"
                    + " (docs/operations.md). No agent there: start normally"})
    String takeover;

    @Option(names = "--drain", paramLabel = "DURATION", description = "with --takeover: how long the old agent lets its open connections"
            + " finish before it cuts them and exits, e.g. 30s (default: its agent.stop-timeout)")
    String drain;

    /** Where {@link #plain} sends the output; with picocli, its writers. */
    private PrintWriter plainOut;
    private PrintWriter plainErr;

    /**
     * {@code run --config FILE} exactly, the way a service starts an agent, as a command ready to call without building
     * the command line; anything else (another option, a typo, {@code --help}) gives null and goes through picocli,
     * which says what is wrong. picocli's classes are compiled for Java 5, so the JVM verifies them with its old verifier
     * and cannot keep them in the agent's ahead-of-time cache: building the {@code run} command cost the agent's start
     * about 0.3 s of CPU on its main thread ({@code docs/performance.md}, "Cold start").
     */
    static RunCommand plain(String[] args, PrintWriter out, PrintWriter err) {
        String file = args.length == 3 && args[0].equals("run") && args[1].equals("--config") ? args[2]
                : args.length == 2 && args[0].equals("run") && args[1].startsWith("--config=") ? args[1].substring("--config=".length())
                : null;
        if (file == null || file.isEmpty() || file.startsWith("-")) {
            return null;
        }
        RunCommand r = new RunCommand();
        try {
            r.config = Path.of(file);
        } catch (java.nio.file.InvalidPathException e) {
            return null;
        }
        r.plainOut = out;
        r.plainErr = err;
        return r;
    }

    @Override
    public Integer call() {
        PrintWriter out = spec == null ? plainOut : spec.commandLine().getOut();
        PrintWriter err = spec == null ? plainErr : spec.commandLine().getErr();
        AgentConfig c;
        try {
            c = AgentConfig.load(config);
        } catch (ConfigException e) {
            err.println("interlayer: " + e.problems().size() + " problem" + (e.problems().size() == 1 ? "" : "s") + " in " + config + ":");
            e.problems().forEach(p -> err.println("  " + p));
            err.println("interlayer: fix " + (e.problems().size() == 1 ? "it" : "them") + ", then check again with: interlayer run --config " + config + " --check");
            return Main.USAGE;
        }
        if (drain != null && takeover == null) {
            err.println("interlayer: --drain goes with --takeover (how long the old agent drains); add --takeover, or leave --drain out");
            return Main.USAGE;
        }
        return check ? check(c, out, err) : run(c, out, err);
    }

    private int check(AgentConfig c, PrintWriter out, PrintWriter err) {
        OneLineLogFormatter.install(Level.OFF); // every problem is printed below, once
        Agent.ModuleCheck result = Agent.checkModules(c);
        result.warnings().forEach(w -> err.println("interlayer: warning: " + w));
        if (!result.problems().isEmpty()) {
            err.println("interlayer: " + result.problems().size() + " problem" + (result.problems().size() == 1 ? "" : "s") + " with " + config + ":");
            result.problems().forEach(p -> err.println("  " + p));
            err.println("interlayer: fix them, then check again with: interlayer run --config " + config + " --check");
            return Main.USAGE;
        }
        out.println("OK: " + config + ": " + c.listeners().size() + " listener" + (c.listeners().size() == 1 ? "" : "s") + ", "
                + c.modules().size() + " module entr" + (c.modules().size() == 1 ? "y" : "ies") + ", modules folder " + c.agent().modulesDir());
        for (AgentConfig.Listener l : c.listeners()) {
            out.println("  listener " + l.name() + " (" + l.role().name().toLowerCase() + "): " + hostPort(l.listen()) + " -> " + l.target());
        }
        for (String m : result.loaded()) {
            out.println("  module " + m + ": loads");
        }
        c.interception().ifPresent(i -> {
            List<String> listeners = i.listeners().stream().map(l -> l.name() + " on " + (l.protocol() == dev.interlayer.api.Protocol.UDP ? "udp " : "")
                    + hostPort(l.address())).toList();
            out.println("  interception: listener" + (listeners.size() == 1 ? " " : "s ") + String.join(", ", listeners)
                    + "; the nftables rules it would install:");
            i.describe(i.listen().getPort(), i.listen6() == null ? 0 : i.listen6().getPort()).forEach(r -> out.println("    " + r));
            String missing = dev.interlayer.engine.NftTable.missingPrivilege();
            if (missing != null) err.println("interlayer: warning: " + missing);
        });
        return Main.OK;
    }

    private int run(AgentConfig c, PrintWriter out, PrintWriter err) {
        try {
            AgentLog.install(c.log(), Level.INFO);
        } catch (IOException e) {
            err.println("interlayer: the agent did not start: " + config + ": agent.log.file: cannot open " + c.log().file() + " for appending ("
                    + e + "); check the folder's permissions, or leave file: out to log to standard error");
            return Main.FAILURE;
        }
        Agent agent;
        Takeover inherited = null;
        try {
            inherited = takeover == null ? null : fetchTakeover(c);
            agent = Agent.start(c, inherited);
        } catch (AgentException e) {
            err.println("interlayer: the agent did not start: " + e.getMessage());
            return Main.FAILURE;
        } catch (IllegalArgumentException e) {
            err.println("interlayer: " + e.getMessage());
            return Main.USAGE;
        } finally {
            if (inherited != null) {
                inherited.close();
            }
        }
        String[] why = {"signal received"};
        CountDownLatch stopped = stopOnSignal("agent", agent::close, err, why);
        agent.handedOver().thenAccept(done -> {
            why[0] = done;
            stopped.countDown(); // the exit runs the stop
        });
        reopenAuditOnSigusr1(agent, err);
        reloadOnSighup(agent, err);
        out.println("interlayer: agent running from " + config + " (Ctrl-C or SIGTERM to stop)");
        for (Map.Entry<String, InetSocketAddress> e : agent.listeners().entrySet()) {
            out.println("  listener " + e.getKey() + " on " + hostPort(e.getValue()));
        }
        List<String> rules = agent.interceptionRules();
        if (!rules.isEmpty()) {
            out.println("  interception, as installed:");
            rules.forEach(r -> out.println("    " + r));
        }
        agent.registry().modules().forEach(m -> out.println("  module " + m.id() + ": " + m.state() + ", priority " + m.priority()));
        agent.registry().failures().forEach(f -> out.println("  FAILED " + (f.module() == null ? f.source() + ": " + f.error()
                : c.locate(f.module(), f.error()).orElse(f.module() + " (" + f.source() + "): " + f.error()))));
        out.flush();
        awaitQuietly(stopped);
        return Main.OK;
    }

    /**
     * The listening sockets of the agent {@code --takeover} names, or null when no agent serves its control socket.
     *
     * @throws IllegalArgumentException if the options are not usable: no socket given nor configured, a bad {@code --drain}
     */
    private Takeover fetchTakeover(AgentConfig c) throws AgentException {
        Path socket;
        if (!takeover.isEmpty()) {
            socket = Path.of(takeover);
        } else if (c.control().isPresent()) {
            socket = c.control().get().socket();
        } else {
            throw new IllegalArgumentException("--takeover: " + config + " has no agent.control section, so there is no control socket"
                    + " to ask; name the running agent's socket: --takeover /run/interlayer/control.sock");
        }
        java.time.Duration d = null;
        if (drain != null) {
            try {
                d = dev.interlayer.runtime.ParamValues.parseDuration(drain);
            } catch (NumberFormatException | ArithmeticException e) {
                throw new IllegalArgumentException("--drain: '" + drain + "' is not a duration; expected a number with a unit, e.g. 30s or 500ms");
            }
        }
        return Takeover.fetch(socket, d).orElse(null);
    }

    /** Runs {@code stop} on SIGINT or SIGTERM, saying so on {@code err}; the latch opens when it has run. */
    static CountDownLatch stopOnSignal(String what, Runnable stop, PrintWriter err) {
        return stopOnSignal(what, stop, err, new String[] {"signal received"});
    }

    /** As {@link #stopOnSignal(String, Runnable, PrintWriter)}; the stop also runs at any exit and says {@code why[0]}. */
    static CountDownLatch stopOnSignal(String what, Runnable stop, PrintWriter err, String[] why) {
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            err.println("interlayer: stopping the " + what + " (" + why[0] + ")");
            err.flush();
            stop.run();
            err.println("interlayer: " + what + " stopped");
            err.flush();
            stopped.countDown();
        }, "interlayer-shutdown"));
        return stopped;
    }

    /** Waits for {@code latch}; an interrupt ends the wait. */
    static void awaitQuietly(CountDownLatch latch) {
        try {
            latch.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * SIGUSR1 reopens the audit file, as {@code interlayer audit reopen} does: what log rotation tools send
     * after moving a log away ({@code logrotate}'s {@code postrotate}).
     */
    private static void reopenAuditOnSigusr1(Agent agent, PrintWriter err) {
        if (agent.control().isEmpty() || agent.control().get().audit().file() == null) {
            return;
        }
        AuditLog audit = agent.control().get().audit();
        try {
            Signal.handle(new Signal("USR1"), s -> {
                try {
                    audit.reopen(); // logs what it did
                } catch (IOException e) {
                    LOG.log(System.Logger.Level.ERROR, "SIGUSR1: cannot open the audit file {0} again: {1}; decisions are kept in memory only",
                            audit.file(), e.getMessage());
                }
            });
        } catch (IllegalArgumentException e) {
            err.println("interlayer: warning: SIGUSR1 cannot reopen the audit file on this JVM (" + e.getMessage() + "); use interlayer audit reopen");
        }
    }

    /** SIGHUP reloads the config file, as {@code interlayer reload} does; the agent logs what it applied or why it refused. */
    private static void reloadOnSighup(Agent agent, PrintWriter err) {
        try {
            Signal.handle(new Signal("HUP"), s -> agent.reload("SIGHUP"));
        } catch (IllegalArgumentException e) {
            err.println("interlayer: warning: SIGHUP cannot reload the config on this JVM (" + e.getMessage() + "); use interlayer reload");
        }
    }

    static String hostPort(InetSocketAddress a) {
        String host = a.getAddress() == null ? a.getHostString() : a.getAddress().getHostAddress();
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + a.getPort();
    }
}
