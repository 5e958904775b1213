package dev.interlayer.orchestrator;

import java.lang.System.Logger.Level;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;

/**
 * Which of the orchestrators on one database leads: the one holding a PostgreSQL advisory lock (a session lock, on a
 * connection of its own named after the orchestrator instance). The leader runs the fleet-wide duties (rollouts); when
 * its connection is lost the lock is gone with it, it stops leading, and another orchestrator takes the lock at its
 * next try. Not thread-safe: one thread calls {@link #leads()}.
 */
final class Leadership implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.orchestrator");
    /** The advisory lock's two keys ("IL", issue 19): pg_try_advisory_lock(CLASS, OBJECT). */
    private static final int CLASS = 0x494c;
    private static final int OBJECT = 19;

    private final Store store;
    private final String instance;
    private Connection connection;
    private boolean leading;

    Leadership(Store store, String instance) {
        this.store = store;
        this.instance = instance;
    }

    /** Whether this orchestrator leads now: tries to take the lock when it does not, checks its connection when it does. */
    boolean leads() {
        try {
            if (connection == null) {
                connection = store.connect(instance);
            }
            if (leading) {
                if (!connection.isValid(2)) {
                    throw new SQLException("the connection holding the leader's lock is gone");
                }
                return true;
            }
            try (PreparedStatement p = connection.prepareStatement("SELECT pg_try_advisory_lock(?, ?)")) {
                p.setInt(1, CLASS);
                p.setInt(2, OBJECT);
                try (ResultSet rs = p.executeQuery()) {
                    rs.next();
                    leading = rs.getBoolean(1);
                }
            }
            if (leading) {
                LOG.log(Level.INFO, "orchestrator: {0} leads (runs rollouts)", instance);
            }
            return leading;
        } catch (SQLException | Store.Unavailable e) {
            if (leading) {
                LOG.log(Level.WARNING, "orchestrator: {0} stops leading: {1}", instance, e.getMessage());
            }
            drop();
            return false;
        }
    }

    private void drop() {
        leading = false;
        if (connection != null) {
            try {
                connection.close();
            } catch (SQLException ignored) {
                // gone anyway
            }
            connection = null;
        }
    }

    /** The instance that leads now, as the database sees it, or null if none does. */
    static String leader(Connection c) throws SQLException {
        try (PreparedStatement p = c.prepareStatement("SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                + " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = ? AND l.objid = ? AND l.objsubid = 2")) {
            p.setInt(1, CLASS);
            p.setInt(2, OBJECT);
            try (ResultSet rs = p.executeQuery()) {
                return rs.next() ? rs.getString(1) : null;
            }
        }
    }

    @Override
    public void close() {
        drop();
    }
}
