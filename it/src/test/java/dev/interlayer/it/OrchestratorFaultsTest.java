package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.agent.Agent;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.orchestrator.v1.AckState;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.testing.TestJars;
import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What goes wrong around an orchestrator, with a real orchestrator, its embedded PostgreSQL and real agents on loopback:
 * a snapshot that fails half-way on an agent, a database that stops, a client that sends garbage on the agents' stream.
 */
class OrchestratorFaultsTest {

    @TempDir
    Path tmp;

    private Fleet fleet;

    @AfterEach
    void close() {
        if (fleet != null) {
            fleet.close();
        }
    }

    private static String xor(String s, int key) {
        char[] c = s.toCharArray();
        for (int i = 0; i < c.length; i++) {
            c[i] ^= key;
        }
        return new String(c);
    }

    /** A jar of module {@code name}@1.0.0 whose init throws. */
    private static Path brokenJar(Path dir, String name) {
        String cls = "broken." + Character.toUpperCase(name.charAt(0)) + name.substring(1);
        return TestJars.jar().source(cls, TestJars.streamModule(cls, name, "1.0.0", """
                    public void init(ModuleEnv env) { throw new IllegalStateException("%s refuses to start"); }
                """.formatted(name))).service(cls).write(dir.resolve(name + ".jar"));
    }

    @Test
    void aSnapshotThatFailsAfterALoadIsUndoneAndTheAgentRunsWhatItRanBefore() throws Exception {
        fleet = Fleet.start(tmp, s -> s);
        ByteArrayOutputStream upstream = new ByteArrayOutputStream();
        try (TestServer app = TestServer.echo(upstream)) {
            Agent agent = fleet.agent("a1", app.address());
            int port = agent.listeners().get("out").getPort();
            fleet.waitForAgents("a1 connected", a -> a.getConnected(), "a1");
            fleet.ok("upload", HotReplaceTest.markerJar(tmp, "1.0.0", 1).toString());
            fleet.ok("upload", HotReplaceTest.markerJar(tmp, "2.0.0", 2).toString());
            fleet.ok("upload", brokenJar(tmp, "broken").toString());
            String message = "abcdefghij".repeat(300);

            fleet.ok("deploy", "marker@1.0.0", "--to", "all");
            long v1 = fleet.status().getRevision();
            fleet.waitForAgents("marker@1.0.0 applied", a -> a.getAck() == AckState.APPLIED && a.getAppliedRevision() == v1, "a1");
            fleet.ok("priority", "marker", "77");
            long prio = fleet.status().getRevision();
            fleet.waitForAgents("priority 77 applied", a -> a.getAck() == AckState.APPLIED && a.getAppliedRevision() == prio, "a1");
            assertThat(Fleet.Held.through(port, upstream, message)).isEqualTo(xor(message, 1));

            try (Fleet.Held held = Fleet.Held.open(port, upstream)) {
                assertThat(held.send(message)).isEqualTo(xor(message, 1));
                // a module whose init fails: refused, and nothing else changes
                fleet.ok("deploy", "broken@1.0.0", "--to", "all");
                fleet.waitForAgents("broken refused", a -> a.getAck() == AckState.REFUSED, "a1");
                // the next snapshot loads marker@2.0.0 (its newest deployment comes first), which retires 1.0.0, then
                // broken@1.0.0 fails: marker@2.0.0 must not stay, 1.0.0 must run as before
                fleet.ok("rotate", "marker@2.0.0");
                long rotated = fleet.status().getRevision();
                fleet.waitForAgents("the rotation refused", a -> a.getAck() == AckState.REFUSED && a.getDesiredRevision() == rotated, "a1");
                String reason = fleet.status().getAgents(0).getAckReason();
                assertThat(reason).contains("broken@1.0.0 did not load").contains("broken refuses to start")
                        .contains("undone: marker@2.0.0 unloaded, marker@1.0.0 loaded again (ACTIVE, priority 77)")
                        .contains("nothing of revision " + rotated + " was applied");
                assertThat(agent.registry().modules()).as("what the agent's registry holds")
                        .noneMatch(m -> m.id().equals("marker@2.0.0") && !m.state().leaving());
                LoadedModule now = agent.registry().find("marker").orElseThrow();
                assertThat(now.version()).isEqualTo("1.0.0");
                assertThat(now.state().name()).isEqualTo("ACTIVE");
                assertThat(now.priority()).isEqualTo(77);
                assertThat(held.send(message)).as("the connection opened before keeps 1.0.0").isEqualTo(xor(message, 1));
                assertThat(Fleet.Held.through(port, upstream, message)).as("a new connection gets 1.0.0 again").isEqualTo(xor(message, 1));
            }

            // once the broken module is gone, the rotation applies
            fleet.ok("revoke", "broken");
            long fixed = fleet.status().getRevision();
            fleet.waitForAgents("marker@2.0.0 applied", a -> a.getAck() == AckState.APPLIED && a.getAppliedRevision() == fixed
                    && Fleet.runs(a, "marker", "2.0.0", "ACTIVE"), "a1");
            assertThat(Fleet.Held.through(port, upstream, message)).isEqualTo(xor(message, 2));
        }
    }
}
