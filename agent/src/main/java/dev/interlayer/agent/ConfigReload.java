package dev.interlayer.agent;

import dev.interlayer.agent.AgentConfig.Listener;
import dev.interlayer.agent.AgentConfig.ModuleEntry;
import dev.interlayer.api.Protocol;
import dev.interlayer.control.ConfigReloads;
import dev.interlayer.control.YamlException;
import dev.interlayer.engine.Engine;
import dev.interlayer.engine.EngineException;
import dev.interlayer.engine.ListenerSpec;
import dev.interlayer.engine.UdpSettings;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleConfig;
import dev.interlayer.runtime.ModuleLoadException;
import dev.interlayer.runtime.ParamValues;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;

/**
 * Reloads an agent's config file without a restart ({@code interlayer reload}, SIGHUP, {@code Config.Reload}).
 *
 * <p>A reload reads the file the agent started with and checks all of it as a start does; a file with problems, a change
 * of a setting that needs a restart, or module parameters the loaded module refuses: refused with every problem, nothing
 * changes. Otherwise it applies the difference, in this order: listeners removed (they stop accepting; their open
 * connections go on until they end), changed (the new one starts under the same name, on the old one's listening sockets
 * when its address is unchanged, and the old one stops accepting) and
 * added; then module entries whose settings changed (the module is loaded again with them: new connections get the new
 * instance, open ones keep the old until they end); then the policy file and the TLS files of unchanged listeners are read
 * again. A step that fails (a listener that cannot bind, a module whose init fails) undoes every step before it.
 * Listeners the file does not change, and their connections, are not touched.
 *
 * <p>It also gives the current config's module settings ({@link #moduleConfig}) to whatever loads modules later: the
 * modules folder's watcher, {@code Modules.Load}, the orchestrator link.
 */
final class ConfigReload implements ConfigReloads {

    private static final System.Logger LOG = System.getLogger("interlayer.agent");

    /** The {@code agent:} settings a running agent cannot change: each needs a restart. */
    private static final Map<String, Function<AgentConfig, Object>> RESTART_ONLY = restartOnly();

    private volatile AgentConfig config;
    private volatile Instant loadedAt = Instant.now();
    private volatile String refused;
    private volatile Instant refusedAt;
    private Agent agent;

    ConfigReload(AgentConfig config) {
        this.config = config;
    }

    private static Map<String, Function<AgentConfig, Object>> restartOnly() {
        Map<String, Function<AgentConfig, Object>> m = new LinkedHashMap<>();
        m.put("agent.modules-dir", c -> c.agent().modulesDir());
        m.put("agent.io-threads", c -> c.agent().ioThreads());
        m.put("agent.hold-limit", c -> c.agent().holdLimit());
        m.put("agent.hook-budget", c -> c.agent().hookBudget());
        m.put("agent.module-wide-budget", c -> c.agent().moduleWideBudget());
        m.put("agent.alloc-limit", c -> c.agent().allocLimit());
        m.put("agent.quarantine-after", c -> c.agent().quarantineAfter());
        m.put("agent.connect-timeout", c -> c.agent().connectTimeout());
        m.put("agent.splice", c -> c.agent().splice());
        m.put("agent.reuse-port", c -> c.agent().reusePort());
        m.put("agent.direct", c -> c.agent().direct());
        m.put("agent.control", c -> c.control().orElse(null));
        m.put("agent.orchestrator", c -> c.orchestrator().orElse(null));
        m.put("agent.metrics", c -> c.metrics().orElse(null));
        m.put("agent.log", AgentConfig::log);
        m.put("interception", c -> c.interception().orElse(null));
        return java.util.Collections.unmodifiableMap(m);
    }

    /** The agent it reloads; set once, when the agent has started. */
    void attach(Agent agent) {
        this.agent = agent;
    }

    /** The current config's settings for module {@code name}. */
    ModuleConfig moduleConfig(String name) {
        return config.moduleConfigs().apply(name);
    }

    @Override
    public State state() {
        return new State(config.source(), loadedAt, refused, refusedAt);
    }

    @Override
    public synchronized Outcome reload(String trigger) {
        AgentConfig cur = config;
        AgentConfig next;
        try {
            next = AgentConfig.load(cur.file());
        } catch (ConfigException e) {
            return refuse(trigger, e.problems().stream().map(ConfigException.Problem::toString).toList());
        }
        List<String> problems = new ArrayList<>(needRestart(cur, next));
        problems.addAll(paramProblems(cur, next));
        problems.addAll(Agent.tlsModuleProblems(next, agent.registry()));
        if (!problems.isEmpty()) {
            return refuse(trigger, problems);
        }
        List<String> changes = new ArrayList<>();
        List<String> warnings = new ArrayList<>();
        List<Undo> undo = new ArrayList<>();
        Map<String, InetSocketAddress> bound = new LinkedHashMap<>(agent.listeners());
        try {
            applyListeners(cur, next, bound, changes, undo);
            applyModules(cur, next, changes, warnings, undo);
        } catch (StepFailed e) {
            List<String> undone = new ArrayList<>();
            for (Undo u : undo.reversed()) {
                try {
                    u.run();
                } catch (EngineException | ModuleLoadException | RuntimeException x) {
                    undone.add("could not undo: " + u.what() + ": " + x.getMessage());
                }
            }
            List<String> why = new ArrayList<>();
            why.add(e.getMessage());
            why.add(undo.isEmpty() ? "nothing was changed" : "undone: " + String.join("; ", undo.stream().map(Undo::what).toList()));
            why.addAll(undone);
            return refuse(trigger, why);
        }
        warnings.addAll(rereadFiles(cur, next));
        config = next;
        loadedAt = Instant.now();
        refused = null;
        refusedAt = null;
        agent.applied(next, bound);
        if (changes.isEmpty()) {
            LOG.log(Level.INFO, "config {0} reloaded ({1}): nothing changed", next.source(), trigger);
        } else {
            LOG.log(Level.INFO, "config {0} reloaded ({1}): {2}", next.source(), trigger, String.join("; ", changes));
        }
        warnings.forEach(w -> LOG.log(Level.WARNING, "config reload: {0}", w));
        return new Outcome(true, changes, List.of(), warnings);
    }

    private Outcome refuse(String trigger, List<String> problems) {
        refused = String.join("\n", problems);
        refusedAt = Instant.now();
        LOG.log(Level.ERROR, "config {0} NOT reloaded ({1}), the running config is unchanged: {2} problem(s):\n  {3}", config.source(), trigger,
                problems.size(), String.join("\n  ", problems));
        return new Outcome(false, List.of(), problems, List.of());
    }

    /** The settings {@code next} changes that a running agent cannot change. */
    private static List<String> needRestart(AgentConfig cur, AgentConfig next) {
        List<String> out = new ArrayList<>();
        RESTART_ONLY.forEach((field, value) -> {
            Object was = value.apply(cur);
            Object now = value.apply(next);
            if (!Objects.equals(was, now)) {
                out.add(next.source() + ": " + field + ": changed (" + shown(was) + " -> " + shown(now) + "), which needs a restart;"
                        + " put the running value back to reload the rest, or restart the agent");
            }
        });
        return out;
    }

    private static String shown(Object v) {
        return v == null ? "not set" : v.toString();
    }

    /** The parameters of changed module entries that the loaded module would refuse, each at its line. */
    private List<String> paramProblems(AgentConfig cur, AgentConfig next) {
        List<String> out = new ArrayList<>();
        for (ModuleEntry e : next.modules()) {
            Optional<ModuleEntry> was = cur.module(e.name());
            Optional<LoadedModule> m = agent.registry().find(e.name());
            if (was.isPresent() && same(was.get(), e) || m.isEmpty() || e.jar() != null && !Objects.equals(e.jar(), was.map(ModuleEntry::jar).orElse(null))) {
                continue; // unchanged, not loaded, or from another jar: its load says what is wrong
            }
            try {
                ParamValues.resolve(m.get().descriptor(), e.config().params());
            } catch (IllegalArgumentException x) {
                String msg = "module " + m.get().descriptor() + ": " + x.getMessage();
                out.add(next.locate(e.name(), msg).orElse(msg));
            }
        }
        return out;
    }

    private static boolean same(ModuleEntry a, ModuleEntry b) {
        return Objects.equals(a.jar(), b.jar()) && a.config().equals(b.config());
    }

    /** The engine's listener for {@code l} of {@code c}; a tcp listener's spec without the udp flow settings it does not use. */
    private static ListenerSpec spec(AgentConfig c, Listener l) {
        ListenerSpec s = Agent.spec(c, l);
        return s.protocol() == Protocol.TCP ? s.withUdp(UdpSettings.DEFAULTS) : s;
    }

    /** {@code s} bound to {@code at} (the address it had: a port-0 listener keeps its port when it is started again). */
    private static ListenerSpec at(ListenerSpec s, InetSocketAddress at) {
        return new ListenerSpec(s.name(), s.protocol(), s.role(), at, s.upstream(), s.options(), s.attach(), s.udp(), s.tls(), s.upstreamTls(), s.sni());
    }

    private void applyListeners(AgentConfig cur, AgentConfig next, Map<String, InetSocketAddress> bound, List<String> changes, List<Undo> undo)
            throws StepFailed {
        Engine engine = agent.engine();
        Map<String, Listener> before = byName(cur.listeners());
        Map<String, Listener> after = byName(next.listeners());
        for (Listener l : cur.listeners()) {
            if (after.containsKey(l.name())) continue;
            ListenerSpec old = at(spec(cur, l), bound.get(l.name()));
            int open = openConnections(l.name());
            engine.stop(l.name());
            bound.remove(l.name());
            changes.add("listener " + l.name() + ": removed: stopped accepting" + draining(open));
            undo.add(new Undo("listener " + l.name() + " started again", () -> bound.put(l.name(), engine.start(old))));
        }
        for (Listener l : next.listeners()) {
            Listener was = before.get(l.name());
            if (was == null || spec(cur, was).equals(spec(next, l))) continue;
            ListenerSpec old = at(spec(cur, was), bound.get(l.name()));
            int open = openConnections(l.name());
            try {
                bound.put(l.name(), engine.restart(spec(next, l)));
            } catch (EngineException e) {
                try {
                    if (!engine.listeners().containsKey(l.name())) { // else it kept its sockets and still serves
                        bound.put(l.name(), engine.start(old));
                    }
                } catch (EngineException x) {
                    bound.remove(l.name());
                    throw new StepFailed(next.where(l.line()) + ": listener " + l.name() + " did not start: " + e.getMessage()
                            + "; and the old one did not start again either: " + x.getMessage());
                }
                throw new StepFailed(next.where(l.line()) + ": listener " + l.name() + " did not start: " + e.getMessage()
                        + "; the old one serves again");
            }
            changes.add("listener " + l.name() + ": changed (" + differences(spec(cur, was), spec(next, l)) + "): now "
                    + Agent.address(bound.get(l.name())) + " -> " + l.target() + "; the old one stopped accepting" + draining(open));
            undo.add(new Undo("listener " + l.name() + " back to its old settings", () -> bound.put(l.name(), engine.restart(old))));
        }
        for (Listener l : next.listeners()) {
            if (before.containsKey(l.name())) continue;
            try {
                bound.put(l.name(), engine.start(spec(next, l)));
            } catch (EngineException e) {
                throw new StepFailed(next.where(l.line()) + ": listener " + l.name() + " did not start: " + e.getMessage());
            }
            changes.add("listener " + l.name() + ": added on " + Agent.address(bound.get(l.name())) + " -> " + l.target());
            undo.add(new Undo("listener " + l.name() + " stopped", () -> {
                engine.stop(l.name());
                bound.remove(l.name());
            }));
        }
    }

    private static Map<String, Listener> byName(List<Listener> listeners) {
        Map<String, Listener> out = new LinkedHashMap<>();
        listeners.forEach(l -> out.put(l.name(), l));
        return out;
    }

    private int openConnections(String listener) {
        return (int) agent.engine().connections().stream().filter(c -> c.listener().equals(listener)).count();
    }

    private static String draining(int open) {
        return open == 0 ? "" : "; its " + open + " open connection(s) go on until they end";
    }

    /** The fields two specs of one listener differ in, by their config names. */
    private static String differences(ListenerSpec a, ListenerSpec b) {
        List<String> out = new ArrayList<>();
        if (!a.listen().equals(b.listen())) out.add("listen");
        if (!Objects.equals(a.upstream(), b.upstream())) out.add("upstream");
        if (a.protocol() != b.protocol()) out.add("protocol");
        if (a.role() != b.role()) out.add("role");
        if (!a.options().equals(b.options())) out.add("options");
        if (!Objects.equals(a.tls(), b.tls())) out.add("tls");
        if (!Objects.equals(a.upstreamTls(), b.upstreamTls())) out.add("upstream.tls");
        if (!Objects.equals(a.sni(), b.sni())) out.add("sni-routes");
        if (!a.attach().equals(b.attach())) out.add("modules attached by modules[].listeners");
        if (!a.udp().equals(b.udp())) out.add("agent.udp-idle-timeout/udp-max-flows");
        return String.join(", ", out);
    }

    private void applyModules(AgentConfig cur, AgentConfig next, List<String> changes, List<String> warnings, List<Undo> undo) throws StepFailed {
        Set<String> names = new LinkedHashSet<>();
        next.modules().forEach(m -> names.add(m.name()));
        cur.modules().forEach(m -> names.add(m.name()));
        for (String name : names) {
            ModuleEntry was = cur.module(name).orElse(null);
            ModuleEntry now = next.module(name).orElse(null);
            if (was != null && now != null && same(was, now)) continue;
            LoadedModule running = agent.registry().find(name).filter(m -> !m.state().leaving()).orElse(null);
            Path runningJar = running == null || running.pkg().location().startsWith("builtin:") ? null : Path.of(running.pkg().location());
            if (now == null && was.jar() != null && running != null && was.jar().toAbsolutePath().normalize().equals(runningJar)) {
                running.retire();
                changes.add("module " + running.id() + ": entry removed: it attaches to no new connection and unloads after its last one ends");
                undo.add(new Undo("module " + name + " loaded again from " + was.jar(), () -> load(was.jar(), name, cur)));
                continue;
            }
            Path jar = now != null && now.jar() != null ? now.jar() : runningJar;
            if (jar == null) {
                if (now != null) {
                    warnings.add(next.where(now.line()) + ": module " + name + " is not loaded: its entry applies when it loads (put its jar into the"
                            + " modules folder " + next.agent().modulesDir() + ", or set jar:)");
                }
                continue;
            }
            LoadedModule loaded;
            try {
                loaded = load(jar, name, next);
            } catch (ModuleLoadException e) {
                String where = now == null ? next.source() : next.where(now.line());
                throw new StepFailed(where + ": module " + name + " did not load from " + jar + ": " + e.getMessage().replaceAll("\\s*\\n\\s*", " ")
                        + (running == null ? "" : "; " + running.id() + " keeps serving"));
            }
            changes.add("module " + loaded.id() + ": " + (now == null ? "entry removed, loaded again with its descriptor's defaults"
                    : was == null ? "new entry applied" : "settings changed") + " (" + loaded.state() + ", priority " + loaded.priority()
                    + (now == null || now.config().params().isEmpty() ? "" : ", params " + now.config().params()) + "): new connections get this instance"
                    + (running == null ? "" : ", open ones keep the previous one until they end"));
            undo.add(new Undo("module " + name + (running == null ? " unloaded" : " loaded again with its old settings"), () -> {
                if (running == null) {
                    loaded.retire();
                } else {
                    load(runningJar, name, cur);
                }
            }));
        }
    }

    /** Loads module {@code name} from {@code jar} with {@code c}'s settings; the instance it replaces retires. */
    private LoadedModule load(Path jar, String name, AgentConfig c) throws ModuleLoadException {
        if (!Files.isRegularFile(jar)) {
            throw new ModuleLoadException(jar + " is not a file any more; put the jar back, or set jar: to where it is now");
        }
        List<LoadedModule> loaded = agent.registry().load(jar, c.moduleConfigs(), d -> d.name().equals(name));
        if (loaded.isEmpty()) {
            throw new ModuleLoadException(jar + " has no module named '" + name + "'; fix the name, or set jar: to the jar that has it");
        }
        return loaded.getFirst();
    }

    /** Reads the policy file and the TLS files of the listeners the reload did not restart again; what did not load. */
    private List<String> rereadFiles(AgentConfig cur, AgentConfig next) {
        List<String> out = new ArrayList<>();
        agent.control().filter(c -> c.policy().file() != null).ifPresent(c -> {
            try {
                c.policy().reload();
            } catch (YamlException e) {
                out.add("policy not reloaded, the previous one stays in force: " + e.getMessage());
            }
        });
        Map<String, Listener> before = byName(cur.listeners());
        for (Listener l : next.listeners()) {
            Listener was = before.get(l.name());
            if (was == null || !spec(cur, was).equals(spec(next, l)) || !spec(next, l).hasTls()) continue;
            try {
                for (Engine.TlsReload r : agent.engine().reloadTls(l.name())) {
                    if (r.error() != null) out.add("listener " + l.name() + ": TLS not reloaded: " + r.error());
                }
            } catch (EngineException e) {
                out.add("listener " + l.name() + ": TLS not reloaded: " + e.getMessage());
            }
        }
        return out;
    }

    /** A step of a reload that failed; its message says where in the file, what and why. */
    private static final class StepFailed extends Exception {
        StepFailed(String message) {
            super(message, null, false, false);
        }
    }

    /** How to take back one applied step. */
    private record Undo(String what, Action action) {
        void run() throws EngineException, ModuleLoadException {
            action.run();
        }
    }

    @FunctionalInterface
    private interface Action {
        void run() throws EngineException, ModuleLoadException;
    }
}
