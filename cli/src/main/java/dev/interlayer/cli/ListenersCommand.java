package dev.interlayer.cli;

import dev.interlayer.control.v1.ListListenersRequest;
import dev.interlayer.control.v1.ListListenersResponse;
import dev.interlayer.control.v1.ListenerInfo;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** {@code interlayer listeners list}: the running listeners. */
@Command(name = "listeners", mixinStandardHelpOptions = true, description = "List a running agent's listeners.",
        subcommands = {ListenersCommand.ListCmd.class})
final class ListenersCommand implements Runnable {

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "missing command: list");
    }

    @Command(name = "list", mixinStandardHelpOptions = true, description = "List the running listeners.")
    static final class ListCmd implements Callable<Integer> {
        @Spec CommandSpec spec;
        @Mixin ClientOptions o;

        @Override
        public Integer call() {
            return Calls.unary(spec, o, x -> x.listeners().list(ListListenersRequest.getDefaultInstance()), (out, r) -> {
                Table t = new Table("NAME", "PROTOCOL", "ROLE", "LISTEN", "UPSTREAM", "ATTACH");
                for (ListenerInfo l : r.getListenersList()) {
                    t.row(l.getName(), l.getProtocol(), l.getRole(), l.getListen(), l.getUpstream(), String.join(",", l.getAttachList()));
                }
                t.print(out);
                return Main.OK;
            });
        }
    }
}
