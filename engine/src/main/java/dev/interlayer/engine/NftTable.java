package dev.interlayer.engine;

import dev.interlayer.api.Protocol;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * The agent's nftables table in the kernel, through the {@code nft} tool (scripts in nftables' own syntax on its standard
 * input, each one transaction): installed whole, replacing a table a crashed agent left; renewed every second when fail-open; deleted on
 * {@link #close}.
 *
 * <p>Lifecycle: {@link #install} → installed → {@link #close} → gone (close is idempotent). Thread-safe.
 */
public final class NftTable implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.engine");
    /** Bit of CAP_NET_ADMIN in /proc/self/status's CapEff. */
    private static final int CAP_NET_ADMIN = 12;

    /**
     * The switch that gives an accepted TCP socket the mark of the SYN that opened it (per network namespace): the table's
     * uid chain marks the SYNs of redirected connections with their socket owner's uid, which the agent reads from the
     * accepted socket.
     */
    private static final Path FWMARK_ACCEPT = Path.of("/proc/sys/net/ipv4/tcp_fwmark_accept");

    private final Interception settings;
    private final ScheduledExecutorService renewer;
    /** The agent turned tcp_fwmark_accept on (it was off): it turns it off again on close. */
    private final boolean fwmarkAcceptSet;
    private boolean closed;

    private NftTable(Interception settings, ScheduledExecutorService renewer, boolean fwmarkAcceptSet) {
        this.settings = settings;
        this.renewer = renewer;
        this.fwmarkAcceptSet = fwmarkAcceptSet;
    }

    /**
     * Why this process cannot intercept, saying what to do; null if it can: it needs CAP_NET_ADMIN (rules and
     * {@code SO_MARK}) and the {@code nft} tool, which runs with the agent's capabilities.
     */
    public static String missingPrivilege() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("CapEff:")) {
                    long caps = Long.parseUnsignedLong(line.substring(7).trim(), 16);
                    if ((caps & (1L << CAP_NET_ADMIN)) == 0) {
                        return "interception needs the CAP_NET_ADMIN capability (to install its nftables table and mark its own sockets),"
                                + " which this agent lacks; run it as root, or grant it (systemd: AmbientCapabilities=CAP_NET_ADMIN,"
                                + " which the nft tool it runs inherits)";
                    }
                }
            }
        } catch (IOException | NumberFormatException e) {
            return "interception runs on Linux only: /proc/self/status cannot be read (" + e.getMessage() + ")";
        }
        Result v = nft(null, "--version");
        if (v.code != 0) {
            return "interception needs the nft tool (nftables), which cannot be run: " + v.output + "; install it (apt-get install nftables)";
        }
        return null;
    }

    /** True if a table named {@value Interception#TABLE} exists in this network namespace (a running or a crashed agent's). */
    public static boolean present() {
        return nft(null, "list", "table", Interception.FAMILY, Interception.TABLE).code == 0;
    }

    /**
     * Installs the table for {@code settings}, redirecting IPv4 to {@code port} and IPv6 to {@code port6}, in one transaction that also removes a table
     * a crashed agent left (logged); a fail-open table is then renewed every second until {@link #close}.
     *
     * @throws EngineException if nft refuses the batch (then nothing of it is installed: the kernel applies all or none)
     */
    public static NftTable install(Interception settings, int port, int port6) throws EngineException {
        for (String c : settings.cgroups()) {
            String problem = Cgroup2.problem(c);
            if (problem != null) throw new EngineException("interception cannot select by cgroup (nothing of it is installed): " + problem);
        }
        boolean leftover = present();
        Result r = nft(settings.installScript(port, port6), "-f", "-");
        if (r.code != 0) {
            throw new EngineException("nft did not install the interception table (nothing of it is installed): " + r.output);
        }
        if (leftover) {
            LOG.log(System.Logger.Level.WARNING, "interception: replaced the nftables table {0} another agent left (it was killed or"
                    + " crashed, or is still running in this network namespace)", Interception.FAMILY + " " + Interception.TABLE);
        }
        ScheduledExecutorService renewer = null;
        if (settings.failure() == Interception.FailureMode.FAIL_OPEN) {
            renewer = Executors.newSingleThreadScheduledExecutor(run -> {
                Thread t = new Thread(run, "interlayer-nft-renew");
                t.setDaemon(true);
                return t;
            });
            String renew = settings.renewScript();
            renewer.scheduleWithFixedDelay(() -> {
                Result x = nft(renew, "-f", "-");
                if (x.code != 0) {
                    LOG.log(System.Logger.Level.WARNING, "interception: renewing the fail-open set failed (interception pauses once it"
                            + " expires, connections then go directly): {0}", x.output);
                }
            }, Interception.RENEW_SECONDS, Interception.RENEW_SECONDS, TimeUnit.SECONDS);
        }
        LOG.log(System.Logger.Level.INFO, "interception: installed nftables table {0}: {1}", Interception.FAMILY + " " + Interception.TABLE,
                String.join("; ", settings.describe(port, port6)));
        return new NftTable(settings, renewer, settings.tcpV4() && fwmarkAccept(true));
    }

    /**
     * Turns {@code net.ipv4.tcp_fwmark_accept} on ({@code on}; true if it was off and now is on) or back off. A failure is
     * logged, not thrown: without it uid selectors look each intercepted socket up instead of reading its mark.
     */
    private static boolean fwmarkAccept(boolean on) {
        try {
            if (on && !Files.readString(FWMARK_ACCEPT).strip().equals("0")) return false;
            Files.writeString(FWMARK_ACCEPT, on ? "1" : "0");
            return on;
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "interception: net.ipv4.tcp_fwmark_accept could not be set to {0} ({1}); {2}", on ? 1 : 0,
                    e.toString(), on ? "uid selectors look each intercepted socket up instead of reading the uid from its mark"
                            : "set it back with: sysctl -w net.ipv4.tcp_fwmark_accept=0");
            return false;
        }
    }

    /** The table as the kernel holds it now ({@code nft list table}), one line each; empty if it is gone. */
    public List<String> installed() {
        Result r = nft(null, "list", "table", Interception.FAMILY, Interception.TABLE);
        return r.code != 0 ? List.of() : r.output.lines().map(l -> l.stripTrailing().replace("\t", "  ")).filter(l -> !l.isBlank()).toList();
    }

    /** The settings this table was installed from. */
    public Interception settings() {
        return settings;
    }

    /** Deletes the table (renewals stop first); a failure is logged, not thrown: the agent is stopping. */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        if (renewer != null) {
            renewer.shutdownNow();
            try {
                renewer.awaitTermination(5, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        Result r = nft(Interception.deleteScript(), "-f", "-");
        if (r.code != 0 && present()) {
            LOG.log(System.Logger.Level.ERROR, "interception: the nftables table {0} could not be deleted ({1}); delete it with:"
                    + " nft delete table {0}", Interception.FAMILY + " " + Interception.TABLE, r.output);
        } else {
            LOG.log(System.Logger.Level.INFO, "interception: removed nftables table {0}", Interception.FAMILY + " " + Interception.TABLE);
        }
        if (fwmarkAcceptSet) fwmarkAccept(false);
    }

    private record Result(int code, String output) {}

    /** Runs nft with {@code args}, {@code input} (or nothing) on its standard input: its exit code and its output (both streams). */
    private static Result nft(String input, String... args) {
        String[] cmd = new String[args.length + 1];
        cmd[0] = "nft";
        System.arraycopy(args, 0, cmd, 1, args.length);
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            try (var in = p.getOutputStream()) {
                if (input != null) in.write(input.getBytes(StandardCharsets.UTF_8));
            }
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return new Result(-1, "nft did not finish within 30 s");
            }
            return new Result(p.exitValue(), out);
        } catch (IOException e) {
            return new Result(-1, e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Result(-1, "interrupted");
        }
    }
}
