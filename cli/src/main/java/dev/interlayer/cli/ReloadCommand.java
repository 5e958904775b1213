package dev.interlayer.cli;

import dev.interlayer.control.v1.ReloadConfigRequest;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** {@code interlayer reload}: make a running agent read its config file again and apply it. */
@Command(name = "reload", mixinStandardHelpOptions = true, description = {"Make the agent read its config file again and apply the difference",
        "without a restart (as SIGHUP does): listeners added, removed or changed, module entries' settings; the policy file",
        "and the TLS files are read again. Listeners the file does not change keep their connections. A file with problems,",
        "or a change that needs a restart, is refused with every problem and the running config is unchanged.",
        "Exit 0 when the config was applied, 1 when it was refused."})
final class ReloadCommand implements Callable<Integer> {
    @Spec CommandSpec spec;
    @Mixin ClientOptions o;

    @Override
    public Integer call() {
        return Calls.unary(spec, o, x -> x.config().reload(ReloadConfigRequest.getDefaultInstance()), (out, r) -> {
            if (!r.getApplied()) {
                out.println("config " + r.getConfig().getSource() + " NOT reloaded: " + r.getProblemsCount() + " problem"
                        + (r.getProblemsCount() == 1 ? "" : "s") + "; the running config is unchanged:");
                r.getProblemsList().forEach(p -> out.println("  " + p));
                return Main.FAILURE;
            }
            out.println("config " + r.getConfig().getSource() + " reloaded" + (r.getChangesCount() == 0 ? ": nothing changed" : ":"));
            r.getChangesList().forEach(c -> out.println("  " + c));
            r.getWarningsList().forEach(w -> out.println("  warning: " + w));
            return Main.OK;
        });
    }
}
