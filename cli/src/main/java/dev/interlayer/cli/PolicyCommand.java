package dev.interlayer.cli;

import dev.interlayer.control.PolicyTester;
import dev.interlayer.control.YamlException;
import dev.interlayer.control.v1.PolicyInfo;
import dev.interlayer.control.v1.ReloadPolicyRequest;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** {@code interlayer policy}: test a policy against its cases; make a running agent reload its policy file. */
@Command(name = "policy", mixinStandardHelpOptions = true, description = "Test control-plane policies; reload an agent's policy.",
        subcommands = {PolicyCommand.Test.class, PolicyCommand.Reload.class})
final class PolicyCommand implements Runnable {

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "missing command: test or reload");
    }

    @Command(name = "test", mixinStandardHelpOptions = true, description = {"Run a policy's test cases: each case's message goes through the",
            "structure check and the policy, and its decision is compared with the expected one. No agent is needed.",
            "Exit 0 when every case matches, 1 when one does not, 2 when a file is not valid."})
    static final class Test implements Callable<Integer> {
        @Spec CommandSpec spec;
        @Parameters(index = "0", paramLabel = "POLICY", description = "the policy file") Path policy;
        @Parameters(index = "1", paramLabel = "CASES", description = "the test cases file") Path cases;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            PrintWriter err = spec.commandLine().getErr();
            List<PolicyTester.Outcome> outcomes;
            try {
                outcomes = PolicyTester.run(policy, cases);
            } catch (YamlException e) {
                err.println("interlayer: " + e.getMessage());
                return Main.USAGE;
            }
            int failed = 0;
            for (PolicyTester.Outcome x : outcomes) {
                out.println((x.passed() ? "ok    " : "FAIL  ") + x.name() + " (" + cases + ":" + x.line() + "): expected " + x.expected()
                        + ", got " + x.actual() + (x.passed() ? "" : " - " + x.reason()));
                if (!x.passed()) failed++;
            }
            out.println(outcomes.size() + " cases: " + (outcomes.size() - failed) + " passed, " + failed + " failed");
            return failed == 0 ? Main.OK : Main.FAILURE;
        }
    }

    @Command(name = "reload", mixinStandardHelpOptions = true, description = {"Make the agent read its policy file again. A bad file is refused",
            "(the error names file:line) and the policy in force stays."})
    static final class Reload implements Callable<Integer> {
        @Spec CommandSpec spec;
        @Mixin ClientOptions o;

        @Override
        public Integer call() {
            return Calls.unary(spec, o, x -> x.policy().reload(ReloadPolicyRequest.getDefaultInstance()), (out, p) -> {
                out.println("policy " + p.getSource() + " in force: " + p.getRules() + " rules");
                return Main.OK;
            });
        }
    }
}
