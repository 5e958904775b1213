package dev.interlayer.orchestrator;

import dev.interlayer.orchestrator.v1.ReportedModule;
import dev.interlayer.orchestrator.v1.RolloutPhase;
import java.lang.System.Logger.Level;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * The rollouts' state machine, run by the leading orchestrator ({@link Leadership}) once a second from what the
 * database holds, so a restarted orchestrator or a new leader continues each rollout from its persisted phase.
 *
 * <pre>
 *   CANARY ──every canary agent applied──▶ BAKING ──bake time passed, still all applied──▶ EXPANDING ──all applied──▶ DONE
 *      │                                     │
 *      └── a canary agent refused it, or the canary's faults of the version passed max-faults ──▶ ROLLED_BACK
 * </pre>
 *
 * An agent counts as having applied when it is connected, acknowledged the last snapshot it was sent and reports the
 * version loaded; one that is not connected, or has not answered, holds the rollout in its phase with the reason.
 *
 * <p>Lifecycle: {@link #start()} starts the thread; {@link #close()} stops it and gives up the lead.
 */
final class RolloutRunner implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.orchestrator");
    private static final Duration TICK = Duration.ofSeconds(1);
    /** How long an agent may take to apply a step before the reason says it is late. */
    static final Duration APPLY_WITHIN = Duration.ofSeconds(30);

    private final RolloutStore rollouts;
    private final Leadership leadership;
    private final Runnable changed;
    private final Thread thread;
    private volatile boolean closed;
    private boolean databaseDown;

    RolloutRunner(RolloutStore rollouts, Leadership leadership, Runnable changed) {
        this.rollouts = rollouts;
        this.leadership = leadership;
        this.changed = changed;
        this.thread = Thread.ofPlatform().daemon().name("interlayer-orchestrator-rollouts").unstarted(this::loop);
    }

    void start() {
        thread.start();
    }

    private void loop() {
        while (!closed) {
            try {
                Thread.sleep(TICK);
                if (!leadership.leads()) {
                    continue;
                }
                for (RolloutStore.Rollout r : rollouts.running()) {
                    step(r);
                }
                databaseDown = false;
            } catch (InterruptedException e) {
                return;
            } catch (Store.Unavailable e) {
                if (!databaseDown) {
                    LOG.log(Level.WARNING, "orchestrator: rollouts wait: {0}", e.getMessage());
                    databaseDown = true;
                }
            } catch (RuntimeException e) {
                LOG.log(Level.ERROR, "orchestrator: a rollout step failed", e);
            }
        }
    }

    private void step(RolloutStore.Rollout r) {
        String module = r.module().getName();
        String version = r.module().getVersion();
        List<RolloutStore.AgentRow> all = rollouts.agents();
        boolean canary = r.phase() != RolloutPhase.EXPANDING;
        List<String> names = canary ? null : rollouts.agentsOf(r.id());
        List<RolloutStore.AgentRow> agents = new ArrayList<>();
        for (RolloutStore.AgentRow a : all) {
            if (canary ? Store.selects(r.canary().getKind().name(), r.canary().getValue(), a.name(), a.labels()) : names.contains(a.name())) {
                agents.add(a);
            }
        }
        long faults = 0;
        List<String> perAgent = new ArrayList<>();
        for (RolloutStore.AgentRow a : agents) {
            long f = a.report().getModulesList().stream().filter(m -> m.getName().equals(module) && m.getVersion().equals(version))
                    .mapToLong(ReportedModule::getFaults).sum();
            faults += f;
            perAgent.add(a.name() + " " + f);
        }
        if (canary) {
            for (RolloutStore.AgentRow a : agents) {
                if (a.ack().equals("REFUSED") && a.desired() >= r.stepRevision()) {
                    rollBack(r, "canary agent " + a.name() + " refused revision " + a.desired() + ": " + a.ackReason());
                    return;
                }
            }
            if (faults > r.maxFaults()) {
                rollouts.progress(r.id(), r.phase(), r.bakeUntil(), r.applied(), agents.size(), faults, r.reason());
                rollBack(r, "the canary's faults of " + module + "@" + version + " reached " + faults + " (" + String.join(", ", perAgent)
                        + "), above --max-faults " + r.maxFaults());
                return;
            }
        }
        Instant now = Instant.now();
        List<String> waiting = new ArrayList<>();
        for (RolloutStore.AgentRow a : agents) {
            String w = waitingFor(a, r, now);
            if (w != null) {
                waiting.add(w);
            }
        }
        int applied = agents.size() - waiting.size();
        String reason = waiting.isEmpty() ? null : "waiting for " + String.join("; ", waiting.subList(0, Math.min(5, waiting.size())))
                + (waiting.size() > 5 ? "; and " + (waiting.size() - 5) + " more" : "");
        RolloutPhase phase = r.phase();
        Instant bakeUntil = r.bakeUntil();
        if (waiting.isEmpty()) {
            switch (phase) {
                case CANARY -> {
                    phase = RolloutPhase.BAKING;
                    bakeUntil = now.plusSeconds(r.bakeSeconds());
                    LOG.log(Level.INFO, "orchestrator: {0}: every canary agent applied it; baking until {1}", r.title(), bakeUntil);
                }
                case BAKING -> {
                    if (!now.isBefore(bakeUntil)) {
                        if (rollouts.expand(r.id())) {
                            LOG.log(Level.INFO, "orchestrator: {0}: the canary passed ({1} faults); sent to the rest of the target", r.title(), faults);
                            changed.run();
                        }
                        return;
                    }
                }
                case EXPANDING -> {
                    phase = RolloutPhase.DONE;
                    LOG.log(Level.INFO, "orchestrator: {0} done: every agent of its target applied it", r.title());
                }
                default -> { }
            }
        }
        if (phase != r.phase() || !Objects.equals(bakeUntil, r.bakeUntil()) || applied != r.applied() || agents.size() != r.total()
                || faults != r.faults() || !Objects.equals(reason, r.reason())) {
            rollouts.progress(r.id(), phase, bakeUntil, applied, agents.size(), faults, reason);
        }
    }

    /** Why {@code a} does not count as having applied {@code r}'s step, or null if it does. */
    private static String waitingFor(RolloutStore.AgentRow a, RolloutStore.Rollout r, Instant now) {
        if (!a.connected()) {
            return a.name() + " is not connected (last seen " + (a.lastSeen() == null ? "never" : a.lastSeen()) + ")";
        }
        if (a.ack().equals("REFUSED")) {
            return a.name() + " refused revision " + a.desired() + ": " + a.ackReason();
        }
        boolean runs = a.report().getModulesList().stream()
                .anyMatch(m -> m.getName().equals(r.module().getName()) && m.getVersion().equals(r.module().getVersion()));
        if (a.ack().equals("APPLIED") && a.applied() == a.desired() && runs) {
            return null;
        }
        long late = Duration.between(r.stepAt(), now).toSeconds();
        return late > APPLY_WITHIN.toSeconds() ? a.name() + " has not applied it " + late + " s after it was sent (" + a.ack() + ", revision "
                + a.desired() + " sent, " + a.applied() + " applied)" : a.name() + " (applying)";
    }

    private void rollBack(RolloutStore.Rollout r, String reason) {
        try {
            rollouts.rollBack(r.id(), RolloutPhase.ROLLED_BACK, reason);
            LOG.log(Level.WARNING, "orchestrator: {0} rolled back: {1}", r.title(), reason);
            changed.run();
        } catch (Store.Refused e) {
            LOG.log(Level.INFO, "orchestrator: {0}: {1}", r.title(), e.getMessage()); // aborted meanwhile
        }
    }

    @Override
    public void close() {
        closed = true;
        thread.interrupt();
        try {
            thread.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        leadership.close();
    }
}
