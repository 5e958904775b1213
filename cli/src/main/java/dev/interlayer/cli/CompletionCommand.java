package dev.interlayer.cli;

import java.util.concurrent.Callable;
import picocli.AutoComplete;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code interlayer completion bash}: prints a shell completion script. */
@Command(name = "completion", mixinStandardHelpOptions = true, description = {"Print a completion script for bash (zsh loads it with bashcompinit):",
        "  source <(interlayer completion bash)"})
final class CompletionCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Parameters(paramLabel = "SHELL", defaultValue = "bash", description = "bash (the default; zsh: autoload bashcompinit && bashcompinit first)")
    String shell;

    @Override
    public Integer call() {
        if (!shell.equals("bash") && !shell.equals("zsh")) {
            spec.commandLine().getErr().println("interlayer: no completion for " + shell + "; bash and zsh (through bashcompinit) are supported");
            return Main.USAGE;
        }
        spec.commandLine().getOut().print(AutoComplete.bash("interlayer", spec.root().commandLine()));
        return Main.OK;
    }
}
