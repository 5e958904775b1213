package dev.interlayer.orchestrator;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.interlayer.orchestrator.v1.AckState;
import dev.interlayer.orchestrator.v1.AgentStatus;
import dev.interlayer.orchestrator.v1.DesiredModule;
import dev.interlayer.orchestrator.v1.Deployment;
import dev.interlayer.orchestrator.v1.Integrity;
import dev.interlayer.orchestrator.v1.Label;
import dev.interlayer.orchestrator.v1.ModuleRef;
import dev.interlayer.orchestrator.v1.Report;
import dev.interlayer.orchestrator.v1.Snapshot;
import dev.interlayer.orchestrator.v1.StatusResponse;
import dev.interlayer.orchestrator.v1.Target;
import java.net.InetAddress;
import java.sql.Array;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.MigrationInfo;
import org.flywaydb.core.api.MigrationState;
import org.flywaydb.core.api.output.MigrateResult;

/**
 * The fleet's state in PostgreSQL: enrollment tokens, agents, module jars and their signatures, deployments, and the
 * revision every change bumps. The schema is Flyway's ({@code db/migration} beside this class), migrated at start; a
 * database migrated by a newer orchestrator is refused, not used.
 *
 * <p>Thread-safe: each operation takes a connection from a small pool and runs in its own transaction. A database
 * that cannot be reached makes an operation throw {@link Unavailable}, which says so.
 */
public final class Store implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.orchestrator");
    private static final int POOL = 8;
    /** At most this many connections open at once (PostgreSQL's default limit is 100, shared by every replica). */
    private static final int MAX_OPEN = 16;
    /** Flyway says every step at INFO; the orchestrator says what matters (held: JUL keeps loggers weakly). */
    private static final java.util.logging.Logger FLYWAY = java.util.logging.Logger.getLogger("org.flywaydb");

    static {
        FLYWAY.setLevel(java.util.logging.Level.WARNING);
    }

    /** The database cannot be reached or failed; the message says which and what to do. */
    public static final class Unavailable extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Unavailable(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** A request the state refuses (an unknown module, a used token); the message is for the caller. */
    public static final class Refused extends Exception {
        private static final long serialVersionUID = 1L;
        private final boolean notFound;

        Refused(String message, boolean notFound) {
            super(message);
            this.notFound = notFound;
        }

        /** True if what the request names does not exist. */
        public boolean notFound() {
            return notFound;
        }
    }

    /** An agent as enrollment made it. */
    public record Enrolled(String agent, List<String> labels) {}

    /** A stored module jar. */
    public record Artifact(String sha256, String fileName, long size, byte[] signature, byte[] content) {}

    /**
     * This orchestrator process among those on the database: HOST:PID. Every connection it opens carries it as its
     * application name, so the database knows which orchestrators are alive ({@link #LIVE}).
     */
    static final String INSTANCE = host() + ":" + ProcessHandle.current().pid();
    /**
     * SQL: whether an agent's {@code connected_to} names an orchestrator that is alive (has a connection to the
     * database); an orchestrator killed cannot record that its agents' streams ended.
     */
    static final String LIVE = "(connected_to IN (SELECT application_name FROM pg_stat_activity))";

    private final String url;
    private final String user;
    private final String password;
    private final Deque<Connection> idle = new ArrayDeque<>();
    private final java.util.concurrent.Semaphore open = new java.util.concurrent.Semaphore(MAX_OPEN);
    private volatile boolean closed;

    private Store(String url, String user, String password) {
        this.url = url;
        this.user = user;
        this.password = password;
    }

    /**
     * Connects and migrates the schema to this version's.
     *
     * @throws OrchestratorException if the database cannot be reached, or holds a schema newer than this orchestrator knows
     */
    public static Store open(String url, String user, String password) throws OrchestratorException {
        Store s = new Store(url, user, password);
        try {
            Flyway flyway = Flyway.configure().dataSource(url, user, password).locations("classpath:dev/interlayer/orchestrator/db/migration")
                    .load();
            List<String> newer = new ArrayList<>();
            for (MigrationInfo m : flyway.info().applied()) {
                if (m.getState() == MigrationState.FUTURE_SUCCESS || m.getState() == MigrationState.FUTURE_FAILED) {
                    newer.add(m.getVersion() + " (" + m.getDescription() + ")");
                }
            }
            if (!newer.isEmpty()) {
                MigrationInfo known = flyway.info().pending().length > 0 ? null : flyway.info().current();
                throw new OrchestratorException("the database's schema is newer than this orchestrator knows: it has migration(s) "
                        + String.join(", ", newer) + ", which an orchestrator of a later version applied"
                        + (known == null ? "" : "; this one knows up to " + latestKnown(flyway))
                        + "; run that later version, or restore a backup of the database made for this one. Nothing was changed");
            }
            MigrateResult r = flyway.migrate();
            if (r.migrationsExecuted > 0) {
                LOG.log(System.Logger.Level.INFO, "orchestrator: database schema migrated to version {0}", r.targetSchemaVersion);
            }
        } catch (org.flywaydb.core.api.FlywayException e) {
            throw new OrchestratorException("cannot prepare the orchestrator's database at " + url + ": " + rootMessage(e)
                    + "; check that PostgreSQL runs there and the URL, user and password are right", e);
        }
        return s;
    }

    private static String latestKnown(Flyway flyway) {
        String v = "";
        for (MigrationInfo m : flyway.info().all()) {
            if (m.getState() != MigrationState.FUTURE_SUCCESS && m.getState() != MigrationState.FUTURE_FAILED && m.getVersion() != null) {
                v = m.getVersion().toString();
            }
        }
        return v;
    }

    private static String host() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (java.io.IOException e) {
            return "localhost";
        }
    }

    private static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t == e ? e.getMessage() : e.getMessage() + " (" + t.getMessage() + ")";
    }

    // ---- connections -----------------------------------------------------------------------------

    @FunctionalInterface
    interface Work<T> {
        T run(Connection c) throws SQLException, Refused;
    }

    <T> T tx(Work<T> work) throws Refused {
        Connection c = take();
        boolean ok = false;
        boolean down = false;
        try {
            T t = work.run(c);
            c.commit();
            ok = true;
            return t;
        } catch (SQLException e) {
            down = isConnectionProblem(e);
            if (down) {
                dropIdle(); // the pooled connections went down with the server
            }
            throw new Unavailable("the orchestrator's database failed: " + e.getMessage()
                    + (down ? "; it may be down: the orchestrator keeps trying, agents keep their last good state" : ""), e);
        } finally {
            if (!ok && !down) {
                try {
                    c.rollback();
                } catch (SQLException ignored) {
                    down = true; // the connection is broken: not returned to the pool
                }
            }
            give(c, !down);
        }
    }

    /** {@link #tx} for work that refuses nothing. */
    <T> T read(Work<T> work) {
        try {
            return tx(work);
        } catch (Refused e) {
            throw new IllegalStateException(e);
        }
    }

    /** A connection that failed or was ended by the server going down (admin, crash or startup shutdown: 57P01-57P03). */
    private static boolean isConnectionProblem(SQLException e) {
        String state = e.getSQLState();
        return state != null && (state.startsWith("08") || state.equals("57P01") || state.equals("57P02") || state.equals("57P03"));
    }

    private void dropIdle() {
        List<Connection> dropped;
        synchronized (idle) {
            dropped = new ArrayList<>(idle);
            idle.clear();
        }
        for (Connection c : dropped) {
            try {
                c.close();
            } catch (SQLException ignored) {
                // closing anyway
            }
        }
    }

    /** A connection of the pool, or a new one; waits while {@link #MAX_OPEN} are in use. {@link #give} returns it. */
    private Connection take() {
        try {
            if (!open.tryAcquire(30, java.util.concurrent.TimeUnit.SECONDS)) {
                throw new Unavailable("the orchestrator's database is busy: all " + MAX_OPEN + " of its connections were in use for 30 s", null);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new Unavailable("interrupted while waiting for a database connection", e);
        }
        try {
            return connection();
        } catch (RuntimeException e) {
            open.release();
            throw e;
        }
    }

    private Connection connection() {
        synchronized (idle) {
            if (closed) {
                throw new Unavailable("the orchestrator is stopping", null);
            }
            Connection c = idle.pollFirst();
            if (c != null) {
                return c;
            }
        }
        Connection c = connect(INSTANCE);
        try {
            c.setAutoCommit(false);
            return c;
        } catch (SQLException e) {
            throw new Unavailable("the orchestrator's database at " + url + " failed: " + e.getMessage(), e);
        }
    }

    /** A new connection (auto-commit), named {@code applicationName} in the server's activity view; not pooled. */
    Connection connect(String applicationName) {
        try {
            java.util.Properties p = new java.util.Properties();
            p.setProperty("user", user);
            p.setProperty("password", password);
            p.setProperty("connectTimeout", "5");
            p.setProperty("socketTimeout", "30");
            p.setProperty("ApplicationName", applicationName);
            return DriverManager.getConnection(url, p);
        } catch (SQLException e) {
            throw new Unavailable("the orchestrator's database at " + url + " cannot be reached: " + e.getMessage()
                    + "; the orchestrator keeps trying, agents keep their last good state", e);
        }
    }

    /** Returns {@code c} to the pool if {@code keep} and there is room, else closes it. */
    private void give(Connection c, boolean keep) {
        try {
            synchronized (idle) {
                if (keep && !closed && idle.size() < POOL) {
                    idle.addFirst(c);
                    return;
                }
            }
            try {
                c.close();
            } catch (SQLException ignored) {
                // closing anyway
            }
        } finally {
            open.release();
        }
    }

    @Override
    public void close() {
        synchronized (idle) {
            closed = true;
        }
        dropIdle();
    }

    // ---- revision --------------------------------------------------------------------------------

    /** The fleet's revision now. */
    public long revision() {
        return read(c -> revision(c));
    }

    static long revision(Connection c) throws SQLException {
        try (var s = c.createStatement(); var rs = s.executeQuery("SELECT revision FROM fleet_revision WHERE id = 1")) {
            rs.next();
            return rs.getLong(1);
        }
    }

    static long bump(Connection c) throws SQLException {
        try (var s = c.createStatement(); var rs = s.executeQuery("UPDATE fleet_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision")) {
            rs.next();
            return rs.getLong(1);
        }
    }

    // ---- keys ------------------------------------------------------------------------------------

    /**
     * Stores the fleet's keys if no orchestrator did before, else checks that these are the same: every orchestrator
     * on one database must hold the same CA and module-signing key.
     *
     * @throws OrchestratorException if the database holds other keys; nothing is changed
     */
    public void checkKeys(String caSha256, String signingKeyPem, String instance, java.nio.file.Path dataDir) throws OrchestratorException {
        String[] stored = read(c -> {
            try (PreparedStatement p = c.prepareStatement("INSERT INTO fleet_keys VALUES (1, ?, ?, ?, now()) ON CONFLICT (id) DO NOTHING")) {
                p.setString(1, caSha256);
                p.setString(2, signingKeyPem);
                p.setString(3, instance);
                p.executeUpdate();
            }
            try (var st = c.createStatement(); var rs = st.executeQuery("SELECT ca_sha256, signing_key, first_by, stored_at FROM fleet_keys")) {
                rs.next();
                return new String[] {rs.getString(1), rs.getString(2), rs.getString(3), rs.getTimestamp(4).toInstant().toString()};
            }
        });
        if (!stored[0].equals(caSha256) || !stored[1].strip().equals(signingKeyPem.strip())) {
            throw new OrchestratorException("the keys in " + dataDir + " are not the fleet's: the orchestrator " + stored[2] + " stored another "
                    + (stored[0].equals(caSha256) ? "module-signing key" : "CA (certificate SHA-256 " + stored[0] + ")") + " in this database at "
                    + stored[3] + "; every orchestrator on one database needs the same keys: copy ca.crt, ca.key, signing.key and signing.pub from"
                    + " that orchestrator's data folder into " + dataDir + " (mode 0600 for the keys). Nothing was changed");
        }
    }

    // ---- enrollment ------------------------------------------------------------------------------

    /** Stores a token's hash for {@code agent}, valid until {@code expires}. */
    public void addToken(String hash, String agent, List<String> labels, Instant expires, String by) {
        read(c -> {
            try (PreparedStatement p = c.prepareStatement("INSERT INTO enrollment_tokens (hash, agent, labels, created_at, created_by, expires_at)"
                    + " VALUES (?, ?, ?, now(), ?, ?)")) {
                p.setString(1, hash);
                p.setString(2, agent);
                p.setArray(3, c.createArrayOf("text", labels.toArray()));
                p.setString(4, by);
                p.setTimestamp(5, Timestamp.from(expires));
                p.executeUpdate();
            }
            return null;
        });
    }

    /**
     * Uses the token with hash {@code hash} once: marks it used and makes (or renews) its agent with the certificate
     * serial {@code serial}.
     *
     * @throws Refused saying why a token is refused: unknown, used, expired
     */
    public Enrolled enroll(String hash, String from, String serial) throws Refused {
        return tx(c -> {
            String agent;
            List<String> labels;
            try (PreparedStatement p = c.prepareStatement("SELECT agent, labels, expires_at, used_at, used_from FROM enrollment_tokens WHERE hash = ? FOR UPDATE")) {
                p.setString(1, hash);
                try (ResultSet rs = p.executeQuery()) {
                    if (!rs.next()) {
                        throw new Refused("the enrollment token is not one this orchestrator issued (mistyped, or from another orchestrator);"
                                + " make one with: interlayer fleet token AGENT-NAME", false);
                    }
                    agent = rs.getString(1);
                    labels = strings(rs.getArray(2));
                    Instant expires = rs.getTimestamp(3).toInstant();
                    Timestamp used = rs.getTimestamp(4);
                    if (used != null) {
                        throw new Refused("the enrollment token for " + agent + " was already used at " + used.toInstant() + " (from "
                                + rs.getString(5) + "); a token enrolls once: make a new one with: interlayer fleet token " + agent, false);
                    }
                    if (expires.isBefore(Instant.now())) {
                        throw new Refused("the enrollment token for " + agent + " expired at " + expires
                                + "; make a new one with: interlayer fleet token " + agent, false);
                    }
                }
            }
            try (PreparedStatement p = c.prepareStatement("UPDATE enrollment_tokens SET used_at = now(), used_from = ? WHERE hash = ?")) {
                p.setString(1, from);
                p.setString(2, hash);
                p.executeUpdate();
            }
            try (PreparedStatement p = c.prepareStatement("INSERT INTO agents (name, labels, cert_serial, enrolled_at) VALUES (?, ?, ?, now())"
                    + " ON CONFLICT (name) DO UPDATE SET labels = EXCLUDED.labels, cert_serial = EXCLUDED.cert_serial, enrolled_at = now()")) {
                p.setString(1, agent);
                p.setArray(2, c.createArrayOf("text", labels.toArray()));
                p.setString(3, serial);
                p.executeUpdate();
            }
            event(c, agent, "enrolled from " + from + " (certificate serial " + serial + ")");
            return new Enrolled(agent, labels);
        });
    }

    /** The serial of the certificate {@code agent} holds now, or null if there is no such agent. */
    public String certificateSerial(String agent) {
        return read(c -> {
            try (PreparedStatement p = c.prepareStatement("SELECT cert_serial FROM agents WHERE name = ?")) {
                p.setString(1, agent);
                try (ResultSet rs = p.executeQuery()) {
                    return rs.next() ? rs.getString(1) : null;
                }
            }
        });
    }

    // ---- modules ---------------------------------------------------------------------------------

    /**
     * Stores a signed jar and the modules it declares.
     *
     * @return false if the same jar was stored before (nothing changes)
     * @throws Refused if a module version it declares was uploaded before with another jar
     */
    public boolean addArtifact(Artifact a, List<ModuleRef> modules, String by) throws Refused {
        return tx(c -> {
            try (PreparedStatement p = c.prepareStatement("SELECT 1 FROM artifacts WHERE sha256 = ?")) {
                p.setString(1, a.sha256());
                try (ResultSet rs = p.executeQuery()) {
                    if (rs.next()) {
                        return false;
                    }
                }
            }
            for (ModuleRef m : modules) {
                try (PreparedStatement p = c.prepareStatement("SELECT sha256 FROM modules WHERE name = ? AND version = ?")) {
                    p.setString(1, m.getName());
                    p.setString(2, m.getVersion());
                    try (ResultSet rs = p.executeQuery()) {
                        if (rs.next()) {
                            throw new Refused(m.getName() + "@" + m.getVersion() + " was uploaded before with another jar (SHA-256 " + rs.getString(1)
                                    + "); a version names one jar for good: give the module a new version", false);
                        }
                    }
                }
            }
            try (PreparedStatement p = c.prepareStatement("INSERT INTO artifacts (sha256, file_name, size, signature, content, uploaded_at, uploaded_by)"
                    + " VALUES (?, ?, ?, ?, ?, now(), ?)")) {
                p.setString(1, a.sha256());
                p.setString(2, a.fileName());
                p.setLong(3, a.size());
                p.setBytes(4, a.signature());
                p.setBytes(5, a.content());
                p.setString(6, by);
                p.executeUpdate();
            }
            for (ModuleRef m : modules) {
                try (PreparedStatement p = c.prepareStatement("INSERT INTO modules (name, version, sha256) VALUES (?, ?, ?)")) {
                    p.setString(1, m.getName());
                    p.setString(2, m.getVersion());
                    p.setString(3, a.sha256());
                    p.executeUpdate();
                }
            }
            return true;
        });
    }

    /** The jar with SHA-256 {@code sha256}, or null. */
    public Artifact artifact(String sha256) {
        return read(c -> {
            try (PreparedStatement p = c.prepareStatement("SELECT file_name, size, signature, content FROM artifacts WHERE sha256 = ?")) {
                p.setString(1, sha256);
                try (ResultSet rs = p.executeQuery()) {
                    return rs.next() ? new Artifact(sha256, rs.getString(1), rs.getLong(2), rs.getBytes(3), rs.getBytes(4)) : null;
                }
            }
        });
    }

    // ---- deployments -----------------------------------------------------------------------------

    /** What a deployment changed. */
    public record Change(long revision, List<String> agents, int count) {}

    /**
     * Deploys {@code module} to {@code target}: ends the module's live deployments to the same target and adds this one.
     *
     * @throws Refused if the module version was never uploaded, or a rollout of the module runs
     */
    public Change deploy(ModuleRef module, Target target, String by) throws Refused {
        return tx(c -> {
            uploaded(c, module);
            RolloutStore.noneRunning(c, module.getName());
            long rev = bump(c);
            try (PreparedStatement p = c.prepareStatement("UPDATE deployments SET ended_at = now(), ended_revision = ?"
                    + " WHERE module = ? AND target_kind = ? AND target_value = ? AND ended_at IS NULL")) {
                p.setLong(1, rev);
                p.setString(2, module.getName());
                p.setString(3, target.getKind().name());
                p.setString(4, target.getValue());
                p.executeUpdate();
            }
            try (PreparedStatement p = c.prepareStatement("INSERT INTO deployments (module, version, target_kind, target_value, created_at, created_by, revision)"
                    + " VALUES (?, ?, ?, ?, now(), ?, ?)")) {
                p.setString(1, module.getName());
                p.setString(2, module.getVersion());
                p.setString(3, target.getKind().name());
                p.setString(4, target.getValue());
                p.setString(5, by);
                p.setLong(6, rev);
                p.executeUpdate();
            }
            return new Change(rev, selected(c, target.getKind().name(), target.getValue()), 1);
        });
    }

    /**
     * Ends every live deployment of {@code module}, and the rollout of it that runs (aborted: there is nothing to roll
     * back to).
     *
     * @throws Refused if none is live
     */
    public Change revoke(String module) throws Refused {
        return tx(c -> {
            long rev = bump(c);
            int n;
            try (PreparedStatement p = c.prepareStatement("UPDATE deployments SET ended_at = now(), ended_revision = ? WHERE module = ? AND ended_at IS NULL")) {
                p.setLong(1, rev);
                p.setString(2, module);
                n = p.executeUpdate();
            }
            if (n == 0) {
                throw new Refused("no deployment of module " + module + " is live; fleet status lists the deployments", true);
            }
            RolloutStore.revoked(c, module);
            return new Change(rev, List.of(), n);
        });
    }

    /**
     * Rotates {@code module}: every live deployment of its name ends and a deployment of this version to the same
     * target, with the same priority, takes its place (ACTIVE).
     *
     * @throws Refused if the version was never uploaded, a rollout of the module runs, no deployment of the module is
     *     live, or every live one is of this version already
     */
    public Change rotate(ModuleRef module, String by) throws Refused {
        return tx(c -> {
            uploaded(c, module);
            RolloutStore.noneRunning(c, module.getName());
            record Live(long id, String version, String kind, String value, Integer priority) {}
            List<Live> live = new ArrayList<>();
            try (PreparedStatement p = c.prepareStatement("SELECT id, version, target_kind, target_value, priority FROM deployments"
                    + " WHERE module = ? AND ended_at IS NULL ORDER BY id FOR UPDATE")) {
                p.setString(1, module.getName());
                try (ResultSet rs = p.executeQuery()) {
                    while (rs.next()) {
                        int prio = rs.getInt(5);
                        Integer priority = rs.wasNull() ? null : prio;
                        live.add(new Live(rs.getLong(1), rs.getString(2), rs.getString(3), rs.getString(4), priority));
                    }
                }
            }
            if (live.isEmpty()) {
                throw new Refused("no deployment of module " + module.getName() + " is live, so there is nothing to rotate;"
                        + " deploy it: interlayer fleet deploy " + module.getName() + "@" + module.getVersion() + " --to TARGET", true);
            }
            if (live.stream().allMatch(l -> l.version().equals(module.getVersion()))) {
                throw new Refused("every live deployment of " + module.getName() + " is of version " + module.getVersion()
                        + " already; rotate to another uploaded version", false);
            }
            long rev = bump(c);
            List<String> selected = new ArrayList<>();
            for (Live l : live) {
                try (PreparedStatement p = c.prepareStatement("UPDATE deployments SET ended_at = now(), ended_revision = ? WHERE id = ?")) {
                    p.setLong(1, rev);
                    p.setLong(2, l.id());
                    p.executeUpdate();
                }
                try (PreparedStatement p = c.prepareStatement("INSERT INTO deployments (module, version, target_kind, target_value, created_at,"
                        + " created_by, revision, priority) VALUES (?, ?, ?, ?, now(), ?, ?, ?)")) {
                    p.setString(1, module.getName());
                    p.setString(2, module.getVersion());
                    p.setString(3, l.kind());
                    p.setString(4, l.value());
                    p.setString(5, by);
                    p.setLong(6, rev);
                    if (l.priority() == null) {
                        p.setNull(7, java.sql.Types.INTEGER);
                    } else {
                        p.setInt(7, l.priority());
                    }
                    p.executeUpdate();
                }
                for (String a : selected(c, l.kind(), l.value())) {
                    if (!selected.contains(a)) {
                        selected.add(a);
                    }
                }
            }
            return new Change(rev, selected, live.size());
        });
    }

    /**
     * Sets the state (ACTIVE, INACTIVE, DEPRECATED) of every live deployment of {@code module}.
     *
     * @throws Refused if none is live
     */
    public Change setState(String module, String state) throws Refused {
        return changeLive(module, "state = ?", p -> p.setString(1, state));
    }

    /**
     * Sets the priority of every live deployment of {@code module}.
     *
     * @throws Refused if none is live
     */
    public Change setPriority(String module, int priority) throws Refused {
        return changeLive(module, "priority = ?", p -> p.setInt(1, priority));
    }

    @FunctionalInterface
    private interface Bind {
        void bind(PreparedStatement p) throws SQLException;
    }

    private Change changeLive(String module, String set, Bind bind) throws Refused {
        return tx(c -> {
            List<String[]> targets = new ArrayList<>();
            try (PreparedStatement p = c.prepareStatement("UPDATE deployments SET " + set + " WHERE module = ? AND ended_at IS NULL"
                    + " RETURNING target_kind, target_value")) {
                bind.bind(p);
                p.setString(2, module);
                try (ResultSet rs = p.executeQuery()) {
                    while (rs.next()) {
                        targets.add(new String[] {rs.getString(1), rs.getString(2)});
                    }
                }
            }
            if (targets.isEmpty()) {
                throw new Refused("no deployment of module " + module + " is live; fleet status lists the deployments", true);
            }
            long rev = bump(c);
            List<String> selected = new ArrayList<>();
            for (String[] t : targets) {
                for (String a : selected(c, t[0], t[1])) {
                    if (!selected.contains(a)) {
                        selected.add(a);
                    }
                }
            }
            return new Change(rev, selected, targets.size());
        });
    }

    static void uploaded(Connection c, ModuleRef module) throws SQLException, Refused {
        try (PreparedStatement p = c.prepareStatement("SELECT 1 FROM modules WHERE name = ? AND version = ?")) {
            p.setString(1, module.getName());
            p.setString(2, module.getVersion());
            try (ResultSet rs = p.executeQuery()) {
                if (!rs.next()) {
                    throw new Refused("no jar of " + module.getName() + "@" + module.getVersion() + " was uploaded;"
                            + " upload it first: interlayer fleet upload JAR (fleet status lists what was)", true);
                }
            }
        }
    }

    static List<String> selected(Connection c, String kind, String value) throws SQLException {
        List<String> out = new ArrayList<>();
        try (var s = c.createStatement(); var rs = s.executeQuery("SELECT name, labels FROM agents ORDER BY name")) {
            while (rs.next()) {
                if (selects(kind, value, rs.getString(1), strings(rs.getArray(2)))) {
                    out.add(rs.getString(1));
                }
            }
        }
        return out;
    }

    static boolean selects(String kind, String value, String agent, List<String> labels) {
        return switch (kind) {
            case "ALL" -> true;
            case "AGENT" -> value.equals(agent);
            case "LABEL" -> labels.contains(value);
            default -> false;
        };
    }

    /** The desired state of {@code agent} now: per module, its newest live deployment that selects the agent. */
    public Snapshot snapshot(String agent) {
        return snapshots(List.of(agent)).get(agent);
    }

    /**
     * {@link #snapshot} of each of {@code agents}, read in one transaction: the live deployments once, every agent's
     * labels at once (an agent not enrolled gets what targets every agent).
     */
    public Map<String, Snapshot> snapshots(java.util.Collection<String> agents) {
        return read(c -> {
            Map<String, List<String>> labels = new java.util.HashMap<>();
            try (PreparedStatement p = c.prepareStatement("SELECT name, labels FROM agents WHERE name = ANY(?)")) {
                p.setArray(1, c.createArrayOf("text", agents.toArray()));
                try (ResultSet rs = p.executeQuery()) {
                    while (rs.next()) {
                        labels.put(rs.getString(1), strings(rs.getArray(2)));
                    }
                }
            }
            long rev = revision(c);
            record Live(String kind, String value, DesiredModule module) {}
            List<Live> live = new ArrayList<>();
            try (var s = c.createStatement(); var rs = s.executeQuery("SELECT d.module, d.version, d.target_kind, d.target_value, a.sha256, a.size, a.signature, d.state, d.priority"
                    + " FROM deployments d JOIN modules m ON m.name = d.module AND m.version = d.version JOIN artifacts a ON a.sha256 = m.sha256"
                    + " WHERE d.ended_at IS NULL ORDER BY d.id DESC")) {
                while (rs.next()) {
                    DesiredModule.Builder d = DesiredModule.newBuilder()
                            .setModule(ModuleRef.newBuilder().setName(rs.getString(1)).setVersion(rs.getString(2)))
                            .setSha256(rs.getString(5)).setSize(rs.getLong(6)).setSignature(ByteString.copyFrom(rs.getBytes(7))).setState(rs.getString(8));
                    int prio = rs.getInt(9);
                    if (!rs.wasNull()) {
                        d.setPriority(prio);
                    }
                    live.add(new Live(rs.getString(3), rs.getString(4), d.build()));
                }
            }
            Map<List<String>, Snapshot> byLabels = new java.util.HashMap<>(); // agents with the same labels and no own target share one
            Map<String, Snapshot> out = new LinkedHashMap<>();
            for (String agent : agents) {
                List<String> own = labels.getOrDefault(agent, List.of());
                boolean named = live.stream().anyMatch(l -> l.kind().equals("AGENT") && l.value().equals(agent));
                Snapshot cached = named ? null : byLabels.get(own);
                if (cached == null) {
                    Map<String, DesiredModule> chosen = new LinkedHashMap<>();
                    for (Live l : live) {
                        if (!chosen.containsKey(l.module().getModule().getName()) && selects(l.kind(), l.value(), agent, own)) {
                            chosen.put(l.module().getModule().getName(), l.module());
                        }
                    }
                    cached = Snapshot.newBuilder().setRevision(rev).addAllModules(chosen.values()).build();
                    if (!named) {
                        byLabels.put(own, cached);
                    }
                }
                out.put(agent, cached);
            }
            return out;
        });
    }

    // ---- agents' streams -------------------------------------------------------------------------

    /** Records that {@code agent} connected to {@code instance} from {@code address}. */
    public void connected(String agent, String instance, String address, String version, Report report) {
        read(c -> {
            asynchronousCommit(c); // a crash loses a connection that ended with it
            try (PreparedStatement p = c.prepareStatement("UPDATE agents SET connected_to = ?, address = ?, version = ?, last_seen = now(), report = ? WHERE name = ?")) {
                p.setString(1, instance);
                p.setString(2, address);
                p.setString(3, version);
                p.setBytes(4, report.toByteArray());
                p.setString(5, agent);
                p.executeUpdate();
            }
            event(c, agent, "connected from " + address);
            return null;
        });
    }

    /** Records that {@code agent}'s stream to {@code instance} ended. */
    public void disconnected(String agent, String instance, String why) {
        read(c -> {
            try (PreparedStatement p = c.prepareStatement("UPDATE agents SET connected_to = NULL WHERE name = ? AND connected_to = ?")) {
                p.setString(1, agent);
                p.setString(2, instance);
                p.executeUpdate();
            }
            event(c, agent, "disconnected: " + why);
            return null;
        });
    }

    /**
     * Records that each agent was sent its snapshot, in one transaction. Not synchronously committed: what a crash
     * loses is sent again to the agent when it connects again.
     */
    public void sent(Map<String, Snapshot> sent) {
        if (sent.isEmpty()) {
            return;
        }
        read(c -> {
            asynchronousCommit(c);
            try (PreparedStatement p = c.prepareStatement("UPDATE agents SET desired_revision = ?, ack_state = 'PENDING', ack_reason = NULL, last_seen = now() WHERE name = ?");
                 PreparedStatement e = eventStatement(c)) {
                for (Map.Entry<String, Snapshot> s : sent.entrySet()) {
                    p.setLong(1, s.getValue().getRevision());
                    p.setString(2, s.getKey());
                    p.addBatch();
                    List<String> modules = new ArrayList<>();
                    for (DesiredModule d : s.getValue().getModulesList()) {
                        modules.add(d.getModule().getName() + "@" + d.getModule().getVersion() + " " + (d.getState().isEmpty() ? "ACTIVE" : d.getState())
                                + (d.hasPriority() ? " priority " + d.getPriority() : ""));
                    }
                    addEvent(e, s.getKey(), "sent revision " + s.getValue().getRevision() + ": " + (modules.isEmpty() ? "no modules" : String.join(", ", modules)));
                }
                p.executeBatch();
                e.executeBatch();
            }
            return null;
        });
    }

    /** What an agent said on its stream that the store keeps: an answer to a snapshot, or a report. */
    public sealed interface Said permits Acked, Reported {
        String agent();
    }

    /** An agent's answer to a snapshot. */
    public record Acked(String agent, long revision, boolean applied, String reason, Report report) implements Said {}

    /** An agent's report (also a sign of life). */
    public record Reported(String agent, Report report) implements Said {}

    /**
     * Records what agents said, in order, in one transaction (runs of the same kind as one batch). Not synchronously
     * committed: an answer a crash loses, the agent gives again when it connects again and is sent its snapshot.
     */
    public void record(List<Said> said) {
        if (said.isEmpty()) {
            return;
        }
        read(c -> {
            asynchronousCommit(c);
            try (PreparedStatement applied = c.prepareStatement("UPDATE agents SET applied_revision = ?, ack_state = CASE WHEN desired_revision = ?"
                    + " THEN 'APPLIED' ELSE ack_state END, ack_reason = NULL, report = ?, last_seen = now() WHERE name = ?");
                 PreparedStatement refused = c.prepareStatement("UPDATE agents SET ack_state = CASE WHEN desired_revision = ? THEN 'REFUSED'"
                         + " ELSE ack_state END, ack_reason = ?, report = ?, last_seen = now() WHERE name = ?");
                 PreparedStatement reported = c.prepareStatement("UPDATE agents SET report = ?, last_seen = now() WHERE name = ?");
                 PreparedStatement events = eventStatement(c)) {
                PreparedStatement pending = null;
                for (Said x : said) {
                    PreparedStatement p = switch (x) {
                        case Acked a when a.applied() -> applied;
                        case Acked a -> refused;
                        case Reported r -> reported;
                    };
                    if (pending != null && pending != p) {
                        pending.executeBatch(); // keeps the order of what one agent said
                    }
                    pending = p;
                    switch (x) {
                        case Acked a -> {
                            p.setLong(1, a.revision());
                            if (a.applied()) {
                                p.setLong(2, a.revision());
                            } else {
                                p.setString(2, a.reason());
                            }
                            p.setBytes(3, a.report().toByteArray());
                            p.setString(4, a.agent());
                            List<String> runs = new ArrayList<>();
                            for (var m : a.report().getModulesList()) {
                                runs.add(m.getName() + "@" + m.getVersion() + " " + m.getState());
                            }
                            addEvent(events, a.agent(), a.applied() ? "applied revision " + a.revision() + "; runs "
                                    + (runs.isEmpty() ? "no modules" : String.join(", ", runs)) : "refused revision " + a.revision() + ": " + a.reason());
                        }
                        case Reported r -> {
                            p.setBytes(1, r.report().toByteArray());
                            p.setString(2, r.agent());
                        }
                    }
                    p.addBatch();
                }
                pending.executeBatch();
                events.executeBatch();
            }
            return null;
        });
    }

    /** This transaction's commit does not wait for the disk (PostgreSQL's synchronous_commit off): for what agents repeat. */
    private static void asynchronousCommit(Connection c) throws SQLException {
        try (var s = c.createStatement()) {
            s.execute("SET LOCAL synchronous_commit TO OFF");
        }
    }

    /**
     * Records {@code agent}'s integrity verdict ({@code VERIFIED}, {@code MISMATCH}, {@code NO_ANSWER}); a change of
     * verdict, or a mismatch, is also an event of its history.
     */
    public void judged(String agent, String verdict, String reason) {
        read(c -> {
            String before = null;
            try (PreparedStatement p = c.prepareStatement("SELECT integrity FROM agents WHERE name = ? FOR UPDATE")) {
                p.setString(1, agent);
                try (ResultSet rs = p.executeQuery()) {
                    if (rs.next()) {
                        before = rs.getString(1);
                    }
                }
            }
            try (PreparedStatement p = c.prepareStatement("UPDATE agents SET integrity = ?, integrity_reason = ?, integrity_at = now() WHERE name = ?")) {
                p.setString(1, verdict);
                p.setString(2, reason);
                p.setString(3, agent);
                p.executeUpdate();
            }
            if (!verdict.equals(before) || !verdict.equals("VERIFIED")) {
                event(c, agent, "integrity " + verdict + (reason == null ? "" : ": " + reason));
            }
            return null;
        });
    }

    /** The SHA-256 of the jar uploaded as {@code name}@{@code version}, or null if none was. */
    public String uploadedJar(String name, String version) {
        return read(c -> {
            try (PreparedStatement p = c.prepareStatement("SELECT sha256 FROM modules WHERE name = ? AND version = ?")) {
                p.setString(1, name);
                p.setString(2, version);
                try (ResultSet rs = p.executeQuery()) {
                    return rs.next() ? rs.getString(1) : null;
                }
            }
        });
    }

    static void event(Connection c, String agent, String text) throws SQLException {
        try (PreparedStatement p = eventStatement(c)) {
            addEvent(p, agent, text);
            p.executeBatch();
        }
    }

    private static PreparedStatement eventStatement(Connection c) throws SQLException {
        return c.prepareStatement("INSERT INTO agent_events (agent, at, text) SELECT ?, now(), ? WHERE EXISTS (SELECT 1 FROM agents WHERE name = ?)");
    }

    private static void addEvent(PreparedStatement p, String agent, String text) throws SQLException {
        p.setString(1, agent);
        p.setString(2, text.length() > 1000 ? text.substring(0, 1000) : text);
        p.setString(3, agent);
        p.addBatch();
    }

    // ---- status ----------------------------------------------------------------------------------

    /** Every agent with its modules, answers and newest 10 events, and the live deployments. */
    public StatusResponse status() {
        try {
            return status(null);
        } catch (Refused e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * {@link #status()} of one agent, with its newest 100 events; {@code agent} null: of every agent.
     *
     * @throws Refused if no such agent is enrolled
     */
    public StatusResponse status(String agent) throws Refused {
        return tx(c -> {
            StatusResponse.Builder b = StatusResponse.newBuilder().setRevision(revision(c));
            try (var s = c.prepareStatement("SELECT name, labels, CASE WHEN " + LIVE + " THEN connected_to END, last_seen, desired_revision,"
                    + " applied_revision, ack_state, ack_reason, report, address, integrity, integrity_reason, integrity_at FROM agents"
                    + " WHERE ?::text IS NULL OR name = ? ORDER BY name")) {
                s.setString(1, agent);
                s.setString(2, agent);
                var rs = s.executeQuery();
                while (rs.next()) {
                    AgentStatus.Builder a = AgentStatus.newBuilder().setName(rs.getString(1)).setConnected(rs.getString(3) != null);
                    for (String l : strings(rs.getArray(2))) {
                        int eq = l.indexOf('=');
                        a.addLabels(Label.newBuilder().setKey(eq < 0 ? l : l.substring(0, eq)).setValue(eq < 0 ? "" : l.substring(eq + 1)));
                    }
                    Timestamp seen = rs.getTimestamp(4);
                    a.setLastSeenUnixMs(seen == null ? 0 : seen.getTime()).setDesiredRevision(rs.getLong(5)).setAppliedRevision(rs.getLong(6))
                            .setAck(AckState.valueOf(rs.getString(7)));
                    if (rs.getString(8) != null) {
                        a.setAckReason(rs.getString(8));
                    }
                    byte[] report = rs.getBytes(9);
                    if (report != null) {
                        try {
                            Report r = Report.parseFrom(report);
                            a.addAllModules(r.getModulesList()).setConnections(r.getConnections());
                        } catch (InvalidProtocolBufferException e) {
                            // an unreadable report shows no modules
                        }
                    }
                    if (rs.getString(10) != null) {
                        a.setAddress(rs.getString(10));
                    }
                    a.setIntegrity(Integrity.valueOf(rs.getString(11)));
                    if (rs.getString(12) != null) {
                        a.setIntegrityReason(rs.getString(12));
                    }
                    Timestamp judged = rs.getTimestamp(13);
                    a.setIntegrityUnixMs(judged == null ? 0 : judged.getTime());
                    if (rs.getString(3) != null) {
                        a.setReplica(rs.getString(3));
                    }
                    b.addAgents(a);
                }
            }
            if (agent != null && b.getAgentsCount() == 0) {
                throw new Refused("no agent named " + agent + " is enrolled; fleet status lists the agents", true);
            }
            for (AgentStatus.Builder a : b.getAgentsBuilderList()) {
                try (PreparedStatement p = c.prepareStatement("SELECT at, text FROM agent_events WHERE agent = ? ORDER BY id DESC LIMIT ?")) {
                    p.setString(1, a.getName());
                    p.setInt(2, agent == null ? 10 : 100);
                    try (ResultSet rs = p.executeQuery()) {
                        while (rs.next()) {
                            a.addHistory(rs.getTimestamp(1).toInstant() + " " + rs.getString(2));
                        }
                    }
                }
            }
            try (var s = c.createStatement(); var rs = s.executeQuery("SELECT module, version, target_kind, target_value, created_at, revision"
                    + " FROM deployments WHERE ended_at IS NULL ORDER BY id")) {
                while (rs.next()) {
                    b.addDeployments(Deployment.newBuilder().setModule(ModuleRef.newBuilder().setName(rs.getString(1)).setVersion(rs.getString(2)))
                            .setTarget(Target.newBuilder().setKind(Target.Kind.valueOf(rs.getString(3))).setValue(rs.getString(4)))
                            .setCreatedUnixMs(rs.getTimestamp(5).getTime()).setRevision(rs.getLong(6)));
                }
            }
            b.addAllRollouts(RolloutStore.recent(c));
            String leader = Leadership.leader(c);
            if (leader != null) {
                b.setLeader(leader);
            }
            return b.build();
        });
    }

    static List<String> strings(Array a) throws SQLException {
        if (a == null) {
            return List.of();
        }
        Object[] o = (Object[]) a.getArray();
        List<String> out = new ArrayList<>();
        for (Object x : o) {
            out.add((String) x);
        }
        return out;
    }
}
