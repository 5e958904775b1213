package dev.interlayer.engine;

import dev.interlayer.api.Cidr;
import dev.interlayer.api.PortRange;
import dev.interlayer.api.Protocol;
import java.net.Inet4Address;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * What transparent interception sends through the agent: outbound IPv4 TCP and UDP of local processes, chosen by rules,
 * redirected (nftables {@code redirect}, a NAT rewrite) to the intercepting listeners on {@code listen} (TCP and UDP on the
 * same port), which connect each connection, or UDP flow, to its original destination.
 *
 * <p>Every rule is drawn as one nftables rule in the agent's own table {@value #TABLE} (family {@code ip}, a {@code nat}
 * chain on the {@code output} hook) and starts with the same three guards: packets with the agent's {@code mark} are never
 * redirected (the agent's upstream sockets carry it: see {@link ListenerSpec#interceptMark()}), loopback destinations
 * never are, and only TCP is. Nothing the agent sends can come back to it: a loop is impossible by construction.
 *
 * <pre>{@code
 * new Interception(new InetSocketAddress("127.0.0.1", 15001), 0x1e5, FailureMode.FAIL_CLOSED,
 *         List.of(new Rule(Set.of(Protocol.TCP), List.of(Cidr.parse("10.0.0.0/8")), PortRange.parseList("80,443"), List.of(1000), List.of(),
 *                 List.of("/system.slice/app.service"))));
 * }</pre>
 *
 * @param listen where the intercepting listener binds (a loopback IPv4 address: redirect sends to 127.0.0.1)
 * @param mark the {@code SO_MARK} of the agent's upstream sockets (not 0)
 * @param failure what happens to new connections a rule matches once the agent is gone without removing its table
 * @param outbound the outbound rules; a connection is intercepted if one matches
 * @param inboundListen where the inbound intercepting listener binds (an IPv4 address the redirected connections reach:
 *                      in the prerouting hook, redirect sends to the address of the interface they arrived on)
 * @param inbound the inbound rules: TCP connections from other hosts to local ports, redirected to the inbound listener,
 *                which connects each to the local server it was going to
 */
public record Interception(InetSocketAddress listen, int mark, FailureMode failure, List<Rule> outbound, InetSocketAddress inboundListen,
                           List<InboundRule> inbound) {

    /** The nftables table the agent owns: created on start (replacing a crashed agent's), deleted on stop. */
    public static final String TABLE = "interlayer";
    /** The set whose elements (tcp, udp) a fail-open agent renews: when they expire, the rules stop matching. */
    static final String ALIVE_SET = "alive";
    /** Seconds a fail-open agent's renewal lasts; it renews every {@link #RENEW_SECONDS}. */
    public static final int ALIVE_SECONDS = 3;
    static final int RENEW_SECONDS = 1;

    /** The agent was killed (-9, a crash) and its table stayed: what happens to new connections the rules match. */
    public enum FailureMode {
        /**
         * The table keeps redirecting to the port no socket listens on any more: each connection is refused at once
         * (a reset, never a hang) until an agent starts again, which replaces the table.
         */
        FAIL_CLOSED,
        /**
         * The rules match only while the agent renews, every second, an element of the table's {@code alive} set that
         * expires after {@value #ALIVE_SECONDS} s: once the agent is gone, new connections are refused for at most that
         * long, then go directly to their destinations, not intercepted.
         */
        FAIL_OPEN;

        /** The config spelling: fail-closed or fail-open. */
        public String id() {
            return name().toLowerCase(Locale.ROOT).replace('_', '-');
        }
    }

    /**
     * One rule: outbound {@code protocols} (TCP, UDP or both) to any of {@code to} (IPv4 CIDRs; empty: any destination) on
     * any of {@code ports} (empty: any), from a socket owned by any of {@code uids} and any of {@code gids} (empty: any user,
     * any group) of a process in one of {@code cgroups} or below (cgroup2 paths as {@code /proc/PID/cgroup} shows them, see
     * {@link Cgroup2}; empty: any cgroup).
     */
    public record Rule(Set<Protocol> protocols, List<Cidr> to, List<PortRange> ports, List<Integer> uids, List<Integer> gids,
                       List<String> cgroups) {
        public Rule {
            if (protocols.isEmpty()) throw new IllegalArgumentException("an interception rule needs a protocol: tcp, udp or both");
            protocols = Set.copyOf(EnumSet.copyOf(protocols));
            to = List.copyOf(to);
            ports = List.copyOf(ports);
            uids = List.copyOf(uids);
            gids = List.copyOf(gids);
            cgroups = List.copyOf(cgroups);
            for (String c : cgroups) {
                String problem = Cgroup2.syntax(c);
                if (problem != null) throw new IllegalArgumentException(problem);
            }
            for (Cidr c : to) {
                if (c.network().length != 4) {
                    throw new IllegalArgumentException("'" + c + "' is an IPv6 CIDR; interception covers IPv4 only so far: give IPv4 CIDRs");
                }
            }
        }
    }

    /**
     * One inbound rule: TCP connections arriving from another host, from any of {@code from} (IPv4 CIDRs; empty: any source)
     * to a local address on any of {@code ports} (empty: any).
     */
    public record InboundRule(List<Cidr> from, List<PortRange> ports) {
        public InboundRule {
            from = List.copyOf(from);
            ports = List.copyOf(ports);
            for (Cidr c : from) {
                if (c.network().length != 4) {
                    throw new IllegalArgumentException("'" + c + "' is an IPv6 CIDR; interception covers IPv4 only so far: give IPv4 CIDRs");
                }
            }
        }
    }

    /** Outbound rules only. */
    public Interception(InetSocketAddress listen, int mark, FailureMode failure, List<Rule> outbound) {
        this(listen, mark, failure, outbound, null, List.of());
    }

    public Interception {
        if (mark == 0) throw new IllegalArgumentException("the mark of the agent's own sockets must not be 0 (every unmarked socket has 0)");
        if (!(listen.getAddress() instanceof Inet4Address) || !listen.getAddress().isLoopbackAddress()) {
            throw new IllegalArgumentException("interception listens on a loopback IPv4 address (redirect sends to 127.0.0.1), not "
                    + listen.getAddress().getHostAddress() + "; use 127.0.0.1:PORT");
        }
        outbound = List.copyOf(outbound);
        inbound = List.copyOf(inbound);
        if (outbound.isEmpty() && inbound.isEmpty()) throw new IllegalArgumentException("interception needs at least one outbound or inbound rule");
        if (!inbound.isEmpty() && (inboundListen == null || !(inboundListen.getAddress() instanceof Inet4Address) || inboundListen.getPort() == 0)) {
            throw new IllegalArgumentException("inbound interception listens on an IPv4 address and a fixed port the redirected connections"
                    + " reach, e.g. 0.0.0.0:15002, not " + inboundListen);
        }
    }

    /** The rules in nftables' own syntax, with the listener's bound {@code port}: what {@code run --check} shows. */
    public List<String> describe(int port) {
        List<String> out = new ArrayList<>();
        out.add("table ip " + TABLE + ", chain output (type nat hook output priority -100), failure " + failure.id()
                + (failure == FailureMode.FAIL_OPEN ? " (set " + ALIVE_SET + ", renewed every " + RENEW_SECONDS + " s, lasting " + ALIVE_SECONDS + " s)" : ""));
        outboundRules(port).forEach(r -> out.add(r[0]));
        if (protocols().contains(Protocol.TCP)) {
            out.add("table ip " + TABLE + ", chain uid (type filter hook output priority -99): ip daddr 127.0.0.1 tcp dport " + port
                    + " ct state new ct status dnat: the SYN's mark set to 0x80000000 | the socket owner's uid (chain uid_bits)");
        }
        if (!inbound.isEmpty()) out.add("table ip " + TABLE + ", chain prerouting (type nat hook prerouting priority -100)");
        inboundRules().forEach(r -> out.add(r[0]));
        return out;
    }

    /**
     * The outbound rules as nftables rules, each {rule, comment}: one per rule, or one per cgroup of a rule with cgroups
     * (each cgroup has its own depth in the tree, so they cannot share a set).
     */
    private List<String[]> outboundRules(int port) {
        List<String[]> out = new ArrayList<>();
        int n = 0;
        for (Rule r : outbound) {
            n++;
            StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "meta mark != 0x%08x ip daddr != 127.0.0.0/8 ", mark));
            if (failure == FailureMode.FAIL_OPEN) sb.append("meta l4proto @").append(ALIVE_SET).append(' ');
            List<String> protocols = names(r);
            sb.append("meta l4proto ").append(set(protocols)).append(' ');
            if (!r.to().isEmpty()) sb.append("ip daddr ").append(set(r.to().stream().map(Cidr::toString).toList())).append(' ');
            // th: the transport header's destination port, where TCP and UDP keep it alike
            if (!r.ports().isEmpty()) {
                sb.append(protocols.size() == 1 ? protocols.getFirst() : "th").append(" dport ")
                        .append(set(r.ports().stream().map(PortRange::toString).toList())).append(' ');
            }
            if (!r.uids().isEmpty()) sb.append("meta skuid ").append(set(r.uids().stream().map(String::valueOf).toList())).append(' ');
            if (!r.gids().isEmpty()) sb.append("meta skgid ").append(set(r.gids().stream().map(String::valueOf).toList())).append(' ');
            String redirect = "redirect to :" + port;
            String comment = "interception rule " + n;
            if (r.cgroups().isEmpty()) out.add(new String[] {sb + redirect, comment});
            for (String c : r.cgroups()) {
                out.add(new String[] {sb + "socket cgroupv2 level " + Cgroup2.level(c) + " \"" + Cgroup2.nftName(c) + "\" " + redirect, comment});
            }
        }
        return out;
    }

    /** The inbound rules as nftables rules, each {rule, comment}. */
    private List<String[]> inboundRules() {
        List<String[]> out = new ArrayList<>();
        int n = 0;
        for (InboundRule r : inbound) {
            n++;
            // from another host (not the host's own connections over lo) to an address of this host (not forwarded traffic)
            StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "meta mark != 0x%08x iifname != \"lo\" fib daddr type local ", mark));
            if (failure == FailureMode.FAIL_OPEN) sb.append("meta l4proto @").append(ALIVE_SET).append(' ');
            sb.append("meta l4proto tcp ");
            if (!r.from().isEmpty()) sb.append("ip saddr ").append(set(r.from().stream().map(Cidr::toString).toList())).append(' ');
            if (!r.ports().isEmpty()) sb.append("tcp dport ").append(set(r.ports().stream().map(PortRange::toString).toList())).append(' ');
            out.add(new String[] {sb.append("redirect to :").append(inboundListen.getPort()).toString(), "inbound interception rule " + n});
        }
        return out;
    }

    /** The rule's protocols as nftables names them, in a fixed order (tcp, then udp). */
    private static List<String> names(Rule r) {
        return EnumSet.copyOf(r.protocols()).stream().map(p -> p.name().toLowerCase(Locale.ROOT)).toList();
    }

    /** The protocols of all outbound rules: which outbound intercepting listeners the agent needs. */
    public Set<Protocol> protocols() {
        EnumSet<Protocol> all = EnumSet.noneOf(Protocol.class);
        outbound.forEach(r -> all.addAll(r.protocols()));
        return all;
    }

    /** The cgroups the outbound rules name. */
    public List<String> cgroups() {
        return outbound.stream().flatMap(r -> r.cgroups().stream()).distinct().toList();
    }

    private static String set(List<String> items) {
        return items.size() == 1 ? items.getFirst() : "{ " + String.join(", ", items) + " }";
    }

    /**
     * The nftables script ({@code nft -f -}, nftables' own syntax: its JSON input has no cgroup level) that installs the
     * table with the listener's bound {@code port}: one transaction that creates the table, deletes it (with whatever a
     * crashed agent left in it) and creates it anew, so the kernel holds either the old table or the complete new one,
     * never a part.
     */
    String installScript(int port) {
        StringBuilder b = new StringBuilder();
        b.append("add table ip ").append(TABLE).append('\n');
        b.append("delete table ip ").append(TABLE).append('\n');
        b.append("table ip ").append(TABLE).append(" {\n");
        if (failure == FailureMode.FAIL_OPEN) b.append("  set ").append(ALIVE_SET).append(" { type inet_proto; flags timeout; }\n");
        chain(b, "output", outboundRules(port));
        if (protocols().contains(Protocol.TCP)) uidChains(b, port);
        if (!inbound.isEmpty()) chain(b, "prerouting", inboundRules());
        b.append("}\n");
        if (failure == FailureMode.FAIL_OPEN) b.append(renewScript());
        return b.toString();
    }

    /**
     * The chains that give a redirected connection's SYN the uid of its client's socket as its mark ({@link Intercepted#UID_MARK}
     * and the uid's 31 bits), which the kernel passes to the socket the intercepting listener accepts when
     * {@code net.ipv4.tcp_fwmark_accept} is 1: {@code uid} (after the redirect, priority -99) picks the SYNs (and their
     * retransmissions) redirected to {@code port}, {@code uid_bits} writes the mark, one rule per bit, since nftables
     * refuses to write a uid into a mark (they are different types) but lets a mark be tested and set bit by bit. The SYN's
     * own mark is cleared first; a socket with no uid to read (a kernel socket) or a uid from 2^31 up gets a mark without
     * the high bit: the agent then looks the socket up.
     */
    private static void uidChains(StringBuilder b, int port) {
        b.append("  chain uid {\n    type filter hook output priority -99; policy accept;\n")
                .append("    ip daddr 127.0.0.1 tcp dport ").append(port).append(" ct state new ct status dnat jump uid_bits\n  }\n");
        b.append("  chain uid_bits {\n    meta mark set 0\n")
                .append(String.format(Locale.ROOT, "    meta skuid < 0x%08x meta mark set 0x%08x\n", Intercepted.UID_MARK, Intercepted.UID_MARK));
        for (int bit = 0; bit < 31; bit++) {
            b.append(String.format(Locale.ROOT, "    meta skuid & 0x%08x != 0 meta mark set meta mark | 0x%08x\n", 1 << bit, 1 << bit));
        }
        b.append("  }\n");
    }

    private static void chain(StringBuilder b, String hook, List<String[]> rules) {
        b.append("  chain ").append(hook).append(" {\n    type nat hook ").append(hook).append(" priority -100; policy accept;\n");
        for (String[] r : rules) b.append("    ").append(r[0]).append(" comment \"").append(r[1]).append("\"\n");
        b.append("  }\n");
    }

    /** The script that renews the fail-open elements (tcp, udp): empties the set and adds them again with a full lifetime. */
    String renewScript() {
        String set = " set ip " + TABLE + " " + ALIVE_SET;
        return "flush" + set + "\nadd element ip " + TABLE + " " + ALIVE_SET + " { tcp timeout " + ALIVE_SECONDS + "s, udp timeout "
                + ALIVE_SECONDS + "s }\n";
    }

    /** The script that deletes the table. */
    static String deleteScript() {
        return "delete table ip " + TABLE + "\n";
    }
}
