package dev.interlayer.agent;

import dev.interlayer.agent.ConfigException.Problem;
import dev.interlayer.agent.logging.LogSettings;
import dev.interlayer.agent.metrics.MetricsSettings;
import dev.interlayer.api.AttachMode;
import dev.interlayer.api.Capability;
import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.PortRange;
import dev.interlayer.api.Protocol;
import dev.interlayer.api.Role;
import dev.interlayer.api.Selector;
import dev.interlayer.api.SocketOption;
import dev.interlayer.control.AuditLog;
import dev.interlayer.control.ControlSettings;
import dev.interlayer.control.Policy;
import dev.interlayer.engine.EngineOptions;
import dev.interlayer.engine.SniRoutes;
import dev.interlayer.engine.TlsContexts;
import dev.interlayer.engine.TlsException;
import dev.interlayer.engine.TlsSettings;
import dev.interlayer.engine.UdpSettings;
import dev.interlayer.runtime.ModuleConfig;
import dev.interlayer.runtime.ModuleRegistry;
import dev.interlayer.runtime.ModuleState;
import dev.interlayer.runtime.ParamValues;
import java.io.IOException;
import java.io.StringReader;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;
import java.util.regex.Pattern;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.error.MarkedYAMLException;
import org.yaml.snakeyaml.error.YAMLException;
import org.yaml.snakeyaml.nodes.MappingNode;
import org.yaml.snakeyaml.nodes.Node;
import org.yaml.snakeyaml.nodes.NodeTuple;
import org.yaml.snakeyaml.nodes.ScalarNode;
import org.yaml.snakeyaml.nodes.SequenceNode;
import org.yaml.snakeyaml.nodes.Tag;

/**
 * An agent's configuration, read from a YAML file: agent settings, listeners and module entries.
 *
 * <p>Parsing collects every problem before failing, each with the file and line it concerns, so one run of
 * {@code interlayer run --check} shows everything to fix. Relative paths are resolved against the folder
 * of the config file.
 *
 * <pre>{@code
 * AgentConfig config = AgentConfig.load(Path.of("agent.yaml"));   // throws ConfigException listing every problem
 * }</pre>
 */
public final class AgentConfig {

    /** Aliases of lists and mappings a config may use: enough for sharing a selector, too few for a YAML bomb. */
    static final int MAX_ALIASES = 50;
    /** Characters a config may have. */
    static final int MAX_CHARS = 4 * 1024 * 1024;

    /** The autoload folder used when {@code agent.modules-dir} is not set, relative to the config file. */
    public static final String DEFAULT_MODULES_DIR = "modules";

    private static final Pattern LISTENER_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,62}");
    private static final Pattern HOST_NAME = Pattern.compile("[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*");

    private static final List<String> TOP_KEYS = List.of("agent", "listeners", "modules", "interception");
    private static final List<String> INTERCEPTION_KEYS = List.of("listen", "listen6", "mark", "failure", "outbound", "inbound-listen", "inbound");
    private static final List<String> INBOUND_RULE_KEYS = List.of("protocol", "from", "ports");
    /** The intercepting listeners' names, which the config's own listeners cannot take. */
    private static final List<String> INTERCEPT_LISTENERS = List.of(dev.interlayer.engine.Engine.INTERCEPT_LISTENER,
            dev.interlayer.engine.Engine.INTERCEPT_UDP_LISTENER, dev.interlayer.engine.Engine.INTERCEPT6_LISTENER,
            dev.interlayer.engine.Engine.INTERCEPT_UDP6_LISTENER, dev.interlayer.engine.Engine.INTERCEPT_INBOUND_LISTENER,
            dev.interlayer.engine.Engine.INTERCEPT_INBOUND_UDP_LISTENER);
    private static final List<String> INTERCEPT_RULE_KEYS = List.of("protocol", "to", "ports", "uid", "gid", "cgroup");
    /** The port the intercepting listener binds on 127.0.0.1 when {@code interception.listen} is not set. */
    public static final int DEFAULT_INTERCEPT_PORT = 15001;
    /** The port the inbound intercepting listeners bind on [::] (0.0.0.0 without IPv6) when {@code interception.inbound-listen} is not set. */
    public static final int DEFAULT_INBOUND_PORT = 15002;
    /** The mark of the agent's own sockets when {@code interception.mark} is not set. */
    public static final int DEFAULT_INTERCEPT_MARK = 0x1e5;
    private static final List<String> AGENT_KEYS = List.of("modules-dir", "io-threads", "hold-limit", "hook-budget", "module-wide-budget", "alloc-limit", "quarantine-after", "connect-timeout",
            "udp-idle-timeout", "udp-max-flows", "splice", "reuse-port", "direct", "stop-timeout", "warm-up", "control", "orchestrator", "metrics", "log");
    private static final List<String> WARM_UP_KEYS = List.of("before-takeover", "before-start");
    private static final List<String> CONTROL_KEYS = List.of("enabled", "socket", "policy", "audit-file", "audit-capacity", "audit-max-size",
            "audit-keep", "audit-group", "max-connections-per-uid", "handshake-timeout", "idle-timeout", "tls", "attach-socket");
    private static final List<String> TLS_KEYS = List.of("listen", "cert", "key", "client-ca");
    private static final List<String> METRICS_KEYS = List.of("listen");
    private static final List<String> LOG_KEYS = List.of("format", "file", "max-size", "keep");
    private static final List<String> ORCHESTRATOR_KEYS = List.of("address", "token-file", "ca", "state-dir");
    private static final List<String> LISTENER_KEYS = List.of("name", "listen", "upstream", "role", "protocol", "options", "tls", "sni-routes",
            "sni-timeout");
    private static final List<String> UPSTREAM_KEYS = List.of("address", "tls");
    private static final List<String> LISTENER_TLS_KEYS = List.of("provider", "cert", "key", "key-password-file", "sni", "ca", "client-auth",
            "protocols", "ciphers", "alpn", "handshake-timeout", "crl", "session-tickets", "ticket-key-rotation", "ticket-keys", "module", "key-log");
    private static final List<String> UPSTREAM_TLS_KEYS = List.of("provider", "cert", "key", "key-password-file", "ca", "server-name", "verify",
            "protocols", "ciphers", "alpn", "handshake-timeout", "crl", "module", "key-log");
    private static final List<String> SNI_KEYS = List.of("names", "cert", "key", "key-password-file");
    private static final Pattern SNI_NAME = Pattern.compile("(\\*\\.)?" + "[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*");
    private static final List<String> OPTION_KEYS = List.of("tcp-nodelay", "keep-alive", "rcvbuf", "sndbuf", "tos", "linger");
    private static final List<String> MODULE_KEYS = List.of("name", "jar", "state", "priority", "mode", "listeners", "apply-now", "fault-policy", "selector", "params", "allow");
    private static final List<String> SELECTOR_KEYS = List.of("protocol", "listener", "app", "pid", "uid", "exe", "cgroup", "local", "remote", "local-ports", "remote-ports",
            "tls-sni", "tls-alpn", "tls-subject", "tls-identity");

    /**
     * The {@code agent:} section.
     *
     * @param modulesDir the autoload folder (absolute)
     * @param modulesDirSet true if the config names it (then it must exist); false for the default, created on start
     * @param ioThreads event-loop threads, 0 = one per core
     * @param holdLimit per-connection cap on held and buffered bytes
     * @param hookBudget longest a hook call may run before it counts as a fault
     * @param moduleWideBudget longest a module call off the event loops (init, fini, control, onListen, module-wide
     *                         timers) may run before it is stopped as a fault
     * @param allocLimit most heap bytes one hook call may allocate before it is stopped as a fault (0 = no limit)
     * @param quarantineAfter faults after which a module is set INACTIVE
     * @param connectTimeout upstream connect timeout
     * @param udp flow settings of every udp listener: {@code udp-idle-timeout} and {@code udp-max-flows}
     * @param splice bulk transfers of connections without data or event hooks move socket to socket in the kernel
     * @param reusePort every event loop accepts on a listening socket of its own (SO_REUSEPORT) the connections it serves
     * @param direct connections no module selects run below Netty's channels
     * @param stopTimeout longest the agent takes to stop (SIGTERM, Ctrl-C), an event loop stuck in a module call or not
     * @param warmUp how long the agent runs made-up traffic through its own listeners before it serves ({@code agent.warm-up})
     */
    public record Settings(Path modulesDir, boolean modulesDirSet, int ioThreads, long holdLimit, Duration hookBudget, Duration moduleWideBudget, long allocLimit, int quarantineAfter,
                           Duration connectTimeout, UdpSettings udp, boolean splice, boolean reusePort, boolean direct, Duration stopTimeout, WarmUp warmUp) {}

    /**
     * {@code agent.warm-up}: made-up traffic through listeners of the agent's own, before it takes over a running agent's
     * sockets ({@code run --takeover}, where the old agent serves meanwhile) and before it opens its listeners on a plain
     * start (where nothing serves meanwhile: off by default). Zero turns either off.
     *
     * @param beforeTakeover how long the warm-up runs before a takeover
     * @param beforeStart how long it runs before a plain start opens the listeners
     */
    public record WarmUp(Duration beforeTakeover, Duration beforeStart) {
        /** Two seconds before a takeover, none before a plain start. */
        public static final WarmUp DEFAULT = new WarmUp(Duration.ofSeconds(2), Duration.ZERO);

        /** How long to warm up before this start: a takeover's or a plain start's. */
        public Duration before(boolean takeover) {
            return takeover ? beforeTakeover : beforeStart;
        }
    }

    /** {@code agent.stop-timeout} when the config does not set it. */
    public static final Duration DEFAULT_STOP_TIMEOUT = Duration.ofSeconds(5);

    /**
     * One entry of {@code listeners:}.
     *
     * @param name unique name
     * @param protocol tcp or udp
     * @param role client or server
     * @param listen the address to bind
     * @param upstream where accepted connections are forwarded; with {@code sni}, the default route (null: none)
     * @param options socket options for both sockets of every connection
     * @param line the line the entry starts on
     * @param tls TLS terminated on accepted sockets ({@code tls:}), or null
     * @param upstreamTls TLS originated to the upstream ({@code upstream.tls:}), or null
     * @param sni TLS passthrough: the upstream chosen by the client hello's server name ({@code sni-routes:}), or null
     */
    public record Listener(String name, Protocol protocol, Role role, InetSocketAddress listen, InetSocketAddress upstream,
                           Map<SocketOption, Object> options, int line, TlsSettings tls, TlsSettings upstreamTls, SniRoutes sni) {

        /** Where connections go, as a start line shows it: the upstream, or the passthrough routes and the default. */
        public String target() {
            if (sni == null) return address(upstream);
            return "sni-routes (" + sni.routes().size() + "), default " + (upstream == null ? "none: unknown names refused" : address(upstream));
        }

        private static String address(InetSocketAddress a) {
            String host = a.getAddress() == null ? a.getHostString() : a.getAddress().getHostAddress();
            return (host.contains(":") ? "[" + host + "]" : host) + ":" + a.getPort();
        }
    }

    /**
     * One entry of {@code modules:}.
     *
     * @param name the module's name
     * @param jar an extra jar to load it from, or null when it comes from the modules folder
     * @param config the overrides to apply when the module loads
     * @param listeners listeners on whose every connection a programmatic module is attached
     * @param line the line the entry starts on
     * @param paramLines the line of each parameter under {@code params:}
     */
    public record ModuleEntry(String name, Path jar, ModuleConfig config, List<String> listeners, int line, Map<String, Integer> paramLines) {}

    private final String source;
    private final Path file;
    private final Settings agent;
    private final List<Listener> listeners;
    private final List<ModuleEntry> modules;
    private final ControlSettings control;
    private final OrchestratorLink.Settings orchestrator;
    private final dev.interlayer.engine.Interception interception;
    private final Extras extras;

    /** The parts of the {@code agent:} section about operations: {@code agent.metrics} (null: off) and {@code agent.log}. */
    private record Extras(MetricsSettings metrics, LogSettings log) {}

    private AgentConfig(String source, Path file, Settings agent, List<Listener> listeners, List<ModuleEntry> modules, ControlSettings control,
                        OrchestratorLink.Settings orchestrator, dev.interlayer.engine.Interception interception, Extras extras) {
        this.extras = extras;
        this.control = control;
        this.orchestrator = orchestrator;
        this.interception = interception;
        this.source = source;
        this.file = file;
        this.agent = agent;
        this.listeners = List.copyOf(listeners);
        this.modules = List.copyOf(modules);
    }

    /**
     * Reads and checks a config file.
     *
     * @throws ConfigException listing every problem found, or that the file cannot be read
     */
    public static AgentConfig load(Path file) throws ConfigException {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            String why = Files.exists(file) ? "cannot be read (" + e.getMessage() + ")" : "does not exist";
            throw new ConfigException(List.of(new Problem(file.toString(), 0, "", "the config file " + why
                    + "; pass the path of a YAML config with --config (see docs/config.md)")));
        }
        return parse(text, file);
    }

    /**
     * Checks config text as if read from {@code file}, which names it in messages and anchors relative paths.
     *
     * @throws ConfigException listing every problem found
     */
    public static AgentConfig parse(String text, Path file) throws ConfigException {
        return new Parser(file).parse(text);
    }

    /** The {@code interception:} block: which outbound connections of local processes go through the agent; empty if none. */
    public Optional<dev.interlayer.engine.Interception> interception() {
        return Optional.ofNullable(interception);
    }

    /** The config file as the user named it. */
    public String source() {
        return source;
    }

    /** The config file. */
    public Path file() {
        return file;
    }

    /** The {@code agent:} settings (defaults where unset). */
    public Settings agent() {
        return agent;
    }

    /**
     * The control endpoint's settings ({@code agent.control}), or empty when {@code enabled: false}. Without
     * an {@code agent.control} section the endpoint listens on {@link ControlSettings#defaultSocket()} with
     * the built-in default policy.
     */
    public Optional<ControlSettings> control() {
        return Optional.ofNullable(control);
    }

    /** The orchestrator this agent joins ({@code agent.orchestrator}), or empty when it runs on its own. */
    public Optional<OrchestratorLink.Settings> orchestrator() {
        return Optional.ofNullable(orchestrator);
    }

    /** The Prometheus endpoint ({@code agent.metrics}), or empty when the config has none (the default). */
    public Optional<MetricsSettings> metrics() {
        return Optional.ofNullable(extras.metrics());
    }

    /** How and where the agent logs ({@code agent.log}); {@link LogSettings#DEFAULT} without the section. */
    public LogSettings log() {
        return extras.log();
    }

    /** The listeners, in file order. */
    public List<Listener> listeners() {
        return listeners;
    }

    /** The module entries, in file order. */
    public List<ModuleEntry> modules() {
        return modules;
    }

    /** The entry for module {@code name}, if the config has one. */
    public Optional<ModuleEntry> module(String name) {
        return modules.stream().filter(m -> m.name().equals(name)).findFirst();
    }

    /** The overrides for each module by name: the config entry's, or none for a module the config does not name. */
    public Function<String, ModuleConfig> moduleConfigs() {
        Map<String, ModuleConfig> byName = new LinkedHashMap<>();
        for (ModuleEntry m : modules) {
            byName.put(m.name(), m.config());
        }
        return name -> byName.getOrDefault(name, ModuleConfig.defaults(name));
    }

    /** {@code FILE:LINE} of a line of this config, for messages. */
    public String where(int line) {
        return source + ":" + line;
    }

    /**
     * Puts a load failure of a module this config names in the config's terms: the entry's line (or the
     * parameter's line when the message names one) and the entry's path.
     */
    public Optional<String> locate(String moduleName, String message) {
        for (int i = 0; i < modules.size(); i++) {
            ModuleEntry m = modules.get(i);
            if (!m.name().equals(moduleName)) {
                continue;
            }
            for (Map.Entry<String, Integer> p : m.paramLines().entrySet()) {
                if (message.contains("'" + p.getKey() + "'")) {
                    return Optional.of(where(p.getValue()) + ": modules[" + i + "].params." + p.getKey() + ": " + message);
                }
            }
            return Optional.of(where(m.line()) + ": modules[" + i + "] (" + m.name() + "): " + message);
        }
        return Optional.empty();
    }

    // ---- parsing ---------------------------------------------------------------------------------

    /** Walks the YAML node tree, collecting every problem with its line. */
    private static final class Parser {
        private final Path file;
        private final String source;
        private final Path base;
        private final List<Problem> problems = new ArrayList<>();
        /** The {@code module:} keys of tls blocks, checked against the module entries once those are read. */
        private final List<TlsModuleRef> tlsModules = new ArrayList<>();

        private record TlsModuleRef(Node node, String path, String name) {}
        private ControlSettings control = ControlSettings.at(ControlSettings.defaultSocket());
        private OrchestratorLink.Settings orchestrator;
        private MetricsSettings metrics;
        private LogSettings log = LogSettings.DEFAULT;

        Parser(Path file) {
            this.file = file;
            this.source = file.toString();
            Path parent = file.toAbsolutePath().normalize().getParent();
            this.base = parent == null ? Path.of("").toAbsolutePath() : parent;
        }

        AgentConfig parse(String text) throws ConfigException {
            Node root;
            LoaderOptions limits = new LoaderOptions();
            limits.setMaxAliasesForCollections(MAX_ALIASES);
            limits.setCodePointLimit(MAX_CHARS);
            try {
                root = new Yaml(limits).compose(new StringReader(text));
            } catch (MarkedYAMLException e) {
                int line = e.getProblemMark() == null ? 0 : e.getProblemMark().getLine() + 1;
                String what = (e.getContext() == null ? "" : e.getContext() + ": ") + (e.getProblem() == null ? e.getMessage() : e.getProblem());
                throw new ConfigException(List.of(new Problem(source, line, "", "not valid YAML: " + what.replace('\n', ' ')
                        + "; fix the syntax (indent with spaces, 'key: value', lists with '- ')")));
            } catch (YAMLException e) {
                String m = String.valueOf(e.getMessage());
                if (m.contains("exceeds the limit")) {
                    throw new ConfigException(List.of(new Problem(source, 0, "", "the file is longer than " + MAX_CHARS / (1024 * 1024)
                            + " Mi characters, far more than any agent config needs; check that this is the config file")));
                }
                if (m.contains("Number of aliases")) {
                    throw new ConfigException(List.of(new Problem(source, 0, "", "the file uses aliases (*name) of lists or mappings more than "
                            + MAX_ALIASES + " times, which is how YAML bombs grow; write those values out, or use fewer anchors")));
                }
                throw new ConfigException(List.of(new Problem(source, 0, "", "not valid YAML: " + m.replace('\n', ' '))));
            }
            if (root == null) {
                throw new ConfigException(List.of(new Problem(source, 0, "", "the file is empty; expected a mapping with "
                        + String.join(", ", TOP_KEYS) + " (see docs/config.md)")));
            }
            if (!(root instanceof MappingNode top)) {
                problem(root, "", "expected a mapping with keys " + String.join(", ", TOP_KEYS) + ", found " + kind(root));
                throw new ConfigException(problems);
            }
            Map<String, NodeTuple> keys = mapping(top, "", TOP_KEYS);
            Settings settings = settings(keys.get("agent"));
            List<Listener> listeners = listeners(keys.get("listeners"));
            Set<String> listenerNames = new LinkedHashSet<>();
            listeners.forEach(l -> listenerNames.add(l.name()));
            dev.interlayer.engine.Interception interception = interception(keys.get("interception"));
            if (interception != null) {
                for (Listener l : listeners) {
                    if (INTERCEPT_LISTENERS.contains(l.name())) {
                        problems.add(new Problem(source, l.line(), "listeners", "the listener name '" + l.name() + "' is the intercepting"
                                + " listener's (interception: is set); rename this listener"));
                    }
                }
                interception.listeners().forEach(l -> listenerNames.add(l.name()));
            }
            listeners.forEach(l -> {
                if (l.tls() != null) terminatingListeners.add(l.name());
            });
            List<ModuleEntry> modules = modules(keys.get("modules"), listenerNames);
            for (TlsModuleRef r : tlsModules) {
                if (modules.stream().noneMatch(e -> e.name().equals(r.name()))) {
                    problem(r.node(), r.path(), "no module entry named '" + r.name() + "' under modules:; add one (- name: " + r.name()
                            + ", with jar: or its jar in the modules folder) for a module that implements the tls interface, or fix the name");
                }
            }
            if (!problems.isEmpty()) {
                problems.sort((a, b) -> Integer.compare(a.line(), b.line()));
                throw new ConfigException(problems);
            }
            return new AgentConfig(source, file, settings, listeners, modules, control, orchestrator, interception, new Extras(metrics, log));
        }

        // ---- sections ----

        /** The {@code interception:} block, or null if absent or wrong (then its problems are recorded). */
        private dev.interlayer.engine.Interception interception(NodeTuple t) {
            if (t == null || isNull(t.getValueNode())) return null;
            String path = "interception";
            if (!(t.getValueNode() instanceof MappingNode m)) {
                problem(t.getValueNode(), path, "expected a mapping with keys " + String.join(", ", INTERCEPTION_KEYS) + ", found " + kind(t.getValueNode()));
                return null;
            }
            int before = problems.size();
            Map<String, NodeTuple> k = mapping(m, path, INTERCEPTION_KEYS);
            Node v;
            InetSocketAddress listen = (v = value(k, "listen")) != null ? hostPort(v, path + ".listen", 1) : null;
            if (v == null) listen = new InetSocketAddress("127.0.0.1", DEFAULT_INTERCEPT_PORT);
            // IPv6 by default where the host (this network namespace) has it; off: IPv4 only
            InetSocketAddress listen6 = null;
            if ((v = value(k, "listen6")) == null) {
                if (ipv6() && listen != null) listen6 = new InetSocketAddress("::1", listen.getPort());
            } else if (!(v instanceof ScalarNode sv && "off".equals(sv.getValue()))) {
                listen6 = hostPort(v, path + ".listen6", 1);
            }
            int mark = DEFAULT_INTERCEPT_MARK;
            if ((v = value(k, "mark")) != null) {
                Long x = integer(v, path + ".mark", 1, 0xffffffffL, "a socket mark, 1 to 0xffffffff, that no other software on the host uses, e.g. 0x1e5");
                if (x != null) mark = (int) x.longValue();
            }
            dev.interlayer.engine.Interception.FailureMode failure = dev.interlayer.engine.Interception.FailureMode.FAIL_CLOSED;
            if ((v = value(k, "failure")) != null) {
                var f = choice(v, path + ".failure", Map.of("fail-closed", dev.interlayer.engine.Interception.FailureMode.FAIL_CLOSED,
                        "fail-open", dev.interlayer.engine.Interception.FailureMode.FAIL_OPEN),
                        "fail-closed (a killed agent's connections are refused until it restarts) or fail-open (they go directly after "
                                + dev.interlayer.engine.Interception.ALIVE_SECONDS + " s)");
                if (f != null) failure = f;
            }
            List<dev.interlayer.engine.Interception.Rule> rules = new ArrayList<>();
            Node out = value(k, "outbound");
            if (out == null && value(k, "inbound") == null) {
                problem(m, path, "missing 'outbound'; expected a list of rules, e.g. - {to: [10.0.0.0/8], ports: [80, 443]} (or inbound:,"
                        + " a list of rules, e.g. - {ports: [8080]})");
            }
            if (out != null) {
                List<Node> items = list(out, path + ".outbound", "a list of rules, e.g. - {to: [10.0.0.0/8], ports: [80, 443], uid: [1000]}");
                if (items.isEmpty() && out instanceof SequenceNode) {
                    problem(out, path + ".outbound", "no rules: add one, e.g. - {to: [10.0.0.0/8], ports: [80, 443]}, or remove outbound:");
                }
                for (int i = 0; i < items.size(); i++) {
                    var r = interceptRule(items.get(i), path + ".outbound[" + i + "]");
                    if (r != null) rules.add(r);
                }
            }
            InetSocketAddress inboundListen = (v = value(k, "inbound-listen")) != null ? hostPort(v, path + ".inbound-listen", 1) : null;
            if (v == null) inboundListen = new InetSocketAddress(ipv6() ? "::" : "0.0.0.0", DEFAULT_INBOUND_PORT);
            List<dev.interlayer.engine.Interception.InboundRule> inbound = new ArrayList<>();
            if ((v = value(k, "inbound")) != null) {
                List<Node> items = list(v, path + ".inbound", "a list of rules, e.g. - {from: [10.0.0.0/8], ports: [8080]}");
                if (items.isEmpty() && v instanceof SequenceNode) {
                    problem(v, path + ".inbound", "no rules: add one, e.g. - {ports: [8080]}, or remove inbound:");
                }
                for (int i = 0; i < items.size(); i++) {
                    String at = path + ".inbound[" + i + "]";
                    if (!(items.get(i) instanceof MappingNode r)) {
                        problem(items.get(i), at, "expected a rule mapping with keys " + String.join(", ", INBOUND_RULE_KEYS) + ", found " + kind(items.get(i)));
                        continue;
                    }
                    Map<String, NodeTuple> rk = mapping(r, at, INBOUND_RULE_KEYS);
                    Set<Protocol> protocols = protocols(value(rk, "protocol"), at + ".protocol");
                    if (protocols.isEmpty()) continue;
                    inbound.add(new dev.interlayer.engine.Interception.InboundRule(protocols, cidrs(value(rk, "from"), at + ".from"),
                            ports(value(rk, "ports"), at + ".ports")));
                }
            }
            if (problems.size() > before || listen == null || inboundListen == null) return null;
            try {
                return new dev.interlayer.engine.Interception(listen, mark, failure, rules, inboundListen, inbound, listen6);
            } catch (IllegalArgumentException e) {
                problem(m, path, e.getMessage());
                return null;
            }
        }

        private dev.interlayer.engine.Interception.Rule interceptRule(Node n, String path) {
            if (!(n instanceof MappingNode m)) {
                problem(n, path, "expected a rule mapping with keys " + String.join(", ", INTERCEPT_RULE_KEYS) + ", found " + kind(n));
                return null;
            }
            Map<String, NodeTuple> k = mapping(m, path, INTERCEPT_RULE_KEYS);
            List<Integer> uids = new ArrayList<>();
            List<Integer> gids = new ArrayList<>();
            Set<Protocol> protocols = protocols(value(k, "protocol"), path + ".protocol");
            if (protocols.isEmpty()) return null;
            Node v;
            List<dev.interlayer.api.Cidr> to = cidrs(value(k, "to"), path + ".to");
            List<PortRange> ports = ports(value(k, "ports"), path + ".ports");
            for (String key : List.of("uid", "gid")) {
                if ((v = value(k, key)) == null) continue;
                for (Node e : list(v, path + "." + key, "a list of numeric " + (key.equals("uid") ? "user" : "group") + " ids, e.g. [1000]")) {
                    Long id = integer(e, path + "." + key, 0, Integer.MAX_VALUE, "a numeric " + (key.equals("uid") ? "user id (id -u NAME prints it)"
                            : "group id (id -g NAME prints it)"));
                    if (id != null) (key.equals("uid") ? uids : gids).add(id.intValue());
                }
            }
            List<String> cgroups = new ArrayList<>();
            if ((v = value(k, "cgroup")) != null) {
                for (Node e : list(v, path + ".cgroup", "a list of cgroup2 paths, e.g. [/system.slice/app.service]")) {
                    String c = string(e, path + ".cgroup", "a cgroup2 path as /proc/PID/cgroup shows it after 0::, e.g. /system.slice/app.service");
                    if (c == null) continue;
                    String problem = dev.interlayer.engine.Cgroup2.problem(c);
                    if (problem != null) problem(e, path + ".cgroup", problem);
                    else cgroups.add(c);
                }
            }
            return new dev.interlayer.engine.Interception.Rule(protocols, to, ports, uids, gids, cgroups);
        }

        /** An interception rule's protocols at {@code path} (tcp if {@code v} is null); empty after a mistake, which is recorded. */
        private Set<Protocol> protocols(Node v, String path) {
            if (v == null) return EnumSet.of(Protocol.TCP);
            Set<Protocol> protocols = EnumSet.noneOf(Protocol.class);
            List<Node> items = v instanceof SequenceNode ? list(v, path, "tcp, udp or [tcp, udp]") : List.of(v);
            for (Node e : items) {
                Protocol p = choice(e, path, Map.of("tcp", Protocol.TCP, "udp", Protocol.UDP), "tcp, udp or [tcp, udp]");
                if (p != null) protocols.add(p);
            }
            if (items.isEmpty()) problem(v, path, "no protocol: give tcp, udp or [tcp, udp] (without protocol: tcp)");
            return protocols;
        }

        /** An interception rule's IPv4 and IPv6 CIDRs at {@code path} (none if {@code v} is null); each mistake recorded. */
        private List<dev.interlayer.api.Cidr> cidrs(Node v, String path) {
            List<dev.interlayer.api.Cidr> out = new ArrayList<>();
            if (v == null) return out;
            for (Node e : list(v, path, "a list of CIDRs, e.g. [10.0.0.0/8, 'fd00::/8']")) {
                String c = string(e, path, "a CIDR, e.g. 10.0.0.0/8 or 'fd00::/8'");
                if (c == null) continue;
                try {
                    out.add(dev.interlayer.api.Cidr.parse(c));
                } catch (IllegalArgumentException ex) {
                    problem(e, path, ex.getMessage() + "; expected a CIDR such as 10.0.0.0/8 or 'fd00::/8'");
                }
            }
            return out;
        }

        /** True if this host (its network namespace) has IPv6: the kernel lists its IPv6 addresses. */
        private static boolean ipv6() {
            return java.nio.file.Files.isReadable(java.nio.file.Path.of("/proc/net/if_inet6"));
        }

        /** An interception rule's ports and ranges at {@code path} (none if {@code v} is null); each mistake recorded. */
        private List<PortRange> ports(Node v, String path) {
            List<PortRange> out = new ArrayList<>();
            if (v == null) return out;
            for (Node e : list(v, path, "a list of ports and ranges, e.g. [80, 8000-8100]")) {
                String p = string(e, path, "a port or range, e.g. 80 or 8000-8100");
                if (p == null) continue;
                try {
                    List<PortRange> r = PortRange.parseList(p);
                    if (r.stream().anyMatch(x -> x.from() == 0)) {
                        problem(e, path, "port 0 is no destination; expected ports 1-65535, e.g. 80 or 8000-8100");
                    } else {
                        out.addAll(r);
                    }
                } catch (IllegalArgumentException ex) {
                    problem(e, path, ex.getMessage() + "; expected a port (1-65535) or a range such as 8000-8100");
                }
            }
            return out;
        }

        private Settings settings(NodeTuple t) {
            Path modulesDir = base.resolve(DEFAULT_MODULES_DIR);
            boolean dirSet = false;
            int ioThreads = 0;
            long holdLimit = 4L << 20;
            Duration hookBudget = Duration.ofMillis(200);
            Duration moduleWideBudget = ModuleRegistry.DEFAULT_MODULE_WIDE_BUDGET;
            long allocLimit = EngineOptions.DEFAULT_ALLOC_LIMIT;
            int quarantineAfter = 5;
            Duration connectTimeout = Duration.ofSeconds(10);
            Duration udpIdle = UdpSettings.DEFAULTS.idleTimeout();
            int udpMaxFlows = UdpSettings.DEFAULTS.maxFlows();
            boolean splice = true;
            boolean reusePort = true;
            boolean direct = true;
            Duration stopTimeout = DEFAULT_STOP_TIMEOUT;
            WarmUp warmUp = WarmUp.DEFAULT;
            if (t == null || isNull(t.getValueNode())) {
                return new Settings(modulesDir, false, ioThreads, holdLimit, hookBudget, moduleWideBudget, allocLimit, quarantineAfter, connectTimeout, UdpSettings.DEFAULTS, true, true, true,
                        stopTimeout, warmUp);
            }
            if (!(t.getValueNode() instanceof MappingNode m)) {
                problem(t.getValueNode(), "agent", "expected a mapping with keys " + String.join(", ", AGENT_KEYS) + ", found " + kind(t.getValueNode()));
                return new Settings(modulesDir, false, ioThreads, holdLimit, hookBudget, moduleWideBudget, allocLimit, quarantineAfter, connectTimeout, UdpSettings.DEFAULTS, true, true, true,
                        stopTimeout, warmUp);
            }
            Map<String, NodeTuple> k = mapping(m, "agent", AGENT_KEYS);
            Node n;
            if ((n = value(k, "modules-dir")) != null) {
                String s = string(n, "agent.modules-dir", "a folder path, e.g. modules");
                if (s != null) {
                    Path p = base.resolve(s).normalize();
                    if (Files.isDirectory(p)) {
                        modulesDir = p;
                        dirSet = true;
                    } else {
                        problem(n, "agent.modules-dir", (Files.exists(p) ? p + " is not a folder" : "folder " + p + " does not exist")
                                + "; expected a folder for module jars (create it, or fix the path: relative paths start at the config file's folder)");
                    }
                }
            }
            if ((n = value(k, "io-threads")) != null) {
                Long v = integer(n, "agent.io-threads", 0, 1024, "an integer 0..1024 (0 = one per core)");
                if (v != null) ioThreads = v.intValue();
            }
            if ((n = value(k, "hold-limit")) != null) {
                Long v = size(n, "agent.hold-limit", 1024, Long.MAX_VALUE, "a size of at least 1KiB, e.g. 4MiB");
                if (v != null) holdLimit = v;
            }
            if ((n = value(k, "hook-budget")) != null) {
                Duration d = duration(n, "agent.hook-budget");
                if (d != null) hookBudget = d;
            }
            if ((n = value(k, "module-wide-budget")) != null) {
                Duration d = duration(n, "agent.module-wide-budget");
                if (d != null) moduleWideBudget = d;
            }
            if ((n = value(k, "alloc-limit")) != null) {
                Long v = size(n, "agent.alloc-limit", 0, Long.MAX_VALUE, "a size, e.g. 64MiB, or 0 for no limit");
                if (v != null) allocLimit = v;
            }
            if ((n = value(k, "quarantine-after")) != null) {
                Long v = integer(n, "agent.quarantine-after", 1, Integer.MAX_VALUE, "a number of faults, at least 1, e.g. 5");
                if (v != null) quarantineAfter = v.intValue();
            }
            if ((n = value(k, "connect-timeout")) != null) {
                Duration d = duration(n, "agent.connect-timeout");
                if (d != null) connectTimeout = d;
            }
            if ((n = value(k, "udp-idle-timeout")) != null) {
                Duration d = duration(n, "agent.udp-idle-timeout");
                if (d != null) udpIdle = d;
            }
            if ((n = value(k, "udp-max-flows")) != null) {
                Long v = integer(n, "agent.udp-max-flows", 1, 1_000_000, "a number of flows per udp listener, 1..1000000, e.g. 10000");
                if (v != null) udpMaxFlows = v.intValue();
            }
            splice = flag(k, "splice", splice);
            reusePort = flag(k, "reuse-port", reusePort);
            direct = flag(k, "direct", direct);
            if ((n = value(k, "stop-timeout")) != null) {
                Duration d = duration(n, "agent.stop-timeout");
                if (d != null) stopTimeout = d;
            }
            if ((n = value(k, "warm-up")) != null) {
                warmUp = warmUp(n);
            }
            if ((n = value(k, "control")) != null) {
                control = control(n);
            }
            if ((n = value(k, "orchestrator")) != null) {
                orchestrator = orchestrator(n);
            }
            if ((n = value(k, "metrics")) != null) {
                metrics = metrics(n);
            }
            if ((n = value(k, "log")) != null) {
                log = log(n);
            }
            return new Settings(modulesDir, dirSet, ioThreads, holdLimit, hookBudget, moduleWideBudget, allocLimit, quarantineAfter, connectTimeout,
                    new UdpSettings(udpIdle, udpMaxFlows), splice, reusePort, direct, stopTimeout, warmUp);
        }

        /** The boolean {@code agent.KEY} of {@code k}: its value, or {@code otherwise} when absent or not a boolean (a problem). */
        private boolean flag(Map<String, NodeTuple> k, String key, boolean otherwise) {
            Node n = value(k, key);
            Boolean b = n == null ? null : bool(n, "agent." + key);
            return b != null ? b : otherwise;
        }

        /** The {@code agent.control} section; null when it says {@code enabled: false}. */
        private ControlSettings control(Node n) {
            ControlSettings c = ControlSettings.at(ControlSettings.defaultSocket());
            if (isNull(n)) {
                return c;
            }
            if (!(n instanceof MappingNode m)) {
                problem(n, "agent.control", "expected a mapping with keys " + String.join(", ", CONTROL_KEYS) + ", found " + kind(n));
                return c;
            }
            Map<String, NodeTuple> k = mapping(m, "agent.control", CONTROL_KEYS);
            Node v;
            boolean enabled = true;
            if ((v = value(k, "enabled")) != null) {
                Boolean b = bool(v, "agent.control.enabled");
                if (b != null) enabled = b;
            }
            Path socket = ControlSettings.defaultSocket();
            if ((v = value(k, "socket")) != null) {
                String p = string(v, "agent.control.socket", "a path for the control socket, e.g. /run/interlayer/control.sock");
                if (p != null) {
                    socket = base.resolve(p).normalize();
                    if (socket.toString().getBytes(StandardCharsets.UTF_8).length > 107) {
                        problem(v, "agent.control.socket", socket + " is too long for a Unix socket path (at most 107 bytes); choose a shorter path");
                    }
                }
            }
            Path attach = ControlSettings.defaultAttachSocket(socket);
            if ((v = value(k, "attach-socket")) != null) {
                String p = string(v, "agent.control.attach-socket", "a path for the attach socket, e.g. /run/interlayer/control-attach.sock, or off");
                attach = p == null || p.equals("off") ? null : base.resolve(p).normalize();
            }
            if (attach != null && attach.toString().getBytes(StandardCharsets.UTF_8).length > 107) {
                problem(v != null ? v : n, "agent.control.attach-socket", attach + " is too long for a Unix socket path (at most 107 bytes);"
                        + " choose a shorter path, or off");
            }
            Path policy = null;
            if ((v = value(k, "policy")) != null) {
                String p = string(v, "agent.control.policy", "the path of a policy file (see docs/control-plane.md)");
                if (p != null) {
                    policy = base.resolve(p).normalize();
                    try {
                        Policy.load(policy, Policy.processUid());
                    } catch (dev.interlayer.control.YamlException e) {
                        problem(v, "agent.control.policy", e.getMessage());
                    }
                }
            }
            Path audit = null;
            if ((v = value(k, "audit-file")) != null) {
                String p = string(v, "agent.control.audit-file", "a file to append audit decisions to, e.g. audit.jsonl");
                if (p != null) audit = base.resolve(p).normalize();
            }
            int capacity = ControlSettings.DEFAULT_AUDIT_CAPACITY;
            if ((v = value(k, "audit-capacity")) != null) {
                Long x = integer(v, "agent.control.audit-capacity", 1, 10_000_000, "a number of decisions kept in memory, 1..10000000");
                if (x != null) capacity = x.intValue();
            }
            AuditLog.FileOptions files = AuditLog.FileOptions.DEFAULT;
            long maxSize = files.maxSize();
            if ((v = value(k, "audit-max-size")) != null) {
                Long x = size(v, "agent.control.audit-max-size", 0, Long.MAX_VALUE,
                        "the size at which the audit file is rotated, e.g. 64MiB, or 0 to never rotate it");
                if (x != null) maxSize = x;
            }
            int keep = files.keep();
            if ((v = value(k, "audit-keep")) != null) {
                Long x = integer(v, "agent.control.audit-keep", 1, 1000, "how many rotated audit files to keep, 1..1000");
                if (x != null) keep = x.intValue();
            }
            String group = null;
            if ((v = value(k, "audit-group")) != null) {
                group = string(v, "agent.control.audit-group", "the group that may read the audit file, e.g. adm");
                if (group != null) {
                    try {
                        FileSystems.getDefault().getUserPrincipalLookupService().lookupPrincipalByGroupName(group);
                    } catch (IOException e) {
                        problem(v, "agent.control.audit-group", "there is no group " + group + " on this host; name an existing group"
                                + " (see /etc/group), or leave audit-group out to keep the audit file to the agent's user");
                        group = null;
                    }
                }
            }
            ControlSettings.Limits limits = ControlSettings.Limits.DEFAULT;
            int perUid = limits.connectionsPerUid();
            if ((v = value(k, "max-connections-per-uid")) != null) {
                Long x = integer(v, "agent.control.max-connections-per-uid", 1, 100_000,
                        "how many control connections one user may hold open at once, 1..100000");
                if (x != null) perUid = x.intValue();
            }
            Duration handshake = limits.handshakeTimeout();
            if ((v = value(k, "handshake-timeout")) != null) {
                Duration d = duration(v, "agent.control.handshake-timeout");
                if (d != null) handshake = d;
            }
            Duration idle = limits.idleTimeout();
            if ((v = value(k, "idle-timeout")) != null) {
                Duration d = duration(v, "agent.control.idle-timeout");
                if (d != null && d.compareTo(Duration.ofSeconds(1)) < 0) {
                    problem(v, "agent.control.idle-timeout", "must be at least 1s; expected e.g. 5m");
                } else if (d != null) {
                    idle = d;
                }
            }
            ControlSettings.Tls tls = null;
            if ((v = value(k, "tls")) != null) {
                tls = tls(v);
            }
            return enabled ? new ControlSettings(socket, tls, policy, audit, capacity, true, new AuditLog.FileOptions(maxSize, keep, group),
                    new ControlSettings.Limits(perUid, handshake, idle), attach) : null;
        }

        /**
         * The {@code agent.metrics} section; null when it is wrong (then its problems are recorded). An address other than
         * loopback needs the control endpoint's mutual TLS ({@code agent.control.tls}): its certificates and the policy guard it.
         */
        private MetricsSettings metrics(Node n) {
            String at = "agent.metrics";
            if (!(n instanceof MappingNode m)) {
                problem(n, at, "expected a mapping with keys " + String.join(", ", METRICS_KEYS) + ", found " + kind(n));
                return null;
            }
            Map<String, NodeTuple> k = mapping(m, at, METRICS_KEYS);
            Node v = required(k, m, at, "listen", "HOST:PORT for the Prometheus endpoint, e.g. 127.0.0.1:9464");
            InetSocketAddress listen = v == null ? null : hostPort(v, at + ".listen", 0);
            if (listen == null) {
                return null;
            }
            MetricsSettings s = new MetricsSettings(listen);
            if (!s.loopback() && (control == null || control.tls() == null)) {
                problem(v, at + ".listen", listen.getAddress().getHostAddress() + " is not a loopback address: off this host the metrics are"
                        + " served over HTTPS to callers with a client certificate the control policy grants Modules.Stats, which needs"
                        + " agent.control.tls (cert, key, client-ca); set it up, or listen on 127.0.0.1 (see docs/metrics.md)");
                return null;
            }
            return s;
        }

        /** The {@code agent.warm-up} section; the defaults where it is wrong (then its problems are recorded). */
        private WarmUp warmUp(Node n) {
            String at = "agent.warm-up";
            if (!(n instanceof MappingNode m)) {
                problem(n, at, "expected a mapping with keys " + String.join(", ", WARM_UP_KEYS) + " (durations, 0 for none), e.g."
                        + " {before-takeover: 1s, before-start: 0s}, found " + kind(n));
                return WarmUp.DEFAULT;
            }
            Map<String, NodeTuple> k = mapping(m, at, WARM_UP_KEYS);
            Duration takeover = WarmUp.DEFAULT.beforeTakeover();
            Duration start = WarmUp.DEFAULT.beforeStart();
            Node v;
            if ((v = value(k, "before-takeover")) != null) {
                Duration d = warmUpDuration(v, at + ".before-takeover");
                if (d != null) takeover = d;
            }
            if ((v = value(k, "before-start")) != null) {
                Duration d = warmUpDuration(v, at + ".before-start");
                if (d != null) start = d;
            }
            return new WarmUp(takeover, start);
        }

        /** A warm-up's length: 0 (none) up to a minute. */
        private Duration warmUpDuration(Node n, String path) {
            if (n instanceof ScalarNode sc && sc.getValue().strip().matches("0+([a-z]*)")) {
                return Duration.ZERO;
            }
            Duration d = duration(n, path);
            if (d != null && d.compareTo(Duration.ofMinutes(1)) > 0) {
                problem(n, path, d + " is too long: a warm-up of a second or two compiles the connection path; expected a duration of"
                        + " at most 1m, e.g. 1s, or 0 for none");
                return null;
            }
            return d;
        }

        /** The {@code agent.log} section; the defaults where it is wrong (then its problems are recorded). */
        private LogSettings log(Node n) {
            String at = "agent.log";
            LogSettings d = LogSettings.DEFAULT;
            if (!(n instanceof MappingNode m)) {
                problem(n, at, "expected a mapping with keys " + String.join(", ", LOG_KEYS) + ", found " + kind(n));
                return d;
            }
            Map<String, NodeTuple> k = mapping(m, at, LOG_KEYS);
            Node v;
            boolean json = d.json();
            if ((v = value(k, "format")) != null) {
                String f = string(v, at + ".format", "text or json");
                if ("json".equals(f) || "text".equals(f)) {
                    json = f.equals("json");
                } else if (f != null) {
                    problem(v, at + ".format", "'" + f + "' is not a log format; expected text (one line per record) or json (one JSON object per line)");
                }
            }
            Path file = d.file();
            if ((v = value(k, "file")) != null) {
                String p = string(v, at + ".file", "a file to append the log to, e.g. /var/log/interlayer/agent.log");
                if (p != null) {
                    file = base.resolve(p).normalize();
                    if (Files.isDirectory(file)) {
                        problem(v, at + ".file", file + " is a folder; name a file in it, e.g. " + file.resolve("agent.log"));
                        file = null;
                    }
                }
            }
            long maxSize = d.maxSize();
            if ((v = value(k, "max-size")) != null) {
                Long x = size(v, at + ".max-size", 0, Long.MAX_VALUE, "the size at which the log file is rotated, e.g. 64MiB, or 0 to never rotate it");
                if (x != null) maxSize = x;
            }
            int keep = d.keep();
            if ((v = value(k, "keep")) != null) {
                Long x = integer(v, at + ".keep", 1, 1000, "how many rotated log files to keep, 1..1000");
                if (x != null) keep = x.intValue();
            }
            return new LogSettings(json, file, maxSize, keep);
        }

        /** The {@code agent.orchestrator} section. */
        private OrchestratorLink.Settings orchestrator(Node n) {
            String at = "agent.orchestrator";
            if (!(n instanceof MappingNode m)) {
                problem(n, at, "expected a mapping with keys " + String.join(", ", ORCHESTRATOR_KEYS) + ", found " + kind(n));
                return null;
            }
            Map<String, NodeTuple> k = mapping(m, at, ORCHESTRATOR_KEYS);
            Node v;
            List<InetSocketAddress> addresses = null;
            if ((v = required(k, m, at, "address", "HOST:PORT of the orchestrator's agent listener, e.g. orchestrator.example.org:7543,"
                    + " or a list of them (one per orchestrator replica)")) != null) {
                List<Node> items = v instanceof SequenceNode seq ? seq.getValue() : List.of(v);
                addresses = new ArrayList<>();
                for (int i = 0; i < items.size(); i++) {
                    InetSocketAddress a = hostPort(items.get(i), at + ".address" + (v instanceof SequenceNode ? "[" + i + "]" : ""), 1);
                    if (a != null) {
                        addresses.add(a);
                    }
                }
                if (items.isEmpty()) {
                    problem(v, at + ".address", "the list is empty; name at least one HOST:PORT of an orchestrator");
                }
                if (addresses.size() != items.size()) {
                    addresses = null;
                }
            }
            Path ca = null;
            if ((v = required(k, m, at, "ca", "the orchestrator's CA certificate (PEM; ca.crt in its data folder)")) != null) {
                String p = string(v, at + ".ca", "a PEM file");
                if (p != null) {
                    ca = base.resolve(p).normalize();
                    if (!Files.isReadable(ca)) {
                        problem(v, at + ".ca", "file " + ca + (Files.exists(ca) ? " cannot be read" : " does not exist")
                                + "; copy ca.crt from the orchestrator's data folder and name it here");
                        ca = null;
                    }
                }
            }
            Path token = null;
            if ((v = value(k, "token-file")) != null) {
                String p = string(v, at + ".token-file", "the file holding the one-time enrollment token (interlayer fleet token)");
                if (p != null) {
                    token = base.resolve(p).normalize();
                }
            }
            Path state = base.resolve("orchestrator-state").normalize();
            if ((v = value(k, "state-dir")) != null) {
                String p = string(v, at + ".state-dir", "a folder for the agent's certificate and its last good state, e.g. /var/lib/interlayer");
                if (p != null) {
                    state = base.resolve(p).normalize();
                }
            }
            if (addresses == null || addresses.isEmpty() || ca == null) {
                return null;
            }
            return new OrchestratorLink.Settings(addresses, ca, token, state);
        }

        private ControlSettings.Tls tls(Node n) {
            if (!(n instanceof MappingNode m)) {
                problem(n, "agent.control.tls", "expected a mapping with keys " + String.join(", ", TLS_KEYS) + ", found " + kind(n));
                return null;
            }
            Map<String, NodeTuple> k = mapping(m, "agent.control.tls", TLS_KEYS);
            Node v;
            InetSocketAddress listen = null;
            if ((v = required(k, m, "agent.control.tls", "listen", "HOST:PORT for the mutual-TLS control listener, e.g. 0.0.0.0:7443")) != null) {
                listen = hostPort(v, "agent.control.tls.listen", 0);
            }
            Path[] files = new Path[3];
            String[] names = {"cert", "key", "client-ca"};
            String[] what = {"the agent's certificate chain (PEM)", "the agent's private key (PEM, PKCS#8)", "the CA certificate(s) client certificates must chain to (PEM)"};
            for (int i = 0; i < 3; i++) {
                if ((v = required(k, m, "agent.control.tls", names[i], what[i])) != null) {
                    String p = string(v, "agent.control.tls." + names[i], what[i]);
                    if (p != null) {
                        Path f = base.resolve(p).normalize();
                        if (!Files.isReadable(f)) {
                            problem(v, "agent.control.tls." + names[i], "file " + f + (Files.exists(f) ? " cannot be read" : " does not exist")
                                    + "; expected " + what[i]);
                        } else {
                            files[i] = f;
                        }
                    }
                }
            }
            if (listen == null || files[0] == null || files[1] == null || files[2] == null) {
                return null;
            }
            return new ControlSettings.Tls(listen, files[0], files[1], files[2]);
        }

        private List<Listener> listeners(NodeTuple t) {
            List<Listener> out = new ArrayList<>();
            if (t == null || isNull(t.getValueNode())) {
                return out;
            }
            if (!(t.getValueNode() instanceof SequenceNode seq)) {
                problem(t.getValueNode(), "listeners", "expected a list of listeners ('- name: ...'), found " + kind(t.getValueNode()));
                return out;
            }
            Map<String, Integer> names = new LinkedHashMap<>();
            Map<Integer, List<Object[]>> ports = new LinkedHashMap<>();
            for (int i = 0; i < seq.getValue().size(); i++) {
                Node item = seq.getValue().get(i);
                String path = "listeners[" + i + "]";
                if (!(item instanceof MappingNode m)) {
                    problem(item, path, "expected a listener mapping with keys " + String.join(", ", LISTENER_KEYS) + ", found " + kind(item));
                    continue;
                }
                Map<String, NodeTuple> k = mapping(m, path, LISTENER_KEYS);
                int line = line(m);
                String name = null;
                Node n;
                if ((n = required(k, m, path, "name", "a unique listener name, e.g. web")) != null) {
                    name = string(n, path + ".name", "a listener name");
                    if (name != null && !LISTENER_NAME.matcher(name).matches()) {
                        problem(n, path + ".name", "'" + name + "' is not a valid name; expected letters, digits, '.', '_' or '-' (up to 63)");
                        name = null;
                    } else if (name != null && names.containsKey(name)) {
                        problem(n, path + ".name", "duplicate listener name '" + name + "' (also on line " + names.get(name) + "); give each listener its own name");
                        name = null;
                    } else if (name != null) {
                        names.put(name, line(n));
                    }
                }
                InetSocketAddress listen = null;
                if ((n = required(k, m, path, "listen", "HOST:PORT to accept connections on, e.g. 127.0.0.1:8080")) != null) {
                    listen = hostPort(n, path + ".listen", 0);
                    if (listen != null && listen.getPort() != 0) {
                        List<Object[]> same = ports.computeIfAbsent(listen.getPort(), p -> new ArrayList<>());
                        for (Object[] other : same) {
                            InetSocketAddress o = (InetSocketAddress) other[0];
                            if (o.getAddress().isAnyLocalAddress() || listen.getAddress().isAnyLocalAddress() || o.getAddress().equals(listen.getAddress())) {
                                problem(n, path + ".listen", "port " + listen.getPort() + " is already used by listener '" + other[1] + "' (line "
                                        + other[2] + "); give each listener its own port");
                                break;
                            }
                        }
                        same.add(new Object[] {listen, name == null ? "?" : name, line(n)});
                    }
                }
                InetSocketAddress upstream = null;
                TlsSettings upstreamTls = null;
                Node sniNode = value(k, "sni-routes"); // with routes, upstream is the default route and may be left out
                if ((n = sniNode != null ? value(k, "upstream") : required(k, m, path, "upstream", "HOST:PORT to forward connections to, e.g. 127.0.0.1:80")) != null) {
                    if (n instanceof MappingNode um) {
                        // upstream: {address: HOST:PORT, tls: {...}}: the agent originates TLS to it
                        Map<String, NodeTuple> uk = mapping(um, path + ".upstream", UPSTREAM_KEYS);
                        Node a = required(uk, um, path + ".upstream", "address", "HOST:PORT to forward connections to, e.g. 10.0.0.5:443");
                        if (a != null) upstream = hostPort(a, path + ".upstream.address", 1);
                        Node ut = value(uk, "tls");
                        if (ut != null && upstream != null) {
                            upstreamTls = tls(ut, path + ".upstream.tls", false, host(((ScalarNode) a).getValue()));
                        }
                    } else {
                        upstream = hostPort(n, path + ".upstream", 1);
                    }
                }
                Role role = null;
                if ((n = required(k, m, path, "role", "client (local apps connect here) or server (remote peers connect here)")) != null) {
                    role = choice(n, path + ".role", Map.of("client", Role.CLIENT, "server", Role.SERVER),
                            "client (local apps connect to the listener) or server (remote peers connect to it)");
                }
                Protocol protocol = Protocol.TCP;
                if ((n = value(k, "protocol")) != null) {
                    String p = string(n, path + ".protocol", "tcp or udp");
                    if ("udp".equals(p)) {
                        protocol = Protocol.UDP;
                    } else if (p != null && !p.equals("tcp")) {
                        problem(n, path + ".protocol", "unknown protocol '" + p + "'; expected tcp or udp");
                    }
                }
                Map<SocketOption, Object> options = options(value(k, "options"), path + ".options");
                if (protocol == Protocol.UDP) {
                    for (SocketOption tcpOnly : List.of(SocketOption.TCP_NODELAY, SocketOption.SO_KEEPALIVE, SocketOption.SO_LINGER)) {
                        if (options.containsKey(tcpOnly)) {
                            problem(value(k, "options"), path + ".options", "option " + OPTION_KEYS.get(tcpOnly.ordinal())
                                    + " applies to tcp only; a udp listener takes rcvbuf, sndbuf and tos");
                        }
                    }
                }
                TlsSettings tls = null;
                if ((n = value(k, "tls")) != null) {
                    tls = tls(n, path + ".tls", true, null);
                }
                if (protocol == Protocol.UDP && (tls != null || upstreamTls != null)) {
                    problem(tls != null ? value(k, "tls") : value(k, "upstream"), path, "TLS runs over tcp only; remove the tls: block or set protocol: tcp");
                }
                SniRoutes sni = null;
                if (sniNode != null) {
                    sni = sniRoutes(sniNode, value(k, "sni-timeout"), path);
                    if (protocol == Protocol.UDP) {
                        problem(sniNode, path + ".sni-routes", "sni-routes route TLS connections by their server name: tcp only; remove"
                                + " protocol: udp, or sni-routes");
                    }
                    if (value(k, "tls") != null) {
                        problem(value(k, "tls"), path, "a listener either passes TLS through by its server name (sni-routes) or terminates it"
                                + " (tls:), not both; remove one (tls: has sni: entries to choose a certificate by name)");
                    }
                    if (upstreamTls != null) {
                        problem(value(k, "upstream"), path + ".upstream", "sni-routes forward the client's TLS untouched, so the agent cannot"
                                + " originate TLS to the upstream as well; write upstream: HOST:PORT");
                    }
                } else if (value(k, "sni-timeout") != null) {
                    problem(value(k, "sni-timeout"), path + ".sni-timeout", "sni-timeout applies to sni-routes only; add sni-routes, or"
                            + " remove it (a tls: block has handshake-timeout)");
                }
                if (name != null && listen != null && (upstream != null || sni != null) && role != null) {
                    out.add(new Listener(name, protocol, role, listen, upstream, options, line, tls, upstreamTls, sni));
                }
            }
            return out;
        }

        /**
         * A listener's {@code sni-routes:} (server name to {@code HOST:PORT}) with its {@code sni-timeout}; null after a
         * problem, which is reported at the name or address it is about.
         */
        private SniRoutes sniRoutes(Node n, Node timeoutNode, String path) {
            String p = path + ".sni-routes";
            String example = "e.g. {api.example.com: 10.0.0.5:443, \"*.example.com\": 10.0.0.6:443} (quote names that start with *)";
            if (!(n instanceof MappingNode m)) {
                problem(n, p, "expected a mapping of server name to HOST:PORT, " + example + ", found " + kind(n));
                return null;
            }
            if (m.getValue().isEmpty()) {
                problem(n, p, "no routes; list at least one server name with its HOST:PORT, " + example + ", or remove sni-routes");
                return null;
            }
            int before = problems.size();
            Map<String, InetSocketAddress> routes = new LinkedHashMap<>();
            Map<String, Node> seen = new LinkedHashMap<>();
            for (Map.Entry<String, NodeTuple> e : mapping(m, p, null).entrySet()) {
                String name = e.getKey();
                Node key = e.getValue().getKeyNode();
                String why = SniRoutes.whyNotAName(name);
                if (why != null) {
                    problem(key, p + "." + name, why);
                    continue;
                }
                String lower = name.toLowerCase(Locale.ROOT);
                if (seen.containsKey(lower)) {
                    problem(key, p + "." + name, "'" + name + "' is listed twice (also on line " + line(seen.get(lower))
                            + "; server names are case-insensitive); keep one");
                    continue;
                }
                seen.put(lower, key);
                InetSocketAddress to = hostPort(e.getValue().getValueNode(), p + "." + name, 1);
                if (to != null) routes.put(lower, to);
            }
            Duration timeout = null;
            if (timeoutNode != null) {
                timeout = duration(timeoutNode, path + ".sni-timeout");
            }
            if (problems.size() > before) return null;
            return new SniRoutes(routes, timeout);
        }

        /**
         * A {@code tls:} block: a listener's ({@code server}: the agent terminates TLS) or an upstream's (it originates TLS to
         * {@code upstreamHost}, the default server name). Every file is read and checked as the listener would at start.
         */
        private TlsSettings tls(Node n, String path, boolean server, String upstreamHost) {
            List<String> known = server ? LISTENER_TLS_KEYS : UPSTREAM_TLS_KEYS;
            if (!(n instanceof MappingNode m)) {
                problem(n, path, "expected a mapping with keys " + String.join(", ", known) + ", found " + kind(n));
                return null;
            }
            int before = problems.size();
            Map<String, NodeTuple> k = mapping(m, path, known);
            Map<Path, Node> files = new LinkedHashMap<>();
            Node v;
            TlsSettings.Provider provider = TlsSettings.Provider.OPENSSL;
            if ((v = value(k, "provider")) != null) {
                TlsSettings.Provider p = choice(v, path + ".provider", Map.of("openssl", TlsSettings.Provider.OPENSSL, "jdk", TlsSettings.Provider.JDK),
                        "openssl (BoringSSL, the default) or jdk");
                if (p != null) provider = p;
            }
            List<TlsSettings.Identity> ids = new ArrayList<>();
            if (server) {
                if (required(k, m, path, "cert", "the certificate chain (PEM) the agent shows clients, with key") != null) {
                    TlsSettings.Identity id = identity(k, path, List.of(), files);
                    if (id != null) ids.add(id);
                }
            } else if (value(k, "cert") != null || value(k, "key") != null) {
                if (value(k, "cert") == null || value(k, "key") == null) {
                    problem(m, path, "a client certificate needs both cert and key; set both, or neither");
                } else {
                    TlsSettings.Identity id = identity(k, path, List.of(), files);
                    if (id != null) ids.add(id);
                }
            }
            if (server && (v = value(k, "sni")) != null) {
                List<Node> entries = list(v, path + ".sni", "a list of {names: [...], cert: ..., key: ...}");
                for (int i = 0; i < entries.size(); i++) {
                    String ep = path + ".sni[" + i + "]";
                    if (!(entries.get(i) instanceof MappingNode em)) {
                        problem(entries.get(i), ep, "expected a mapping with keys " + String.join(", ", SNI_KEYS) + ", found " + kind(entries.get(i)));
                        continue;
                    }
                    Map<String, NodeTuple> ek = mapping(em, ep, SNI_KEYS);
                    List<String> names = new ArrayList<>();
                    Node nn = required(ek, em, ep, "names", "the server names this certificate serves, e.g. [api.example.com, \"*.example.com\"]");
                    if (nn != null) {
                        for (Node e : list(nn, ep + ".names", "server names, e.g. [api.example.com, \"*.example.com\"]")) {
                            String name = string(e, ep + ".names", "a server name");
                            if (name != null && !SNI_NAME.matcher(name).matches()) {
                                problem(e, ep + ".names", "'" + name + "' is not a server name; expected a host name such as api.example.com, or *.example.com");
                            } else if (name != null) {
                                names.add(name.toLowerCase(Locale.ROOT));
                            }
                        }
                    }
                    if (required(ek, em, ep, "cert", "the certificate chain (PEM) for these names, with key") != null
                            && required(ek, em, ep, "key", "the certificate's private key (PEM, PKCS#8)") != null && !names.isEmpty()) {
                        TlsSettings.Identity id = identity(ek, ep, names, files);
                        if (id != null) ids.add(id);
                    }
                }
            }
            Path ca = null;
            if ((v = value(k, "ca")) != null) {
                ca = file(v, path + ".ca", server ? "the CA certificate(s) (PEM) client certificates must chain to"
                        : "the CA certificate(s) (PEM) the upstream's certificate must chain to", files);
            }
            TlsSettings.ClientAuth auth = TlsSettings.ClientAuth.NONE;
            if (server && (v = value(k, "client-auth")) != null) {
                TlsSettings.ClientAuth a = choice(v, path + ".client-auth", Map.of("none", TlsSettings.ClientAuth.NONE, "optional",
                        TlsSettings.ClientAuth.OPTIONAL, "required", TlsSettings.ClientAuth.REQUIRED), "none, optional or required");
                if (a != null) auth = a;
                if (a != null && a != TlsSettings.ClientAuth.NONE && value(k, "ca") == null) {
                    problem(v, path + ".client-auth", "client-auth " + s(a) + " needs ca: the CA certificate(s) client certificates must chain to");
                }
            }
            if (server && ca != null && auth == TlsSettings.ClientAuth.NONE) {
                problem(value(k, "ca"), path + ".ca", "ca is set but client-auth is none, so no client is asked for a certificate; set"
                        + " client-auth: required (or optional), or remove ca");
            }
            List<String> protocols = new ArrayList<>();
            if ((v = value(k, "protocols")) != null) {
                for (Node e : list(v, path + ".protocols", "TLS versions: TLSv1.2, TLSv1.3")) {
                    String p = string(e, path + ".protocols", "TLSv1.2 or TLSv1.3");
                    if (p != null && !TlsSettings.DEFAULT_PROTOCOLS.contains(p)) {
                        problem(e, path + ".protocols", "unknown protocol '" + p + "'; expected TLSv1.2 or TLSv1.3 (older versions are not offered)");
                    } else if (p != null) {
                        protocols.add(p);
                    }
                }
            }
            List<String> ciphers = strings(value(k, "ciphers"), path + ".ciphers", "cipher suite names, e.g. [TLS_AES_128_GCM_SHA256]");
            List<String> alpn = strings(value(k, "alpn"), path + ".alpn", "application protocols in order of preference, e.g. [h2, http/1.1]");
            Duration timeout = null;
            if ((v = value(k, "handshake-timeout")) != null) {
                timeout = duration(v, path + ".handshake-timeout");
            }
            String serverName = upstreamHost;
            if (!server && (v = value(k, "server-name")) != null) {
                serverName = string(v, path + ".server-name", "the name the upstream's certificate must carry, e.g. api.example.com");
            }
            boolean verify = true;
            if (!server && (v = value(k, "verify")) != null) {
                Boolean b = bool(v, path + ".verify");
                if (b != null) verify = b;
            }
            String module = null;
            if ((v = value(k, "module")) != null) {
                module = string(v, path + ".module", "the name of a module entry (under modules:) that implements the tls interface");
                if (module != null) tlsModules.add(new TlsModuleRef(v, path + ".module", module));
            }
            List<Path> crl = new ArrayList<>();
            if ((v = value(k, "crl")) != null) {
                String expected = "CRL file(s) (PEM or DER) signed by a CA in ca: one file or a list";
                for (Node e : v instanceof ScalarNode ? List.of(v) : list(v, path + ".crl", expected)) {
                    Path f = file(e, path + ".crl", expected, files);
                    if (f != null) crl.add(f);
                }
                if (ca == null && value(k, "ca") == null) {
                    problem(v, path + ".crl", "crl needs ca: the CA certificate(s) that signed the CRLs and that "
                            + (server ? "client" : "the upstream's") + " certificates chain to; set ca");
                }
            }
            boolean tickets = true;
            if (server && (v = value(k, "session-tickets")) != null) {
                Boolean b = bool(v, path + ".session-tickets");
                if (b != null) tickets = b;
                if (b != null && !b && provider == TlsSettings.Provider.JDK) {
                    problem(v, path + ".session-tickets", "session-tickets: false needs provider: openssl; the JDK's TLS resumes sessions"
                            + " by itself and cannot be told not to per listener");
                }
            }
            Duration rotation = null;
            if (server && (v = value(k, "ticket-key-rotation")) != null) {
                rotation = duration(v, path + ".ticket-key-rotation");
                if (rotation != null && rotation.compareTo(TlsSettings.MIN_TICKET_KEY_ROTATION) < 0) {
                    problem(v, path + ".ticket-key-rotation", "must be at least " + TlsSettings.MIN_TICKET_KEY_ROTATION.toSeconds()
                            + "s; a ticket key encrypts new tickets for this long, and is accepted one period more (e.g. 1h)");
                    rotation = null;
                }
            }
            List<Path> ticketKeys = new ArrayList<>();
            if (server && (v = value(k, "ticket-keys")) != null) {
                String expected = "session ticket key file(s) of 48 random bytes (openssl rand 48 > ticket.key), the one that encrypts first";
                for (Node e : v instanceof ScalarNode ? List.of(v) : list(v, path + ".ticket-keys", expected)) {
                    Path f = file(e, path + ".ticket-keys", expected, files);
                    if (f != null) ticketKeys.add(f);
                }
                if (provider == TlsSettings.Provider.JDK) {
                    problem(v, path + ".ticket-keys", "ticket-keys needs provider: openssl; the JDK's TLS makes its own ticket keys");
                } else if (!tickets) {
                    problem(v, path + ".ticket-keys", "ticket-keys has no use with session-tickets: false; remove one of them");
                }
            }
            Path keyLog = null;
            if ((v = value(k, "key-log")) != null) {
                String f = string(v, path + ".key-log", "a file to append the handshakes' secrets to (NSS key log format, for Wireshark)");
                if (f != null) {
                    keyLog = base.resolve(f).normalize();
                    Path dir = keyLog.getParent();
                    if (Files.isDirectory(keyLog) || dir == null || !Files.isDirectory(dir) || !Files.isWritable(Files.exists(keyLog) ? keyLog : dir)) {
                        problem(v, path + ".key-log", "cannot write the key log " + keyLog + "; name a file in a folder the agent's user can write"
                                + " (relative paths start at the config file's folder)");
                        keyLog = null;
                    } else if (provider == TlsSettings.Provider.JDK) {
                        problem(v, path + ".key-log", "key-log needs provider: openssl; the JDK's TLS does not hand out its secrets");
                    }
                }
            }
            if (problems.size() > before) {
                return null;
            }
            TlsSettings s = new TlsSettings(provider, ids, ca, auth, protocols, ciphers, alpn, timeout, serverName, verify, crl, tickets, rotation,
                    module, keyLog, ticketKeys);
            try {
                TlsContexts.check(s, server);
            } catch (TlsException e) {
                problem(where(e.getMessage(), files, k, n), path, e.getMessage());
                return null;
            }
            return s;
        }

        /** The node a TLS problem is about: the file it names, else the ciphers or protocols, else the block. */
        private static Node where(String message, Map<Path, Node> files, Map<String, NodeTuple> keys, Node block) {
            Node best = null;
            int at = Integer.MAX_VALUE;
            for (Map.Entry<Path, Node> f : files.entrySet()) {
                int i = message.indexOf(f.getKey().toString());
                if (i >= 0 && i < at) {
                    at = i;
                    best = f.getValue();
                }
            }
            if (best != null) return best;
            for (String key : List.of("ciphers", "protocols")) {
                if (message.startsWith(key) && value(keys, key) != null) return value(keys, key);
            }
            return block;
        }

        private TlsSettings.Identity identity(Map<String, NodeTuple> k, String path, List<String> names, Map<Path, Node> files) {
            Path cert = file(value(k, "cert"), path + ".cert", "a PEM certificate chain, the leaf first", files);
            Node kn = value(k, "key");
            if (kn == null) {
                problem(value(k, "cert"), path, "missing 'key'; expected the certificate's private key (PEM, PKCS#8)");
                return null;
            }
            Path key = file(kn, path + ".key", "the certificate's private key (PEM, PKCS#8)", files);
            Path pass = null;
            Node pn = value(k, "key-password-file");
            if (pn != null) {
                pass = file(pn, path + ".key-password-file", "a file whose first line is the key's passphrase", files);
                if (pass == null) return null;
            }
            return cert == null || key == null ? null : new TlsSettings.Identity(cert, key, pass, names);
        }

        /** A readable file named by {@code n}, resolved against the config's folder; remembered in {@code files} for messages. */
        private Path file(Node n, String path, String expected, Map<Path, Node> files) {
            String p = string(n, path, expected);
            if (p == null) return null;
            Path f = base.resolve(p).normalize();
            if (!Files.isReadable(f)) {
                problem(n, path, "file " + f + (Files.exists(f) ? " cannot be read; make it readable by the agent's user"
                        : " does not exist; expected " + expected + " (relative paths start at the config file's folder)"));
                return null;
            }
            files.put(f, n);
            return f;
        }

        private List<String> strings(Node n, String path, String expected) {
            List<String> out = new ArrayList<>();
            if (n == null) return out;
            for (Node e : list(n, path, expected)) {
                String x = string(e, path, expected);
                if (x != null) out.add(x);
            }
            return out;
        }

        private static String s(Enum<?> e) {
            return e.name().toLowerCase(Locale.ROOT);
        }

        /** The host of a {@code HOST:PORT} as written (no brackets), the upstream's default server name. */
        private static String host(String hostPort) {
            String t = hostPort.trim();
            if (t.startsWith("[")) return t.substring(1, Math.max(1, t.indexOf(']')));
            int colon = t.lastIndexOf(':');
            return colon > 0 ? t.substring(0, colon) : t;
        }

        private Map<SocketOption, Object> options(Node n, String path) {
            Map<SocketOption, Object> out = new EnumMap<>(SocketOption.class);
            if (n == null || isNull(n)) {
                return out;
            }
            if (!(n instanceof MappingNode m)) {
                problem(n, path, "expected a mapping of socket options (" + String.join(", ", OPTION_KEYS) + "), found " + kind(n));
                return out;
            }
            Map<String, NodeTuple> k = mapping(m, path, OPTION_KEYS);
            Node v;
            if ((v = value(k, "tcp-nodelay")) != null) {
                Boolean b = bool(v, path + ".tcp-nodelay");
                if (b != null) out.put(SocketOption.TCP_NODELAY, b);
            }
            if ((v = value(k, "keep-alive")) != null) {
                Boolean b = bool(v, path + ".keep-alive");
                if (b != null) out.put(SocketOption.SO_KEEPALIVE, b);
            }
            if ((v = value(k, "rcvbuf")) != null) {
                Long s = size(v, path + ".rcvbuf", 1, Integer.MAX_VALUE, "a buffer size, e.g. 256KiB");
                if (s != null) out.put(SocketOption.SO_RCVBUF, s.intValue());
            }
            if ((v = value(k, "sndbuf")) != null) {
                Long s = size(v, path + ".sndbuf", 1, Integer.MAX_VALUE, "a buffer size, e.g. 256KiB");
                if (s != null) out.put(SocketOption.SO_SNDBUF, s.intValue());
            }
            if ((v = value(k, "tos")) != null) {
                Long t = integer(v, path + ".tos", 0, 255, "a type-of-service byte 0..255, e.g. 0x10 (DSCP is the upper six bits)");
                if (t != null) out.put(SocketOption.IP_TOS, t.intValue());
            }
            if ((v = value(k, "linger")) != null) {
                Long l = integer(v, path + ".linger", -1, 65535, "seconds to linger on close: -1 (off), 0 (reset on close) or 1..65535");
                if (l != null) out.put(SocketOption.SO_LINGER, l.intValue());
            }
            return out;
        }

        private List<ModuleEntry> modules(NodeTuple t, Set<String> listenerNames) {
            List<ModuleEntry> out = new ArrayList<>();
            if (t == null || isNull(t.getValueNode())) {
                return out;
            }
            if (!(t.getValueNode() instanceof SequenceNode seq)) {
                problem(t.getValueNode(), "modules", "expected a list of module entries ('- name: ...'), found " + kind(t.getValueNode()));
                return out;
            }
            Map<String, Integer> names = new LinkedHashMap<>();
            for (int i = 0; i < seq.getValue().size(); i++) {
                Node item = seq.getValue().get(i);
                String path = "modules[" + i + "]";
                if (!(item instanceof MappingNode m)) {
                    problem(item, path, "expected a module entry with keys " + String.join(", ", MODULE_KEYS) + ", found " + kind(item));
                    continue;
                }
                Map<String, NodeTuple> k = mapping(m, path, MODULE_KEYS);
                boolean ok = true;
                String name = null;
                Node n;
                if ((n = required(k, m, path, "name", "the module's name as its descriptor declares it, e.g. tag")) != null) {
                    name = string(n, path + ".name", "a module name");
                    if (name != null && !ModuleDescriptor.NAME.matcher(name).matches()) {
                        problem(n, path + ".name", "'" + name + "' is not a module name; expected lower-kebab-case, e.g. tag or hold-release");
                        name = null;
                    } else if (name != null && names.containsKey(name)) {
                        problem(n, path + ".name", "module '" + name + "' is configured twice (also on line " + names.get(name) + "); merge the entries");
                        name = null;
                    } else if (name != null) {
                        names.put(name, line(n));
                    }
                }
                Path jar = null;
                if ((n = value(k, "jar")) != null) {
                    String s = string(n, path + ".jar", "a path to a module jar or C module object (.so)");
                    if (s != null) {
                        Path p = base.resolve(s).normalize();
                        if (!Files.isRegularFile(p)) {
                            problem(n, path + ".jar", "file " + p + " does not exist; expected a module jar or C module object (relative paths start at the config file's folder)");
                            ok = false;
                        } else {
                            jar = p;
                        }
                    }
                }
                ModuleState state = null;
                if ((n = value(k, "state")) != null) {
                    state = choice(n, path + ".state", Map.of("active", ModuleState.ACTIVE, "inactive", ModuleState.INACTIVE),
                            "active or inactive (a module starts in one of these; other states are reached through the control plane)");
                    ok &= state != null;
                }
                Integer priority = null;
                if ((n = value(k, "priority")) != null) {
                    Long p = integer(n, path + ".priority", Integer.MIN_VALUE, Integer.MAX_VALUE, "an integer; lower runs first on SEND, e.g. 50");
                    ok &= p != null;
                    priority = p == null ? null : p.intValue();
                }
                AttachMode mode = null;
                Node modeNode = value(k, "mode");
                if (modeNode != null) {
                    mode = choice(modeNode, path + ".mode", Map.of("global", AttachMode.GLOBAL, "programmatic", AttachMode.PROGRAMMATIC),
                            "global (every connection its selector matches) or programmatic (only where asked, e.g. listeners: [web])");
                    ok &= mode != null;
                }
                List<String> attachTo = new ArrayList<>();
                if ((n = value(k, "listeners")) != null) {
                    for (Node e : list(n, path + ".listeners", "a list of listener names, e.g. [web]")) {
                        String l = string(e, path + ".listeners", "a listener name");
                        if (l == null) {
                            ok = false;
                        } else if (!listenerNames.contains(l)) {
                            problem(e, path + ".listeners", "no listener named '" + l + "'; known: " + known(listenerNames));
                            ok = false;
                        } else {
                            attachTo.add(l);
                        }
                    }
                    if (mode == AttachMode.GLOBAL && !attachTo.isEmpty()) {
                        problem(n, path + ".listeners", "listeners attaches a programmatic module, but mode is global; set mode: programmatic,"
                                + " or use selector.listener to limit a global module");
                        ok = false;
                    }
                }
                Boolean applyNow = null;
                if ((n = value(k, "apply-now")) != null) {
                    applyNow = bool(n, path + ".apply-now");
                    ok &= applyNow != null;
                }
                FaultPolicy policy = null;
                if ((n = value(k, "fault-policy")) != null) {
                    policy = choice(n, path + ".fault-policy", Map.of("fail-open", FaultPolicy.FAIL_OPEN, "fail-closed", FaultPolicy.FAIL_CLOSED),
                            "fail-open (detach the module, keep the connection) or fail-closed (reset the connection)");
                    ok &= policy != null;
                }
                Selector selector = null;
                if ((n = value(k, "selector")) != null) {
                    int before = problems.size();
                    selector = selector(n, path + ".selector", listenerNames);
                    ok &= problems.size() == before;
                }
                Map<String, Object> params = new LinkedHashMap<>();
                Map<String, Integer> paramLines = new LinkedHashMap<>();
                if ((n = value(k, "params")) != null && !isNull(n)) {
                    if (!(n instanceof MappingNode pm)) {
                        problem(n, path + ".params", "expected a mapping of parameter names to values, e.g. {every: 1000}, found " + kind(n));
                        ok = false;
                    } else {
                        for (Map.Entry<String, NodeTuple> e : mapping(pm, path + ".params", null).entrySet()) {
                            Node v = e.getValue().getValueNode();
                            Object value = paramValue(v, path + ".params." + e.getKey());
                            if (value == null) {
                                ok = false;
                            } else {
                                params.put(e.getKey(), value);
                                paramLines.put(e.getKey(), line(e.getValue().getKeyNode()));
                            }
                        }
                    }
                }
                Set<Capability> allow = EnumSet.noneOf(Capability.class);
                if ((n = value(k, "allow")) != null && !isNull(n)) {
                    for (Node e : list(n, path + ".allow", "a list of capabilities, e.g. [threads]")) {
                        String c = string(e, path + ".allow", "a capability: " + capabilityIds());
                        if (c == null) {
                            ok = false;
                        } else if (c.equals("exit")) {
                            problem(e, path + ".allow", "exit cannot be allowed: no module may stop the agent; allowed are " + capabilityIds());
                            ok = false;
                        } else {
                            try {
                                allow.add(Capability.byId(c));
                            } catch (IllegalArgumentException unknown) {
                                problem(e, path + ".allow", "unknown capability '" + c + "'; expected one of " + capabilityIds());
                                ok = false;
                            }
                        }
                    }
                }
                if (name != null && ok) {
                    ModuleConfig config = new ModuleConfig(name, state, priority, selector, mode, policy, applyNow, params, allow);
                    out.add(new ModuleEntry(name, jar, config, List.copyOf(attachTo), line(m), Map.copyOf(paramLines)));
                }
            }
            return out;
        }

        private Selector selector(Node n, String path, Set<String> listenerNames) {
            if (isNull(n)) {
                return null;
            }
            if (!(n instanceof MappingNode m)) {
                problem(n, path, "expected a mapping with keys " + String.join(", ", SELECTOR_KEYS) + ", found " + kind(n));
                return null;
            }
            Map<String, NodeTuple> k = mapping(m, path, SELECTOR_KEYS);
            Selector.Builder b = Selector.builder();
            Node v;
            if ((v = value(k, "protocol")) != null) {
                String p = string(v, path + ".protocol", "tcp, udp or any");
                if (p != null) {
                    switch (p) {
                        case "tcp" -> b.protocol(Protocol.TCP);
                        case "udp" -> b.protocol(Protocol.UDP);
                        case "any" -> b.protocol(null);
                        default -> problem(v, path + ".protocol", "unknown protocol '" + p + "'; expected tcp, udp or any");
                    }
                }
            }
            if ((v = value(k, "listener")) != null) {
                for (Node e : list(v, path + ".listener", "a list of listener names, e.g. [web]")) {
                    String l = string(e, path + ".listener", "a listener name");
                    if (l != null && !listenerNames.contains(l)) {
                        problem(e, path + ".listener", "no listener named '" + l + "'; known: " + known(listenerNames));
                    } else if (l != null) {
                        b.listeners(l);
                    }
                }
            }
            if ((v = value(k, "app")) != null) {
                for (Node e : list(v, path + ".app", "a list of application names, e.g. [curl]")) {
                    String a = string(e, path + ".app", "an application (command) name, e.g. curl");
                    if (a != null) b.apps(a);
                }
            }
            if ((v = value(k, "pid")) != null) {
                for (Node e : list(v, path + ".pid", "a list of process ids, e.g. [1234]")) {
                    Long pid = integer(e, path + ".pid", 1, Integer.MAX_VALUE, "a process id, e.g. 1234");
                    if (pid != null) b.pids(pid.intValue());
                }
            }
            if ((v = value(k, "uid")) != null) {
                for (Node e : list(v, path + ".uid", "a list of user ids, e.g. [1000]")) {
                    Long uid = integer(e, path + ".uid", 0, Integer.MAX_VALUE, "a numeric user id, e.g. 1000 (id -u NAME prints it)");
                    if (uid != null) b.uids(uid.intValue());
                }
            }
            if ((v = value(k, "exe")) != null) {
                for (Node e : list(v, path + ".exe", "a list of executable paths, e.g. [/usr/bin/curl]")) {
                    String x = string(e, path + ".exe", "an absolute executable path, e.g. /usr/bin/curl");
                    if (x == null) continue;
                    try {
                        b.exes(x);
                    } catch (IllegalArgumentException ex) {
                        problem(e, path + ".exe", ex.getMessage() + "; give the path /proc/PID/exe shows (readlink -f $(which NAME))");
                    }
                }
            }
            stringsField(k, path, "cgroup", "a list of cgroup2 paths, e.g. [/system.slice/app.service]",
                    "a cgroup2 path as /proc/PID/cgroup shows it after 0::, e.g. /system.slice/app.service", b::cgroups);
            for (String side : List.of("local", "remote")) {
                if ((v = value(k, side)) != null) {
                    for (Node e : list(v, path + "." + side, "a list of CIDRs, e.g. [10.0.0.0/8, ::1]")) {
                        String c = string(e, path + "." + side, "a CIDR, e.g. 10.0.0.0/8");
                        if (c == null) continue;
                        try {
                            if (side.equals("local")) b.localCidrs(c);
                            else b.remoteCidrs(c);
                        } catch (IllegalArgumentException ex) {
                            problem(e, path + "." + side, ex.getMessage() + "; expected a CIDR such as 10.0.0.0/8 or ::1/128");
                        }
                    }
                }
            }
            for (String side : List.of("local-ports", "remote-ports")) {
                if ((v = value(k, side)) != null) {
                    List<String> parts = new ArrayList<>();
                    for (Node e : list(v, path + "." + side, "a port list, e.g. \"80,443,8000-8100\"")) {
                        String s = string(e, path + "." + side, "a port or port range");
                        if (s != null) parts.add(s);
                    }
                    if (!parts.isEmpty()) {
                        String joined = String.join(",", parts);
                        try {
                            List<PortRange> checked = PortRange.parseList(joined);
                            if (!checked.isEmpty()) {
                                if (side.equals("local-ports")) b.localPorts(joined);
                                else b.remotePorts(joined);
                            }
                        } catch (IllegalArgumentException ex) {
                            problem(v, path + "." + side, ex.getMessage());
                        }
                    }
                }
            }
            // TLS fields: what the handshake on the accepted socket negotiated (a listener's tls: block); each entry is
            // checked by the Selector builder, whose message says what is wrong and what is expected
            stringsField(k, path, "tls-sni", "a list of server names, e.g. [a.example.com, '*.example.com']", "a server name", b::tlsSni);
            stringsField(k, path, "tls-alpn", "a list of application protocols, e.g. [h2, http/1.1]", "an application protocol", b::tlsAlpn);
            stringsField(k, path, "tls-subject", "a list of certificate subject patterns, e.g. ['O=Example', 'CN=alice,O=Example']",
                    "a certificate subject pattern, e.g. O=Example", b::tlsSubjects);
            stringsField(k, path, "tls-identity", "a list of identities a tls module gives, e.g. [alice]", "an identity", b::tlsIdentities);
            Selector built = b.build();
            if (built.needsTls()) {
                // TLS fields match only the handshake of a listener that terminates TLS: say so where none can match
                Set<String> among = built.listeners().isEmpty() ? listenerNames : built.listeners();
                if (among.stream().noneMatch(terminatingListeners::contains)) {
                    problem(n, path, "tls-sni, tls-alpn, tls-subject and tls-identity match only connections of a listener that terminates"
                            + " TLS, and " + (built.listeners().isEmpty() ? "no listener has" : "none of " + String.join(", ", among) + " has")
                            + " a tls: block; add one, or remove the tls- fields");
                }
            }
            return built;
        }

        /** The listeners with a {@code tls:} block (they terminate TLS on the sockets they accept). */
        private final Set<String> terminatingListeners = new LinkedHashSet<>();

        /** A selector field of strings at {@code key}, each given to the builder's {@code add}, whose refusal is recorded with its reason. */
        private void stringsField(Map<String, NodeTuple> k, String path, String key, String expectedList, String expected,
                                  java.util.function.Consumer<String[]> add) {
            Node v = value(k, key);
            if (v == null) return;
            for (Node e : list(v, path + "." + key, expectedList)) {
                String s = string(e, path + "." + key, expected);
                if (s == null) continue;
                try {
                    add.accept(new String[] {s});
                } catch (IllegalArgumentException ex) {
                    problem(e, path + "." + key, ex.getMessage());
                }
            }
        }

        private Object paramValue(Node v, String path) {
            if (!(v instanceof ScalarNode s)) {
                problem(v, path, "expected a single value (a number, true/false, a size like 64KiB, a duration like 250ms, or text), found " + kind(v));
                return null;
            }
            if (isNull(s)) {
                problem(s, path, "no value; expected a value for the parameter, or remove the line to use the module's default");
                return null;
            }
            Tag tag = s.getTag();
            if (tag.equals(Tag.INT)) {
                Long l = parseInt(s.getValue());
                return l == null ? s.getValue() : (Object) l;
            }
            if (tag.equals(Tag.BOOL)) {
                return boolValue(s.getValue());
            }
            if (tag.equals(Tag.FLOAT)) {
                try {
                    return Double.parseDouble(s.getValue().replace("_", ""));
                } catch (NumberFormatException e) {
                    return s.getValue();
                }
            }
            return s.getValue();
        }

        // ---- typed values ----

        private String string(Node n, String path, String expected) {
            if (!(n instanceof ScalarNode s)) {
                problem(n, path, "expected " + expected + ", found " + kind(n));
                return null;
            }
            if (isNull(s) || s.getValue().isBlank()) {
                problem(n, path, "no value; expected " + expected);
                return null;
            }
            return s.getValue().trim();
        }

        private Long integer(Node n, String path, long min, long max, String expected) {
            String s = string(n, path, expected);
            if (s == null) {
                return null;
            }
            Long v = parseInt(s);
            if (v == null) {
                problem(n, path, "'" + s + "' is not an integer; expected " + expected);
                return null;
            }
            if (v < min || v > max) {
                problem(n, path, v + " is out of range; expected " + expected);
                return null;
            }
            return v;
        }

        private Boolean bool(Node n, String path) {
            String s = string(n, path, "true or false");
            if (s == null) {
                return null;
            }
            Boolean b = boolValue(s);
            if (b == null) {
                problem(n, path, "'" + s + "' is not a boolean; expected true or false");
            }
            return b;
        }

        private Long size(Node n, String path, long min, long max, String expected) {
            String s = string(n, path, expected);
            if (s == null) {
                return null;
            }
            long v;
            try {
                v = ParamValues.parseSize(s);
            } catch (NumberFormatException | ArithmeticException e) {
                problem(n, path, "'" + s + "' is not a size; expected " + expected + " (units: B, KiB, MiB, GiB, or kB, MB, GB)");
                return null;
            }
            if (v < min || v > max) {
                problem(n, path, s + " is out of range; expected " + expected);
                return null;
            }
            return v;
        }

        private Duration duration(Node n, String path) {
            String s = string(n, path, "a duration, e.g. 200ms or 10s");
            if (s == null) {
                return null;
            }
            Duration d;
            try {
                d = ParamValues.parseDuration(s);
            } catch (NumberFormatException | ArithmeticException e) {
                boolean bare = parseInt(s) != null;
                problem(n, path, "'" + s + "' is not a duration; expected a number with a unit (ns, us, ms, s, m, h, d), e.g. 200ms or 10s"
                        + (bare ? " (a bare number has no unit)" : ""));
                return null;
            }
            if (d.isZero()) {
                problem(n, path, "must be longer than 0; expected e.g. 200ms or 10s");
                return null;
            }
            return d;
        }

        private <E> E choice(Node n, String path, Map<String, E> choices, String expected) {
            String s = string(n, path, expected);
            if (s == null) {
                return null;
            }
            E e = choices.get(s.toLowerCase(Locale.ROOT));
            if (e == null) {
                problem(n, path, "unknown value '" + s + "'; expected " + expected);
            }
            return e;
        }

        private InetSocketAddress hostPort(Node n, String path, int minPort) {
            String s = string(n, path, "HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080");
            if (s == null) {
                return null;
            }
            String host;
            String port;
            if (s.startsWith("[")) {
                int close = s.indexOf("]:");
                if (close < 0) {
                    problem(n, path, "'" + s + "' is not HOST:PORT; expected [IPv6]:PORT, e.g. [::1]:8080");
                    return null;
                }
                host = s.substring(1, close);
                port = s.substring(close + 2);
            } else {
                int colon = s.lastIndexOf(':');
                if (colon <= 0 || s.indexOf(':') != colon) {
                    problem(n, path, "'" + s + "' is not HOST:PORT; expected e.g. 127.0.0.1:8080" + (colon > 0 ? " (put IPv6 addresses in brackets: [::1]:8080)" : ""));
                    return null;
                }
                host = s.substring(0, colon);
                port = s.substring(colon + 1);
            }
            int p;
            try {
                p = Integer.parseInt(port);
            } catch (NumberFormatException e) {
                problem(n, path, "'" + port + "' in '" + s + "' is not a port; expected HOST:PORT with a port " + minPort + "..65535");
                return null;
            }
            if (p < minPort || p > 65535) {
                problem(n, path, "port " + p + " is out of range; expected " + minPort + "..65535" + (minPort == 0 ? " (0 picks a free port)" : ""));
                return null;
            }
            InetAddress addr;
            try {
                if (host.equals("*")) {
                    addr = InetAddress.ofLiteral("0.0.0.0");
                } else {
                    addr = InetAddress.ofLiteral(host);
                }
            } catch (IllegalArgumentException notLiteral) {
                if (!HOST_NAME.matcher(host).matches()) {
                    problem(n, path, "'" + host + "' is not a host; expected an IP address or a host name, e.g. 127.0.0.1:8080");
                    return null;
                }
                try {
                    addr = InetAddress.getByName(host);
                } catch (UnknownHostException e) {
                    problem(n, path, "host '" + host + "' does not resolve; expected an IP address or a resolvable host name");
                    return null;
                }
            }
            return new InetSocketAddress(addr, p);
        }

        private static String capabilityIds() {
            return String.join(", ", java.util.Arrays.stream(Capability.values()).map(Capability::id).toList());
        }

        private List<Node> list(Node n, String path, String expected) {
            if (n instanceof SequenceNode seq) {
                return seq.getValue();
            }
            if (n instanceof ScalarNode && !isNull(n)) {
                return List.of(n);
            }
            problem(n, path, "expected " + expected + ", found " + kind(n));
            return List.of();
        }

        // ---- structure ----

        /** The keys of a mapping; reports non-text keys, duplicates and (when {@code known} is given) unknown keys. */
        private Map<String, NodeTuple> mapping(MappingNode m, String path, List<String> known) {
            Map<String, NodeTuple> out = new LinkedHashMap<>();
            for (NodeTuple t : m.getValue()) {
                String where = path.isEmpty() ? "" : path;
                if (!(t.getKeyNode() instanceof ScalarNode k) || isNull(k)) {
                    problem(t.getKeyNode(), where, "expected a text key, found " + kind(t.getKeyNode()));
                    continue;
                }
                String key = k.getValue();
                String keyPath = path.isEmpty() ? key : path + "." + key;
                if (known != null && !known.contains(key)) {
                    problem(k, keyPath, "unknown key '" + key + "'; known: " + String.join(", ", known));
                    continue;
                }
                if (out.containsKey(key)) {
                    problem(k, keyPath, "duplicate key '" + key + "' (first on line " + line(out.get(key).getKeyNode()) + "); keep one");
                    continue;
                }
                out.put(key, t);
            }
            return out;
        }

        private static Node value(Map<String, NodeTuple> keys, String key) {
            NodeTuple t = keys.get(key);
            return t == null ? null : t.getValueNode();
        }

        private Node required(Map<String, NodeTuple> keys, MappingNode owner, String path, String key, String expected) {
            Node n = value(keys, key);
            if (n == null) {
                problem(owner, path, "missing '" + key + "'; expected " + expected);
            }
            return n;
        }

        private void problem(Node n, String path, String message) {
            problems.add(new Problem(source, line(n), path, message));
        }

        private static int line(Node n) {
            return n.getStartMark() == null ? 0 : n.getStartMark().getLine() + 1;
        }

        private static boolean isNull(Node n) {
            return n instanceof ScalarNode s && s.getTag().equals(Tag.NULL);
        }

        private static String kind(Node n) {
            if (n instanceof MappingNode) return "a mapping";
            if (n instanceof SequenceNode) return "a list";
            if (isNull(n)) return "nothing";
            return "'" + ((ScalarNode) n).getValue() + "'";
        }

        private static String known(Set<String> names) {
            return names.isEmpty() ? "(none: define it under listeners:)" : String.join(", ", names);
        }
    }

    /** Parses a YAML integer: decimal, 0x hex, 0o octal, 0b binary, with optional sign and underscores; null if not one. */
    static Long parseInt(String text) {
        String s = text.trim().replace("_", "");
        boolean negative = s.startsWith("-");
        if (s.startsWith("-") || s.startsWith("+")) {
            s = s.substring(1);
        }
        int radix = 10;
        if (s.startsWith("0x") || s.startsWith("0X")) {
            radix = 16;
            s = s.substring(2);
        } else if (s.startsWith("0o")) {
            radix = 8;
            s = s.substring(2);
        } else if (s.startsWith("0b")) {
            radix = 2;
            s = s.substring(2);
        }
        if (s.isEmpty()) {
            return null;
        }
        try {
            long v = Long.parseLong(s, radix);
            return negative ? -v : v;
        } catch (NumberFormatException e) {
            return null;
        }
    }

    private static Boolean boolValue(String text) {
        return switch (text.trim().toLowerCase(Locale.ROOT)) {
            case "true", "yes", "on" -> Boolean.TRUE;
            case "false", "no", "off" -> Boolean.FALSE;
            default -> null;
        };
    }
}
