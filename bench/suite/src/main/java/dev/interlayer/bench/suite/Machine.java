package dev.interlayer.bench.suite;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/** What the report says about the machine and the programs: enough to know whether two reports compare. */
final class Machine {

    private Machine() {}

    static String cpuModel() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) {
                    return line.substring(line.indexOf(':') + 1).trim();
                }
            }
        } catch (IOException e) {
            return "?";
        }
        return "?";
    }

    static String memory() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemTotal:")) {
                    long kib = Long.parseLong(line.substring(9).trim().split("\\s+")[0]);
                    return String.format(Locale.ROOT, "%.1f GiB", kib / 1048576.0);
                }
            }
        } catch (IOException | RuntimeException e) {
            return "?";
        }
        return "?";
    }

    static String os() {
        try {
            for (String line : Files.readAllLines(Path.of("/etc/os-release"))) {
                if (line.startsWith("PRETTY_NAME=")) {
                    return line.substring(12).replace("\"", "");
                }
            }
        } catch (IOException e) {
            return "?";
        }
        return "?";
    }

    private static String firstLine(String s) {
        String t = s.strip();
        int nl = t.indexOf('\n');
        return nl < 0 ? t : t.substring(0, nl);
    }

    /** The git commit of the repository, with "+ uncommitted changes" when the tree is dirty. */
    static String commit(Path repo) {
        String head = Procs.capture(10, "git", "-C", repo.toString(), "rev-parse", "--short=12", "HEAD").strip();
        if (head.isEmpty() || head.contains(" ")) {
            return "? (not a git checkout)";
        }
        String status = Procs.capture(20, "git", "-C", repo.toString(), "status", "--porcelain", "--untracked-files=no").strip();
        String branch = Procs.capture(10, "git", "-C", repo.toString(), "rev-parse", "--abbrev-ref", "HEAD").strip();
        return head + " (" + branch + ")" + (status.isEmpty() ? "" : " + uncommitted changes");
    }

    /** The machine section of the report: one bullet per line. */
    static List<String> describe(Path repo, String java, Set<String> programs, double busyBefore, String jvmOpts,
                                 Path nettyJar) {
        List<String> l = new ArrayList<>();
        l.add("nproc: " + Runtime.getRuntime().availableProcessors() + "; CPU: " + cpuModel() + "; memory: " + memory());
        l.add("kernel: " + ProcFs.read("/proc/sys/kernel/ostype") + " " + ProcFs.read("/proc/sys/kernel/osrelease")
                + "; OS: " + os());
        l.add(String.format(Locale.ROOT, "machine busy before start (1 s sample): %.1f %% (should be near 0 for clean figures)",
                busyBefore));
        l.add("sysctl: congestion control " + ProcFs.read("/proc/sys/net/ipv4/tcp_congestion_control")
                + ", somaxconn " + ProcFs.read("/proc/sys/net/core/somaxconn")
                + ", tcp_tw_reuse " + ProcFs.read("/proc/sys/net/ipv4/tcp_tw_reuse")
                + ", ephemeral ports " + ProcFs.read("/proc/sys/net/ipv4/ip_local_port_range").replaceAll("\\s+", "-"));
        l.add("repository: " + repo + " at " + commit(repo));
        l.add("java (Interlayer, netty): " + firstLine(Procs.capture(20, java, "-version")) + "; JVM options: " + jvmOpts
                + " plus --sun-misc-unsafe-memory-access=allow --enable-native-access=ALL-UNNAMED");
        if (programs.contains("haproxy")) {
            l.add("haproxy: " + firstLine(Procs.capture(10, Installer.which("haproxy"), "-v")));
        }
        if (programs.contains("nginx")) {
            l.add("nginx: " + firstLine(Procs.capture(10, Installer.which("nginx"), "-v")) + " (stream: "
                    + Installer.NGINX_STREAM_MODULE.getFileName() + ")");
        }
        if (programs.contains("iperf3")) {
            l.add("iperf3: " + firstLine(Procs.capture(10, Installer.which("iperf3"), "--version")));
        }
        if (programs.contains("wrk")) {
            String w = firstLine(Procs.capture(10, Installer.which("wrk"), "-v"));
            l.add("wrk: " + (w.contains("Copyright") ? w.substring(0, w.indexOf("Copyright")).trim() : w));
        }
        if (programs.contains("socat")) {
            String[] s = Procs.capture(10, Installer.which("socat"), "-V").strip().split("\n");
            l.add("socat: " + (s.length > 1 ? s[1].trim() : s[0].trim()));
        }
        if (nettyJar != null) {
            l.add("netty forwarder: " + nettyJar);
        }
        return l;
    }
}
