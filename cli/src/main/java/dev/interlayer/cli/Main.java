package dev.interlayer.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * The {@code interlayer} command: runs an agent from a config, checks configs and module jars, runs the
 * demo, and manages a running agent through its control endpoint.
 *
 * <p>Exit codes: 0 ok, 1 failure, 2 usage or config error, 3 agent unreachable, 4 denied by the agent's
 * policy, 5 invalid argument. Errors go to standard error and say what is wrong and what to do.
 */
@Command(name = "interlayer", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "Interlayer: loadable modules that customize every TCP connection's bytes, between unmodified programs.",
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {"0:ok", "1:failure (a module did not load, a listener did not start, the agent refused the change, ...)",
                "2:usage or config error", "3:agent unreachable (not running, wrong --socket or --remote, TLS refused)",
                "4:denied by the agent's control policy", "5:invalid argument (the request breaks the IDL's constraints)"})
public final class Main implements Runnable {

    /** Exit code for success. */
    public static final int OK = 0;
    /** Exit code for a failure at run time. */
    public static final int FAILURE = 1;
    /** Exit code for a usage or config error. */
    public static final int USAGE = 2;
    /** Exit code when no agent answers. */
    public static final int UNREACHABLE = 3;
    /** Exit code when the agent's policy denies the call. */
    public static final int DENIED = 4;
    /** Exit code when the request breaks the IDL's constraints. */
    public static final int INVALID = 5;

    /**
     * The commands, in the order help lists them. picocli builds a command's model by reading the annotations of all its
     * classes, which is a good part of a short call's start: a call that names a command builds only that one
     * ({@link #commandLine}). A holder class, so that {@code run --config FILE}, which needs none of them, reads none.
     */
    static final class Commands {
        static final Map<String, Class<?>> ALL = commands(RunCommand.class, CheckModuleCommand.class, DemoCommand.class, StatusCommand.class,
                ModulesCommand.class, ConnsCommand.class, ListenersCommand.class, ModuleCommand.class, LogCommand.class, AuditCommand.class,
                PolicyCommand.class, TlsCommand.class, ReloadCommand.class, OrchestratorCommand.class, FleetCommand.class, CompletionCommand.class, AotTrainingCommand.class,
                CommandLine.HelpCommand.class);

        private Commands() {}
    }

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "missing command: use one of run, check-module, demo, status, modules, conns, listeners,"
                + " module, log, audit, policy, tls, orchestrator, fleet, completion (see interlayer --help)");
    }

    /**
     * Runs the command line and exits the JVM with its exit code. {@code run --config FILE} starts the agent without
     * building the command line ({@link RunCommand#plain}).
     */
    public static void main(String[] args) {
        PrintWriter out = new PrintWriter(System.out, true);
        PrintWriter err = new PrintWriter(System.err, true);
        RunCommand run = RunCommand.plain(args, out, err);
        int code;
        if (run == null) {
            code = execute(out, err, args);
        } else {
            try {
                code = run.call();
            } catch (RuntimeException e) {
                code = bug(err, "run", e);
            }
        }
        System.exit(code);
    }

    /**
     * Runs the command line with the given output and error writers and returns the exit code, without
     * exiting; tests call this in-process.
     */
    public static int execute(PrintWriter out, PrintWriter err, String... args) {
        CommandLine cl = commandLine(args);
        cl.setOut(out);
        cl.setErr(err);
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> bug(err, cmd.getCommandName(), ex));
        int code = cl.execute(args);
        out.flush();
        err.flush();
        return code;
    }

    /** A command failed in a way it does not handle: says so, with the trace; returns {@link #FAILURE}. */
    static int bug(PrintWriter err, String command, Exception ex) {
        err.println("interlayer: " + command + " failed: " + ex);
        err.println("interlayer: this is a bug in interlayer; please report it with the command line and the output above");
        ex.printStackTrace(err);
        err.flush();
        return FAILURE;
    }

    /**
     * The command line for {@code args}: with only the command they name when it is one that needs no other (all but
     * {@code help} and {@code completion}, which describe every command), else with every command, for the usage and
     * the "did you mean" of a mistyped name.
     */
    static CommandLine commandLine(String... args) {
        CommandLine cl = new CommandLine(new Main());
        Class<?> only = args.length == 0 ? null : Commands.ALL.get(args[0]);
        if (only != null && only != CommandLine.HelpCommand.class && only != CompletionCommand.class) {
            cl.addSubcommand(only);
        } else {
            Commands.ALL.values().forEach(cl::addSubcommand);
        }
        return cl;
    }

    private static Map<String, Class<?>> commands(Class<?>... classes) {
        Map<String, Class<?>> out = new LinkedHashMap<>();
        for (Class<?> c : classes) {
            out.put(c.getAnnotation(Command.class).name(), c);
        }
        return out;
    }

    /** The version from the build. */
    static String version() {
        Properties p = new Properties();
        try (InputStream in = Main.class.getResourceAsStream("/interlayer-version.properties")) {
            if (in != null) {
                p.load(in);
            }
        } catch (IOException e) {
            return "unknown";
        }
        return p.getProperty("version", "unknown");
    }

    /** Prints the version of the CLI and of the module interfaces it offers. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            StringBuilder ifaces = new StringBuilder();
            for (dev.interlayer.api.InterfaceType t : dev.interlayer.api.InterfaceType.values()) {
                ifaces.append(ifaces.isEmpty() ? "" : ", ").append(t.id()).append(' ').append(t.hostMajor()).append('.').append(t.hostMinor());
            }
            return new String[] {"interlayer " + version(), "module interfaces: " + ifaces, "java " + Runtime.version()};
        }
    }
}
