package dev.interlayer.orchestrator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The embedded PostgreSQL (a real server process) and the schema migrations. */
class StoreTest {

    @TempDir
    Path tmp;

    @Test
    void aDatabaseMigratedByANewerOrchestratorIsRefusedAndLeftAsItWas() throws Exception {
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxr-xr-x"));
        try (EmbeddedDatabase db = EmbeddedDatabase.start(tmp.resolve("data"), EmbeddedDatabase.DEFAULT_USER)) {
            if (dev.interlayer.control.Policy.processUid() == 0) {
                assertThat((Integer) Files.getAttribute(db.cluster(), "unix:uid")).as("the cluster's owner: not root").isNotZero();
            }
            try (Store s = Store.open(db.url(), db.user(), db.password())) {
                assertThat(s.revision()).isZero();
            }
            int known;
            try (Connection c = DriverManager.getConnection(db.url(), db.user(), db.password()); Statement st = c.createStatement()) {
                try (var rs = st.executeQuery("SELECT max(version::int), max(installed_rank) FROM flyway_schema_history")) {
                    rs.next();
                    known = rs.getInt(1);
                    // what a later orchestrator's next migration leaves in Flyway's history
                    st.execute("INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, checksum, installed_by,"
                            + " execution_time, success) VALUES (" + (rs.getInt(2) + 1) + ", '" + (known + 1) + "', 'rollouts', 'SQL', 'V"
                            + (known + 1) + "__rollouts.sql', 0, 'postgres', 1, true)");
                }
            }
            assertThatThrownBy(() -> Store.open(db.url(), db.user(), db.password())).isInstanceOf(OrchestratorException.class)
                    .hasMessageContaining("newer than this orchestrator knows").hasMessageContaining((known + 1) + " (rollouts)")
                    .hasMessageContaining("knows up to " + known).hasMessageContaining("Nothing was changed");
        }
    }

    @Test
    void aDataFolderTheDatabaseUserCannotEnterIsRefusedNamingTheFolder() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(dev.interlayer.control.Policy.processUid() == 0,
                "only an orchestrator run as root hands the server to another user");
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwx------"));
        assertThatThrownBy(() -> EmbeddedDatabase.start(tmp.resolve("data"), EmbeddedDatabase.DEFAULT_USER)).isInstanceOf(OrchestratorException.class)
                .hasMessageContaining("may not enter " + tmp).hasMessageContaining("chmod o+x " + tmp);
    }
}
