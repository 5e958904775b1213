package dev.interlayer.api;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * Which connections a module attaches to; every field that is set must match, an empty field matches anything.
 *
 * <p>Fields: protocol; local application name and pid (thread-group id) where the agent can find the
 * process; local and remote addresses as CIDR lists; local and remote ports as lists and ranges; listener
 * names. "Local" and "remote" are from the local application's point of view.
 *
 * <pre>{@code
 * Selector.builder().protocol(Protocol.TCP).remotePorts("80,443,8000-8100").remoteCidrs("10.0.0.0/8").build()
 * }</pre>
 */
public final class Selector {

    /** Matches every connection. */
    public static final Selector ANY = new Builder().build();

    private final Protocol protocol;
    private final Set<String> apps;
    private final Set<Integer> pids;
    private final List<Cidr> localCidrs;
    private final List<Cidr> remoteCidrs;
    private final List<PortRange> localPorts;
    private final List<PortRange> remotePorts;
    private final Set<String> listeners;

    private Selector(Builder b) {
        this.protocol = b.protocol;
        this.apps = Set.copyOf(b.apps);
        this.pids = Set.copyOf(b.pids);
        this.localCidrs = List.copyOf(b.localCidrs);
        this.remoteCidrs = List.copyOf(b.remoteCidrs);
        this.localPorts = List.copyOf(b.localPorts);
        this.remotePorts = List.copyOf(b.remotePorts);
        this.listeners = Set.copyOf(b.listeners);
    }

    /** Starts an empty (match-anything) selector. */
    public static Builder builder() {
        return new Builder();
    }

    /** Starts a builder with this selector's fields, to change some. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.protocol = protocol;
        b.apps.addAll(apps);
        b.pids.addAll(pids);
        b.localCidrs.addAll(localCidrs);
        b.remoteCidrs.addAll(remoteCidrs);
        b.localPorts.addAll(localPorts);
        b.remotePorts.addAll(remotePorts);
        b.listeners.addAll(listeners);
        return b;
    }

    /** The protocol, or null for any. */
    public Protocol protocol() {
        return protocol;
    }

    /** Application names (thread-group command names); empty for any. */
    public Set<String> apps() {
        return apps;
    }

    /** Process ids (pid or tgid); empty for any. */
    public Set<Integer> pids() {
        return pids;
    }

    /** Local address ranges; empty for any. */
    public List<Cidr> localCidrs() {
        return localCidrs;
    }

    /** Remote address ranges; empty for any. */
    public List<Cidr> remoteCidrs() {
        return remoteCidrs;
    }

    /** Local port ranges; empty for any. */
    public List<PortRange> localPorts() {
        return localPorts;
    }

    /** Remote port ranges; empty for any. */
    public List<PortRange> remotePorts() {
        return remotePorts;
    }

    /** Listener names; empty for any. */
    public Set<String> listeners() {
        return listeners;
    }

    /** True if no field is set. */
    public boolean isAny() {
        return protocol == null && apps.isEmpty() && pids.isEmpty() && localCidrs.isEmpty() && remoteCidrs.isEmpty()
                && localPorts.isEmpty() && remotePorts.isEmpty() && listeners.isEmpty();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Selector s && protocol == s.protocol && apps.equals(s.apps) && pids.equals(s.pids)
                && localCidrs.equals(s.localCidrs) && remoteCidrs.equals(s.remoteCidrs) && localPorts.equals(s.localPorts)
                && remotePorts.equals(s.remotePorts) && listeners.equals(s.listeners);
    }

    @Override
    public int hashCode() {
        return Objects.hash(protocol, apps, pids, localCidrs, remoteCidrs, localPorts, remotePorts, listeners);
    }

    @Override
    public String toString() {
        if (isAny()) {
            return "any";
        }
        StringBuilder sb = new StringBuilder();
        if (protocol != null) sb.append("protocol=").append(protocol.name().toLowerCase()).append(' ');
        if (!listeners.isEmpty()) sb.append("listener=").append(String.join(",", listeners)).append(' ');
        if (!apps.isEmpty()) sb.append("app=").append(String.join(",", apps)).append(' ');
        if (!pids.isEmpty()) sb.append("pid=").append(pids).append(' ');
        if (!localCidrs.isEmpty()) sb.append("local=").append(localCidrs).append(' ');
        if (!remoteCidrs.isEmpty()) sb.append("remote=").append(remoteCidrs).append(' ');
        if (!localPorts.isEmpty()) sb.append("local-ports=").append(localPorts).append(' ');
        if (!remotePorts.isEmpty()) sb.append("remote-ports=").append(remotePorts).append(' ');
        return sb.toString().trim();
    }

    /** Builds a {@link Selector}; string forms are parsed at once and a bad one throws {@link IllegalArgumentException}. */
    public static final class Builder {
        private Protocol protocol;
        private final Set<String> apps = new LinkedHashSet<>();
        private final Set<Integer> pids = new LinkedHashSet<>();
        private final List<Cidr> localCidrs = new ArrayList<>();
        private final List<Cidr> remoteCidrs = new ArrayList<>();
        private final List<PortRange> localPorts = new ArrayList<>();
        private final List<PortRange> remotePorts = new ArrayList<>();
        private final Set<String> listeners = new LinkedHashSet<>();

        private Builder() {}

        /** Only this protocol (null for any). */
        public Builder protocol(Protocol protocol) {
            this.protocol = protocol;
            return this;
        }

        /** Only these application names. */
        public Builder apps(String... names) {
            for (String n : names) apps.add(Objects.requireNonNull(n, "app name"));
            return this;
        }

        /** Only these process ids (pid or tgid). */
        public Builder pids(int... ids) {
            for (int id : ids) pids.add(id);
            return this;
        }

        /** Only local addresses in these CIDRs ({@code "10.0.0.0/8"}, {@code "::1"}). */
        public Builder localCidrs(String... cidrs) {
            for (String c : cidrs) localCidrs.add(Cidr.parse(c));
            return this;
        }

        /** Only remote addresses in these CIDRs. */
        public Builder remoteCidrs(String... cidrs) {
            for (String c : cidrs) remoteCidrs.add(Cidr.parse(c));
            return this;
        }

        /** Only local ports in this list ({@code "80,443,8000-8100"}). */
        public Builder localPorts(String list) {
            localPorts.addAll(PortRange.parseList(list));
            return this;
        }

        /** Only remote ports in this list ({@code "80,443,8000-8100"}). */
        public Builder remotePorts(String list) {
            remotePorts.addAll(PortRange.parseList(list));
            return this;
        }

        /** Only connections accepted by these listeners. */
        public Builder listeners(String... names) {
            for (String n : names) listeners.add(Objects.requireNonNull(n, "listener name"));
            return this;
        }

        /** Returns the selector. */
        public Selector build() {
            return new Selector(this);
        }
    }
}
