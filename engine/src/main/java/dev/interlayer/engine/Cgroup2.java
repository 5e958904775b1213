package dev.interlayer.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The host's cgroup2 tree, for selection by cgroup: where it is mounted ({@code /proc/self/mountinfo}, fstype
 * {@code cgroup2}: {@code /sys/fs/cgroup} on a pure-v2 host, {@code /sys/fs/cgroup/unified} on a hybrid one), how nftables
 * names a cgroup in it, and which cgroup a process is in.
 *
 * <p>A cgroup path is written as {@code /proc/PID/cgroup}'s {@code 0::} line shows it, from the root of the tree:
 * {@code /system.slice/app.service}. nftables' {@code socket cgroupv2 level N "NAME"} resolves NAME under
 * {@code /sys/fs/cgroup} when the rule is installed (to the cgroup's id, which the rule then holds) and matches a socket
 * whose cgroup's ancestor at depth N is that cgroup: NAME is the mount point relative to {@code /sys/fs/cgroup} plus the
 * path, N the number of components of the path.
 */
public final class Cgroup2 {

    /** Where nftables looks for cgroups. */
    private static final Path NFT_ROOT = Path.of("/sys/fs/cgroup");

    private Cgroup2() {}

    /** Where cgroup2 is mounted in this mount namespace, or null if it is not. */
    public static Path mount() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
                // id parent major:minor root mount-point options [optional fields] - fstype source super-options
                int dash = line.indexOf(" - ");
                if (dash < 0 || !line.startsWith("cgroup2 ", dash + 3)) continue;
                return Path.of(line.split(" ")[4]);
            }
        } catch (IOException e) {
            return null;
        }
        return null;
    }

    /**
     * What is wrong with selecting by the cgroup {@code path} on this host, saying what to do; null if nothing: it is
     * written as in {@code /proc/PID/cgroup}, cgroup2 is mounted under {@code /sys/fs/cgroup} and the cgroup exists.
     */
    public static String problem(String path) {
        String syntax = syntax(path);
        if (syntax != null) return syntax;
        Path mount = mount();
        if (mount == null) {
            return "no cgroup2 tree is mounted here (/proc/self/mountinfo has no cgroup2 mount), so cgroup '" + path + "' cannot be"
                    + " matched; mount it (mount -t cgroup2 none /sys/fs/cgroup/unified) or select by uid, gid or ports";
        }
        if (!mount.startsWith(NFT_ROOT)) {
            return "cgroup2 is mounted at " + mount + ", outside " + NFT_ROOT + " where nftables looks for cgroups; mount it under "
                    + NFT_ROOT + " (e.g. " + NFT_ROOT + "/unified)";
        }
        Path dir = mount.resolve(path.substring(1));
        if (!Files.isDirectory(dir)) {
            return "cgroup '" + path + "' does not exist (checked " + dir + "); the cgroup must exist before the agent starts"
                    + " (systemd makes a service's when the service starts), and the path is the one /proc/PID/cgroup shows after 0::";
        }
        return null;
    }

    /** What is wrong with {@code path} as a cgroup path, or null: absolute, not the root, no empty, . or .. components, no quote. */
    public static String syntax(String path) {
        if (path == null || !path.startsWith("/") || path.equals("/") || path.endsWith("/") || path.contains("//")
                || path.contains("/./") || path.contains("/../") || path.endsWith("/.") || path.endsWith("/..")
                || path.chars().anyMatch(c -> c == '"' || c == '\\' || c < ' ')) {
            return "'" + path + "' is not a cgroup path; expected the path /proc/PID/cgroup shows after 0:: for a process in it,"
                    + " e.g. /system.slice/app.service (not the root /)";
        }
        return null;
    }

    /** nftables' name of the cgroup {@code path}: the cgroup2 mount relative to /sys/fs/cgroup, then the path. */
    static String nftName(String path) {
        Path mount = mount();
        String base = mount == null || !mount.startsWith(NFT_ROOT) ? "" : NFT_ROOT.relativize(mount).toString();
        return base.isEmpty() ? path.substring(1) : base + path;
    }

    /** The depth of {@code path} in the tree: its number of components. */
    static int level(String path) {
        return (int) path.chars().filter(c -> c == '/').count();
    }

    /** The cgroup2 path of process {@code pid} ({@code /proc/PID/cgroup}'s {@code 0::} line), or null if it is gone or has none. */
    static String of(int pid) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc", Integer.toString(pid), "cgroup"))) {
                if (line.startsWith("0::")) return line.substring(3);
            }
        } catch (IOException e) {
            return null;
        }
        return null;
    }
}
