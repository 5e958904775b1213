package dev.interlayer.engine;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.api.Role;
import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.engine.testing.TestServer;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;

/** Thousands of clients that connect and reset at once cost the log a few lines, not one each; the agent keeps serving. */
class ResetStormTest {

    @Test
    void aResetStormLogsAFewLinesAndServesTheNextClient() throws Exception {
        List<String> lines = new CopyOnWriteArrayList<>();
        Handler capture = new Handler() {
            @Override
            public void publish(LogRecord r) {
                if (r.getMessage() != null && r.getMessage().contains("reset")) lines.add(r.getMessage());
            }

            @Override
            public void flush() {}

            @Override
            public void close() {}
        };
        Logger engineLog = Logger.getLogger("interlayer.engine");
        engineLog.addHandler(capture);
        java.util.logging.Level was = engineLog.getLevel();
        engineLog.setLevel(java.util.logging.Level.INFO); // resets are logged at INFO, which the tests' logging may leave out
        try (EngineFixture fx = new EngineFixture(EngineOptions.defaults().withIoThreads(2), 3); TestServer echo = TestServer.echo()) {
            fx.add(dev.interlayer.engine.testing.TestModule.named("watcher")); // its connections run through the chain, as the did
            InetSocketAddress entry = fx.listen(Role.CLIENT, echo.address());
            int storm = 2_000;
            for (int i = 0; i < storm; i++) {
                try (Socket s = new Socket(entry.getAddress(), entry.getPort())) {
                    s.setSoLinger(true, 0); // close sends RST
                }
            }
            try (Socket s = EngineFixture.connect(entry)) {
                s.getOutputStream().write("after".getBytes());
                assertThat(new String(s.getInputStream().readNBytes(5))).isEqualTo("after");
            }
            Thread.sleep(500);
            System.out.printf("reset storm: %d connect-then-RST, %d log lines about resets%n", storm, lines.size());
            assertThat(lines).as("a burst per listener and window, then a count").hasSizeLessThan(20);
        } finally {
            engineLog.removeHandler(capture);
            engineLog.setLevel(was);
        }
    }
}
