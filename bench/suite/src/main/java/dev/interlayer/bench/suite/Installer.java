package dev.interlayer.bench.suite;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Installs the Debian packages the chosen targets and workloads need, when they are missing: {@code apt-get
 * update} once, then {@code apt-get install -y}. Package scripts are kept from starting nginx or HAProxy as
 * services during the install (a temporary {@code policy-rc.d}); the suite starts its own instances from its
 * own configs.
 */
final class Installer {

    /** The nginx stream proxy module, a separate package on Debian. */
    static final Path NGINX_STREAM_MODULE = Path.of("/usr/lib/nginx/modules/ngx_stream_module.so");

    private Installer() {}

    /** Whether a command is on the PATH (or /usr/sbin, /sbin, where Debian puts haproxy and nginx). */
    static boolean onPath(String cmd) {
        String path = System.getenv().getOrDefault("PATH", "") + ":/usr/sbin:/sbin:/usr/local/sbin";
        for (String dir : path.split(":")) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, cmd))) {
                return true;
            }
        }
        return false;
    }

    /** Full path of a command found like {@link #onPath}, or the bare name. */
    static String which(String cmd) {
        String path = System.getenv().getOrDefault("PATH", "") + ":/usr/sbin:/sbin:/usr/local/sbin";
        for (String dir : path.split(":")) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, cmd))) {
                return Path.of(dir, cmd).toString();
            }
        }
        return cmd;
    }

    /** Debian packages among {@code wanted} (package names) that are not installed. */
    static List<String> missing(Set<String> wanted) {
        List<String> missing = new ArrayList<>();
        for (String pkg : wanted) {
            boolean present = switch (pkg) {
                case "libnginx-mod-stream" -> Files.exists(NGINX_STREAM_MODULE);
                case "redis-tools" -> onPath("redis-benchmark");
                case "dnsmasq-base" -> onPath("dnsmasq");
                default -> onPath(pkg);
            };
            if (!present) {
                missing.add(pkg);
            }
        }
        return missing;
    }

    /**
     * Makes sure every package in {@code wanted} is installed; installs the missing ones as root, or fails with
     * the command to run.
     */
    static void ensure(Set<String> wanted, boolean mayInstall, Path tmp, Consumer<String> log) throws BenchException {
        List<String> missing = missing(new LinkedHashSet<>(wanted));
        if (missing.isEmpty()) {
            return;
        }
        String cmd = "apt-get install -y " + String.join(" ", missing);
        if (!mayInstall) {
            throw new BenchException("missing: " + String.join(", ", missing) + " (run without --no-install, or: " + cmd + ")");
        }
        if (!isRoot()) {
            throw new BenchException("missing: " + String.join(", ", missing)
                    + "; installing needs root. Run the suite as root once, or install them: sudo " + cmd);
        }
        log.accept("installing (Debian packages): " + String.join(" ", missing));
        Path policy = Path.of("/usr/sbin/policy-rc.d");
        boolean ownPolicy = false;
        try {
            if (!Files.exists(policy)) {
                Files.writeString(policy, "#!/bin/sh\n# written by the Interlayer bench suite during apt-get install; removed after\nexit 101\n");
                Files.setPosixFilePermissions(policy, PosixFilePermissions.fromString("rwxr-xr-x"));
                ownPolicy = true;
            }
            // a fresh machine may be running unattended-upgrades: wait for the dpkg lock instead of failing at once
            apt(tmp, log, 300, "apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=120");
            List<String> install = new ArrayList<>(List.of("apt-get", "install", "-y", "-q", "--no-install-recommends",
                    "-o", "DPkg::Lock::Timeout=120"));
            install.addAll(missing);
            apt(tmp, log, 900, install.toArray(String[]::new));
        } catch (IOException e) {
            throw new BenchException("could not install " + missing + ": " + e.getMessage(), e);
        } finally {
            if (ownPolicy) {
                try {
                    Files.deleteIfExists(policy);
                } catch (IOException e) {
                    log.accept("could not remove " + policy + " (written for the install): " + e.getMessage());
                }
            }
        }
        List<String> still = missing(new LinkedHashSet<>(wanted));
        if (!still.isEmpty()) {
            throw new BenchException("still missing after apt-get install: " + String.join(", ", still));
        }
    }

    private static boolean isRoot() {
        String uid = Procs.capture(5, "id", "-u").trim();
        return uid.equals("0");
    }

    private static void apt(Path tmp, Consumer<String> log, long timeoutSeconds, String... cmd) throws IOException, BenchException {
        Path out = tmp.resolve("apt-" + cmd[1] + ".log");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        pb.environment().put("DEBIAN_FRONTEND", "noninteractive");
        Process p = pb.start();
        try {
            if (!p.waitFor(timeoutSeconds, java.util.concurrent.TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new BenchException(String.join(" ", cmd) + " did not finish within " + timeoutSeconds + " s; see " + out);
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new BenchException("interrupted during " + String.join(" ", cmd), e);
        }
        if (p.exitValue() != 0) {
            List<String> lines = Files.readAllLines(out);
            throw new BenchException(String.join(" ", cmd) + " failed (exit " + p.exitValue() + "):\n"
                    + String.join("\n", lines.subList(Math.max(0, lines.size() - 15), lines.size())));
        }
        log.accept("  " + String.join(" ", cmd) + ": ok");
    }
}
