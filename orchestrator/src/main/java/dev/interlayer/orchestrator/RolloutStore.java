package dev.interlayer.orchestrator;

import dev.interlayer.orchestrator.v1.ModuleRef;
import dev.interlayer.orchestrator.v1.RolloutPhase;
import dev.interlayer.orchestrator.v1.RolloutStatus;
import dev.interlayer.orchestrator.v1.Target;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Staged rollouts in the {@code rollouts} table (V3), over {@link Store}'s connections: starting one, its steps
 * (expanding to the rest of the target, rolling back) and reading them. Every step is one transaction that changes the
 * rollout's phase together with the deployments it adds or ends, so a rollout is never half-stepped, whoever stops.
 */
final class RolloutStore {

    /** A rollout as stored; {@code target} null: the module's live deployments. */
    record Rollout(long id, ModuleRef module, List<String> previous, Target canary, Target target, long maxFaults, int bakeSeconds,
            RolloutPhase phase, String reason, long stepRevision, Instant stepAt, Instant bakeUntil, int applied, int total, long faults,
            Instant created, String createdBy, Instant updated) {

        boolean running() {
            return phase == RolloutPhase.CANARY || phase == RolloutPhase.BAKING || phase == RolloutPhase.EXPANDING;
        }

        String title() {
            return "rollout " + id + " of " + module.getName() + "@" + module.getVersion();
        }

        RolloutStatus status() {
            RolloutStatus.Builder b = RolloutStatus.newBuilder().setId(id).setModule(module).addAllPrevious(previous).setCanary(canary)
                    .setMaxFaults((int) maxFaults).setBakeSeconds(bakeSeconds).setPhase(phase).setApplied(applied).setTotal(total).setFaults(faults)
                    .setRevision(stepRevision).setCreatedUnixMs(created.toEpochMilli()).setUpdatedUnixMs(updated.toEpochMilli())
                    .setBakeUntilUnixMs(bakeUntil == null ? 0 : bakeUntil.toEpochMilli()).setCreatedBy(createdBy);
            if (target != null) {
                b.setTarget(target);
            }
            if (reason != null) {
                b.setReason(reason);
            }
            return b.build();
        }
    }

    private static final String COLUMNS = "id, module, version, previous, canary_kind, canary_value, target_kind, target_value, max_faults,"
            + " bake_seconds, phase, reason, step_revision, step_at, bake_until, applied, total, faults, created_at, created_by, updated_at";

    private final Store store;

    RolloutStore(Store store) {
        this.store = store;
    }

    Store store() {
        return store;
    }

    /**
     * Starts a rollout: the version is deployed to the canary (the newest deployment of the module there, so it wins
     * over the older ones the canary agents have), with the priority of the module's newest live deployment.
     *
     * @throws Store.Refused if the version was not uploaded, a rollout of the module runs, the canary selects no agent,
     *     or (without a target) no other version of the module is deployed to roll over
     */
    Rollout start(ModuleRef module, Target canary, Target target, long maxFaults, int bakeSeconds, String by) throws Store.Refused {
        String id = module.getName() + "@" + module.getVersion();
        return store.tx(c -> {
            Store.uploaded(c, module);
            noneRunning(c, module.getName());
            List<String> canaryAgents = Store.selected(c, canary.getKind().name(), canary.getValue());
            if (canaryAgents.isEmpty()) {
                throw new Store.Refused("the canary " + FleetEndpoint.target(canary) + " selects no enrolled agent; name agents that run"
                        + " the module (fleet status lists them and their labels)", false);
            }
            Set<String> previous = new LinkedHashSet<>();
            Integer priority = null;
            try (PreparedStatement p = c.prepareStatement("SELECT version, priority FROM deployments WHERE module = ? AND ended_at IS NULL ORDER BY id")) {
                p.setString(1, module.getName());
                try (ResultSet rs = p.executeQuery()) {
                    while (rs.next()) {
                        previous.add(rs.getString(1));
                        int prio = rs.getInt(2);
                        priority = rs.wasNull() ? null : prio;
                    }
                }
            }
            if (target == null && previous.isEmpty()) {
                throw new Store.Refused("no deployment of module " + module.getName() + " is live, so a rollout has nothing to replace;"
                        + " say where it goes after the canary: interlayer fleet rollout " + id + " --canary … --to TARGET", true);
            }
            if (target == null && previous.equals(Set.of(module.getVersion()))) {
                throw new Store.Refused("every live deployment of " + module.getName() + " is of version " + module.getVersion()
                        + " already; roll out another uploaded version", false);
            }
            long rev = Store.bump(c);
            long rolloutId;
            try (PreparedStatement p = c.prepareStatement("INSERT INTO rollouts (module, version, previous, canary_kind, canary_value, target_kind,"
                    + " target_value, max_faults, bake_seconds, phase, step_revision, step_at, total, created_at, created_by, updated_at)"
                    + " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'CANARY', ?, now(), ?, now(), ?, now()) RETURNING id")) {
                p.setString(1, module.getName());
                p.setString(2, module.getVersion());
                p.setArray(3, c.createArrayOf("text", previous.toArray()));
                p.setString(4, canary.getKind().name());
                p.setString(5, canary.getValue());
                p.setString(6, target == null ? null : target.getKind().name());
                p.setString(7, target == null ? null : target.getValue());
                p.setLong(8, maxFaults);
                p.setInt(9, bakeSeconds);
                p.setLong(10, rev);
                p.setInt(11, canaryAgents.size());
                p.setString(12, by);
                try (ResultSet rs = p.executeQuery()) {
                    rs.next();
                    rolloutId = rs.getLong(1);
                }
            }
            deploy(c, module, canary.getKind().name(), canary.getValue(), priority, rolloutId, rev, by);
            for (String a : canaryAgents) {
                Store.event(c, a, "rollout " + rolloutId + " of " + id + ": canary (revision " + rev + ")");
            }
            return get(c, rolloutId);
        });
    }

    /**
     * Refuses a change of {@code module}'s deployments while a rollout of it runs: the rollout owns them until it ends.
     *
     * @throws Store.Refused naming the rollout and how to end it
     */
    static void noneRunning(Connection c, String module) throws SQLException, Store.Refused {
        try (PreparedStatement p = c.prepareStatement("SELECT id, version, phase FROM rollouts WHERE module = ? AND phase IN ('CANARY', 'BAKING', 'EXPANDING')")) {
            p.setString(1, module);
            try (ResultSet rs = p.executeQuery()) {
                if (rs.next()) {
                    throw new Store.Refused("rollout " + rs.getLong(1) + " of " + module + "@" + rs.getString(2) + " runs (" + rs.getString(3)
                            + "); the module's deployments change through it until it ends: wait for it (fleet rollout status) or abort it"
                            + " (fleet rollout abort " + rs.getLong(1) + ")", false);
                }
            }
        }
    }

    /** {@code module} was revoked: the rollout of it that runs ends (ABORTED), as its deployments did. */
    static void revoked(Connection c, String module) throws SQLException {
        try (PreparedStatement p = c.prepareStatement("UPDATE rollouts SET phase = 'ABORTED', reason = 'the module was revoked', bake_until = NULL,"
                + " updated_at = now() WHERE module = ? AND phase IN ('CANARY', 'BAKING', 'EXPANDING')")) {
            p.setString(1, module);
            p.executeUpdate();
        }
    }

    private static void deploy(Connection c, ModuleRef module, String kind, String value, Integer priority, long rollout, long rev, String by)
            throws SQLException {
        try (PreparedStatement p = c.prepareStatement("INSERT INTO deployments (module, version, target_kind, target_value, created_at, created_by,"
                + " revision, priority, rollout) VALUES (?, ?, ?, ?, now(), ?, ?, ?, ?)")) {
            p.setString(1, module.getName());
            p.setString(2, module.getVersion());
            p.setString(3, kind);
            p.setString(4, value);
            p.setString(5, by);
            p.setLong(6, rev);
            if (priority == null) {
                p.setNull(7, java.sql.Types.INTEGER);
            } else {
                p.setInt(7, priority);
            }
            p.setLong(8, rollout);
            p.executeUpdate();
        }
    }

    /**
     * The canary passed: the version goes to the rest of the target. With a target, it replaces the module's live
     * deployments to that target; without, every live deployment of the module not made by this rollout is replaced by
     * one of the version to the same target with the same priority (a rotation). The canary's deployment stays.
     *
     * @return false if the rollout was no longer in {@code BAKING} (another step came first)
     */
    boolean expand(long id) {
        return store.read(c -> {
            Rollout r = locked(c, id);
            if (r == null || r.phase() != RolloutPhase.BAKING) {
                return false;
            }
            long rev = Store.bump(c);
            record Live(long id, String kind, String value, Integer priority) {}
            List<Live> live = new ArrayList<>();
            try (PreparedStatement p = c.prepareStatement("SELECT id, target_kind, target_value, priority FROM deployments WHERE module = ?"
                    + " AND ended_at IS NULL AND rollout IS DISTINCT FROM ? ORDER BY id FOR UPDATE")) {
                p.setString(1, r.module().getName());
                p.setLong(2, id);
                try (ResultSet rs = p.executeQuery()) {
                    while (rs.next()) {
                        int prio = rs.getInt(4);
                        live.add(new Live(rs.getLong(1), rs.getString(2), rs.getString(3), rs.wasNull() ? null : prio));
                    }
                }
            }
            List<Long> replaced = new ArrayList<>();
            Integer newest = live.isEmpty() ? null : live.getLast().priority();
            for (Live l : live) {
                if (r.target() == null || l.kind().equals(r.target().getKind().name()) && l.value().equals(r.target().getValue())) {
                    replaced.add(l.id());
                    if (r.target() == null) {
                        deploy(c, r.module(), l.kind(), l.value(), l.priority(), id, rev, r.createdBy());
                    }
                }
            }
            if (r.target() != null) {
                deploy(c, r.module(), r.target().getKind().name(), r.target().getValue(), newest, id, rev, r.createdBy());
            }
            try (PreparedStatement p = c.prepareStatement("UPDATE deployments SET ended_at = now(), ended_revision = ? WHERE id = ANY (?)")) {
                p.setLong(1, rev);
                p.setArray(2, c.createArrayOf("bigint", replaced.toArray()));
                p.executeUpdate();
            }
            try (PreparedStatement p = c.prepareStatement("UPDATE rollouts SET phase = 'EXPANDING', reason = NULL, step_revision = ?, step_at = now(),"
                    + " replaced = ?, applied = 0, total = 0, updated_at = now() WHERE id = ?")) {
                p.setLong(1, rev);
                p.setArray(2, c.createArrayOf("bigint", replaced.toArray()));
                p.setLong(3, id);
                p.executeUpdate();
            }
            for (String a : agentsOf(c, id)) {
                Store.event(c, a, r.title() + ": the canary passed, sent to the rest of the target (revision " + rev + ")");
            }
            return true;
        });
    }

    /**
     * Rolls a running rollout back: the deployments it made end, those it replaced are made live again (as new
     * deployments of the same version, target, state and priority); its phase becomes {@code phase} with {@code reason}.
     *
     * @throws Store.Refused if there is no such rollout, or it is not running
     */
    Rollout rollBack(long id, RolloutPhase phase, String reason) throws Store.Refused {
        return store.tx(c -> {
            Rollout r = locked(c, id);
            if (r == null) {
                throw new Store.Refused("no rollout " + id + "; fleet rollout status lists them", true);
            }
            if (!r.running()) {
                throw new Store.Refused(r.title() + " is " + r.phase() + " already, nothing to roll back; to go back to another version,"
                        + " roll it out: interlayer fleet rollout " + r.module().getName() + "@VERSION --canary …", false);
            }
            Set<String> affected = new LinkedHashSet<>(agentsOf(c, id));
            long rev = Store.bump(c);
            try (PreparedStatement p = c.prepareStatement("UPDATE deployments SET ended_at = now(), ended_revision = ? WHERE rollout = ? AND ended_at IS NULL")) {
                p.setLong(1, rev);
                p.setLong(2, id);
                p.executeUpdate();
            }
            try (PreparedStatement p = c.prepareStatement("INSERT INTO deployments (module, version, target_kind, target_value, created_at, created_by,"
                    + " revision, state, priority) SELECT module, version, target_kind, target_value, now(), ?, ?, state, priority FROM deployments"
                    + " WHERE id = ANY (SELECT unnest(replaced) FROM rollouts WHERE id = ?) ORDER BY id")) {
                p.setString(1, "roll-back of rollout " + id);
                p.setLong(2, rev);
                p.setLong(3, id);
                p.executeUpdate();
            }
            try (PreparedStatement p = c.prepareStatement("UPDATE rollouts SET phase = ?, reason = ?, step_revision = ?, step_at = now(),"
                    + " bake_until = NULL, updated_at = now() WHERE id = ?")) {
                p.setString(1, phase.name());
                p.setString(2, reason);
                p.setLong(3, rev);
                p.setLong(4, id);
                p.executeUpdate();
            }
            for (String a : affected) {
                Store.event(c, a, r.title() + " " + (phase == RolloutPhase.ABORTED ? "aborted" : "rolled back") + " (revision " + rev + "): " + reason);
            }
            return get(c, id);
        });
    }

    /** Agents the live deployments of rollout {@code id} select. */
    private static List<String> agentsOf(Connection c, long id) throws SQLException {
        Set<String> out = new LinkedHashSet<>();
        try (PreparedStatement p = c.prepareStatement("SELECT target_kind, target_value FROM deployments WHERE rollout = ? AND ended_at IS NULL")) {
            p.setLong(1, id);
            try (ResultSet rs = p.executeQuery()) {
                while (rs.next()) {
                    out.addAll(Store.selected(c, rs.getString(1), rs.getString(2)));
                }
            }
        }
        return List.copyOf(out);
    }

    /** Records what the leader saw of a running rollout: its phase (CANARY or BAKING), progress and why it waits. */
    void progress(long id, RolloutPhase phase, Instant bakeUntil, int applied, int total, long faults, String reason) {
        store.read(c -> {
            try (PreparedStatement p = c.prepareStatement("UPDATE rollouts SET phase = ?, bake_until = ?, applied = ?, total = ?, faults = ?, reason = ?,"
                    + " updated_at = now() WHERE id = ? AND phase IN ('CANARY', 'BAKING', 'EXPANDING')")) {
                p.setString(1, phase.name());
                p.setTimestamp(2, bakeUntil == null ? null : Timestamp.from(bakeUntil));
                p.setInt(3, applied);
                p.setInt(4, total);
                p.setLong(5, faults);
                p.setString(6, reason);
                p.setLong(7, id);
                p.executeUpdate();
            }
            if (phase == RolloutPhase.DONE) {
                for (String a : agentsOf(c, id)) {
                    Store.event(c, a, "rollout " + id + " done: every agent of its target applied it");
                }
            }
            return null;
        });
    }

    /** Rollouts still running, oldest first. */
    List<Rollout> running() {
        return store.read(c -> query(c, "WHERE phase IN ('CANARY', 'BAKING', 'EXPANDING') ORDER BY id", null));
    }

    /**
     * Rollout {@code id}, or (0) the newest 50.
     *
     * @throws Store.Refused if there is no rollout {@code id}
     */
    List<Rollout> list(long id) throws Store.Refused {
        return store.tx(c -> {
            List<Rollout> r = id == 0 ? query(c, "ORDER BY id DESC LIMIT 50", null) : query(c, "WHERE id = ?", id);
            if (id != 0 && r.isEmpty()) {
                throw new Store.Refused("no rollout " + id + "; fleet rollout status lists them", true);
            }
            return r;
        });
    }

    /** For fleet status: rollouts running, and those that ended within the last hour, newest first. */
    static List<RolloutStatus> recent(Connection c) throws SQLException {
        List<RolloutStatus> out = new ArrayList<>();
        for (Rollout r : query(c, "WHERE phase IN ('CANARY', 'BAKING', 'EXPANDING') OR updated_at > now() - interval '1 hour' ORDER BY id DESC", null)) {
            out.add(r.status());
        }
        return out;
    }

    private static Rollout get(Connection c, long id) throws SQLException {
        List<Rollout> r = query(c, "WHERE id = ?", id);
        return r.isEmpty() ? null : r.getFirst();
    }

    private static Rollout locked(Connection c, long id) throws SQLException {
        List<Rollout> r = query(c, "WHERE id = ? FOR UPDATE", id);
        return r.isEmpty() ? null : r.getFirst();
    }

    private static List<Rollout> query(Connection c, String where, Long id) throws SQLException {
        List<Rollout> out = new ArrayList<>();
        try (PreparedStatement p = c.prepareStatement("SELECT " + COLUMNS + " FROM rollouts " + where)) {
            if (id != null) {
                p.setLong(1, id);
            }
            try (ResultSet rs = p.executeQuery()) {
                while (rs.next()) {
                    Target target = rs.getString(7) == null ? null
                            : Target.newBuilder().setKind(Target.Kind.valueOf(rs.getString(7))).setValue(rs.getString(8)).build();
                    Timestamp bake = rs.getTimestamp(15);
                    out.add(new Rollout(rs.getLong(1), ModuleRef.newBuilder().setName(rs.getString(2)).setVersion(rs.getString(3)).build(),
                            Store.strings(rs.getArray(4)), Target.newBuilder().setKind(Target.Kind.valueOf(rs.getString(5))).setValue(rs.getString(6)).build(),
                            target, rs.getLong(9), rs.getInt(10), RolloutPhase.valueOf(rs.getString(11)), rs.getString(12), rs.getLong(13),
                            rs.getTimestamp(14).toInstant(), bake == null ? null : bake.toInstant(), rs.getInt(16), rs.getInt(17), rs.getLong(18),
                            rs.getTimestamp(19).toInstant(), rs.getString(20), rs.getTimestamp(21).toInstant()));
                }
            }
        }
        return out;
    }

    /** An agent as a rollout step judges it: connected, what it was sent and applied, what it runs. */
    record AgentRow(String name, List<String> labels, boolean connected, Instant lastSeen, long desired, long applied, String ack, String ackReason,
            dev.interlayer.orchestrator.v1.Report report) {}

    /** Every enrolled agent. */
    List<AgentRow> agents() {
        return store.read(c -> {
            List<AgentRow> out = new ArrayList<>();
            try (var s = c.createStatement(); var rs = s.executeQuery("SELECT name, labels, " + Store.LIVE + ", last_seen, desired_revision,"
                    + " applied_revision, ack_state, ack_reason, report FROM agents ORDER BY name")) {
                while (rs.next()) {
                    dev.interlayer.orchestrator.v1.Report report = dev.interlayer.orchestrator.v1.Report.getDefaultInstance();
                    if (rs.getBytes(9) != null) {
                        try {
                            report = dev.interlayer.orchestrator.v1.Report.parseFrom(rs.getBytes(9));
                        } catch (com.google.protobuf.InvalidProtocolBufferException e) {
                            // an unreadable report shows no modules: the agent does not count as having applied
                        }
                    }
                    Timestamp seen = rs.getTimestamp(4);
                    out.add(new AgentRow(rs.getString(1), Store.strings(rs.getArray(2)), rs.getBoolean(3), seen == null ? null : seen.toInstant(),
                            rs.getLong(5), rs.getLong(6), rs.getString(7), rs.getString(8), report));
                }
            }
            return out;
        });
    }

    /** The agents the live deployments of rollout {@code id} select. */
    List<String> agentsOf(long id) {
        return store.read(c -> agentsOf(c, id));
    }
}
