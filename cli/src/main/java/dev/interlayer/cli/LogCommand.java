package dev.interlayer.cli;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import com.google.protobuf.util.JsonFormat;
import dev.interlayer.control.ControlClient;
import dev.interlayer.control.v1.Event;
import dev.interlayer.control.v1.SubscribeRequest;
import io.grpc.StatusRuntimeException;
import java.io.PrintWriter;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.Iterator;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** {@code interlayer log tail}: live tcplog records (or any module events) from a running agent. */
@Command(name = "log", mixinStandardHelpOptions = true, description = "Follow what modules record, live.", subcommands = {LogCommand.Tail.class})
final class LogCommand implements Runnable {

    static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("HH:mm:ss.SSS").withZone(ZoneId.systemDefault());

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "missing command: tail");
    }

    @Command(name = "tail", mixinStandardHelpOptions = true, description = {"Print tcplog's connection records as connections end, until Ctrl-C.",
            "With --all, every module event (loaded, state changes, unloaded, and what modules publish)."})
    static final class Tail implements Callable<Integer> {
        @Spec CommandSpec spec;
        @Mixin ClientOptions o;
        @Option(names = "--module", paramLabel = "NAME", defaultValue = "tcplog", description = "whose events (default: ${DEFAULT-VALUE})") String module;
        @Option(names = "--kind", paramLabel = "KIND", defaultValue = "record", description = "which kind of event (default: ${DEFAULT-VALUE})") String kind;
        @Option(names = "--all", description = "every event of every module") boolean all;
        @Option(names = "--count", paramLabel = "N", description = "stop after N events") Integer count;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            PrintWriter err = spec.commandLine().getErr();
            return Calls.run(err, () -> {
                SubscribeRequest.Builder b = SubscribeRequest.newBuilder();
                if (!all) {
                    b.addModules(module).addKinds(kind);
                }
                SubscribeRequest req = Calls.checked(b.build());
                int seen = 0;
                try (ControlClient c = o.open()) {
                    Iterator<Event> it = Calls.call(o, c, x -> x.events().subscribe(req));
                    while (count == null || seen < count) {
                        Event e;
                        try {
                            if (!it.hasNext()) {
                                break;
                            }
                            e = it.next();
                        } catch (StatusRuntimeException ex) {
                            throw Calls.failure(o, ex);
                        }
                        switch (e.getKind()) {
                            case "subscribed" -> {
                                if (!o.json) {
                                    err.println("interlayer: " + e.getText() + " on " + o.where() + " (Ctrl-C to stop)");
                                    err.flush();
                                }
                                continue;
                            }
                            case "dropped" -> {
                                err.println("interlayer: " + e.getText());
                                err.flush();
                                continue;
                            }
                            default -> { }
                        }
                        if (o.json) {
                            Calls.json(out, e);
                        } else {
                            out.println(human(e));
                        }
                        out.flush();
                        seen++;
                    }
                }
                return Main.OK;
            });
        }

        static String human(Event e) {
            String at = TIME.format(Instant.ofEpochMilli(e.getAtMs()));
            if (e.getKind().equals("record") && e.getModule().equals("tcplog")) {
                try {
                    Struct.Builder s = Struct.newBuilder();
                    JsonFormat.parser().merge(e.getText(), s);
                    var f = s.getFieldsMap();
                    return at + "  conn " + num(f.get("id")) + "  " + str(f.get("listener")) + "  " + str(f.get("local")) + " -> " + str(f.get("remote"))
                            + "  app=" + str(f.get("app")) + "  sent=" + num(f.get("bytesSent")) + " received=" + num(f.get("bytesReceived"))
                            + "  " + str(f.get("durationMs")) + "ms  " + str(f.get("reason"));
                } catch (Exception ex) {
                    // not the record format this CLI knows: show it as it came
                }
            }
            return at + "  " + e.getModule() + (e.getVersion().isEmpty() ? "" : "@" + e.getVersion()) + "  " + e.getKind() + "  " + e.getText();
        }

        private static String str(Value v) {
            if (v == null || v.hasNullValue()) return "-";
            if (v.hasNumberValue()) return num(v);
            return v.getStringValue();
        }

        private static String num(Value v) {
            if (v == null || !v.hasNumberValue()) return v == null ? "-" : v.getStringValue();
            double d = v.getNumberValue();
            return d == Math.rint(d) && Math.abs(d) < 1e15 ? Long.toString((long) d) : Double.toString(d);
        }
    }
}
