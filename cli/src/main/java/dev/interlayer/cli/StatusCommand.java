package dev.interlayer.cli;

import dev.interlayer.control.v1.HealthRequest;
import dev.interlayer.control.v1.HealthResponse;
import java.time.Instant;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** {@code interlayer status}: is an agent serving, and what does it hold. */
@Command(name = "status", mixinStandardHelpOptions = true, description = "Show whether the agent is serving, and its modules, connections and policy.")
final class StatusCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Mixin
    ClientOptions o;

    @Override
    public Integer call() {
        return Calls.unary(spec, o, x -> x.health().check(HealthRequest.getDefaultInstance()), (out, h) -> {
            out.println("agent " + h.getVersion() + " " + h.getStatus() + " at " + o.where() + " (pid " + h.getPid() + ", up "
                    + ConnsCommand.ListCmd.age(h.getUptimeMs()) + ", " + h.getTransport() + ")");
            if (h.getStuckCount() > 0) {
                out.println("  stuck: " + h.getStuckCount() + " event loop" + (h.getStuckCount() == 1 ? "" : "s")
                        + " held by a module call that did not stop when asked (new connections go to the other loops):");
                h.getStuckList().forEach(call -> out.println("    " + ModulesCommand.describe(call)));
            }
            out.println("  modules: " + h.getModules() + (h.getFailures() > 0 ? " (" + h.getFailures() + " failed to load)" : ""));
            out.println("  listeners: " + h.getListeners() + ", open connections: " + h.getConnections());
            out.println("  tls provider: " + h.getTlsProvider());
            if (h.getInterceptionCount() > 0) {
                out.println("  interception (nftables, as installed):");
                h.getInterceptionList().forEach(line -> out.println("    " + line));
            }
            out.println("  policy: " + h.getPolicy().getSource() + " (" + h.getPolicy().getRules() + " rules)"
                    + (h.getSecurity() ? "" : "; SECURITY MODULE OFF"));
            if (!h.getPolicy().getRefused().isEmpty()) {
                out.println("  policy edit REFUSED at " + LogCommand.TIME.format(Instant.ofEpochMilli(h.getPolicy().getRefusedAtMs()))
                        + ", the policy loaded at " + LogCommand.TIME.format(Instant.ofEpochMilli(h.getPolicy().getLoadedAtMs()))
                        + " stays in force: " + h.getPolicy().getRefused());
            }
            if (h.hasConfig()) {
                out.println("  config: " + h.getConfig().getSource() + ", loaded at " + LogCommand.TIME.format(Instant.ofEpochMilli(h.getConfig().getLoadedAtMs())));
                if (!h.getConfig().getRefused().isEmpty()) {
                    out.println("  config reload REFUSED at " + LogCommand.TIME.format(Instant.ofEpochMilli(h.getConfig().getRefusedAtMs()))
                            + ", the config loaded before stays in force:");
                    h.getConfig().getRefused().lines().forEach(p -> out.println("    " + p));
                }
            }
            out.println("  you: " + AuditCommand.Tail.caller(h.getCaller()));
            return Main.OK;
        });
    }
}
