package dev.interlayer.runtime;

import dev.interlayer.api.AppInfo;
import dev.interlayer.api.Cidr;
import dev.interlayer.api.ConnectionInfo;
import dev.interlayer.api.PortRange;
import dev.interlayer.api.Selector;
import dev.interlayer.api.Role;
import dev.interlayer.api.Side;
import dev.interlayer.api.TlsInfo;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Locale;

/**
 * Decides whether a selector matches a connection: every set field must match; an empty field matches anything.
 *
 * <p>App, pid, uid, exe and cgroup fields need the local process: when the engine could not find it, a selector that
 * names apps or pids does not match (it cannot be shown to hold). A selector whose only process field is uid asks a
 * {@link LocalProcess} connection for its socket's owner alone, which needs no search for the process (an intercepted
 * TCP connection reads it from its accepted socket's mark, without a query). A cgroup matches
 * a process in it or in a cgroup below it. An app name is compared with the process's
 * command name, which Linux truncates to 15 characters: a selector naming a longer app matches a command
 * name that is its first 15 characters.
 *
 * <p>TLS fields match the accepted socket's handshake ({@link ConnectionInfo#tls(Side)} of the local side in the client
 * role, of the remote side in the server role); with none there, a selector with a TLS field does not match.
 *
 * <p>Stateless (but for a cache of parsed subject patterns) and thread-safe; the registry calls it for every new connection.
 */
public final class SelectorMatcher {

    private SelectorMatcher() {}

    /** True if {@code s} matches {@code c}. */
    public static boolean matches(Selector s, ConnectionInfo c) {
        if (s.isAny()) {
            return true;
        }
        if (s.protocol() != null && s.protocol() != c.protocol()) return false;
        // Immutable sets throw on contains(null): an unknown listener or app name simply does not match.
        if (!s.listeners().isEmpty() && (c.listener() == null || !s.listeners().contains(c.listener()))) return false;
        if (!ports(s.localPorts(), c.localAddress())) return false;
        if (!ports(s.remotePorts(), c.remoteAddress())) return false;
        if (!cidrs(s.localCidrs(), c.localAddress())) return false;
        if (!cidrs(s.remoteCidrs(), c.remoteAddress())) return false;
        if (s.needsApp()) {
            LocalProcess local = c instanceof LocalProcess l ? l : null;
            if (local != null && s.apps().isEmpty() && s.pids().isEmpty() && s.exes().isEmpty() && s.cgroups().isEmpty()) {
                // uid only: the socket's owner, without the search for its process
                int uid = local.socketUid();
                if (uid < 0 || !s.uids().contains(uid)) return false;
            } else {
                AppInfo app = c.app();
                if (app == null) return false;
                if (!s.apps().isEmpty() && !appMatches(s.apps(), app.name())) return false;
                if (!s.pids().isEmpty() && !s.pids().contains(app.tgid()) && !s.pids().contains(app.pid())) return false;
                // an unknown uid (-1), exe or cgroup (null) cannot be shown to match
                if (!s.uids().isEmpty() && (app.uid() < 0 || !s.uids().contains(app.uid()))) return false;
                if (!s.exes().isEmpty() && (app.exe() == null || !s.exes().contains(app.exe()))) return false;
                if (!s.cgroups().isEmpty() && !within(s.cgroups(), local == null ? null : local.cgroup())) return false;
            }
        }
        if (s.needsTls() && !tls(s, c)) return false;
        return true;
    }

    /**
     * The TLS fields: they match the handshake on the socket the listener accepted (the local application's in the client
     * role, the network peer's in the server role), the one a listener's {@code tls:} block terminates.
     */
    private static boolean tls(Selector s, ConnectionInfo c) {
        TlsInfo t = c.tls(c.role() == Role.SERVER ? Side.REMOTE : Side.LOCAL);
        if (t == null) return false;
        if (!s.tlsSni().isEmpty() && !serverName(s.tlsSni(), t.serverName())) return false;
        if (!s.tlsAlpn().isEmpty() && (t.alpn() == null || !s.tlsAlpn().contains(t.alpn()))) return false;
        if (!s.tlsIdentities().isEmpty() && (t.identity() == null || !s.tlsIdentities().contains(t.identity()))) return false;
        if (!s.tlsSubjects().isEmpty() && !subject(s.tlsSubjects(), t.peerSubject())) return false;
        return true;
    }

    /** {@code name} (any case) is one of {@code names} (lower case), or one label under a {@code *.} wildcard of them. */
    static boolean serverName(List<String> names, String name) {
        if (name == null || name.isEmpty()) return false;
        String n = name.toLowerCase(Locale.ROOT);
        int dot = n.indexOf('.');
        for (String p : names) {
            if (p.startsWith("*.") ? dot > 0 && n.regionMatches(dot, p, 1, p.length() - 1) && n.length() - dot == p.length() - 1
                    : p.equals(n)) {
                return true;
            }
        }
        return false;
    }

    /**
     * {@code subject} (RFC 2253, as {@link TlsInfo#peerSubject()} gives it; null: no certificate) has every attribute of one
     * of {@code patterns} (RFC 2253 forms, see {@link Selector#tlsSubjects()}). Attribute names compare case-insensitively,
     * values exactly; a subject's attribute may appear in any RDN, multi-valued ones included.
     */
    static boolean subject(List<String> patterns, String subject) {
        if (subject == null) return false;
        // the selectors of every module are matched against one new connection in a row, on its event loop: its subject
        // is parsed once for all of them (one entry per thread, so nothing grows with the clients' subjects)
        Object[] last = LAST_SUBJECT.get();
        List<String[]> have;
        if (subject.equals(last[0])) {
            @SuppressWarnings("unchecked") List<String[]> cached = (List<String[]>) last[1];
            have = cached;
        } else {
            have = attributes(subject);
            last[0] = subject;
            last[1] = have;
        }
        if (have == null) return false;
        for (String p : patterns) {
            List<String[]> want = PATTERNS.computeIfAbsent(p, SelectorMatcher::attributes);
            if (want != null && containsAll(have, want)) return true;
        }
        return false;
    }

    /** Per thread: the subject parsed last and its attributes. */
    private static final ThreadLocal<Object[]> LAST_SUBJECT = ThreadLocal.withInitial(() -> new Object[2]);

    /** Parsed patterns, by their text: a module's selector is matched against every new connection, parsed once. */
    private static final java.util.Map<String, List<String[]>> PATTERNS = new java.util.concurrent.ConcurrentHashMap<>();

    private static boolean containsAll(List<String[]> have, List<String[]> want) {
        outer:
        for (String[] w : want) {
            for (String[] h : have) {
                if (h[0].equals(w[0]) && h[1].equals(w[1])) continue outer;
            }
            return false;
        }
        return true;
    }

    /**
     * The attributes of an RFC 2253 name as {type in upper case, value}: a value RFC 2253 writes as {@code #hex} (an
     * attribute it has no name for) stays in that form, so a pattern and a subject compare alike; null if {@code dn} is
     * not a name.
     */
    private static List<String[]> attributes(String dn) {
        try {
            List<String[]> out = new java.util.ArrayList<>();
            for (javax.naming.ldap.Rdn rdn : new javax.naming.ldap.LdapName(dn).getRdns()) {
                javax.naming.NamingEnumeration<? extends javax.naming.directory.Attribute> all = rdn.toAttributes().getAll();
                while (all.hasMore()) {
                    javax.naming.directory.Attribute a = all.next();
                    String type = a.getID().toUpperCase(Locale.ROOT);
                    for (int i = 0; i < a.size(); i++) {
                        Object v = a.get(i);
                        out.add(new String[] {type, v instanceof byte[] b ? "#" + java.util.HexFormat.of().formatHex(b) : String.valueOf(v)});
                    }
                }
            }
            return out;
        } catch (javax.naming.NamingException | IllegalArgumentException e) {
            return null;
        }
    }

    /** Longest command name Linux keeps ({@code TASK_COMM_LEN} 16, minus the terminating NUL). */
    static final int COMM_LENGTH = 15;

    private static boolean appMatches(java.util.Set<String> apps, String comm) {
        if (comm == null || comm.isEmpty()) return false;
        if (apps.contains(comm)) return true;
        if (comm.length() < COMM_LENGTH) return false;
        for (String a : apps) {
            if (a.length() > comm.length() && a.startsWith(comm)) return true;
        }
        return false;
    }

    /** {@code cgroup} is one of {@code cgroups} or below one of them (whole path components). */
    static boolean within(List<String> cgroups, String cgroup) {
        if (cgroup == null) return false;
        for (String c : cgroups) {
            if (cgroup.startsWith(c) && (cgroup.length() == c.length() || cgroup.charAt(c.length()) == '/')) return true;
        }
        return false;
    }

    private static boolean ports(List<PortRange> ranges, InetSocketAddress a) {
        if (ranges.isEmpty()) return true;
        if (a == null) return false;
        int p = a.getPort();
        for (PortRange r : ranges) {
            if (r.contains(p)) return true;
        }
        return false;
    }

    private static boolean cidrs(List<Cidr> cidrs, InetSocketAddress a) {
        if (cidrs.isEmpty()) return true;
        if (a == null || a.getAddress() == null) return false;
        for (Cidr c : cidrs) {
            if (c.contains(a.getAddress())) return true;
        }
        return false;
    }
}
