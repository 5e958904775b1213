package dev.interlayer.bench.suite;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One thing the suite measures: a TCP forwarder on 127.0.0.1 (or {@code direct}, no forwarder at all). Each
 * target writes its own config into a fresh folder and says how to start it in the foreground.
 *
 * <p>A target forwards one or more {@link Route}s (listen port → upstream port). The workloads use one route;
 * the idle-connection benchmark spreads its connections over several, to stay within the ephemeral ports of
 * one address pair.
 */
final class Target {

    /** How a target relates to the others in the report. */
    enum Kind {
        /** No forwarder: the clients talk to the backend. */
        DIRECT,
        /** Another proxy, run with its stock behaviour and the obvious settings. */
        PEER,
        /** An Interlayer agent. */
        INTERLAYER
    }

    /** Listen on {@code 127.0.0.1:listen}, forward to {@code 127.0.0.1:upstream}; over UDP when {@code udp} (the dns test). */
    record Route(int listen, int upstream, boolean udp) {
        /** A TCP route. */
        Route(int listen, int upstream) {
            this(listen, upstream, false);
        }
    }

    /**
     * What {@link #prepare} decided: the command to start and the ports it must listen on before it is ready (UDP ports,
     * bound, when {@code udp}).
     */
    record Launch(List<String> cmd, Set<Integer> ports, boolean udp) {
        Launch(List<String> cmd, Set<Integer> ports) {
            this(cmd, ports, false);
        }
    }

    /** What a target forwards: the dns test measures the targets that forward UDP, the other tests those that forward TCP. */
    enum Proto { TCP, UDP, BOTH }

    /**
     * What a target's start needs from the suite. {@code aotCache}: the ahead-of-time cache the Interlayer agents start
     * from, as {@code ./interlayer run} does (null: none).
     */
    /** How long the {@code -warm} pairs warm up before their listeners open ({@code agent.warm-up.before-start}). */
    static final String WARM_UP = "2s";

    record Env(Path repo, String java, List<String> jvmOpts, int cores, Path nettyJar, int maxConns, Path tlsDir, Path aotCache) {
        /** The same without the ahead-of-time cache. */
        Env withoutAot() {
            return new Env(repo, java, jvmOpts, cores, nettyJar, maxConns, tlsDir, null);
        }

        Path interlayerJar() {
            return repo.resolve("cli/target/interlayer.jar");
        }

        /** The TLS targets' certificate (ECDSA P-256, self-signed, written by the suite with openssl). */
        Path tlsCert() {
            return tlsDir.resolve("cert.pem");
        }

        /** Its PKCS#8 private key. */
        Path tlsKey() {
            return tlsDir.resolve("key.pem");
        }

        /** Certificate and key in one file, as HAProxy's {@code crt} wants them. */
        Path tlsCombined() {
            return tlsDir.resolve("combined.pem");
        }
    }

    @FunctionalInterface
    interface Preparer {
        Launch prepare(Env env, Path dir, List<Route> routes) throws IOException, BenchException;
    }

    final String name;
    final Kind kind;
    final String what;
    /**
     * The Interlayer target this one is compared with: for a target with modules, the same topology and data path
     * without modules ({@code il-channels}, {@code il2-channels}: Netty channels, no splice), since a module that
     * sees the bytes keeps its connection there (the report also compares it with the no-module figures users get:
     * {@code -nosplice}, the direct path, and {@code -none}, with splice); for those, {@code il-none} and
     * {@code il2-none}.
     */
    final String baseline;
    /** Debian packages it needs. */
    final Set<String> packages;
    /** Whether it can forward several routes in one process (the idle benchmark needs that). */
    final boolean multiRoute;
    /** Whether it terminates TLS (clients speak TLS to it, the upstream is plain): it runs the tls_* tests only. */
    final boolean tls;
    /** Whether it forwards TCP (every test but dns), UDP (the dns test) or both. */
    final Proto proto;
    private final Preparer preparer;

    private Target(String name, Kind kind, String what, String baseline, Set<String> packages, boolean multiRoute,
                   Preparer preparer) {
        this(name, kind, what, baseline, packages, multiRoute, false, Proto.TCP, preparer);
    }

    private Target(String name, Kind kind, String what, String baseline, Set<String> packages, boolean multiRoute,
                   boolean tls, Proto proto, Preparer preparer) {
        this.name = name;
        this.kind = kind;
        this.what = what;
        this.baseline = baseline;
        this.packages = packages;
        this.multiRoute = multiRoute;
        this.tls = tls;
        this.proto = proto;
        this.preparer = preparer;
    }

    /** A copy that forwards {@code p}. */
    private Target with(Proto p) {
        return new Target(name, kind, what, baseline, packages, multiRoute, tls, p, preparer);
    }

    /**
     * Whether {@code test} measures this target: dns the UDP-forwarding targets, the tls_* tests the TLS-terminating
     * targets, the others the rest.
     */
    boolean runs(String test) {
        if (test.equals("dns") || test.equals("dns_flows")) {
            return proto != Proto.TCP;
        }
        return proto != Proto.UDP && tls == test.startsWith("tls_");
    }

    /** Writes the configs into {@code dir} and returns the start command; null for {@code direct}. */
    Launch prepare(Env env, Path dir, List<Route> routes) throws IOException, BenchException {
        if (kind == Kind.DIRECT) {
            return null;
        }
        if (routes.size() > 1 && !multiRoute) {
            throw new BenchException(name + " forwards one listen port per process; it cannot run this workload");
        }
        Files.createDirectories(dir);
        return preparer.prepare(env, dir, routes);
    }

    boolean isInterlayer() {
        return kind == Kind.INTERLAYER;
    }

    @Override
    public String toString() {
        return name;
    }

    // ------------------------------------------------------------------ the catalogue

    /** Every target, in the order the suite runs them. */
    static Map<String, Target> catalogue() {
        Map<String, Target> t = new LinkedHashMap<>();
        add(t, new Target("direct", Kind.DIRECT, "no proxy: the client talks to the backend", null, Set.of(), true, null).with(Proto.BOTH));
        add(t, new Target("haproxy", Kind.PEER, "HAProxy, mode tcp, nbthread = cores, no splice", null,
                Set.of("haproxy"), true, (env, dir, routes) -> haproxy(env, dir, routes, false)));
        add(t, new Target("haproxy-splice", Kind.PEER, "HAProxy as above with option splice-auto (kernel splice for bulk transfers)",
                null, Set.of("haproxy"), true, (env, dir, routes) -> haproxy(env, dir, routes, true)));
        add(t, new Target("nginx", Kind.PEER, "nginx stream module, worker_processes = cores, default 16 KiB buffer (dns: listen"
                + " udp reuseport, proxy_responses 1)", null, Set.of("nginx", "libnginx-mod-stream"), true, Target::nginx).with(Proto.BOTH));
        add(t, new Target("nginx2", Kind.PEER, "two nginx stream server blocks back to back in one nginx, udp (dns only): the nginx pair",
                null, Set.of("nginx", "libnginx-mod-stream"), false, Target::nginxPair).with(Proto.UDP));
        add(t, new Target("socat", Kind.PEER, "socat, a process per connection (fork), 8 KiB buffer (only when named)",
                null, Set.of("socat"), false, Target::socat));
        add(t, new Target("netty", Kind.PEER, "bare Netty 4.2 forwarder (bench/nettyproxy), JDK 25, the Java floor",
                null, Set.of(), false, Target::netty));
        add(t, interlayer("il-none", "Interlayer agent, no module (fast path; dns: a protocol: udp listener)", "il-none", 1, List.of(),
                List.of()).with(Proto.BOTH));
        add(t, interlayer("il-none-warm", "as il-none, warming up for " + WARM_UP + " before its listener opens (agent.warm-up.before-start):"
                + " its connection set-up compiled before the first client", "il-none", 1, List.of(), List.of(),
                "  warm-up: {before-start: " + WARM_UP + "}\n"));
        add(t, interlayer("il-nosplice", "Interlayer, no module, splice off (agent.splice: false): every byte through the event loop",
                "il-none", 1, List.of(), List.of(), "  splice: false\n"));
        add(t, interlayer("il-channels", "Interlayer, no module, splice and the direct path off: every connection in Netty"
                + " channels, the path a connection with modules takes", "il-none", 1, List.of(), List.of(),
                "  splice: false\n  direct: false\n"));
        add(t, interlayer("il-pass", "Interlayer, one PASS module on every connection", "il-channels", 1,
                List.of("pass"), passChain(1)));
        add(t, interlayer("il-rewrite", "Interlayer, a module that rewrites every byte in place (ctx.rewrite(), XOR key 0)",
                "il-channels", 1, List.of("rewrite"), List.of("  - {name: rewrite, params: {key: 0}}")));
        add(t, interlayer("il-rewrite-copy", "Interlayer, the same module through a replacement (ctx.replace(): every byte"
                + " read out and written back through an array; only when named)", "il-channels", 1, List.of("rewrite"),
                List.of("  - {name: rewrite, params: {key: 0, via: replace}}")));
        add(t, interlayer("il2-none", "two Interlayer listeners back to back in one agent (client -> server role), no module",
                "il-none", 2, List.of(), List.of()).with(Proto.BOTH));
        add(t, interlayer("il2-nosplice", "as il2-none with splice off (agent.splice: false)", "il2-none", 2, List.of(), List.of(),
                "  splice: false\n"));
        add(t, interlayer("il2-channels", "as il2-none with splice and the direct path off (in channels)", "il2-none", 2,
                List.of(), List.of(), "  splice: false\n  direct: false\n"));
        add(t, interlayer("il-tag", "as il2-none with tag on both hops (32-byte tag per 1000 bytes on the wire between)",
                "il2-channels", 2, List.of("tag"), List.of("  - {name: tag}")));
        add(t, interlayer("il-tag-c", "as il-tag with the C tag (tag-c, the same bytes on the wire) on both hops: the C module against"
                + " the Java one in the same run", "il2-channels", 2, List.of("tag-c"), List.of("  - {name: tag-c}")));
        add(t, interlayer("il-dns-tag", "as il2-none over udp with dns-tag on the client hop and dns-untag on the server hop (dns only;"
                + " modules/dns-tag)", "il2-none", 2, List.of("dns-tag"), List.of(
                        "  - {name: dns-tag, mode: programmatic, listeners: [hop1], params: {app-id: dnsperf}}",
                        "  - {name: dns-untag, mode: programmatic, listeners: [hop2]}")).with(Proto.UDP));
        // pairs of processes (the client's host and the server's host, here on one machine): only when named
        add(t, pair("haproxy2", Kind.PEER, "two HAProxy processes back to back (as haproxy each): a pair of proxies, as a tag pair is deployed",
                Set.of("haproxy"), (env, dir, routes) -> haproxy(env, dir, routes, false)));
        add(t, agentPair("il2p-none", "two Interlayer agents back to back (client role, then server role), each its own process, no module",
                List.of(), List.of()));
        add(t, agentPair("il2p-tag", "as il2p-none with tag on both agents (32-byte tag per 1000 bytes on the wire between)",
                List.of("tag"), List.of("  - {name: tag}")));
        add(t, agentPair("il2p-none-warm", "as il2p-none, each agent warming up for " + WARM_UP + " before its listener opens"
                + " (agent.warm-up.before-start, as before a takeover)", List.of(), List.of(), "  warm-up: {before-start: " + WARM_UP + "}\n"));
        add(t, agentPair("il2p-tag-warm", "as il2p-tag, each agent warming up for " + WARM_UP + " before its listener opens",
                List.of("tag"), List.of("  - {name: tag}"), "  warm-up: {before-start: " + WARM_UP + "}\n"));
        add(t, interlayer("il-chain3", "Interlayer, a chain of 3 PASS modules", "il-channels", 1, List.of("pass"), passChain(3)));
        add(t, interlayer("il-chain8", "Interlayer, a chain of 8 PASS modules", "il-channels", 1, List.of("pass"), passChain(8)));
        // TLS termination (tls_* tests only): clients speak TLS 1.3 to the target, the upstream is plain
        add(t, new Target("nginx-tls", Kind.PEER, "nginx stream module terminating TLS (ssl_protocols TLSv1.3), upstream plain",
                null, Set.of("nginx", "libnginx-mod-stream"), false, true, Proto.TCP, Target::nginxTls));
        add(t, new Target("haproxy-tls", Kind.PEER, "HAProxy, mode tcp, bind ... ssl crt (ssl-min-ver TLSv1.3), upstream plain",
                null, Set.of("haproxy"), false, true, Proto.TCP, Target::haproxyTls));
        add(t, interlayerTls("il-tls", "Interlayer listener with tls: (provider openssl: BoringSSL), upstream plain", "il-tls", "openssl"));
        add(t, interlayer("il-tls-module", "il-tls with the sample tls module sni-cert choosing every certificate (the clients send no"
                + " server name, so it calls the agent's default: the cost of a tls module's step)", "il-tls", 1, List.of("sni-cert"),
                List.of("  - {name: sni-cert, params: {folder: .}}"), "", "openssl", "client"));
        add(t, interlayerTls("il-tls-jdk", "Interlayer listener with tls: (provider jdk: the JDK's TLS), upstream plain", "il-tls", "jdk"));
        return t;
    }

    private static void add(Map<String, Target> m, Target t) {
        m.put(t.name, t);
    }

    /** Module entries that make {@code pass} … {@code pass-n} global and the rest of the eight programmatic. */
    private static List<String> passChain(int n) {
        List<String> lines = new ArrayList<>();
        for (int i = 1; i <= 8; i++) {
            String name = i == 1 ? "pass" : "pass-" + i;
            lines.add("  - {name: " + name + ", mode: " + (i <= n ? "global" : "programmatic") + "}");
        }
        return lines;
    }

    /** Where a module package is built: the benchmark modules' jars, the sample jars, and the sample C objects ({@code .so}). */
    static Path moduleJar(Path repo, String module) {
        Path bench = repo.resolve("bench/modules/" + module + "/target/" + module + ".jar");
        Path jar = repo.resolve("cli/target/sample-modules/module-" + module + ".jar");
        Path so = repo.resolve("cli/target/sample-modules/module-" + module + ".so");
        return Files.exists(bench) ? bench : Files.exists(jar) || !Files.exists(so) ? jar : so;
    }

    // ------------------------------------------------------------------ how each one starts

    /**
     * Two processes of one forwarder back to back: the first listens on the route's port and forwards to the port after
     * it, where the second listens and forwards to the route's upstream. {@code hop} prepares each process's launch for one
     * route; {@code hop2}, when not null, the second's. Both run under one {@code sh}, which stops both when stopped.
     */
    private static Target pair(String name, Kind kind, String what, Set<String> packages, Preparer hop) {
        return pair(name, kind, what, packages, hop, hop, name);
    }

    private static Target pair(String name, Kind kind, String what, Set<String> packages, Preparer hop1, Preparer hop2, String baseline) {
        return new Target(name, kind, what, kind == Kind.INTERLAYER ? baseline : null, packages, false, (env, dir, routes) -> {
            Route r = routes.getFirst();
            int inner = r.listen() + 1;
            Launch a = hop1.prepare(env, Files.createDirectories(dir.resolve("hop1")), List.of(new Route(r.listen(), inner, r.udp())));
            Launch b = hop2.prepare(env, Files.createDirectories(dir.resolve("hop2")), List.of(new Route(inner, r.upstream(), r.udp())));
            String script = "trap 'kill $a $b 2>/dev/null; wait' TERM INT; " + shell(b.cmd()) + " & b=$!; " + shell(a.cmd())
                    + " & a=$!; wait";
            Set<Integer> ports = new LinkedHashSet<>(a.ports());
            ports.addAll(b.ports());
            return new Launch(List.of("/bin/sh", "-c", script), ports);
        });
    }

    /** Two agents, the first with client-role listeners, the second with server-role ones; each loads {@code jars}. */
    private static Target agentPair(String name, String what, List<String> jars, List<String> moduleEntries) {
        return agentPair(name, what, jars, moduleEntries, "");
    }

    /** {@link #agentPair} with {@code agentYaml} added to each agent's {@code agent:} section. */
    private static Target agentPair(String name, String what, List<String> jars, List<String> moduleEntries, String agentYaml) {
        Target client = interlayer(name + "-hop1", what, null, 1, jars, moduleEntries, agentYaml, null, "client");
        Target server = interlayer(name + "-hop2", what, null, 1, jars, moduleEntries, agentYaml, null, "server");
        return pair(name, Kind.INTERLAYER, what, Set.of(), client.preparer, server.preparer, "il2p-none");
    }

    /** {@code cmd} as one shell word list, each argument single-quoted. */
    private static String shell(List<String> cmd) {
        StringBuilder b = new StringBuilder();
        for (String arg : cmd) {
            if (!b.isEmpty()) b.append(' ');
            b.append('\'').append(arg.replace("'", "'\\''")).append('\'');
        }
        return b.toString();
    }

    private static Launch haproxy(Env env, Path dir, List<Route> routes, boolean splice) throws IOException {
        StringBuilder cfg = new StringBuilder();
        cfg.append("global\n")
           .append("    nbthread ").append(env.cores()).append('\n')
           // a spliced connection also holds a pipe (two fds): leave room for 1,024 of them under the fd limit
           .append("    maxconn ").append(splice ? env.maxConns() - 1100 : env.maxConns()).append('\n')
           .append(splice ? "    maxpipes 1024\n" : "")
           .append("defaults\n")
           .append("    mode tcp\n")
           .append(splice ? "    option splice-auto\n" : "")
           .append("    timeout connect 5s\n")
           .append("    timeout client 1h\n")
           .append("    timeout server 1h\n");
        Set<Integer> ports = new LinkedHashSet<>();
        for (int i = 0; i < routes.size(); i++) {
            Route r = routes.get(i);
            cfg.append("listen r").append(i).append('\n')
               .append("    bind 127.0.0.1:").append(r.listen()).append('\n')
               .append("    server s1 127.0.0.1:").append(r.upstream()).append('\n');
            ports.add(r.listen());
        }
        Path file = dir.resolve("haproxy.cfg");
        Files.writeString(file, cfg);
        return new Launch(List.of(Installer.which("haproxy"), "-db", "-f", file.toString()), ports);
    }

    /**
     * nginx's stream module, one server block per route. A UDP route gets the configuration nginx documents for DNS:
     * {@code listen ... udp reuseport} (a socket per worker) and {@code proxy_responses 1} (a session ends with the
     * query's one answer, so nginx opens an upstream socket per query).
     */
    private static Launch nginx(Env env, Path dir, List<Route> routes) throws IOException {
        StringBuilder servers = new StringBuilder();
        Set<Integer> ports = new LinkedHashSet<>();
        for (Route r : routes) {
            servers.append("    server {\n");
            if (r.udp()) {
                servers.append("        listen 127.0.0.1:").append(r.listen()).append(" udp reuseport;\n")
                       .append("        proxy_responses 1;\n")
                       .append("        proxy_timeout 10s;\n");
            } else {
                servers.append("        listen 127.0.0.1:").append(r.listen()).append(" backlog=4096;\n")
                       .append("        proxy_connect_timeout 5s;\n")
                       .append("        proxy_timeout 1h;\n");
            }
            servers.append("        proxy_pass 127.0.0.1:").append(r.upstream()).append(";\n")
                   .append("    }\n");
            ports.add(r.listen());
        }
        // two sockets per proxied connection; never ask for more than the hard limit nginx inherits
        long hard = ProcFs.openFilesLimit(ProcessHandle.current().pid())[1];
        long nofile = Math.min(2L * env.maxConns() + 1000, hard > 0 ? hard : 2L * env.maxConns() + 1000);
        String cfg = "load_module " + Installer.NGINX_STREAM_MODULE + ";\n"
                + "daemon off;\n"
                + "master_process on;\n"
                + "worker_processes " + env.cores() + ";\n"
                + "worker_rlimit_nofile " + nofile + ";\n"
                + "pid " + dir.resolve("nginx.pid") + ";\n"
                + "error_log " + dir.resolve("error.log") + " warn;\n"
                + "events { worker_connections " + (2 * env.maxConns() + 100) + "; }\n"
                + "stream {\n" + servers + "}\n";
        Path file = dir.resolve("nginx.conf");
        Files.writeString(file, cfg);
        return new Launch(List.of(Installer.which("nginx"), "-p", dir + "/", "-e", dir.resolve("error.log").toString(),
                "-c", file.toString()), ports, routes.getFirst().udp());
    }

    /** Two nginx server blocks back to back (listen → listen + 1 → upstream), as il2-none chains two listeners. */
    private static Launch nginxPair(Env env, Path dir, List<Route> routes) throws IOException {
        Route r = routes.getFirst();
        return nginx(env, dir, List.of(new Route(r.listen(), r.listen() + 1, r.udp()), new Route(r.listen() + 1, r.upstream(), r.udp())));
    }

    private static Launch haproxyTls(Env env, Path dir, List<Route> routes) throws IOException {
        Route r = routes.getFirst();
        String cfg = "global\n"
                + "    nbthread " + env.cores() + "\n"
                + "    maxconn " + env.maxConns() + "\n"
                + "defaults\n"
                + "    mode tcp\n"
                + "    timeout connect 5s\n"
                + "    timeout client 1h\n"
                + "    timeout server 1h\n"
                + "listen tls\n"
                + "    bind 127.0.0.1:" + r.listen() + " ssl crt " + env.tlsCombined() + " ssl-min-ver TLSv1.3\n"
                + "    server s1 127.0.0.1:" + r.upstream() + "\n";
        Path file = dir.resolve("haproxy.cfg");
        Files.writeString(file, cfg);
        return new Launch(List.of(Installer.which("haproxy"), "-db", "-f", file.toString()), Set.of(r.listen()));
    }

    private static Launch nginxTls(Env env, Path dir, List<Route> routes) throws IOException {
        Route r = routes.getFirst();
        String cfg = "load_module " + Installer.NGINX_STREAM_MODULE + ";\n"
                + "daemon off;\n"
                + "master_process on;\n"
                + "worker_processes " + env.cores() + ";\n"
                + "pid " + dir.resolve("nginx.pid") + ";\n"
                + "error_log " + dir.resolve("error.log") + " warn;\n"
                + "events { worker_connections " + (2 * env.maxConns() + 100) + "; }\n"
                + "stream {\n"
                + "    server {\n"
                + "        listen 127.0.0.1:" + r.listen() + " ssl backlog=4096;\n"
                + "        ssl_certificate " + env.tlsCert() + ";\n"
                + "        ssl_certificate_key " + env.tlsKey() + ";\n"
                + "        ssl_protocols TLSv1.3;\n"
                + "        proxy_connect_timeout 5s;\n"
                + "        proxy_timeout 1h;\n"
                + "        proxy_pass 127.0.0.1:" + r.upstream() + ";\n"
                + "    }\n"
                + "}\n";
        Path file = dir.resolve("nginx.conf");
        Files.writeString(file, cfg);
        return new Launch(List.of(Installer.which("nginx"), "-p", dir + "/", "-e", dir.resolve("error.log").toString(),
                "-c", file.toString()), Set.of(r.listen()));
    }

    private static Launch socat(Env env, Path dir, List<Route> routes) {
        Route r = routes.getFirst();
        return new Launch(List.of(Installer.which("socat"),
                "TCP-LISTEN:" + r.listen() + ",bind=127.0.0.1,reuseaddr,fork,backlog=4096,nodelay",
                "TCP:127.0.0.1:" + r.upstream() + ",nodelay"), Set.of(r.listen()));
    }

    private static Launch netty(Env env, Path dir, List<Route> routes) throws BenchException {
        if (env.nettyJar() == null) {
            throw new BenchException("netty: no nettyproxy.jar (see --netty-dir)");
        }
        Route r = routes.getFirst();
        List<String> cmd = new ArrayList<>(List.of(env.java(), "--sun-misc-unsafe-memory-access=allow",
                "--enable-native-access=ALL-UNNAMED"));
        cmd.addAll(env.jvmOpts());
        cmd.addAll(List.of("-jar", env.nettyJar().toString(), "--listen", "127.0.0.1:" + r.listen(),
                "--upstream", "127.0.0.1:" + r.upstream()));
        return new Launch(cmd, Set.of(r.listen()));
    }

    /**
     * An Interlayer agent started from the distribution jar ({@code cli/target/interlayer.jar}) with a config
     * written here: one listener per route, or, with {@code hops} 2, a client-role listener feeding a
     * server-role listener in the same agent (the way a {@code tag} pair is deployed, so the upstream sees the
     * original bytes).
     */
    private static Target interlayer(String name, String what, String baseline, int hops, List<String> jars,
                                     List<String> moduleEntries) {
        return interlayer(name, what, baseline, hops, jars, moduleEntries, "");
    }

    /** {@code agentLines}: more lines of the {@code agent:} section, indented by two spaces. */
    private static Target interlayer(String name, String what, String baseline, int hops, List<String> jars,
                                     List<String> moduleEntries, String agentLines) {
        return interlayer(name, what, baseline, hops, jars, moduleEntries, agentLines, null, "client");
    }

    /** One listener terminating TLS with the suite's certificate on {@code provider} ({@code openssl} or {@code jdk}). */
    private static Target interlayerTls(String name, String what, String baseline, String provider) {
        return interlayer(name, what, baseline, 1, List.of(), List.of(), "", provider, "client");
    }

    /**
     * {@code tlsProvider}: non-null, every listener terminates TLS on that provider (one hop only). {@code role}: the role
     * of a one-hop agent's listeners ({@code client}, or {@code server} for the second agent of a pair).
     */
    private static Target interlayer(String name, String what, String baseline, int hops, List<String> jars,
                                     List<String> moduleEntries, String agentLines, String tlsProvider, String role) {
        return new Target(name, Kind.INTERLAYER, what, baseline, Set.of(), hops == 1 && tlsProvider == null, tlsProvider != null,
                Proto.TCP, (env, dir, routes) -> {
            Path modules = dir.resolve("modules");
            Files.createDirectories(modules);
            for (String m : jars) {
                Path jar = moduleJar(env.repo(), m);
                if (!Files.isRegularFile(jar)) {
                    throw new BenchException(name + ": module jar " + jar + " is missing; build with: ./mvnw -q -pl "
                            + "cli,bench/modules/pass,bench/modules/rewrite -am package -DskipTests (bench/run does it)");
                }
                String file = jar.getFileName().toString();
                Files.copy(jar, modules.resolve(m + file.substring(file.lastIndexOf('.'))), StandardCopyOption.REPLACE_EXISTING);
            }
            StringBuilder y = new StringBuilder();
            y.append("# written by the Interlayer bench suite for target ").append(name).append('\n')
             .append("agent:\n  modules-dir: modules\n  control: {enabled: false}\n").append(agentLines)
             .append("listeners:\n");
            Set<Integer> ports = new LinkedHashSet<>();
            if (hops == 2) {
                Route r = routes.getFirst();
                int inner = r.listen() + 1;
                String proto = r.udp() ? ", protocol: udp" : "";
                y.append("  - {name: hop1, listen: 127.0.0.1:").append(r.listen()).append(", upstream: 127.0.0.1:")
                 .append(inner).append(", role: client").append(proto).append("}\n");
                y.append("  - {name: hop2, listen: 127.0.0.1:").append(inner).append(", upstream: 127.0.0.1:")
                 .append(r.upstream()).append(", role: server").append(proto).append("}\n");
                ports.add(r.listen());
                ports.add(inner);
            } else {
                for (int i = 0; i < routes.size(); i++) {
                    Route r = routes.get(i);
                    y.append("  - {name: r").append(i).append(", listen: 127.0.0.1:").append(r.listen())
                     .append(", upstream: 127.0.0.1:").append(r.upstream()).append(", role: ").append(role);
                    if (r.udp()) y.append(", protocol: udp");
                    if (tlsProvider != null) {
                        y.append(", tls: {provider: ").append(tlsProvider).append(", cert: ").append(env.tlsCert())
                         .append(", key: ").append(env.tlsKey());
                        if (jars.contains("sni-cert")) y.append(", module: sni-cert");
                        y.append('}');
                    }
                    y.append("}\n");
                    ports.add(r.listen());
                }
            }
            if (!moduleEntries.isEmpty()) {
                y.append("modules:\n");
                for (String e : moduleEntries) {
                    y.append(e).append('\n');
                }
            }
            Path cfg = dir.resolve("agent.yaml");
            Files.writeString(cfg, y);
            if (!Files.isRegularFile(env.interlayerJar())) {
                throw new BenchException(env.interlayerJar() + " is missing; build it with ./mvnw -q -pl cli -am package "
                        + "-DskipTests (bench/run does it)");
            }
            List<String> cmd = new ArrayList<>(List.of(env.java(), "--sun-misc-unsafe-memory-access=allow",
                    "--enable-native-access=ALL-UNNAMED"));
            cmd.addAll(env.jvmOpts());
            if (env.aotCache() != null) {
                cmd.addAll(List.of("-XX:AOTCache=" + env.aotCache(), "-Xlog:aot*=off,cds*=off"));
            }
            cmd.addAll(List.of("-jar", env.interlayerJar().toString(), "run", "--config", cfg.toString()));
            return new Launch(cmd, ports, routes.getFirst().udp());
        });
    }
}
