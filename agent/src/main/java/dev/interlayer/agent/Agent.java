package dev.interlayer.agent;

import dev.interlayer.agent.AgentConfig.Listener;
import dev.interlayer.agent.AgentConfig.ModuleEntry;
import dev.interlayer.control.ControlException;
import dev.interlayer.agent.metrics.MetricsServer;
import dev.interlayer.agent.metrics.MetricsSettings;
import dev.interlayer.control.ControlServer;
import dev.interlayer.control.ControlSettings;
import dev.interlayer.control.ControlTarget;
import dev.interlayer.engine.Engine;
import dev.interlayer.engine.EngineException;
import dev.interlayer.engine.EngineOptions;
import dev.interlayer.engine.ListenerSpec;
import dev.interlayer.runtime.AutoloadWatcher;
import dev.interlayer.runtime.Failure;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleLoadException;
import dev.interlayer.runtime.ModuleRegistry;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A running agent: the module registry, the watched autoload folder, the extra jars its config names,
 * the engine with the config's listeners, and the control endpoint (Unix socket, optional mutual TLS).
 *
 * <p>Lifecycle: {@link #start} builds everything in that order and {@link #close} takes it down in
 * reverse (control endpoint, listeners and connections, then the watcher, then the modules). A bad module jar does not stop
 * the agent: it is logged with the fix and kept in {@code registry().failures()}. A listener that cannot
 * be started does stop it, since the config asked for it.
 *
 * <pre>{@code
 * try (Agent agent = Agent.start(AgentConfig.load(Path.of("agent.yaml")))) {
 *     agent.listeners();   // name -> bound address
 * }
 * }</pre>
 */
public final class Agent implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.agent");

    private volatile AgentConfig config;
    private final ConfigReload reloads;
    private final ModuleRegistry registry;
    private final AutoloadWatcher watcher;
    private final Engine engine;
    private volatile Map<String, InetSocketAddress> bound;
    private final ControlServer control;
    private final OrchestratorLink orchestrator;
    private MetricsServer metrics;
    /** Set once a new agent took over the listeners: the control endpoint, metrics and orchestrator link are closed already. */
    private final java.util.concurrent.atomic.AtomicBoolean handedOff = new java.util.concurrent.atomic.AtomicBoolean();
    private final java.util.concurrent.CompletableFuture<String> drained = new java.util.concurrent.CompletableFuture<>();

    private Agent(AgentConfig config, ConfigReload reloads, ModuleRegistry registry, AutoloadWatcher watcher, Engine engine, Map<String, InetSocketAddress> bound,
                  ControlServer control, OrchestratorLink orchestrator) {
        this.control = control;
        this.orchestrator = orchestrator;
        this.config = config;
        this.reloads = reloads;
        this.registry = registry;
        this.watcher = watcher;
        this.engine = engine;
        this.bound = Map.copyOf(bound);
    }

    /**
     * Starts an agent: module registry, autoload watcher on the modules folder, the config's extra jars,
     * the engine and every listener.
     *
     * @throws AgentException if the modules folder cannot be watched, a listener or the control endpoint
     *         cannot start; everything started so far is closed again
     */
    public static Agent start(AgentConfig config) throws AgentException {
        return start(config, null);
    }

    /**
     * Starts an agent that takes over the listening sockets {@code takeover} received from a running agent (null: binds
     * them all), and has that agent give up its control socket before this one opens it.
     *
     * @throws AgentException as {@link #start(AgentConfig)}
     */
    public static Agent start(AgentConfig config, Takeover takeover) throws AgentException {
        AgentConfig.Settings s = config.agent();
        ModuleRegistry registry = new ModuleRegistry(s.quarantineAfter(), null);
        registry.moduleWideBudget(s.moduleWideBudget());
        AutoloadWatcher watcher = null;
        Engine engine = null;
        ConfigReload reloads = new ConfigReload(config); // the module settings of the config in force, after a reload too
        try {
            Path dir = s.modulesDir();
            String unreadable = unreadable(dir);
            if (unreadable != null) {
                throw new AgentException(unreadable, null); // as run --check says: an agent without its modules is not what was asked for
            }
            watcher = new AutoloadWatcher(dir, registry, reloads::moduleConfig);
            try {
                watcher.start();
            } catch (IOException e) {
                throw new AgentException("cannot create or watch the modules folder " + dir + ": " + e.getMessage()
                        + "; check that it is a readable folder, or set agent.modules-dir in " + config.source(), e);
            }
            for (int i = 0; i < config.modules().size(); i++) {
                ModuleEntry m = config.modules().get(i);
                if (m.jar() == null) {
                    continue;
                }
                try {
                    List<LoadedModule> loaded = registry.load(m.jar(), config.moduleConfigs());
                    LOG.log(Level.INFO, "{0}: loaded {1} from {2}", config.where(m.line()), ids(loaded), m.jar());
                } catch (ModuleLoadException e) {
                    LOG.log(Level.ERROR, "{0}: modules[{1}].jar: {2}", config.where(m.line()), i, e.getMessage());
                }
            }
            for (Failure f : registry.failures()) {
                // the runtime logged these already; say again where in the config the failing module is set up
                if (f.module() != null) {
                    config.locate(f.module(), f.error()).ifPresent(where -> LOG.log(Level.ERROR, "{0}", where));
                }
            }
            for (String missing : missingModules(config, registry)) {
                LOG.log(Level.WARNING, "{0}", missing);
            }
            List<String> tlsProblems = tlsModuleProblems(config, registry);
            if (!tlsProblems.isEmpty()) {
                throw new AgentException(tlsProblems.getFirst(), null);
            }
            engine = new Engine(registry, engineOptions(s));
            java.time.Duration warm = s.warmUp().before(takeover != null);
            if (!warm.isZero()) {
                // the old agent serves meanwhile (takeover), or nothing does yet (a plain start that asked for it)
                WarmUp.run(config, registry, engine, warm, takeover != null ? "before the takeover" : "before the listeners open");
            }
            Map<String, InetSocketAddress> bound = new LinkedHashMap<>();
            for (Listener l : config.listeners()) {
                InetSocketAddress at;
                try {
                    at = takeover != null ? takeover.start(engine, spec(config, l)) : engine.start(spec(config, l));
                } catch (EngineException e) {
                    throw new AgentException(config.where(l.line()) + ": listener " + l.name() + " did not start: " + e.getMessage(), e);
                }
                bound.put(l.name(), at);
                LOG.log(Level.INFO, "listener {0} ({1}): {2} -> {3}", l.name(), l.role().name().toLowerCase(), address(at), l.target());
            }
            if (config.interception().isPresent()) {
                Map<String, InetSocketAddress> intercepting;
                try {
                    // each intercepting listener (intercept, intercept-udp, intercept6, ...) gets the entries that name it
                    intercepting = engine.intercept(config.interception().get(), Map.of(),
                            name -> config.modules().stream().filter(m -> m.listeners().contains(name)).map(ModuleEntry::name).toList());
                } catch (EngineException e) {
                    throw new AgentException(config.source() + ": interception did not start (nothing of it is installed): " + e.getMessage(), e);
                }
                intercepting.forEach((name, a) -> {
                    bound.put(name, a);
                    LOG.log(Level.INFO, "interception: listener {0} on {1} takes the connections its rules redirect", name, address(a));
                });
            }
            if (config.listeners().isEmpty() && config.interception().isEmpty()) {
                LOG.log(Level.WARNING, "{0} defines no listeners: no traffic will pass; add entries under listeners:", config.source());
            }
            if (takeover != null) {
                takeover.release(); // the old agent stops accepting and gives up its control socket, metrics port and orchestrator link
            }
            ControlServer control = null;
            if (config.control().isPresent()) {
                try {
                    control = ControlServer.start(config.control().get(), new ControlTarget(registry, engine, reloads::moduleConfig,
                            registry.cacheDir().resolve("uploads"), version(), reloads));
                } catch (ControlException e) {
                    throw new AgentException(config.source() + ": agent.control: the control endpoint did not start: " + e.getMessage(), e);
                }
            }
            OrchestratorLink link = null;
            if (config.orchestrator().isPresent()) {
                try {
                    link = OrchestratorLink.start(config.orchestrator().get(), registry, engine, reloads::moduleConfig);
                } catch (IOException e) {
                    if (control != null) {
                        control.close();
                    }
                    throw new AgentException(config.source() + ": agent.orchestrator: cannot use the state folder " + config.orchestrator().get().stateDir()
                            + ": " + e.getMessage() + "; set agent.orchestrator.state-dir to a writable folder", e);
                }
            }
            Agent agent = new Agent(config, reloads, registry, watcher, engine, bound, control, link);
            reloads.attach(agent);
            if (control != null) {
                control.handover(new HandoverServer(agent, config.control().get().socket()));
            }
            if (config.metrics().isPresent()) {
                agent.startMetrics(config.metrics().get());
            }
            return agent;
        } catch (AgentException | RuntimeException | Error e) {
            closeAll(engine, watcher, registry);
            throw e;
        }
    }

    /**
     * Starts the Prometheus endpoint; on failure closes the orchestrator link and the control endpoint (the caller closes
     * the rest) and says why.
     */
    private void startMetrics(MetricsSettings s) throws AgentException {
        try {
            metrics = MetricsServer.start(s, engine, registry, control, config.control().map(ControlSettings::tls).orElse(null), version());
        } catch (java.io.IOException e) {
            if (orchestrator != null) {
                orchestrator.close();
            }
            if (control != null) {
                control.close();
            }
            throw new AgentException(config.source() + ": agent.metrics: the metrics endpoint did not start: " + e.getMessage(), e);
        }
    }

    /** The Prometheus endpoint, or empty without {@code agent.metrics}. */
    public java.util.Optional<MetricsServer> metrics() {
        return java.util.Optional.ofNullable(metrics);
    }

    /**
     * Validates a config's modules without binding anything: loads the modules folder's jars (as the agent's watcher would,
     * choosing between jars that declare the same module by the same rule) and the config's extra jars into a throwaway
     * registry and reports each module that fails, each module the config names that is not found, and each module name
     * two jars of the folder declare.
     *
     * @return the modules that loaded, the problems (each saying where, what is wrong and what to do) and the warnings
     */
    public static ModuleCheck checkModules(AgentConfig config) {
        List<String> problems = new ArrayList<>();
        List<String> warnings = new ArrayList<>();
        List<String> loaded = new ArrayList<>();
        try (ModuleRegistry registry = new ModuleRegistry(config.agent().quarantineAfter(), null)) {
            registry.moduleWideBudget(config.agent().moduleWideBudget());
            Path dir = config.agent().modulesDir();
            if (Files.isDirectory(dir)) {
                String unreadable = unreadable(dir);
                if (unreadable != null) {
                    problems.add(unreadable);
                }
                try (AutoloadWatcher folder = new AutoloadWatcher(dir, registry, config.moduleConfigs())) {
                    folder.scanNow();
                    warnings.addAll(folder.clashes());
                }
            }
            for (ModuleEntry m : config.modules()) {
                Path jar = m.jar();
                if (jar == null || dir.equals(jar.toAbsolutePath().normalize().getParent()) && AutoloadWatcher.isModuleJar(jar)) {
                    continue; // loaded with the folder
                }
                try {
                    registry.load(jar, config.moduleConfigs());
                } catch (ModuleLoadException e) {
                    // recorded in failures(), reported below with the module failures of jars that loaded in part
                }
            }
            for (LoadedModule m : registry.modules()) {
                if (m.state().attachesNew()) {
                    loaded.add(m.id() + " (" + Path.of(m.pkg().location()).getFileName() + ")");
                }
            }
            for (Failure f : registry.failures()) {
                String located = f.module() == null ? null : config.locate(f.module(), f.error()).orElse(null);
                problems.add(located != null ? located : f.source() + ": " + f.error());
            }
            problems.addAll(missingModules(config, registry));
            problems.addAll(tlsModuleProblems(config, registry));
        }
        return new ModuleCheck(List.copyOf(loaded), List.copyOf(problems), List.copyOf(warnings));
    }

    /**
     * What {@link #checkModules} found.
     *
     * @param loaded the modules that loaded, as {@code name@version (jar)}
     * @param problems each problem: where, what is wrong and what to do
     * @param warnings what loads but deserves a look: a module two jars of the folder declare, and which one runs
     */
    public record ModuleCheck(List<String> loaded, List<String> problems, List<String> warnings) {}

    /**
     * Listeners whose tls block names a module that loaded but does not implement the tls interface (such a listener is
     * refused); a module that did not load is reported already, and its listener's handshakes use the agent's own TLS
     * steps until it does.
     */
    static List<String> tlsModuleProblems(AgentConfig config, ModuleRegistry registry) {
        List<String> out = new ArrayList<>();
        for (Listener l : config.listeners()) {
            for (dev.interlayer.engine.TlsSettings t : java.util.Arrays.asList(l.tls(), l.upstreamTls())) {
                if (t == null || t.module() == null) continue;
                LoadedModule m = registry.find(t.module()).orElse(null);
                if (m != null && !m.descriptor().interfaces().containsKey(dev.interlayer.api.InterfaceType.TLS)) {
                    out.add(config.where(l.line()) + ": listener " + l.name() + ": " + (t == l.tls() ? "tls" : "upstream.tls")
                            + ".module names " + m.id() + ", which does not implement the tls interface (it declares "
                            + m.descriptor().interfaces().keySet().stream().map(dev.interlayer.api.InterfaceType::id).toList()
                            + "); name a module that declares the tls interface, or remove module:");
                }
            }
        }
        return out;
    }

    /** Module entries with no loaded module of that name (and no failure already explaining why). */
    private static List<String> missingModules(AgentConfig config, ModuleRegistry registry) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < config.modules().size(); i++) {
            ModuleEntry m = config.modules().get(i);
            if (registry.find(m.name()).isPresent()) {
                continue;
            }
            boolean explained = registry.failures().stream().anyMatch(f -> m.name().equals(f.module())
                    || m.jar() != null && f.source().equals(m.jar().toAbsolutePath().normalize().toString()));
            if (!explained) {
                out.add(config.where(m.line()) + ": modules[" + i + "].name: no module named '" + m.name() + "' was found in "
                        + (m.jar() != null ? m.jar() : "the modules folder " + config.agent().modulesDir())
                        + "; put the jar that contains it into the modules folder, set jar: to its path, or fix the name"
                        + " (interlayer check-module JAR lists a jar's modules)");
            }
        }
        return out;
    }

    /** The engine settings of an {@code agent:} section. */
    static EngineOptions engineOptions(AgentConfig.Settings s) {
        return new EngineOptions(s.ioThreads(), EngineOptions.defaults().nativeTransport(), s.holdLimit(), s.hookBudget(), s.allocLimit(), s.connectTimeout(), s.splice(),
                s.reusePort(), s.direct());
    }

    /** The engine's listener for a config listener, with the programmatic modules the config attaches to it. */
    static ListenerSpec spec(AgentConfig config, Listener l) {
        List<String> attach = new ArrayList<>();
        for (ModuleEntry m : config.modules()) {
            if (m.listeners().contains(l.name())) {
                attach.add(m.name());
            }
        }
        return new ListenerSpec(l.name(), l.protocol(), l.role(), l.listen(), l.upstream(), l.options(), attach, config.agent().udp(), l.tls(),
                l.upstreamTls(), l.sni());
    }

    private static String ids(List<LoadedModule> modules) {
        return String.join(", ", modules.stream().map(LoadedModule::id).toList());
    }

    /** The interception table as the kernel holds it now, one line each (empty without {@code interception:}). */
    public List<String> interceptionRules() {
        return engine.interceptionRules();
    }

    /** {@code host:port} without the resolver's {@code name/} prefix. */
    static String address(InetSocketAddress a) {
        String host = a.getAddress() == null ? a.getHostString() : a.getAddress().getHostAddress();
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + a.getPort();
    }

    /** The config it runs: the one it started with, or the last one a reload applied. */
    public AgentConfig config() {
        return config;
    }

    /**
     * Reads the config file again and applies it, or refuses it and keeps the running config ({@link ConfigReload});
     * {@code trigger} says who asked, for the log.
     */
    public dev.interlayer.control.ConfigReloads.Outcome reload(String trigger) {
        return reloads.reload(trigger);
    }

    /** A reload applied {@code next}; its listeners are bound to {@code listeners}. */
    void applied(AgentConfig next, Map<String, InetSocketAddress> listeners) {
        config = next;
        bound = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(listeners));
    }

    /** Its modules. */
    public ModuleRegistry registry() {
        return registry;
    }

    /** The watcher of its modules folder (which jar runs a module two jars declare: {@link AutoloadWatcher#clashes()}). */
    public AutoloadWatcher autoload() {
        return watcher;
    }

    /** Its data plane. */
    public Engine engine() {
        return engine;
    }

    /** The control endpoint, or empty when the config switches it off. */
    public java.util.Optional<ControlServer> control() {
        return java.util.Optional.ofNullable(control);
    }

    /** The link to the orchestrator, or empty when the agent runs on its own. */
    public java.util.Optional<OrchestratorLink> orchestrator() {
        return java.util.Optional.ofNullable(orchestrator);
    }

    /** The agent's version, from the build. */
    public static String version() {
        java.util.Properties p = new java.util.Properties();
        try (java.io.InputStream in = Agent.class.getResourceAsStream("version.properties")) {
            if (in != null) {
                p.load(in);
            }
        } catch (IOException e) {
            return "unknown";
        }
        return p.getProperty("version", "unknown");
    }

    /**
     * Stops accepting for a takeover (the new agent serves the listening sockets now: none is closed for the kernel) and frees
     * what the new agent opens next: the metrics port, the orchestrator link and the control socket.
     */
    void stopAccepting() {
        handedOff.set(true);
        for (String name : engine.listeners().keySet()) {
            engine.stop(name);
        }
        if (metrics != null) {
            metrics.close();
        }
        if (orchestrator != null) {
            orchestrator.close();
        }
        if (control != null) {
            control.close();
        }
    }

    /** After {@link #stopAccepting}: waits until the open connections have ended or {@code deadline} has passed, then completes {@link #handedOver}. */
    void drain(Duration deadline, String newPid) {
        long end = System.nanoTime() + deadline.toNanos();
        int open;
        while ((open = engine.connectionCount()) > 0 && System.nanoTime() < end) {
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        String done = "process " + newPid + " took over the listeners; " + (open == 0 ? "every connection finished"
                : open + " connection(s) still open at the drain deadline (" + deadline.toMillis() + " ms) are cut");
        LOG.log(Level.INFO, "{0}", done);
        drained.complete(done);
    }

    /**
     * Completes, with what happened to the open connections, once a new agent took over the listeners and this one has
     * drained (see {@code interlayer run --takeover}); the agent is then to be closed.
     */
    public java.util.concurrent.CompletableFuture<String> handedOver() {
        return drained;
    }

    /** The address each listener is bound to, by listener name, in config order. */
    public Map<String, InetSocketAddress> listeners() {
        return bound;
    }

    /**
     * Stops the listeners and connections, the watcher, then unloads every module; the engine within what is left of
     * {@code agent.stop-timeout}, even with an event loop stuck in a module call (that loop is abandoned, not waited for).
     */
    @Override
    public void close() {
        long deadline = System.nanoTime() + config.agent().stopTimeout().toNanos();
        LOG.log(Level.INFO, "stopping: control endpoint, listeners and connections, then the modules folder watcher, then the modules");
        if (metrics != null && !handedOff.get()) {
            metrics.close();
        }
        if (orchestrator != null && !handedOff.get()) {
            orchestrator.close();
        }
        if (control != null && !handedOff.get()) { // closed at the takeover: a second close would remove the new agent's socket
            try {
                control.close();
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "control endpoint close failed: {0}", e.toString());
            }
        }
        closeAll(engine, watcher, registry, Duration.ofNanos(Math.max(0, deadline - System.nanoTime())));
    }

    private static void closeAll(Engine engine, AutoloadWatcher watcher, ModuleRegistry registry) {
        closeAll(engine, watcher, registry, Engine.CLOSE_TIMEOUT);
    }

    private static void closeAll(Engine engine, AutoloadWatcher watcher, ModuleRegistry registry, Duration engineTimeout) {
        if (engine != null) {
            try {
                engine.close(engineTimeout);
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "engine close failed: {0}", e.toString());
            }
        }
        if (watcher != null) {
            try {
                watcher.close();
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "modules folder watcher close failed: {0}", e.toString());
            }
        }
        registry.close();
    }

    /** What is wrong with a modules folder that exists but cannot be listed, or null; {@code run} and {@code run --check} agree on it. */
    private static String unreadable(Path dir) {
        if (!Files.isDirectory(dir)) {
            return null; // missing: created at start (the default) or reported by the config (a folder it names)
        }
        try (var files = Files.newDirectoryStream(dir)) {
            return null;
        } catch (IOException e) {
            return dir + ": cannot list the modules folder (" + e.getMessage() + "); check its permissions: the agent's user needs"
                    + " read and execute on it";
        }
    }
}
