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
 * apps or pids does not match (it cannot be shown to hold).
 */
public final class SelectorMatcher {

    private SelectorMatcher() {}

    /** True if {@code s} matches {@code c}. */
    public static boolean matches(Selector s, ConnectionInfo c) {
        if (s.isAny()) {
            return true;
        }
        if (s.protocol() != null && s.protocol() != c.protocol()) return false;
        if (!s.listeners().isEmpty() && !s.listeners().contains(c.listener())) return false;
        if (!ports(s.localPorts(), c.localAddress())) return false;
        if (!ports(s.remotePorts(), c.remoteAddress())) return false;
        if (!cidrs(s.localCidrs(), c.localAddress())) return false;
        if (!cidrs(s.remoteCidrs(), c.remoteAddress())) return false;
        if (!s.apps().isEmpty() || !s.pids().isEmpty()) {
            AppInfo app = c.app();
            if (app == null) return false;
            if (!s.apps().isEmpty() && !s.apps().contains(app.name())) return false;
            if (!s.pids().isEmpty() && !s.pids().contains(app.tgid()) && !s.pids().contains(app.pid())) return false;
        }
        return true;
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
