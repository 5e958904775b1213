package dev.interlayer.cli;

import dev.interlayer.control.ControlClient;
import dev.interlayer.control.v1.ReloadTlsRequest;
import dev.interlayer.control.v1.ReloadTlsResponse;
import dev.interlayer.control.v1.TlsReloadResult;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** {@code interlayer tls}: TLS operations on a running agent's listeners. */
@Command(name = "tls", mixinStandardHelpOptions = true, description = "TLS of a running agent's listeners: reload certificates.",
        subcommands = {TlsCommand.Reload.class})
final class TlsCommand implements Runnable {

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "missing command: reload");
    }

    @Command(name = "reload", mixinStandardHelpOptions = true, description = {"Make the agent read a listener's certificates, keys, CA and CRL",
            "files again (all listeners with TLS when none is named). New handshakes use the new files; open connections",
            "keep theirs. A listener whose files do not load keeps its old certificates. The agent also reloads by itself",
            "when the files change. Exit 0 when every listener reloaded, 1 when one did not."})
    static final class Reload implements Callable<Integer> {
        @Spec CommandSpec spec;
        @Mixin ClientOptions o;
        @Parameters(index = "0", arity = "0..1", paramLabel = "LISTENER", description = "the listener (default: every listener with TLS)") String listener;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            return Calls.run(spec.commandLine().getErr(), () -> {
                ReloadTlsRequest req = Calls.checked(ReloadTlsRequest.newBuilder().setListener(listener == null ? "" : listener).build());
                try (ControlClient c = o.open()) {
                    ReloadTlsResponse r = Calls.call(o, c, x -> x.listeners().reloadTls(req));
                    boolean failed = r.getListenersList().stream().anyMatch(l -> !l.getError().isEmpty());
                    if (o.json) {
                        Calls.json(out, r);
                    } else {
                        for (TlsReloadResult l : r.getListenersList()) {
                            if (l.getError().isEmpty()) {
                                out.println(l.getListener() + ": reloaded " + String.join(", ", l.getCertificatesList()));
                            } else {
                                out.println(l.getListener() + ": NOT reloaded: " + l.getError());
                            }
                        }
                    }
                    return failed ? Main.FAILURE : Main.OK;
                }
            });
        }
    }
}
