package dev.interlayer.cli;

import dev.interlayer.control.ControlClient;
import dev.interlayer.control.v1.AuditEntry;
import dev.interlayer.control.v1.AuditQuery;
import dev.interlayer.control.v1.AuditQueryResponse;
import dev.interlayer.control.v1.CallerInfo;
import dev.interlayer.control.v1.ReopenAuditRequest;
import dev.interlayer.control.v1.ReopenAuditResponse;
import io.grpc.StatusRuntimeException;
import java.io.PrintWriter;
import java.time.Instant;
import java.util.Iterator;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** {@code interlayer audit tail}: the security module's decisions; {@code interlayer audit reopen}: open the audit file again. */
@Command(name = "audit", mixinStandardHelpOptions = true, description = "Read the control plane's audit log; reopen the audit file after rotating it.",
        subcommands = {AuditCommand.Tail.class, AuditCommand.Reopen.class})
final class AuditCommand implements Runnable {

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "missing command: tail or reopen");
    }

    @Command(name = "reopen", mixinStandardHelpOptions = true, description = {"Make the agent close its audit file and open its path again,",
            "after moving the file away to rotate it (as SIGUSR1 to the agent does). The agent also rotates the file",
            "itself by size (agent.control.audit-max-size)."})
    static final class Reopen implements Callable<Integer> {
        @Spec CommandSpec spec;
        @Mixin ClientOptions o;

        @Override
        public Integer call() {
            return Calls.unary(spec, o, x -> x.audit().reopen(ReopenAuditRequest.getDefaultInstance()), (out, r) -> {
                out.println("audit file " + r.getFile() + " reopened (" + r.getSize() + " bytes)");
                return Main.OK;
            });
        }
    }

    @Command(name = "tail", mixinStandardHelpOptions = true, description = {"Print the newest audit decisions, then follow new ones until Ctrl-C.",
            "Each line: time, decision, Endpoint.Method, request or response, caller, deciding rule and reason."})
    static final class Tail implements Callable<Integer> {
        @Spec CommandSpec spec;
        @Mixin ClientOptions o;
        @Option(names = "--decision", paramLabel = "WORD", description = "only granted, denied or invalid") String decision;
        @Option(names = "--endpoint", paramLabel = "NAME", description = "only this endpoint, e.g. Modules") String endpoint;
        @Option(names = {"-n", "--lines"}, paramLabel = "N", defaultValue = "20", description = "how many past decisions to show first (default: ${DEFAULT-VALUE})") int lines;
        @Option(names = "--no-follow", description = "print the past decisions and stop") boolean noFollow;
        @Option(names = "--count", paramLabel = "N", description = "stop after N decisions") Integer count;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            return Calls.run(spec.commandLine().getErr(), () -> {
                if (lines < 1 || lines > 10000) {
                    throw new CliFailure(Main.USAGE, "--lines must be 1..10000");
                }
                AuditQuery q = Calls.checked(AuditQuery.newBuilder().setLimit(lines).setDecision(decision == null ? "" : decision)
                        .setEndpoint(endpoint == null ? "" : endpoint).build());
                try (ControlClient c = o.open()) {
                    if (noFollow) {
                        AuditQueryResponse r = Calls.call(o, c, x -> x.audit().query(q));
                        for (AuditEntry e : r.getEntriesList()) {
                            print(out, e);
                        }
                        return Main.OK;
                    }
                    Iterator<AuditEntry> it = Calls.call(o, c, x -> x.audit().tail(q));
                    int seen = 0;
                    try {
                        while ((count == null || seen < count) && it.hasNext()) {
                            print(out, it.next());
                            out.flush();
                            seen++;
                        }
                    } catch (StatusRuntimeException e) {
                        throw Calls.failure(o, e);
                    }
                    return Main.OK;
                }
            });
        }

        private void print(PrintWriter out, AuditEntry e) {
            if (o.json) {
                Calls.json(out, e);
                return;
            }
            out.println(LogCommand.TIME.format(Instant.ofEpochMilli(e.getAtMs())) + "  " + pad(e.getDecision(), 7) + "  "
                    + e.getEndpoint() + "." + e.getMethod() + " " + e.getKind() + "  " + caller(e.getCaller()) + "  rule " + e.getRule() + ": " + e.getReason());
        }

        private static String pad(String s, int w) {
            return s.length() >= w ? s : s + " ".repeat(w - s.length());
        }

        static String caller(CallerInfo c) {
            if (c.getTransport().equals("tls")) {
                return "tls:" + c.getSubject();
            }
            return c.getTransport() + ":uid=" + c.getUid() + (c.getUser().isEmpty() ? "" : "(" + c.getUser() + ")") + ",pid=" + c.getPid()
                    + (c.getCommand().isEmpty() ? "" : "," + c.getCommand());
        }
    }
}
