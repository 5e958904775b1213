package dev.interlayer.it;

import static dev.interlayer.it.Fleets.runs;
import static dev.interlayer.it.Fleets.through;
import static dev.interlayer.it.Fleets.xor;
import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.agent.Agent;
import dev.interlayer.agent.AgentConfig;
import dev.interlayer.cli.Main;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.it.Fleets.Cli;
import dev.interlayer.it.Fleets.Held;
import dev.interlayer.orchestrator.EmbeddedDatabase;
import dev.interlayer.orchestrator.Orchestrator;
import dev.interlayer.orchestrator.OrchestratorSettings;
import dev.interlayer.orchestrator.v1.AckState;
import dev.interlayer.orchestrator.v1.AgentStatus;
import dev.interlayer.orchestrator.v1.RolloutPhase;
import dev.interlayer.orchestrator.v1.RolloutStatus;
import dev.interlayer.orchestrator.v1.StatusResponse;
import dev.interlayer.runtime.testing.TestJars;
import java.io.ByteArrayOutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Staged rollouts and orchestrator replicas with real agents on loopback and traffic through them: a good version goes
 * canary → everyone, a faulting one is rolled back by itself before the rest gets it, an orchestrator killed (SIGKILL)
 * mid-rollout resumes it after a restart, and with two replicas on one PostgreSQL the agents and the lead move to the
 * one left when the other is killed. What each agent runs is checked in the bytes its upstream receives.
 */
class RolloutTest {

    private static final String MESSAGE = "abcdefghij".repeat(300);

    @TempDir
    Path tmp;

    private Orchestrator orchestrator;
    private final List<Process> processes = new ArrayList<>();
    private final Map<String, Agent> agents = new LinkedHashMap<>();
    private final Map<String, ByteArrayOutputStream> upstreams = new LinkedHashMap<>();
    private final List<TestServer> apps = new ArrayList<>();
    private EmbeddedDatabase database;
    private Path socket;

    @BeforeEach
    void open() throws Exception {
        // the embedded PostgreSQL runs as an unprivileged user, which must be able to enter the data folder's parents
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    @AfterEach
    void close() throws Exception {
        for (Agent a : agents.values()) {
            a.close();
        }
        for (TestServer app : apps) {
            app.close();
        }
        for (Process p : processes) {
            p.destroy();
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
        }
        if (orchestrator != null) {
            orchestrator.close();
        }
        if (database != null) {
            database.close();
        }
        for (Path log : Files.list(tmp).filter(f -> f.getFileName().toString().endsWith(".log")).toList()) {
            assertThat(Files.readString(log)).as(log.toString()).doesNotContain("LEAK:");
        }
    }

    private Cli fleet(String... args) {
        return Fleets.fleet(socket, args);
    }

    private Cli ok(String... args) {
        Cli c = fleet(args);
        assertThat(c.code()).as(String.join(" ", args) + ": " + c.out() + c.err()).isZero();
        return c;
    }

    /** Starts agent {@code name} in this JVM in front of an echo upstream, joining the orchestrator(s) at {@code addresses}. */
    private void startAgent(String name, String addresses, Path ca, String label) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve(name));
        Path config = dir.resolve("agent.yaml");
        if (!Files.exists(config)) {
            ByteArrayOutputStream upstream = new ByteArrayOutputStream();
            TestServer app = TestServer.echo(upstream);
            apps.add(app);
            upstreams.put(name, upstream);
            Files.writeString(config, Fleets.agentYaml(tmp, name, addresses, Fleets.token(socket, tmp, name, label), ca, Fleets.freePort(), app.address()));
        }
        agents.put(name, Agent.start(AgentConfig.load(config)));
    }

    private int port(String agent) {
        return agents.get(agent).listeners().get("out").getPort();
    }

    /** What {@code agent}'s upstream receives of a message on a new connection. */
    private String through(String agent) throws Exception {
        return Fleets.through(port(agent), upstreams.get(agent), MESSAGE);
    }

    private Held held(String agent) throws Exception {
        return Held.open(port(agent), upstreams.get(agent));
    }

    private RolloutStatus rollout(long id) {
        StatusResponse s = Fleets.status(socket);
        return s.getRolloutsList().stream().filter(r -> r.getId() == id).findFirst().orElseThrow(() -> new AssertionError("no rollout " + id + ": " + s));
    }

    private RolloutStatus waitForRollout(long id, String what, Predicate<RolloutStatus> test) throws Exception {
        StatusResponse s = Fleets.waitForStatus(socket, "rollout " + id + ": " + what,
                st -> st.getRolloutsList().stream().anyMatch(r -> r.getId() == id && test.test(r)));
        return s.getRolloutsList().stream().filter(r -> r.getId() == id).findFirst().orElseThrow();
    }

    private void waitForAgents(String what, Predicate<AgentStatus> each, String... names) throws Exception {
        Fleets.waitForAgents(socket, what, each, names);
    }

    private static boolean applied(AgentStatus a, String version) {
        return a.getConnected() && a.getAck() == AckState.APPLIED && a.getAppliedRevision() == a.getDesiredRevision() && runs(a, "marker", version, "ACTIVE");
    }

    private static long started(Cli c) {
        return Long.parseLong(c.out().replaceAll("(?s)^started rollout (\\d+) .*", "$1"));
    }

    /** marker@1.0.0 (XOR 1) and marker@2.0.0 (XOR 2) uploaded, 1.0.0 deployed to all and applied by {@code names}. */
    private void markerOneEverywhere(String... names) throws Exception {
        ok("upload", HotReplaceTest.markerJar(tmp, "1.0.0", 1).toString());
        ok("upload", HotReplaceTest.markerJar(tmp, "2.0.0", 2).toString());
        ok("deploy", "marker@1.0.0", "--to", "all");
        waitForAgents("marker@1.0.0 applied everywhere", a -> applied(a, "1.0.0"), names);
        for (String n : names) {
            assertThat(through(n)).as(n + " runs marker 1.0.0").isEqualTo(xor(MESSAGE, 1));
        }
    }

    private Orchestrator startInProcess() throws Exception {
        orchestrator = Orchestrator.start(OrchestratorSettings.embedded(tmp.resolve("orchestrator"), new InetSocketAddress("127.0.0.1", 0))
                .withSocket(tmp.resolve("orchestrator.sock")));
        socket = orchestrator.socket();
        return orchestrator;
    }

    @Test
    void aGoodVersionGoesToTheCanaryFirstThenEverywhereAndASilentAgentHoldsTheRollout() throws Exception {
        startInProcess();
        String at = "127.0.0.1:" + orchestrator.agentAddress().getPort();
        startAgent("c1", at, orchestrator.caFile(), "ring=canary");
        startAgent("a2", at, orchestrator.caFile(), "ring=main");
        startAgent("a3", at, orchestrator.caFile(), "ring=main");
        waitForAgents("three agents connected", AgentStatus::getConnected, "a2", "a3", "c1");
        markerOneEverywhere("c1", "a2", "a3");

        // refused before anything changes, each saying what to do
        Cli bad = fleet("rollout", "marker@2.0.0", "--canary", "label=ring=nowhere");
        assertThat(bad.code()).isEqualTo(Main.FAILURE);
        assertThat(bad.err()).contains("the canary label=ring=nowhere selects no enrolled agent");
        bad = fleet("rollout", "marker@9.9.9", "--canary", "agent=c1");
        assertThat(bad.err()).contains("no jar of marker@9.9.9 was uploaded");
        bad = fleet("rollout", "marker@2.0.0", "--canary", "all");
        assertThat(bad.code()).isEqualTo(Main.INVALID);
        assertThat(bad.err()).contains("the canary is some agents, not all");

        long id;
        try (Held before = held("c1")) {
            assertThat(before.send(MESSAGE)).isEqualTo(xor(MESSAGE, 1));
            Cli c = ok("rollout", "marker@2.0.0", "--canary", "label=ring=canary", "--bake", "15");
            assertThat(c.out()).contains("canary label=ring=canary (1 agent(s))");
            id = started(c);
            bad = fleet("rollout", "marker@2.0.0", "--canary", "agent=a2");
            assertThat(bad.code()).isEqualTo(Main.FAILURE);
            assertThat(bad.err()).contains("rollout " + id + " of marker@2.0.0 runs").contains("fleet rollout abort " + id);
            bad = fleet("deploy", "marker@1.0.0", "--to", "agent=a2");
            assertThat(bad.code()).isEqualTo(Main.FAILURE);
            assertThat(bad.err()).contains("the module's deployments change through it until it ends");

            RolloutStatus baking = waitForRollout(id, "the canary applied it", r -> r.getPhase() == RolloutPhase.BAKING);
            assertThat(baking.getApplied()).isEqualTo(1);
            assertThat(baking.getTotal()).isEqualTo(1);
            assertThat(baking.getPreviousList()).containsExactly("1.0.0");
            // the canary runs 2.0.0 on new connections, the open one keeps 1.0.0; the rest still run 1.0.0
            assertThat(through("c1")).as("the canary, a new connection").isEqualTo(xor(MESSAGE, 2));
            assertThat(before.send(MESSAGE)).as("the canary, the connection opened before").isEqualTo(xor(MESSAGE, 1));
            assertThat(through("a2")).as("a2 while the canary bakes").isEqualTo(xor(MESSAGE, 1));
            assertThat(through("a3")).as("a3 while the canary bakes").isEqualTo(xor(MESSAGE, 1));
            assertThat(rollout(id).getPhase()).as("still baking").isEqualTo(RolloutPhase.BAKING);

            // a3 goes silent before the rest gets it: the rollout holds, saying why
            agents.remove("a3").close();
            waitForRollout(id, "held by a3 alone", r -> r.getPhase() == RolloutPhase.EXPANDING && r.getApplied() == 2
                    && r.getReason().contains("a3 is not connected"));
            Cli text = ok("rollout", "status", Long.toString(id));
            assertThat(text.out()).contains("rollout " + id + " marker@2.0.0 (from 1.0.0): EXPANDING").contains("a3 is not connected");
            assertThat(through("a2")).as("a2 after the canary passed").isEqualTo(xor(MESSAGE, 2));
        }
        startAgent("a3", at, orchestrator.caFile(), "ring=main");
        RolloutStatus done = waitForRollout(id, "done once a3 is back", r -> r.getPhase() == RolloutPhase.DONE);
        assertThat(done.getApplied()).isEqualTo(3);
        assertThat(done.getTotal()).isEqualTo(3);
        for (String n : List.of("c1", "a2", "a3")) {
            assertThat(through(n)).as(n + " after the rollout").isEqualTo(xor(MESSAGE, 2));
        }
        assertThat(ok("status").out()).contains("rollout " + id + " marker@2.0.0 (from 1.0.0): DONE, 3/3 applied").contains("leader: ");
        assertThat(ok("status", "a2").out()).contains("rollout " + id + " of marker@2.0.0: the canary passed, sent to the rest")
                .contains("rollout " + id + " done");
        assertThat(ok("status", "c1").out()).contains("rollout " + id + " of marker@2.0.0: canary");
        bad = fleet("rollout", "abort", Long.toString(id));
        assertThat(bad.code()).isEqualTo(Main.FAILURE);
        assertThat(bad.err()).contains("is DONE already");
    }

    /** A marker module whose data hook throws: every byte through it is a fault. */
    private Path faultyMarker(String version) {
        String cls = "rollout.Faulty" + version.replace('.', '_');
        String src = TestJars.streamModule(cls, "marker", version, """
                    public Verdict onSend(Object s, StreamContext ctx, ByteView v) { throw new IllegalStateException("faulty marker"); }
                    public Verdict onRecv(Object s, StreamContext ctx, ByteView v) { throw new IllegalStateException("faulty marker"); }
                """);
        return TestJars.jar().source(cls, src).service(cls).write(tmp.resolve("faulty-" + version + ".jar"));
    }

    /** Sends a message through {@code agent} without judging the answer (a faulting module may cut the connection). */
    private void poke(String agent) {
        try (Socket s = new Socket("127.0.0.1", port(agent))) {
            s.setSoTimeout(5000);
            s.getOutputStream().write(MESSAGE.getBytes(StandardCharsets.UTF_8));
            s.shutdownOutput();
            s.getInputStream().readAllBytes();
        } catch (java.io.IOException e) {
            // the fault policy may have closed it: the fault is what counts
        }
    }

    @Test
    void aFaultingVersionIsRolledBackByItselfAndTheRestNeverGetsIt() throws Exception {
        startInProcess();
        String at = "127.0.0.1:" + orchestrator.agentAddress().getPort();
        startAgent("c1", at, orchestrator.caFile(), "ring=canary");
        startAgent("a2", at, orchestrator.caFile(), "ring=main");
        waitForAgents("two agents connected", AgentStatus::getConnected, "a2", "c1");
        markerOneEverywhere("c1", "a2");
        ok("upload", faultyMarker("3.0.0").toString());

        long id = started(ok("rollout", "marker@3.0.0", "--canary", "agent=c1", "--to", "all", "--max-faults", "2", "--bake", "600"));
        waitForRollout(id, "the canary applied it", r -> r.getPhase() == RolloutPhase.BAKING);
        for (int i = 0; i < 5; i++) {
            poke("c1");
        }
        RolloutStatus back = waitForRollout(id, "rolled back by itself", r -> r.getPhase() == RolloutPhase.ROLLED_BACK);
        assertThat(back.getReason()).contains("the canary's faults of marker@3.0.0 reached").contains("c1 ").contains("above --max-faults 2");
        assertThat(back.getFaults()).isGreaterThan(2);

        waitForAgents("the canary back on 1.0.0", a -> applied(a, "1.0.0") && a.getModulesList().stream()
                .noneMatch(m -> m.getVersion().equals("3.0.0") && m.getLive() > 0), "a2", "c1");
        assertThat(through("c1")).as("the canary after the roll-back").isEqualTo(xor(MESSAGE, 1));
        assertThat(through("a2")).as("a2, never given 3.0.0").isEqualTo(xor(MESSAGE, 1));
        String a2 = ok("status", "a2").out();
        assertThat(a2).doesNotContain("marker@3.0.0 ACTIVE");
        assertThat(ok("status", "c1").out()).contains("sent revision").contains("marker@3.0.0 ACTIVE")
                .contains("rollout " + id + " of marker@3.0.0 rolled back");
        assertThat(ok("status").out()).contains("deployment marker@1.0.0 to all").doesNotContain("deployment marker@3.0.0");

        // aborting by hand: a second rollout, of the good version, stopped while it bakes
        long second = started(ok("rollout", "marker@2.0.0", "--canary", "agent=c1", "--bake", "600"));
        waitForRollout(second, "the canary applied it", r -> r.getPhase() == RolloutPhase.BAKING);
        assertThat(through("c1")).isEqualTo(xor(MESSAGE, 2));
        assertThat(ok("rollout", "abort", Long.toString(second)).out()).contains("aborted rollout " + second + " of marker@2.0.0; rolled back");
        waitForAgents("the canary back on 1.0.0 after the abort", a -> applied(a, "1.0.0"), "a2", "c1");
        assertThat(through("c1")).isEqualTo(xor(MESSAGE, 1));
        assertThat(rollout(second).getReason()).startsWith("aborted by ");
    }

    /** Starts {@code interlayer orchestrator} as a process; returns once its socket answers. */
    private Process startOrchestratorProcess(String name, int port, Map<String, String> env, String... more) throws Exception {
        List<String> args = new ArrayList<>(List.of("orchestrator", "--data-dir", tmp.resolve(name).toString(), "--listen", "127.0.0.1:" + port,
                "--socket", tmp.resolve(name + ".sock").toString()));
        args.addAll(List.of(more));
        ProcessBuilder b = Fleets.process(tmp, tmp.resolve(name + "-" + processes.size() + ".log"), args.toArray(String[]::new));
        b.environment().putAll(env);
        Process p = b.start();
        processes.add(p);
        Path sock = tmp.resolve(name + ".sock");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120); // a first start makes its database cluster
        while (p.isAlive() && !(Files.exists(sock) && Fleets.fleet(sock, "status").code() == 0)) {
            assertThat(System.nanoTime()).as(name + " serves within 120 s").isLessThan(deadline);
            Thread.sleep(200);
        }
        assertThat(p.isAlive()).as(name + " started; see its log").isTrue();
        return p;
    }

    private static void kill(Process p) throws Exception {
        p.destroyForcibly(); // SIGKILL: no shutdown hook runs
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
    }

    @Test
    void anOrchestratorKilledMidRolloutResumesItAfterARestart() throws Exception {
        int port = Fleets.freePort();
        Process first = startOrchestratorProcess("o1", port, Map.of());
        socket = tmp.resolve("o1.sock");
        Path ca = tmp.resolve("o1/ca.crt");
        startAgent("c1", "127.0.0.1:" + port, ca, "ring=canary");
        startAgent("a2", "127.0.0.1:" + port, ca, "ring=main");
        waitForAgents("two agents connected", AgentStatus::getConnected, "a2", "c1");
        markerOneEverywhere("c1", "a2");

        long id = started(ok("rollout", "marker@2.0.0", "--canary", "label=ring=canary", "--bake", "5"));
        waitForRollout(id, "the canary applied it", r -> r.getPhase() == RolloutPhase.BAKING);
        kill(first);
        // without an orchestrator the agents keep what they run: the canary 2.0.0, the rest 1.0.0
        assertThat(through("c1")).isEqualTo(xor(MESSAGE, 2));
        assertThat(through("a2")).isEqualTo(xor(MESSAGE, 1));
        Thread.sleep(6000); // the bake time passes while no orchestrator runs

        startOrchestratorProcess("o1", port, Map.of());
        RolloutStatus done = waitForRollout(id, "resumed and done after the restart", r -> r.getPhase() == RolloutPhase.DONE);
        assertThat(done.getApplied()).isEqualTo(2);
        waitForAgents("both applied 2.0.0 whole", a -> applied(a, "2.0.0") && a.getAckReason().isEmpty(), "a2", "c1");
        assertThat(through("c1")).isEqualTo(xor(MESSAGE, 2));
        assertThat(through("a2")).isEqualTo(xor(MESSAGE, 2));
    }

    @Test
    void twoReplicasOnOneDatabaseShareTheFleetAndTheOneLeftTakesTheAgentsAndTheLead() throws Exception {
        database = EmbeddedDatabase.start(tmp.resolve("db"), EmbeddedDatabase.DEFAULT_USER);
        Map<String, String> env = Map.of("INTERLAYER_DATABASE_USER", database.user(), "INTERLAYER_DATABASE_PASSWORD", database.password());
        int portA = Fleets.freePort();
        int portB = Fleets.freePort();
        Process a = startOrchestratorProcess("ra", portA, env, "--database-url", database.url());
        // a replica holds the same keys: copies of the first one's
        Path rb = Files.createDirectories(tmp.resolve("rb"));
        Files.setPosixFilePermissions(rb, PosixFilePermissions.fromString("rwx------"));
        for (String f : List.of("ca.crt", "ca.key", "signing.key", "signing.pub")) {
            Files.copy(tmp.resolve("ra").resolve(f), rb.resolve(f), java.nio.file.StandardCopyOption.COPY_ATTRIBUTES);
        }
        startOrchestratorProcess("rb", portB, env, "--database-url", database.url());

        // a replica with keys of its own is refused, naming what to copy
        ProcessBuilder b = Fleets.process(tmp, tmp.resolve("stray.log"), "orchestrator", "--data-dir", tmp.resolve("stray").toString(), "--listen",
                "127.0.0.1:0", "--socket", tmp.resolve("stray.sock").toString(), "--database-url", database.url());
        b.environment().putAll(env);
        Process stray = b.start();
        processes.add(stray);
        assertThat(stray.waitFor(120, TimeUnit.SECONDS)).as("the stray replica exits").isTrue();
        assertThat(Files.readString(tmp.resolve("stray.log"))).contains("are not the fleet's").contains("copy ca.crt, ca.key, signing.key and signing.pub");

        socket = tmp.resolve("rb.sock"); // written through one replica, read through the other
        String addresses = "[127.0.0.1:" + portA + ", 127.0.0.1:" + portB + "]";
        Path ca = tmp.resolve("ra/ca.crt");
        startAgent("c1", addresses, ca, "ring=canary");
        startAgent("a2", addresses, ca, "ring=main");
        socket = tmp.resolve("ra.sock");
        StatusResponse s = Fleets.waitForStatus(socket, "both agents on ra, which leads", st -> st.getAgentsCount() == 2
                && st.getAgentsList().stream().allMatch(x -> x.getConnected() && x.getReplica().endsWith(":" + a.pid())) && st.getLeader().endsWith(":" + a.pid()));
        String leaderA = s.getLeader();
        socket = tmp.resolve("rb.sock");
        markerOneEverywhere("c1", "a2");

        long id = started(ok("rollout", "marker@2.0.0", "--canary", "agent=c1", "--bake", "5"));
        waitForRollout(id, "the canary applied it", r -> r.getPhase() == RolloutPhase.BAKING);
        kill(a);
        s = Fleets.waitForStatus(socket, "the agents and the lead moved to rb", st -> !st.getLeader().isEmpty() && !st.getLeader().equals(leaderA)
                && st.getAgentsList().stream().allMatch(x -> x.getConnected() && x.getReplica().equals(st.getLeader())));
        assertThat(ok("status").out()).contains("leader: " + s.getLeader()).contains("via " + s.getLeader());
        waitForRollout(id, "continued by the new leader", r -> r.getPhase() == RolloutPhase.DONE);
        waitForAgents("both on 2.0.0", x -> applied(x, "2.0.0"), "a2", "c1");
        assertThat(through("c1")).isEqualTo(xor(MESSAGE, 2));
        assertThat(through("a2")).isEqualTo(xor(MESSAGE, 2));

        // and still gets changes, through the replica left
        ok("toggle", "marker", "--inactive");
        waitForAgents("marker inactive", x -> x.getConnected() && runs(x, "marker", "2.0.0", "INACTIVE"), "a2", "c1");
        assertThat(through("a2")).isEqualTo(MESSAGE);
    }
}
