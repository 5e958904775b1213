package dev.interlayer.runtime;

import dev.interlayer.api.AppInfo;
import dev.interlayer.api.Cidr;
import dev.interlayer.api.ConnectionInfo;
import dev.interlayer.api.PortRange;
import dev.interlayer.api.Selector;
import java.net.InetSocketAddress;
import java.util.List;

/**
 * Decides whether a selector matches a connection: every set field must match; an empty field matches anything.
 *
 * <p>App and pid fields need the local process: when the engine could not find it, a selector that names
 * apps or pids does not match (it cannot be shown to hold). An app name is compared with the process's
 * command name, which Linux truncates to 15 characters: a selector naming a longer app matches a command
 * name that is its first 15 characters.
 *
 * <p>Stateless and thread-safe; the registry calls it for every new connection.
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
        if (!s.apps().isEmpty() || !s.pids().isEmpty()) {
            AppInfo app = c.app();
            if (app == null) return false;
            if (!s.apps().isEmpty() && !appMatches(s.apps(), app.name())) return false;
            if (!s.pids().isEmpty() && !s.pids().contains(app.tgid()) && !s.pids().contains(app.pid())) return false;
        }
        return true;
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
