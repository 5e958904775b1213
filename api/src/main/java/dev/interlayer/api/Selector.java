package dev.interlayer.api;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * Which connections a module attaches to; every field that is set must match, an empty field matches anything.
 *
 * <p>Fields: protocol; local application name, pid (thread-group id), user id, executable path and cgroup where the
 * agent can find the process; local and remote addresses as CIDR lists; local and remote ports as lists and ranges; listener
 * names. "Local" and "remote" are from the local application's point of view.
 *
 * <p>TLS fields match what the handshake negotiated on the socket the listener accepted and terminates TLS on (its
 * {@code tls:} block): the server name the client asked for ({@code tls-sni}), the application protocol agreed
 * ({@code tls-alpn}), the subject of the client's certificate ({@code tls-subject}) and the identity a {@code tls} module
 * gave the client ({@code tls-identity}). On such a listener modules are chosen once that handshake has completed; a
 * connection without TLS there never matches a selector with a TLS field.
 *
 * <pre>{@code
 * Selector.builder().protocol(Protocol.TCP).remotePorts("80,443,8000-8100").remoteCidrs("10.0.0.0/8").build()
 * }</pre>
 */
public final class Selector {

    /** A DNS name, or a wildcard {@code *.} over one. */
    private static final java.util.regex.Pattern SERVER_NAME = java.util.regex.Pattern.compile(
            "(\\*\\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*");

    /** Matches every connection. */
    public static final Selector ANY = new Builder().build();

    private final Protocol protocol;
    private final Set<String> apps;
    private final Set<Integer> pids;
    private final Set<Integer> uids;
    private final Set<String> exes;
    private final List<String> cgroups;
    private final List<Cidr> localCidrs;
    private final List<Cidr> remoteCidrs;
    private final List<PortRange> localPorts;
    private final List<PortRange> remotePorts;
    private final Set<String> listeners;
    private final List<String> tlsSni;
    private final List<String> tlsAlpn;
    private final List<String> tlsSubjects;
    private final List<String> tlsIdentities;

    private Selector(Builder b) {
        this.protocol = b.protocol;
        this.apps = Set.copyOf(b.apps);
        this.pids = Set.copyOf(b.pids);
        this.uids = Set.copyOf(b.uids);
        this.exes = Set.copyOf(b.exes);
        this.cgroups = List.copyOf(b.cgroups);
        this.localCidrs = List.copyOf(b.localCidrs);
        this.remoteCidrs = List.copyOf(b.remoteCidrs);
        this.localPorts = List.copyOf(b.localPorts);
        this.remotePorts = List.copyOf(b.remotePorts);
        this.listeners = Set.copyOf(b.listeners);
        this.tlsSni = List.copyOf(b.tlsSni);
        this.tlsAlpn = List.copyOf(b.tlsAlpn);
        this.tlsSubjects = List.copyOf(b.tlsSubjects);
        this.tlsIdentities = List.copyOf(b.tlsIdentities);
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
        b.uids.addAll(uids);
        b.exes.addAll(exes);
        b.cgroups.addAll(cgroups);
        b.localCidrs.addAll(localCidrs);
        b.remoteCidrs.addAll(remoteCidrs);
        b.localPorts.addAll(localPorts);
        b.remotePorts.addAll(remotePorts);
        b.listeners.addAll(listeners);
        b.tlsSni.addAll(tlsSni);
        b.tlsAlpn.addAll(tlsAlpn);
        b.tlsSubjects.addAll(tlsSubjects);
        b.tlsIdentities.addAll(tlsIdentities);
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

    /** User ids of the local process (its socket's owner); empty for any. */
    public Set<Integer> uids() {
        return uids;
    }

    /** Absolute paths of the local process's executable ({@code /proc/PID/exe}); empty for any. */
    public Set<String> exes() {
        return exes;
    }

    /**
     * cgroup2 paths of the local process, as {@code /proc/PID/cgroup} shows them after {@code 0::}; a process matches a path
     * when it is in that cgroup or one below it ({@code /system.slice} matches {@code /system.slice/app.service}, not
     * {@code /system.slice2}); empty for any.
     */
    public List<String> cgroups() {
        return cgroups;
    }

    /** True if a field needs the local process ({@link ConnectionInfo#app()}): app, pid, uid, exe or cgroup. */
    public boolean needsApp() {
        return !apps.isEmpty() || !pids.isEmpty() || !uids.isEmpty() || !exes.isEmpty() || !cgroups.isEmpty();
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

    /**
     * Server names the client asked for (SNI), in lower case: exact names, or {@code *.example.com} for any name one
     * label under {@code example.com}; empty for any.
     */
    public List<String> tlsSni() {
        return tlsSni;
    }

    /** Application protocols agreed by ALPN ({@code h2}, {@code http/1.1}); empty for any. */
    public List<String> tlsAlpn() {
        return tlsAlpn;
    }

    /**
     * Patterns over the subject of the client's certificate, in RFC 2253 form ({@code O=Example}, {@code CN=alice,O=Example});
     * one matches when every attribute it names is in the subject (values case-sensitive, in any order); empty for any.
     */
    public List<String> tlsSubjects() {
        return tlsSubjects;
    }

    /** Identities a {@code tls} module gave the client, compared exactly; empty for any. */
    public List<String> tlsIdentities() {
        return tlsIdentities;
    }

    /** True if a TLS field is set: only a connection whose accepted socket negotiated TLS can match. */
    public boolean needsTls() {
        return !tlsSni.isEmpty() || !tlsAlpn.isEmpty() || !tlsSubjects.isEmpty() || !tlsIdentities.isEmpty();
    }

    /** True if no field is set. */
    public boolean isAny() {
        return protocol == null && !needsApp() && localCidrs.isEmpty() && remoteCidrs.isEmpty()
                && localPorts.isEmpty() && remotePorts.isEmpty() && listeners.isEmpty() && !needsTls();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Selector s && protocol == s.protocol && apps.equals(s.apps) && pids.equals(s.pids)
                && uids.equals(s.uids) && exes.equals(s.exes) && cgroups.equals(s.cgroups)
                && localCidrs.equals(s.localCidrs) && remoteCidrs.equals(s.remoteCidrs) && localPorts.equals(s.localPorts)
                && remotePorts.equals(s.remotePorts) && listeners.equals(s.listeners) && tlsSni.equals(s.tlsSni)
                && tlsAlpn.equals(s.tlsAlpn) && tlsSubjects.equals(s.tlsSubjects) && tlsIdentities.equals(s.tlsIdentities);
    }

    @Override
    public int hashCode() {
        return Objects.hash(protocol, apps, pids, uids, exes, cgroups, localCidrs, remoteCidrs, localPorts, remotePorts, listeners, tlsSni, tlsAlpn, tlsSubjects,
                tlsIdentities);
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
        if (!uids.isEmpty()) sb.append("uid=").append(uids).append(' ');
        if (!exes.isEmpty()) sb.append("exe=").append(String.join(",", exes)).append(' ');
        if (!cgroups.isEmpty()) sb.append("cgroup=").append(String.join(",", cgroups)).append(' ');
        if (!localCidrs.isEmpty()) sb.append("local=").append(localCidrs).append(' ');
        if (!remoteCidrs.isEmpty()) sb.append("remote=").append(remoteCidrs).append(' ');
        if (!localPorts.isEmpty()) sb.append("local-ports=").append(localPorts).append(' ');
        if (!remotePorts.isEmpty()) sb.append("remote-ports=").append(remotePorts).append(' ');
        if (!tlsSni.isEmpty()) sb.append("tls-sni=").append(String.join(",", tlsSni)).append(' ');
        if (!tlsAlpn.isEmpty()) sb.append("tls-alpn=").append(String.join(",", tlsAlpn)).append(' ');
        // a subject holds commas of its own: each pattern in brackets
        if (!tlsSubjects.isEmpty()) sb.append("tls-subject=").append(tlsSubjects).append(' ');
        if (!tlsIdentities.isEmpty()) sb.append("tls-identity=").append(String.join(",", tlsIdentities)).append(' ');
        return sb.toString().trim();
    }

    /** Builds a {@link Selector}; string forms are parsed at once and a bad one throws {@link IllegalArgumentException}. */
    public static final class Builder {
        private Protocol protocol;
        private final Set<String> apps = new LinkedHashSet<>();
        private final Set<Integer> pids = new LinkedHashSet<>();
        private final Set<Integer> uids = new LinkedHashSet<>();
        private final Set<String> exes = new LinkedHashSet<>();
        private final Set<String> cgroups = new LinkedHashSet<>();
        private final List<Cidr> localCidrs = new ArrayList<>();
        private final List<Cidr> remoteCidrs = new ArrayList<>();
        private final List<PortRange> localPorts = new ArrayList<>();
        private final List<PortRange> remotePorts = new ArrayList<>();
        private final Set<String> listeners = new LinkedHashSet<>();
        private final Set<String> tlsSni = new LinkedHashSet<>();
        private final Set<String> tlsAlpn = new LinkedHashSet<>();
        private final Set<String> tlsSubjects = new LinkedHashSet<>();
        private final Set<String> tlsIdentities = new LinkedHashSet<>();

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

        /** Only local processes of these user ids. */
        public Builder uids(int... ids) {
            for (int id : ids) {
                if (id < 0) throw new IllegalArgumentException("a user id is 0 or more, not " + id);
                uids.add(id);
            }
            return this;
        }

        /** Only local processes running these executables (absolute paths, as {@code /proc/PID/exe} shows them). */
        public Builder exes(String... paths) {
            for (String p : paths) {
                Objects.requireNonNull(p, "exe path");
                if (!p.startsWith("/")) throw new IllegalArgumentException("an exe is an absolute path such as /usr/bin/curl, not '" + p + "'");
                exes.add(p);
            }
            return this;
        }

        /**
         * Only local processes in these cgroups or below them (cgroup2 paths as {@code /proc/PID/cgroup} shows them after
         * {@code 0::}, e.g. {@code /system.slice/app.service}; a trailing slash is dropped).
         */
        public Builder cgroups(String... paths) {
            for (String p : paths) {
                Objects.requireNonNull(p, "cgroup path");
                String c = p.length() > 1 && p.endsWith("/") ? p.substring(0, p.length() - 1) : p;
                if (!c.startsWith("/") || c.equals("/") || c.contains("//")) {
                    throw new IllegalArgumentException("'" + p + "' is not a cgroup path; expected the path /proc/PID/cgroup shows after 0::"
                            + " for a process in it, e.g. /system.slice/app.service (not the root /, which every process is under)");
                }
                cgroups.add(c);
            }
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

        /**
         * Only TLS connections whose client asked for one of these server names (SNI): exact names, case-insensitive, or
         * {@code *.example.com} for any name one label under {@code example.com}.
         *
         * @throws IllegalArgumentException if one is not a DNS name or such a wildcard
         */
        public Builder tlsSni(String... names) {
            for (String n : names) {
                Objects.requireNonNull(n, "server name");
                if (!SERVER_NAME.matcher(n).matches()) {
                    throw new IllegalArgumentException("'" + n + "' is not a server name; expected a DNS name such as a.example.com"
                            + " or a wildcard such as *.example.com");
                }
                tlsSni.add(n.toLowerCase(java.util.Locale.ROOT));
            }
            return this;
        }

        /** Only TLS connections that agreed on one of these application protocols by ALPN ({@code h2}, {@code http/1.1}). */
        public Builder tlsAlpn(String... protocols) {
            for (String p : protocols) {
                if (Objects.requireNonNull(p, "application protocol").isEmpty()) {
                    throw new IllegalArgumentException("an empty application protocol; expected a name such as h2 or http/1.1");
                }
                tlsAlpn.add(p);
            }
            return this;
        }

        /**
         * Only TLS connections whose client certificate's subject has every attribute of one of these patterns
         * ({@code O=Example}, {@code CN=alice,O=Example}; RFC 2253 syntax, values case-sensitive, in any order). Each is kept
         * in its RFC 2253 form (attribute names upper case, {@code EMAILADDRESS} and other names RFC 2253 lacks as OIDs).
         *
         * @throws IllegalArgumentException if one is not a distinguished name
         */
        public Builder tlsSubjects(String... patterns) {
            for (String p : patterns) {
                Objects.requireNonNull(p, "subject pattern");
                String canonical;
                try {
                    canonical = p.isBlank() ? "" : new javax.security.auth.x500.X500Principal(p).getName();
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("'" + p + "' is not a certificate subject pattern (" + e.getMessage()
                            + "); expected attributes such as O=Example or CN=alice,O=Example", e);
                }
                if (canonical.isEmpty()) {
                    throw new IllegalArgumentException("an empty certificate subject pattern; expected attributes such as O=Example or CN=alice,O=Example");
                }
                tlsSubjects.add(canonical);
            }
            return this;
        }

        /** Only TLS connections whose client a {@code tls} module gave one of these identities (compared exactly). */
        public Builder tlsIdentities(String... identities) {
            for (String i : identities) {
                if (Objects.requireNonNull(i, "identity").isEmpty()) {
                    throw new IllegalArgumentException("an empty identity; expected the name a tls module gives its clients");
                }
                tlsIdentities.add(i);
            }
            return this;
        }

        /** Returns the selector. */
        public Selector build() {
            return new Selector(this);
        }
    }
}
