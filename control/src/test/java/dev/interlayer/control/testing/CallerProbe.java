package dev.interlayer.control.testing;

import dev.interlayer.control.ControlClient;
import dev.interlayer.control.v1.CallerInfo;
import dev.interlayer.control.v1.HealthRequest;
import dev.interlayer.control.v1.ListModulesRequest;
import dev.interlayer.control.v1.ModuleStatsRequest;
import io.grpc.StatusRuntimeException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code CallerProbe SOCKET NAME}: renames its own process to NAME (a write to {@code /proc/self/comm}, what
 * {@code prctl(PR_SET_NAME)} does), then calls the agent and prints how the agent saw it and what it granted:
 * {@code command=...}, {@code exe=...}, and {@code Modules.Stats} and {@code Modules.List} each {@code OK} or the
 * status code.
 */
public final class CallerProbe {

    private CallerProbe() {}

    public static void main(String[] args) throws Exception {
        Files.writeString(Path.of("/proc/self/comm"), args[1], StandardCharsets.US_ASCII);
        try (ControlClient c = ControlClient.unix(Path.of(args[0]))) {
            CallerInfo me = c.health().check(HealthRequest.getDefaultInstance()).getCaller();
            System.out.println("command=" + me.getCommand());
            System.out.println("exe=" + me.getExe());
            System.out.println("Modules.Stats " + outcome(() -> c.modules().stats(ModuleStatsRequest.getDefaultInstance())));
            System.out.println("Modules.List " + outcome(() -> c.modules().list(ListModulesRequest.getDefaultInstance())));
        }
    }

    private static String outcome(Runnable r) {
        try {
            r.run();
            return "OK";
        } catch (StatusRuntimeException e) {
            return e.getStatus().getCode().toString();
        }
    }
}
