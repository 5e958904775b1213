package dev.interlayer.cli;

import dev.interlayer.control.ControlClient;
import dev.interlayer.control.v1.AttachRequest;
import dev.interlayer.control.v1.AttachResponse;
import dev.interlayer.control.v1.Connection;
import dev.interlayer.control.v1.DetachRequest;
import dev.interlayer.control.v1.ListConnectionsRequest;
import dev.interlayer.control.v1.ListConnectionsResponse;
import dev.interlayer.control.v1.ProcessAttachment;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** {@code interlayer conns}: open connections; attach or detach a module on one of them. */
@Command(name = "conns", mixinStandardHelpOptions = true, description = "List open connections; attach or detach a module on one connection.",
        subcommands = {ConnsCommand.ListCmd.class, ConnsCommand.Attach.class, ConnsCommand.Detach.class})
final class ConnsCommand implements Runnable {

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "missing command: list, attach or detach");
    }

    @Command(name = "list", mixinStandardHelpOptions = true, description = "List open connections with their modules and byte counts.")
    static final class ListCmd implements Callable<Integer> {
        @Spec CommandSpec spec;
        @Mixin ClientOptions o;
        @Option(names = "--listener", paramLabel = "NAME", description = "only this listener's connections") String listener;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            return Calls.run(spec.commandLine().getErr(), () -> {
                // without --listener the request is empty: nothing to check
                ListConnectionsRequest req = listener == null ? ListConnectionsRequest.getDefaultInstance()
                        : Calls.checked(ListConnectionsRequest.newBuilder().setListener(listener).build());
                try (ControlClient c = o.open()) {
                    ListConnectionsResponse r = Calls.call(o, c, x -> x.connections().list(req));
                    if (o.json) {
                        Calls.json(out, r);
                        return Main.OK;
                    }
                    if (r.getConnectionsCount() == 0) {
                        out.println("no open connections");
                        printProcessAttachments(out, r);
                        return Main.OK;
                    }
                    // a TLS column only when a connection has TLS: what its handshakes negotiated
                    boolean tls = r.getConnectionsList().stream().anyMatch(x -> !x.getTls().isEmpty());
                    Table t = tls ? new Table("ID", "LISTENER", "LOCAL", "REMOTE", "APP", "AGE", "SENT", "RECEIVED", "MODULES", "TLS")
                            : new Table("ID", "LISTENER", "LOCAL", "REMOTE", "APP", "AGE", "SENT", "RECEIVED", "MODULES");
                    long now = System.currentTimeMillis();
                    for (Connection x : r.getConnectionsList()) {
                        Object[] row = {Long.toUnsignedString(x.getId()), x.getListener(), x.getLocal(), x.getRemote(), x.getApp().isEmpty() ? "-" : x.getApp(),
                                age(now - x.getStartedAtMs()), x.getBytesSent(), x.getBytesReceived(), String.join(",", x.getModulesList())};
                        if (tls) {
                            row = java.util.Arrays.copyOf(row, row.length + 1);
                            row[row.length - 1] = x.getTls().isEmpty() ? "-" : x.getTls();
                        }
                        t.row(row);
                    }
                    t.print(out);
                    printProcessAttachments(out, r);
                    return Main.OK;
                }
            });
        }

        /** The processes that asked for modules on their next connections (programmatic attach by the application), if any. */
        private static void printProcessAttachments(PrintWriter out, ListConnectionsResponse r) {
            if (r.getProcessAttachmentsCount() == 0) return;
            out.println();
            out.println("process attachments (modules processes asked for on the connections they open):");
            Table t = new Table("ID", "PID", "COMMAND", "MODULE", "CONNECTIONS", "UNTIL");
            long now = System.currentTimeMillis();
            for (ProcessAttachment a : r.getProcessAttachmentsList()) {
                t.row(Long.toUnsignedString(a.getId()), a.getPid(), a.getCommand().isEmpty() ? "-" : a.getCommand(),
                        a.getModule() + (a.getVersion().isEmpty() ? "" : "@" + a.getVersion()),
                        a.getAttached() + (a.getLimit() > 0 ? " of " + a.getLimit() : ""),
                        a.getExpiresAtMs() > 0 ? "in " + age(a.getExpiresAtMs() - now) : "it exits or detaches");
            }
            t.print(out);
        }

        static String age(long ms) {
            Duration d = Duration.ofMillis(Math.max(0, ms));
            if (d.toHours() > 0) return d.toHours() + "h" + d.toMinutesPart() + "m";
            if (d.toMinutes() > 0) return d.toMinutes() + "m" + d.toSecondsPart() + "s";
            return d.toSeconds() + "s";
        }
    }

    @Command(name = "attach", mixinStandardHelpOptions = true, description = "Attach a module to one open connection, from its next data.")
    static final class Attach implements Callable<Integer> {
        @Spec CommandSpec spec;
        @Mixin ClientOptions o;
        @Parameters(index = "0", paramLabel = "CONN", description = "the connection id (interlayer conns list)") long id;
        @Parameters(index = "1", paramLabel = "MODULE", description = "the module's name") String module;

        @Override
        public Integer call() {
            return Calls.run(spec.commandLine().getErr(), () -> {
                AttachRequest req = Calls.checked(AttachRequest.newBuilder().setConnectionId(id).setModule(module).build());
                try (ControlClient c = o.open()) {
                    return print(spec.commandLine().getOut(), o, Calls.call(o, c, x -> x.connections().attach(req)));
                }
            });
        }
    }

    @Command(name = "detach", mixinStandardHelpOptions = true, description = "Detach a module from one open connection.")
    static final class Detach implements Callable<Integer> {
        @Spec CommandSpec spec;
        @Mixin ClientOptions o;
        @Parameters(index = "0", paramLabel = "CONN", description = "the connection id (interlayer conns list)") long id;
        @Parameters(index = "1", paramLabel = "MODULE", description = "the module's name") String module;

        @Override
        public Integer call() {
            return Calls.run(spec.commandLine().getErr(), () -> {
                DetachRequest req = Calls.checked(DetachRequest.newBuilder().setConnectionId(id).setModule(module).build());
                try (ControlClient c = o.open()) {
                    return print(spec.commandLine().getOut(), o, Calls.call(o, c, x -> x.connections().detach(req)));
                }
            });
        }
    }

    /** Prints the outcome; exit 1 when nothing changed (not attached, declined, gone). */
    static int print(PrintWriter out, ClientOptions o, AttachResponse r) {
        if (o.json) {
            Calls.json(out, r);
        } else {
            out.println(r.getMessage());
        }
        return r.getDone() ? Main.OK : Main.FAILURE;
    }
}
