package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code interlayer run} with {@code agent.log: {format: json, file: ...}}: the agent's log lines go to the file, as JSON. */
class AgentLogFileTest {

    @TempDir
    Path dir;

    @Test
    void theRunningAgentWritesJsonLinesToItsLogFileNamingTheConnection() throws Exception {
        int listen;
        int dead;
        try (ServerSocket a = new ServerSocket(0); ServerSocket b = new ServerSocket(0)) {
            listen = a.getLocalPort();
            dead = b.getLocalPort(); // closed again: the upstream refuses
        }
        Files.writeString(dir.resolve("agent.yaml"), """
                agent:
                  control: {enabled: false}
                  log: {format: json, file: logs/agent.log}
                listeners:
                  - {name: web, listen: 127.0.0.1:%d, upstream: 127.0.0.1:%d, role: client}
                """.formatted(listen, dead));
        Path jar = Path.of(System.getProperty("interlayer.distJar", "../cli/target/interlayer.jar"));
        Process agent = new ProcessBuilder(ControlCliTest.java(), "--sun-misc-unsafe-memory-access=allow", "--enable-native-access=ALL-UNNAMED",
                "-jar", jar.toString(), "run", "--config", dir.resolve("agent.yaml").toString())
                .redirectOutput(dir.resolve("stdout").toFile()).redirectError(dir.resolve("stderr").toFile()).start();
        Path log = dir.resolve("logs/agent.log");
        try {
            waitForLine(agent, log, "listener web");
            try (Socket s = new Socket("127.0.0.1", listen)) {
                s.setSoTimeout(10_000);
                assertThat(s.getInputStream().read()).isEqualTo(-1);
            } catch (IOException reset) {
                // the agent resets the connection whose upstream refused: expected
            }
            JsonObject reset = waitForLine(agent, log, "cannot connect upstream");
            assertThat(reset.get("level").getAsString()).isEqualTo("INFO");
            assertThat(reset.get("logger").getAsString()).isEqualTo("interlayer.engine");
            assertThat(reset.get("connection").getAsLong()).isPositive();
            assertThat(reset.get("message").getAsString()).startsWith("connection " + reset.get("connection").getAsLong() + " (web) reset");
        } finally {
            agent.destroy();
            agent.waitFor(20, TimeUnit.SECONDS);
        }
        assertThat(Files.readString(dir.resolve("stderr"))).as("log lines go to the file, not standard error").doesNotContain("interlayer.engine");
        for (String line : Files.readAllLines(log)) {
            JsonObject o = JsonParser.parseString(line).getAsJsonObject();
            assertThat(o.keySet()).contains("time", "level", "logger", "message");
        }
    }

    /** Waits until a line of {@code log} has a message containing {@code text}; returns it parsed. */
    private static JsonObject waitForLine(Process agent, Path log, String text) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (System.nanoTime() < deadline) {
            assertThat(agent.isAlive()).as("the agent is running").isTrue();
            List<String> lines = Files.exists(log) ? Files.readAllLines(log) : List.of();
            for (String line : lines) {
                JsonObject o = JsonParser.parseString(line).getAsJsonObject();
                if (o.get("message").getAsString().contains(text)) return o;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("no log line with '" + text + "' in " + log + " within 30 s: " + (Files.exists(log) ? Files.readString(log) : "no file"));
    }
}
