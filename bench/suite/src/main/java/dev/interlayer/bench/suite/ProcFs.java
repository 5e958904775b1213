package dev.interlayer.bench.suite;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Readings from {@code /proc}: CPU time of a process tree, whole-machine busy time, resident memory, listening
 * ports and resource limits. Linux only, like the rest of the suite.
 */
final class ProcFs {

    private ProcFs() {}

    /** Clock ticks per second of the {@code /proc/<pid>/stat} times (USER_HZ, 100 on every Linux we run on). */
    static final double CLK_TCK = clockTicks();

    private static double clockTicks() {
        try {
            Process p = new ProcessBuilder("getconf", "CLK_TCK").redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).trim();
            p.waitFor();
            return Double.parseDouble(out);
        } catch (IOException | NumberFormatException e) {
            return 100;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 100;
        }
    }

    /** The process and every live descendant, root first. */
    static List<Long> tree(long pid) {
        List<Long> pids = new ArrayList<>();
        pids.add(pid);
        ProcessHandle.of(pid).ifPresent(h -> h.descendants().forEach(d -> pids.add(d.pid())));
        return pids;
    }

    /**
     * Fields of {@code /proc/<pid>/stat} after the command name: index 0 is the state (field 3 of proc(5)), so
     * utime (field 14) is index 11. Null when the process is gone.
     */
    private static String[] statFields(long pid) {
        try {
            String s = Files.readString(Path.of("/proc", Long.toString(pid), "stat"), StandardCharsets.US_ASCII);
            return s.substring(s.lastIndexOf(')') + 2).trim().split(" ");
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /** utime + stime + cutime + cstime of one process in seconds (its reaped children included); 0 if gone. */
    static double cpuSeconds(long pid) {
        String[] f = statFields(pid);
        if (f == null) {
            return 0;
        }
        long ticks = Long.parseLong(f[11]) + Long.parseLong(f[12]) + Long.parseLong(f[13]) + Long.parseLong(f[14]);
        return ticks / CLK_TCK;
    }

    /** CPU seconds of a process and its live descendants (each with its reaped children). */
    static double treeCpuSeconds(long pid) {
        double sum = 0;
        for (long p : tree(pid)) {
            sum += cpuSeconds(p);
        }
        return sum;
    }

    /** cutime + cstime of this JVM: the CPU of the children it has reaped (the load generators). */
    static double reapedChildrenCpuSeconds() {
        String[] f = statFields(ProcessHandle.current().pid());
        if (f == null) {
            return 0;
        }
        return (Long.parseLong(f[13]) + Long.parseLong(f[14])) / CLK_TCK;
    }

    /** Whole-machine {busy, total} jiffies from the first line of {@code /proc/stat}. */
    static long[] machineTicks() {
        try {
            String line = Files.readAllLines(Path.of("/proc/stat")).getFirst();
            String[] f = line.trim().split("\\s+");
            long user = Long.parseLong(f[1]), nice = Long.parseLong(f[2]), system = Long.parseLong(f[3]);
            long idle = Long.parseLong(f[4]), iowait = Long.parseLong(f[5]), irq = Long.parseLong(f[6]);
            long softirq = Long.parseLong(f[7]), steal = f.length > 8 ? Long.parseLong(f[8]) : 0;
            long busy = user + nice + system + irq + softirq + steal;
            return new long[] {busy, busy + idle + iowait};
        } catch (IOException e) {
            return new long[] {0, 0};
        }
    }

    /** Busy percentage of the whole machine between two {@link #machineTicks()} readings. */
    static double busyPct(long[] before, long[] after) {
        long total = after[1] - before[1];
        return total > 0 ? 100.0 * (after[0] - before[0]) / total : 0;
    }

    /** VmRSS of one process in KiB; 0 if gone. */
    static long rssKiB(long pid) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.substring(6).trim().split("\\s+")[0]);
                }
            }
        } catch (IOException | RuntimeException e) {
            return 0;
        }
        return 0;
    }

    /** Sum of VmRSS over a process tree in KiB (shared pages counted once per process). */
    static long treeRssKiB(long pid) {
        long sum = 0;
        for (long p : tree(pid)) {
            sum += rssKiB(p);
        }
        return sum;
    }

    /** TCP ports in LISTEN state on any address (IPv4 and IPv6). */
    static Set<Integer> listeningPorts() {
        Set<Integer> ports = new HashSet<>();
        for (String file : List.of("/proc/net/tcp", "/proc/net/tcp6")) {
            try {
                List<String> lines = Files.readAllLines(Path.of(file));
                for (int i = 1; i < lines.size(); i++) {
                    String[] f = lines.get(i).trim().split("\\s+");
                    if (f.length > 3 && f[3].equals("0A")) {
                        String local = f[1];
                        ports.add(Integer.parseInt(local.substring(local.indexOf(':') + 1), 16));
                    }
                }
            } catch (IOException | RuntimeException e) {
                // no IPv6 table on this kernel: nothing listens there
            }
        }
        return ports;
    }

    /** Local ports of the unconnected UDP sockets (state 07 in /proc/net/udp and udp6): where a UDP server or proxy receives. */
    static Set<Integer> udpBoundPorts() {
        Set<Integer> ports = new HashSet<>();
        for (String file : List.of("/proc/net/udp", "/proc/net/udp6")) {
            try {
                List<String> lines = Files.readAllLines(Path.of(file));
                for (int i = 1; i < lines.size(); i++) {
                    String[] f = lines.get(i).trim().split("\\s+");
                    if (f.length > 3 && f[3].equals("07")) {
                        String local = f[1];
                        ports.add(Integer.parseInt(local.substring(local.indexOf(':') + 1), 16));
                    }
                }
            } catch (IOException | RuntimeException e) {
                // no IPv6 table on this kernel: nothing is bound there
            }
        }
        return ports;
    }

    /** Open file descriptors of a process and its descendants ({@code /proc/<pid>/fd}); a process that cannot be read counts 0. */
    static long treeFds(long pid) {
        long n = 0;
        for (long p : tree(pid)) {
            try (var s = Files.list(Path.of("/proc", Long.toString(p), "fd"))) {
                n += s.count();
            } catch (IOException | RuntimeException e) {
                // exited meanwhile
            }
        }
        return n;
    }

    /** The soft and hard limit on open files of a process ({@code /proc/<pid>/limits}); {-1, -1} if unknown. */
    static long[] openFilesLimit(long pid) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "limits"))) {
                if (line.startsWith("Max open files")) {
                    String[] f = line.substring("Max open files".length()).trim().split("\\s+");
                    return new long[] {parseLimit(f[0]), parseLimit(f[1])};
                }
            }
        } catch (IOException | RuntimeException e) {
            return new long[] {-1, -1};
        }
        return new long[] {-1, -1};
    }

    private static long parseLimit(String s) {
        return s.toLowerCase(Locale.ROOT).equals("unlimited") ? Long.MAX_VALUE : Long.parseLong(s);
    }

    /** A one-line value of a file, trimmed, or {@code "?"}. */
    static String read(String file) {
        try {
            // not Files.readString: /proc/sys files report size 0 and some JDK paths then read a single block wrongly
            return String.join(" ", Files.readAllLines(Path.of(file))).trim().replace('\t', ' ');
        } catch (IOException e) {
            return "?";
        }
    }
}
