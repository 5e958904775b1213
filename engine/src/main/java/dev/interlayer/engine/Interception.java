package dev.interlayer.engine;

import dev.interlayer.api.Cidr;
import dev.interlayer.api.PortRange;
import dev.interlayer.api.Protocol;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * What transparent interception sends through the agent: outbound TCP and UDP of local processes, IPv4 and IPv6, chosen by
 * rules, redirected (nftables {@code redirect}, a NAT rewrite) to the intercepting listeners on {@code listen} (IPv4) and
 * {@code listen6} (IPv6; TCP and UDP on the same port each), which connect each connection, or UDP flow, to its original
 * destination; and inbound TCP and UDP from other hosts to local ports, redirected to the inbound listeners on
 * {@code inboundListen}.
 *
 * <p>Every rule is drawn as one nftables rule per address family in the agent's own table {@value #TABLE} (family
 * {@value #FAMILY}, a {@code nat} chain on the {@code output} hook, one on {@code prerouting} for inbound rules) and starts
 * with the same guards: packets with the agent's {@code mark} are never redirected (the agent's upstream sockets carry it:
 * see {@link ListenerSpec#interceptMark()}), and loopback destinations never are. Nothing the agent sends can come back to
 * it: a loop is impossible by construction.
 *
 * <pre>{@code
 * new Interception(new InetSocketAddress("127.0.0.1", 15001), 0x1e5, FailureMode.FAIL_CLOSED,
 *         List.of(new Rule(Set.of(Protocol.TCP), List.of(Cidr.parse("10.0.0.0/8"), Cidr.parse("fd00::/8")), PortRange.parseList("80,443"),
 *                 List.of(1000), List.of(), List.of("/system.slice/app.service"))),
 *         null, List.of(), new InetSocketAddress("::1", 15001));
 * }</pre>
 *
 * @param listen where the IPv4 intercepting listeners bind (a loopback IPv4 address: redirect sends to 127.0.0.1)
 * @param mark the {@code SO_MARK} of the agent's upstream sockets (not 0)
 * @param failure what happens to new connections a rule matches once the agent is gone without removing its table
 * @param outbound the outbound rules; a connection is intercepted if one matches
 * @param inboundListen where the inbound intercepting listeners bind (TCP and UDP, a fixed port the redirected traffic
 *                      reaches: in the prerouting hook, redirect sends to the address of the interface it arrived on): an
 *                      IPv4 address takes IPv4 only, {@code [::]} both IPv4 and IPv6
 * @param inbound the inbound rules: TCP connections and UDP datagrams from other hosts to local ports, redirected to the
 *                inbound listeners, which connect each to the local server it was going to
 * @param listen6 where the IPv6 intercepting listeners bind ({@code [::1]}: redirect sends IPv6 to ::1), or null: outbound
 *                IPv6 is not intercepted
 */
public record Interception(InetSocketAddress listen, int mark, FailureMode failure, List<Rule> outbound, InetSocketAddress inboundListen,
                           List<InboundRule> inbound, InetSocketAddress listen6) {

    /** The nftables table the agent owns: created on start (replacing a crashed agent's), deleted on stop. */
    public static final String TABLE = "interlayer";
    /** The table's family: {@code inet}, one table for IPv4 and IPv6. */
    public static final String FAMILY = "inet";
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

    /** An address family of the rules: how nftables names its addresses and its loopback. */
    private enum Family {
        IPV4("ip", "127.0.0.0/8"), IPV6("ip6", "::1");

        final String nft;
        final String loopback;

        Family(String nft, String loopback) {
            this.nft = nft;
            this.loopback = loopback;
        }

        /** The CIDRs of {@code all} of this family. */
        List<String> of(List<Cidr> all) {
            return all.stream().filter(c -> (c.network().length == 4) == (this == IPV4)).map(Cidr::toString).toList();
        }
    }

    /**
     * One rule: outbound {@code protocols} (TCP, UDP or both) to any of {@code to} (IPv4 and IPv6 CIDRs; empty: any destination) on
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
        }
    }

    /**
     * One inbound rule: {@code protocols} (TCP, UDP or both) arriving from another host, from any of {@code from} (IPv4 and
     * IPv6 CIDRs; empty: any source) to a local address on any of {@code ports} (empty: any).
     */
    public record InboundRule(Set<Protocol> protocols, List<Cidr> from, List<PortRange> ports) {
        public InboundRule {
            if (protocols.isEmpty()) throw new IllegalArgumentException("an interception rule needs a protocol: tcp, udp or both");
            protocols = Set.copyOf(EnumSet.copyOf(protocols));
            from = List.copyOf(from);
            ports = List.copyOf(ports);
        }
    }

    /** An intercepting listener the agent runs for these rules: its name, protocol and role, and where it binds. */
    public record Listener(String name, Protocol protocol, dev.interlayer.api.Role role, InetSocketAddress address) {}

    /** Outbound rules only, IPv4 only. */
    public Interception(InetSocketAddress listen, int mark, FailureMode failure, List<Rule> outbound) {
        this(listen, mark, failure, outbound, null, List.of(), null);
    }

    public Interception {
        if (mark == 0) throw new IllegalArgumentException("the mark of the agent's own sockets must not be 0 (every unmarked socket has 0)");
        if (!(listen.getAddress() instanceof Inet4Address) || !listen.getAddress().isLoopbackAddress()) {
            throw new IllegalArgumentException("interception listens on a loopback IPv4 address (redirect sends to 127.0.0.1), not "
                    + listen.getAddress().getHostAddress() + "; use 127.0.0.1:PORT");
        }
        if (listen6 != null && !(listen6.getAddress() instanceof Inet6Address && listen6.getAddress().isLoopbackAddress())) {
            throw new IllegalArgumentException("interception listens for IPv6 on [::1] (redirect sends IPv6 to ::1), not "
                    + listen6.getAddress().getHostAddress() + "; use [::1]:PORT, or off");
        }
        outbound = List.copyOf(outbound);
        inbound = List.copyOf(inbound);
        if (outbound.isEmpty() && inbound.isEmpty()) throw new IllegalArgumentException("interception needs at least one outbound or inbound rule");
        if (!inbound.isEmpty() && (inboundListen == null || inboundListen.getPort() == 0
                || inboundListen.getAddress() instanceof Inet6Address && !inboundListen.getAddress().isAnyLocalAddress())) {
            throw new IllegalArgumentException("inbound interception listens on an IPv4 address or [::] (IPv4 and IPv6) and a fixed port the"
                    + " redirected traffic reaches, e.g. [::]:15002, not " + inboundListen);
        }
        for (int i = 0; i < outbound.size(); i++) {
            if (listen6 == null && !Family.IPV6.of(outbound.get(i).to()).isEmpty()) {
                throw new IllegalArgumentException("outbound rule " + (i + 1) + " names IPv6 destinations, but IPv6 is not intercepted here"
                        + " (listen6: off, or this host has no IPv6); set listen6: '[::1]:15001' or give IPv4 CIDRs");
            }
        }
        for (int i = 0; i < inbound.size(); i++) {
            if (!(inboundListen.getAddress() instanceof Inet6Address) && !Family.IPV6.of(inbound.get(i).from()).isEmpty()) {
                throw new IllegalArgumentException("inbound rule " + (i + 1) + " names IPv6 sources, but inbound-listen " + inboundListen
                        + " takes IPv4 only; set inbound-listen: '[::]:" + inboundListen.getPort() + "' (IPv4 and IPv6) or give IPv4 CIDRs");
            }
        }
    }

    /**
     * The intercepting listeners these rules need, in the order they start: {@value Engine#INTERCEPT_LISTENER} and
     * {@value Engine#INTERCEPT_UDP_LISTENER} on {@code listen}, {@value Engine#INTERCEPT6_LISTENER} and
     * {@value Engine#INTERCEPT_UDP6_LISTENER} on {@code listen6} (each if an outbound rule has its protocol and its family),
     * {@value Engine#INTERCEPT_INBOUND_LISTENER} and {@value Engine#INTERCEPT_INBOUND_UDP_LISTENER} on {@code inboundListen}
     * (each if an inbound rule has its protocol).
     */
    public List<Listener> listeners() {
        List<Listener> out = new ArrayList<>();
        Set<Protocol> v4 = protocols(Family.IPV4);
        Set<Protocol> v6 = protocols(Family.IPV6);
        dev.interlayer.api.Role client = dev.interlayer.api.Role.CLIENT;
        if (v4.contains(Protocol.TCP)) out.add(new Listener(Engine.INTERCEPT_LISTENER, Protocol.TCP, client, listen));
        if (v4.contains(Protocol.UDP)) out.add(new Listener(Engine.INTERCEPT_UDP_LISTENER, Protocol.UDP, client, listen));
        if (v6.contains(Protocol.TCP)) out.add(new Listener(Engine.INTERCEPT6_LISTENER, Protocol.TCP, client, listen6));
        if (v6.contains(Protocol.UDP)) out.add(new Listener(Engine.INTERCEPT_UDP6_LISTENER, Protocol.UDP, client, listen6));
        EnumSet<Protocol> in = EnumSet.noneOf(Protocol.class);
        inbound.forEach(r -> in.addAll(r.protocols()));
        dev.interlayer.api.Role server = dev.interlayer.api.Role.SERVER;
        if (in.contains(Protocol.TCP)) out.add(new Listener(Engine.INTERCEPT_INBOUND_LISTENER, Protocol.TCP, server, inboundListen));
        if (in.contains(Protocol.UDP)) out.add(new Listener(Engine.INTERCEPT_INBOUND_UDP_LISTENER, Protocol.UDP, server, inboundListen));
        return out;
    }

    /** True if outbound IPv4 TCP is intercepted: the uid chain's redirected SYNs (see {@link #uidChains}). */
    boolean tcpV4() {
        return protocols(Family.IPV4).contains(Protocol.TCP);
    }

    /** The protocols of the outbound rules that match {@code family}'s destinations. */
    private Set<Protocol> protocols(Family family) {
        EnumSet<Protocol> all = EnumSet.noneOf(Protocol.class);
        outbound.stream().filter(r -> matches(family, r.to())).forEach(r -> all.addAll(r.protocols()));
        return all;
    }

    /** True if a rule with these CIDRs has a {@code family} variant: no CIDRs (any address) or some of the family (IPv6 only with listen6). */
    private boolean matches(Family family, List<Cidr> cidrs) {
        if (family == Family.IPV6 && listen6 == null) return false;
        return cidrs.isEmpty() || !family.of(cidrs).isEmpty();
    }

    /**
     * The rules in nftables' own syntax, with the ports the IPv4 and IPv6 listeners bound ({@code port6}: ignored without
     * {@code listen6}): what {@code run --check} shows.
     */
    public List<String> describe(int port, int port6) {
        List<String> out = new ArrayList<>();
        out.add("table " + FAMILY + " " + TABLE + ", chain output (type nat hook output priority -100), failure " + failure.id()
                + (failure == FailureMode.FAIL_OPEN ? " (set " + ALIVE_SET + ", renewed every " + RENEW_SECONDS + " s, lasting " + ALIVE_SECONDS + " s)" : ""));
        outboundRules(port, port6).forEach(r -> out.add(r[0]));
        if (tcpV4()) {
            out.add("table " + FAMILY + " " + TABLE + ", chain uid (type filter hook output priority -99): ip daddr 127.0.0.1 tcp dport " + port
                    + " ct state new ct status dnat: the SYN's mark set to 0x80000000 | the socket owner's uid (chain uid_bits)");
        }
        if (!inbound.isEmpty()) out.add("table " + FAMILY + " " + TABLE + ", chain prerouting (type nat hook prerouting priority -100)");
        inboundRules().forEach(r -> out.add(r[0]));
        return out;
    }

    /**
     * The outbound rules as nftables rules, each {rule, comment}: per rule, one per address family it covers (IPv4 to
     * {@code port}, IPv6 to {@code port6}), and one per cgroup of a rule with cgroups (each cgroup has its own depth in the
     * tree, so they cannot share a set).
     */
    private List<String[]> outboundRules(int port, int port6) {
        List<String[]> out = new ArrayList<>();
        int n = 0;
        for (Rule r : outbound) {
            n++;
            for (Family f : Family.values()) {
                if (!matches(f, r.to())) continue;
                StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "meta mark != 0x%08x %s daddr != %s ", mark, f.nft, f.loopback));
                if (failure == FailureMode.FAIL_OPEN) sb.append("meta l4proto @").append(ALIVE_SET).append(' ');
                List<String> protocols = names(r.protocols());
                sb.append("meta l4proto ").append(set(protocols)).append(' ');
                if (!r.to().isEmpty()) sb.append(f.nft).append(" daddr ").append(set(f.of(r.to()))).append(' ');
                ports(sb, protocols, r.ports());
                if (!r.uids().isEmpty()) sb.append("meta skuid ").append(set(r.uids().stream().map(String::valueOf).toList())).append(' ');
                if (!r.gids().isEmpty()) sb.append("meta skgid ").append(set(r.gids().stream().map(String::valueOf).toList())).append(' ');
                String redirect = "redirect to :" + (f == Family.IPV4 ? port : port6);
                String comment = "interception rule " + n;
                if (r.cgroups().isEmpty()) out.add(new String[] {sb + redirect, comment});
                for (String c : r.cgroups()) {
                    out.add(new String[] {sb + "socket cgroupv2 level " + Cgroup2.level(c) + " \"" + Cgroup2.nftName(c) + "\" " + redirect, comment});
                }
            }
        }
        return out;
    }

    /** The inbound rules as nftables rules, each {rule, comment}: per rule, one per address family it covers. */
    private List<String[]> inboundRules() {
        List<String[]> out = new ArrayList<>();
        int n = 0;
        boolean dual = inboundListen != null && inboundListen.getAddress() instanceof Inet6Address;
        for (InboundRule r : inbound) {
            n++;
            for (Family f : Family.values()) {
                if (f == Family.IPV6 && !dual || !r.from().isEmpty() && f.of(r.from()).isEmpty()) continue;
                // from another host (not the host's own connections over lo) to an address of this host (not forwarded traffic)
                StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "meta mark != 0x%08x iifname != \"lo\" fib daddr type local ", mark));
                // the family: by the source CIDRs, or said (a rule for any source has one per family the listener takes)
                if (r.from().isEmpty()) sb.append("meta nfproto ").append(f == Family.IPV4 ? "ipv4" : "ipv6").append(' ');
                if (failure == FailureMode.FAIL_OPEN) sb.append("meta l4proto @").append(ALIVE_SET).append(' ');
                List<String> protocols = names(r.protocols());
                sb.append("meta l4proto ").append(set(protocols)).append(' ');
                if (!r.from().isEmpty()) sb.append(f.nft).append(" saddr ").append(set(f.of(r.from()))).append(' ');
                ports(sb, protocols, r.ports());
                out.add(new String[] {sb.append("redirect to :").append(inboundListen.getPort()).toString(), "inbound interception rule " + n});
            }
        }
        return out;
    }

    /** Appends the destination port match of a rule for {@code protocols} (nothing for any port). */
    private static void ports(StringBuilder sb, List<String> protocols, List<PortRange> ports) {
        if (ports.isEmpty()) return;
        // th: the transport header's destination port, where TCP and UDP keep it alike
        sb.append(protocols.size() == 1 ? protocols.getFirst() : "th").append(" dport ").append(set(ports.stream().map(PortRange::toString).toList())).append(' ');
    }

    /** The protocols as nftables names them, in a fixed order (tcp, then udp). */
    private static List<String> names(Set<Protocol> protocols) {
        return EnumSet.copyOf(protocols).stream().map(p -> p.name().toLowerCase(Locale.ROOT)).toList();
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
     * table with the ports the IPv4 and IPv6 listeners bound: one transaction that creates the table, deletes it (with
     * whatever a crashed agent left in it) and creates it anew, so the kernel holds either the old table or the complete new
     * one, never a part. It also deletes the {@code ip} table of the same name an agent of an earlier version (IPv4 only) left.
     */
    String installScript(int port, int port6) {
        StringBuilder b = new StringBuilder();
        for (String family : List.of("ip", FAMILY)) {
            b.append("add table ").append(family).append(' ').append(TABLE).append('\n');
            b.append("delete table ").append(family).append(' ').append(TABLE).append('\n');
        }
        b.append("table ").append(FAMILY).append(' ').append(TABLE).append(" {\n");
        if (failure == FailureMode.FAIL_OPEN) b.append("  set ").append(ALIVE_SET).append(" { type inet_proto; flags timeout; }\n");
        chain(b, "output", outboundRules(port, port6));
        if (tcpV4()) uidChains(b, port);
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
        String set = FAMILY + " " + TABLE + " " + ALIVE_SET;
        return "flush set " + set + "\nadd element " + set + " { tcp timeout " + ALIVE_SECONDS + "s, udp timeout " + ALIVE_SECONDS + "s }\n";
    }

    /** The script that deletes the table. */
    static String deleteScript() {
        return "delete table " + FAMILY + " " + TABLE + "\n";
    }
}
