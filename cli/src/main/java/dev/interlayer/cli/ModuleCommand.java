package dev.interlayer.cli;

import com.google.protobuf.ByteString;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.control.ControlClient;
import dev.interlayer.control.v1.ModuleControlRequest;
import dev.interlayer.control.v1.ModuleControlResponse;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** {@code interlayer module control NAME[@VERSION] COMMAND [BODY...]}: a module-specific request. */
@Command(name = "module", mixinStandardHelpOptions = true, description = "Talk to one module of a running agent.",
        subcommands = {ModuleCommand.Control.class})
final class ModuleCommand implements Runnable {

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "missing command: control");
    }

    @Command(name = "control", mixinStandardHelpOptions = true, description = {"Send a module its control request and print the answer,",
            "e.g. interlayer module control tcplog dump (tcplog answers dump, on, off, clear, status).",
            "NAME@VERSION (as modules stats prints it) asks that loaded version, e.g. an old one still on connections."})
    static final class Control implements Callable<Integer> {
        @Spec CommandSpec spec;
        @Mixin ClientOptions o;
        @Parameters(index = "0", paramLabel = "NAME[@VERSION]", description = "the module's name, or name@version for one loaded version")
        String module;
        @Parameters(index = "1", paramLabel = "COMMAND", description = "the verb the module understands") String command;
        @Parameters(index = "2..*", paramLabel = "BODY", description = "the request's body: the remaining words, joined by spaces") List<String> body;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            return Calls.run(spec.commandLine().getErr(), () -> {
                int at = module.indexOf('@');
                String name = at < 0 ? module : module.substring(0, at);
                String version = at < 0 ? "" : module.substring(at + 1);
                if (!ModuleDescriptor.NAME.matcher(name).matches() || at >= 0 && !ModuleDescriptor.VERSION.matcher(version).matches()) {
                    throw new CliFailure(Main.INVALID, "'" + module + "' is not NAME or NAME@VERSION of a module: a module's descriptor gives it a name"
                            + " that matches " + ModuleDescriptor.NAME.pattern() + " (lower-kebab-case) and a version that matches "
                            + ModuleDescriptor.VERSION.pattern() + " (MAJOR.MINOR.PATCH[-qualifier]), e.g. tcplog or tcplog@1.0.0;"
                            + " interlayer modules stats lists the loaded ones");
                }
                ModuleControlRequest req = Calls.checked(ModuleControlRequest.newBuilder().setName(name).setVersion(version).setCommand(command)
                        .setBody(ByteString.copyFrom(body == null ? "" : String.join(" ", body), StandardCharsets.UTF_8)).build());
                try (ControlClient c = o.open()) {
                    ModuleControlResponse r = Calls.call(o, c, x -> x.modules().control(req));
                    if (o.json) {
                        Calls.json(out, r);
                    } else {
                        String text = r.getBody().toStringUtf8();
                        if (r.getOk()) {
                            out.print(text.endsWith("\n") || text.isEmpty() ? text : text + "\n");
                        } else {
                            throw new CliFailure(Main.FAILURE, "module " + module + " refused '" + command + "': " + text.strip());
                        }
                    }
                    return r.getOk() ? Main.OK : Main.FAILURE;
                }
            });
        }
    }
}
