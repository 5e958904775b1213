package dev.interlayer.runtime;

import dev.interlayer.api.AttachMode;
import dev.interlayer.api.Capability;
import dev.interlayer.api.ConnectionInfo;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.InterfaceVersion;
import dev.interlayer.api.Module;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.Params;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.lang.System.Logger.Level;
import java.lang.reflect.Modifier;
import java.net.MalformedURLException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.Spliterator;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;

/**
 * The modules an agent knows: adds them (version negotiation, hook detection, parameters, init), keeps
 * their lifecycle, and answers the engine's question "which modules attach to this new connection".
 *
 * <p>Jars come in through {@link #loadJar}: each is first copied into the registry's cache directory under
 * its SHA-256 ({@code <cache>/<sha256>.jar}), so replacing or deleting the original never disturbs a
 * loaded module, then every class of it is read by the {@link ModuleVerifier} before any is defined, then
 * it is opened in its own {@link ModuleClassLoader}; its modules are found with {@link ServiceLoader}, and
 * each module's code is checked against its descriptor (capabilities, SDK versions) and its config's
 * {@code allow} before its {@code init} runs. The cache directory belongs to this registry: the cached copy of a jar is
 * deleted when the jar's last module has unloaded.
 *
 * <p>Thread-safe. Listeners are called on the thread that made the change; an exception a listener
 * throws is logged and does not undo the change.
 */
public final class ModuleRegistry implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.runtime");
    /** A jar that fails again and again (still being copied, say) is logged once per half minute, with a count. */
    private static final RepeatedLog FAILED_LOADS = new RepeatedLog(LOG, 1, Duration.ofSeconds(30));

    private final CopyOnWriteArrayList<LoadedModule> modules = new CopyOnWriteArrayList<>();
    private final CopyOnWriteArrayList<Failure> failures = new CopyOnWriteArrayList<>();
    private final CopyOnWriteArrayList<RegistryListener> listeners = new CopyOnWriteArrayList<>();
    private static final String SERVICE_FILE = "META-INF/services/" + Module.class.getName();
    private static final String SDK_PREFIX = Module.class.getPackageName().replace('.', '/') + "/";
    /** How long threads a jar left behind get to end after its loader closed before they are reported. */
    private static final long LEFT_THREAD_GRACE_MS = 500;

    private final ScheduledExecutorService timers;
    private final boolean ownsTimers;
    private final ModuleHost host;
    private final int quarantineAfter;
    private final Path cacheDir;
    private final boolean ownsCacheDir;
    private final Map<String, Integer> cacheUsers = new HashMap<>(); // guarded by itself: <sha256><.jar|.so> -> open packages
    private volatile boolean closed;
    private volatile LoadedModule[] attachOrder = new LoadedModule[0];
    private final ModuleCallWatch calls = new ModuleCallWatch();

    /** A registry that quarantines a module after 5 faults and caches jars in a fresh temporary directory. */
    public ModuleRegistry() {
        this(5);
    }

    /** A registry that quarantines a module after {@code quarantineAfter} faults and caches jars in a fresh temporary directory. */
    public ModuleRegistry(int quarantineAfter) {
        this(quarantineAfter, null);
    }

    /** A registry that quarantines a module after 5 faults and caches jars in {@code cacheDir} (created if missing). */
    public ModuleRegistry(Path cacheDir) {
        this(5, cacheDir);
    }

    /**
     * A registry that quarantines a module after {@code quarantineAfter} faults and caches the jars it
     * loads in {@code cacheDir}.
     *
     * @param quarantineAfter faults after which an ACTIVE module goes INACTIVE; at least 1
     * @param cacheDir where jars are copied before they are opened (created if missing; owned by this
     *                 registry); null for a fresh temporary directory, deleted when the registry closes
     */
    public ModuleRegistry(int quarantineAfter, Path cacheDir) {
        this(quarantineAfter, cacheDir, ModuleHost.real());
    }

    /**
     * As {@link #ModuleRegistry(int, Path)}, with the modules' timers, clock and loggers from {@code host} (the testkit's
     * are virtual).
     */
    public ModuleRegistry(int quarantineAfter, Path cacheDir, ModuleHost host) {
        if (quarantineAfter < 1) {
            throw new IllegalArgumentException("quarantine-after must be at least 1");
        }
        this.quarantineAfter = quarantineAfter;
        try {
            if (cacheDir == null) {
                this.cacheDir = Files.createTempDirectory("interlayer-module-cache-");
                this.ownsCacheDir = true;
            } else {
                this.cacheDir = Files.createDirectories(cacheDir.toAbsolutePath().normalize());
                this.ownsCacheDir = false;
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the module cache directory " + (cacheDir == null ? "(temporary)" : cacheDir)
                    + ": " + e.getMessage() + "; choose a writable directory", e);
        }
        this.host = host;
        if (host.timers() != null) {
            this.timers = host.timers();
            this.ownsTimers = false;
        } else {
            ScheduledThreadPoolExecutor ex = new ScheduledThreadPoolExecutor(1, r -> hostThread(r, "interlayer-module-timers"));
            // Timers are cancelled at fini: drop them from the queue then rather than when their delay (an
            // hour, say) runs out, so a module that is loaded and unloaded often leaves no backlog.
            ex.setRemoveOnCancelPolicy(true);
            this.timers = ex;
            this.ownsTimers = true;
        }
    }

    /**
     * A daemon thread that can never pin a module's class loader: its context loader is the host's and it
     * inherits no inheritable thread-locals from whichever thread (perhaps a module's init) created it.
     */
    static Thread hostThread(Runnable r, String name) {
        Thread t = new Thread(null, r, name, 0, false);
        t.setDaemon(true);
        t.setContextClassLoader(ModuleRegistry.class.getClassLoader());
        return t;
    }

    /** The directory jars are copied into before they are opened. */
    public Path cacheDir() {
        return cacheDir;
    }

    /** Faults after which a module is quarantined. */
    public int quarantineAfter() {
        return quarantineAfter;
    }

    /** The budget of module calls no event loop makes, unless {@link #moduleWideBudget(Duration)} sets another. */
    public static final Duration DEFAULT_MODULE_WIDE_BUDGET = ModuleCallWatch.DEFAULT_BUDGET;

    /**
     * Sets the budget of module calls no event loop makes ({@code init}, {@code fini}, {@code control}, {@code onListen},
     * module-wide timers): a call past it is stopped and counted as a fault. Default 5 s.
     */
    public void moduleWideBudget(Duration d) {
        calls.budget(d);
    }

    /** The watch over module calls no event loop makes. */
    ModuleCallWatch calls() {
        return calls;
    }

    /** Registers a listener. */
    public void addListener(RegistryListener l) {
        listeners.add(l);
    }

    /** Removes a listener. */
    public void removeListener(RegistryListener l) {
        listeners.remove(l);
    }

    /**
     * Adds one module instance: negotiates its interface versions, detects its hooks, checks its
     * parameters, runs init with its class loader; an instance with the same name that is still running
     * is retired (deprecated, unloaded when its last connection ends).
     *
     * @throws ModuleLoadException saying what is wrong; the failure is also kept in {@link #failures()}
     */
    public LoadedModule add(Module<?> module, PackageRef pkg, ModuleConfig config) throws ModuleLoadException {
        return add(module, pkg, name -> config, null, null);
    }

    /**
     * {@link #add(Module, PackageRef, ModuleConfig)} with the config looked up by the module's name once its descriptor is known;
     * for a module from a jar, checked against the jar's {@code scan} before init, and first offered to {@code admit}.
     *
     * @return the module, or null if {@code admit} turned it away
     */
    @SuppressWarnings("unchecked")
    private LoadedModule add(Module<?> module, PackageRef pkg, Function<String, ModuleConfig> configs, ModuleVerifier.Scan scan,
                             Predicate<ModuleDescriptor> admit) throws ModuleLoadException {
        ModuleDescriptor d;
        try {
            d = withLoader(pkg.loader(), module::descriptor);
        } catch (RuntimeException | Error e) {
            throw fail(pkg, null, "module class " + module.getClass().getName() + " failed in descriptor(): " + e
                    + "; descriptor() must return ModuleDescriptor.builder(name, version).implement(...).build() and must not throw", e);
        }
        if (d == null) {
            throw fail(pkg, null, "module class " + module.getClass().getName() + " returned no descriptor (null);"
                    + " return ModuleDescriptor.builder(name, version).implement(...).build() from descriptor()", null);
        }
        if (admit != null && !admit.test(d)) {
            return null;
        }
        ModuleConfig config = configs == null ? null : configs.apply(d.name());
        if (!(module instanceof NativeModule)) {
            negotiate(pkg, d, module.getClass()); // a C module's versions were checked against its object's vtables
        }
        ModuleVerifier.Summary verified = null;
        if (scan != null) {
            Set<Capability> allowed = config == null ? Set.of() : config.allow();
            List<ModuleVerifier.Violation> refused = scan.check(module.getClass().getName(), d, allowed);
            if (!refused.isEmpty()) {
                throw fail(pkg, d.name(), "module " + d + " from " + pkg.location() + " was refused before its init ran ("
                        + problems(refused.size()) + "):" + bullets(refused), null);
            }
            verified = new ModuleVerifier.Summary(scan.classes(), scan.took(), scan.capabilitiesUsed(module.getClass().getName()));
        }
        Hooks.Detected hooks = module instanceof NativeModule nm ? nm.hooks() : Hooks.detect(module.getClass(), d.interfaces());
        Map<String, Object> raw = config == null ? Map.of() : config.params();
        Params params;
        try {
            params = ParamValues.resolve(d, raw);
        } catch (IllegalArgumentException e) {
            throw fail(pkg, d.name(), "module " + d + ": " + e.getMessage(), null);
        }
        ModuleSettings settings = (config == null ? ModuleConfig.defaults(d.name()) : config).settings(d);
        RealModuleEnv env = new RealModuleEnv(d, params, timers, host, pkg.loader(), this);
        ModuleCallWatch.Call watched = calls.enter(d.name() + "@" + d.version(), "init");
        String stopped;
        try {
            try {
                withLoader(pkg.loader(), () -> {
                    try {
                        module.init(env);
                    } catch (RuntimeException e) {
                        throw e;
                    } catch (Exception e) {
                        throw new InitFailed(e);
                    }
                    return null;
                });
            } finally {
                stopped = watched.exit();
            }
            if (stopped != null) {
                throw new InitFailed(new java.util.concurrent.TimeoutException("init " + stopped));
            }
        } catch (InitFailed e) {
            env.cancelTimers();
            throw fail(pkg, d.name(), "module " + d + ": init failed: " + e.getCause()
                    + "; the module refused to start: check its parameters and environment, or fix init()", e.getCause());
        } catch (RuntimeException | Error e) {
            env.cancelTimers();
            throw fail(pkg, d.name(), "module " + d + ": init failed: " + e
                    + "; the module refused to start: check its parameters and environment, or fix init()", e);
        }
        LoadedModule lm = new LoadedModule(this, (Module<Object>) module, d, pkg, hooks, params, env, settings, verified);
        for (String note : hooks.notes()) {
            LOG.log(Level.INFO, "module {0}: {1}", lm.id(), note);
        }
        List<LoadedModule> previous = new ArrayList<>();
        for (LoadedModule m : modules) {
            if (m.name().equals(d.name()) && !m.state().leaving() && !m.isUnloaded()) {
                previous.add(m);
            }
        }
        publish(lm, previous);
        failures.removeIf(f -> d.name().equals(f.module()) && f.source().equals(pkg.location()));
        for (LoadedModule old : previous) {
            LOG.log(Level.INFO, "module {0} replaces {1}: {1} is deprecated and unloads after its last connection", lm.id(), old.id());
            old.retire();
        }
        rebuild();
        LOG.log(Level.INFO, "module {0} loaded from {1}: {2}, priority {3}, selector {4}, hooks {5}", lm.id(), pkg.location(),
                settings.state(), settings.priority(), settings.selector(), Hooks.names(hooks.bits()));
        for (RegistryListener l : listeners) {
            tell(l, "moduleAdded", () -> l.moduleAdded(lm));
        }
        return lm;
    }

    private static final class InitFailed extends RuntimeException {
        InitFailed(Exception cause) {
            super(cause);
        }
    }

    private void negotiate(PackageRef pkg, ModuleDescriptor d, Class<?> moduleClass) throws ModuleLoadException {
        List<String> problems = negotiationProblems(d, moduleClass);
        if (!problems.isEmpty()) {
            throw fail(pkg, d.name(), problems.get(0), null);
        }
    }

    /**
     * What makes the agent refuse a module class with descriptor {@code d} before its init: a declared major other than
     * the agent's, a higher minor, a declared interface the class does not implement, an implemented one it does not
     * declare. Empty when the interfaces negotiate.
     */
    public static List<String> negotiationProblems(ModuleDescriptor d, Class<?> moduleClass) {
        List<String> out = new ArrayList<>();
        for (InterfaceVersion v : d.interfaces().values()) {
            InterfaceType t = v.type();
            if (v.major() != t.hostMajor()) {
                out.add("module " + d + " was built against " + t.id() + " " + v.major() + "." + v.minor()
                        + " but this agent offers " + t.id() + " " + t.hostMajor() + "." + t.hostMinor()
                        + ": the major version must match; rebuild the module against interlayer-api with " + t.id() + " " + t.hostMajor() + ".x");
            }
            if (v.minor() > t.hostMinor()) {
                out.add("module " + d + " was built against " + t.id() + " " + v.major() + "." + v.minor()
                        + " but this agent offers " + t.id() + " " + t.hostMajor() + "." + t.hostMinor()
                        + ": the module may call what this agent lacks; upgrade the agent, or build the module against "
                        + t.id() + " " + t.hostMajor() + "." + t.hostMinor() + " and declare that");
            }
            if (!t.javaType().isAssignableFrom(moduleClass)) {
                out.add("module " + d + " declares interface " + t.id() + " but " + moduleClass.getName()
                        + " does not implement " + t.javaType().getSimpleName() + "; implement " + t.javaType().getName()
                        + " or remove .implement(InterfaceType." + t.name() + ", ...) from the descriptor");
            }
        }
        for (InterfaceType t : InterfaceType.values()) {
            if (t.javaType().isAssignableFrom(moduleClass) && !d.interfaces().containsKey(t)) {
                out.add("module " + d + ": " + moduleClass.getName() + " implements " + t.javaType().getSimpleName()
                        + " but its descriptor does not declare it; add .implement(InterfaceType." + t.name() + ", "
                        + t.hostMajor() + ", " + t.hostMinor() + ")");
            }
        }
        return out;
    }

    /** Listener failures are the listener's bug: they must not undo a load, a state change or an unload. */
    private static void tell(RegistryListener l, String what, Runnable call) {
        try {
            call.run();
        } catch (RuntimeException e) {
            LOG.log(Level.ERROR, "registry listener {0} failed in {1}: {2}", l, what, e.toString());
        }
    }

    private ModuleLoadException fail(PackageRef pkg, String module, String message, Throwable cause) {
        return fail(pkg.location(), module, message, cause);
    }

    private ModuleLoadException fail(String source, String module, String message, Throwable cause) {
        Failure f = new Failure(source, module, message, Instant.now());
        failures.add(f);
        while (failures.size() > 256) {
            failures.remove(0);
        }
        FAILED_LOADS.log(source, Level.ERROR, "{0}", message);
        return new ModuleLoadException(message, cause);
    }

    // ---- jars ------------------------------------------------------------------------------------

    /**
     * Loads every module of a jar: copies it into the cache, checks it, reads every class of it with the
     * {@link ModuleVerifier} (refusing the whole jar, with every problem, when it uses what nothing allows:
     * {@code System.exit}, the agent's classes, a capability in code that runs before the descriptor is read),
     * opens it in its own {@link ModuleClassLoader} and adds each module its service file lists (see {@link #add}),
     * refusing before {@code init} a module whose code uses a capability it does not declare, declares one its
     * config does not {@code allow}, or calls an SDK method newer than the interface version it declares.
     *
     * <p>A module that fails (class missing, no public no-argument constructor, constructor or
     * {@code descriptor()} or {@code init} throws, wrong major version, ...) is recorded in
     * {@link #failures()} and does not stop the jar's other modules. A new attempt for the same path
     * replaces the failures recorded for it before. Modules with the name of a module already running
     * retire it (deprecated, unloaded after its last connection).
     *
     * @param jar the jar file; it may be replaced or deleted as soon as this returns
     * @param configs the config of each module by name; null, or a null result, means the descriptor's defaults
     * @return the modules loaded, in service-file order (at least one)
     * @throws ModuleLoadException if the jar cannot be used at all (unreadable, not a jar, bundles the SDK,
     *         lists no module) or none of its modules loaded; the message says what is wrong and what to do
     */
    public List<LoadedModule> loadJar(Path jar, Function<String, ModuleConfig> configs) throws ModuleLoadException {
        return loadJar(jar, configs, null);
    }

    /**
     * {@link #loadJar(Path, Function)}, offering each module to {@code admit} as soon as its descriptor is known, before it is
     * checked further or initialised: a module {@code admit} turns away is neither loaded nor a failure (the autoload folder
     * uses this to choose between two jars that declare the same module).
     *
     * @param admit null to load every module
     * @return the modules loaded, in service-file order; empty only if {@code admit} turned every module away
     */
    public List<LoadedModule> loadJar(Path jar, Function<String, ModuleConfig> configs, Predicate<ModuleDescriptor> admit)
            throws ModuleLoadException {
        Incoming in = incoming(jar, ".jar");
        String location = in.location();
        Path cached = in.cached();
        String sha = in.sha();
        JarPackage pkg;
        List<String> listed;
        ModuleVerifier.Scan scan;
        try {
            listed = checkJar(cached, location);
            scan = verify(cached, location, listed);
            pkg = new JarPackage(this, location, sha, cached,
                    new ModuleClassLoader(location, cached.toUri().toURL(), Module.class.getClassLoader()));
        } catch (ModuleLoadException | MalformedURLException | RuntimeException e) {
            releaseCached(sha, ".jar");
            if (e instanceof ModuleLoadException mle) {
                throw mle;
            }
            throw fail(location, null, "cannot open jar " + location + ": " + e + "; check that it is a valid jar", e);
        }
        try {
            return discover(pkg, listed, configs, scan, admit);
        } finally {
            pkg.release(); // the loading reference: closes the loader now if no module loaded
        }
    }

    /**
     * Loads a module package of either kind: a C shared object (ELF content, or a name ending in {@code .so}) with
     * {@link #loadNative}, anything else with {@link #loadJar}.
     */
    public List<LoadedModule> load(Path file, Function<String, ModuleConfig> configs, Predicate<ModuleDescriptor> admit)
            throws ModuleLoadException {
        return isNativeObject(file) ? loadNative(file, configs, admit) : loadJar(file, configs, admit);
    }

    /** {@link #load(Path, Function, Predicate)} admitting every module. */
    public List<LoadedModule> load(Path file, Function<String, ModuleConfig> configs) throws ModuleLoadException {
        return load(file, configs, null);
    }

    /** True for a file whose name ends in {@code .so} or whose content starts with the ELF magic number. */
    public static boolean isNativeObject(Path file) {
        if (file.getFileName() != null && file.getFileName().toString().endsWith(".so")) {
            return true;
        }
        try (InputStream in = Files.newInputStream(file)) {
            byte[] magic = in.readNBytes(4);
            return magic.length == 4 && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' && magic[3] == 'F';
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * Loads every module of a C shared object (see {@code native/include/interlayer/module.h}): copies it into the cache
     * under its SHA-256, maps the copy (refusing an object with an undefined symbol, without the required entry points or
     * of another ABI version, with a message that names what is missing), and adds each module it lists as a
     * {@link NativeModule}, exactly as {@link #loadJar} adds a jar's: same configs, {@code admit}, failures, retirement of
     * a running module of the same name. The object is unmapped when the last of its modules has unloaded.
     *
     * @param object the {@code .so}; it may be replaced or deleted as soon as this returns
     * @return the modules loaded, in list order; empty only if {@code admit} turned every module away
     * @throws ModuleLoadException if the object cannot be used at all or none of its modules loaded
     */
    public List<LoadedModule> loadNative(Path object, Function<String, ModuleConfig> configs, Predicate<ModuleDescriptor> admit)
            throws ModuleLoadException {
        Incoming in = incoming(object, ".so");
        String location = in.location();
        String sha = in.sha();
        NativePackage pkg;
        try {
            pkg = NativePackage.open(this, location, sha, in.cached());
        } catch (NativePackage.Refused e) {
            releaseCached(sha, ".so");
            throw fail(location, null, e.getMessage(), null);
        }
        List<LoadedModule> loaded = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        try {
            for (NativePackage.Entry e : pkg.entries()) {
                if (e.module() == null) {
                    problems.add(fail(location, e.name(), "C module object " + location + ": " + e.problem(), null).getMessage());
                    continue;
                }
                pkg.retain();
                try {
                    LoadedModule m = add(e.module(), pkg, configs, null, admit);
                    if (m == null) {
                        e.module().forget();
                        pkg.release();
                        continue;
                    }
                    pkg.loaded(m);
                    loaded.add(m);
                } catch (ModuleLoadException x) {
                    e.module().forget();
                    pkg.release();
                    problems.add(x.getMessage());
                }
            }
        } finally {
            pkg.release(); // the loading reference: unmaps the object now if no module loaded
        }
        if (loaded.isEmpty() && !problems.isEmpty()) {
            throw new ModuleLoadException("no module of C object " + location + " could be loaded:\n  " + String.join("\n  ", problems));
        }
        return List.copyOf(loaded);
    }

    /** Called by a {@link NativePackage} once it is unmapped: frees the cached copy. */
    void packageClosed(NativePackage pkg) {
        releaseCached(pkg.sha256(), ".so");
    }

    /** A package file about to be opened: where it came from, its cached copy and that copy's SHA-256. */
    private record Incoming(String location, Path cached, String sha) {}

    /** Forgets the earlier failures of {@code file} and copies it into the cache (as {@code <sha256><ext>}). */
    private Incoming incoming(Path file, String ext) throws ModuleLoadException {
        if (closed) {
            throw new IllegalStateException("the module registry is closed");
        }
        String location = file.toAbsolutePath().normalize().toString();
        failures.removeIf(f -> f.source().equals(location));
        Path cached = cache(file, location, ext);
        return new Incoming(location, cached, cached.getFileName().toString().replace(ext, ""));
    }

    /** Copies {@code jar} into the cache under its SHA-256 and takes a reference on the copy. */
    private Path cache(Path jar, String location, String ext) throws ModuleLoadException {
        if (!Files.isRegularFile(jar)) {
            throw fail(location, null, "module jar " + location + " does not exist or is not a regular file; check the path", null);
        }
        Path part;
        try {
            part = Files.createTempFile(cacheDir, "incoming-", ".part");
        } catch (IOException e) {
            throw fail(location, null, "cannot copy " + location + " into the module cache " + cacheDir + ": " + e
                    + "; make the cache directory writable and check free disk space", e);
        }
        MessageDigest sha;
        try {
            sha = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("this JDK has no SHA-256", e);
        }
        // Hash what is copied, not the original: the bytes loaded are exactly the bytes hashed even if
        // the original changes during the copy.
        try (InputStream in = Files.newInputStream(jar); OutputStream out = new DigestOutputStream(Files.newOutputStream(part), sha)) {
            in.transferTo(out);
        } catch (IOException e) {
            deleteQuietly(part);
            throw fail(location, null, "cannot read module jar " + location + ": " + e + "; check the file's permissions", e);
        }
        String hex = HexFormat.of().formatHex(sha.digest());
        Path target = cacheDir.resolve(hex + ext);
        synchronized (cacheUsers) {
            try {
                if (Files.exists(target)) {
                    deleteQuietly(part); // same content already cached: content addressing makes it identical
                } else {
                    Files.move(part, target, StandardCopyOption.ATOMIC_MOVE);
                }
            } catch (IOException e) {
                deleteQuietly(part);
                throw fail(location, null, "cannot store " + location + " in the module cache " + cacheDir + ": " + e
                        + "; make the cache directory writable", e);
            }
            cacheUsers.merge(hex + ext, 1, Integer::sum);
        }
        return target;
    }

    private void releaseCached(String sha, String ext) {
        synchronized (cacheUsers) {
            Integer n = cacheUsers.get(sha + ext);
            if (n == null) {
                return;
            }
            if (n > 1) {
                cacheUsers.put(sha + ext, n - 1);
                return;
            }
            cacheUsers.remove(sha + ext);
            deleteQuietly(cacheDir.resolve(sha + ext));
        }
        deleteCacheDirIfDone();
    }

    private void deleteCacheDirIfDone() {
        if (!closed || !ownsCacheDir) {
            return;
        }
        synchronized (cacheUsers) {
            if (cacheUsers.isEmpty()) {
                deleteQuietly(cacheDir); // fails harmlessly while another file is still inside
            }
        }
    }

    private static void deleteQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException e) {
            LOG.log(Level.DEBUG, "could not delete {0}: {1}", p, e.toString());
        }
    }

    /**
     * Refuses jars that cannot work at all and returns the module class names their service file lists.
     */
    private List<String> checkJar(Path cached, String location) throws ModuleLoadException {
        try (ZipFile zip = new ZipFile(cached.toFile())) {
            String sdkEntry = zip.stream().map(ZipEntry::getName).filter(n -> n.startsWith(SDK_PREFIX)).findFirst().orElse(null);
            if (sdkEntry != null) {
                throw fail(location, null, "jar " + location + " bundles the Interlayer SDK (it contains " + sdkEntry + "); a module must use"
                        + " the agent's copy or its classes will not match the agent's: declare interlayer-api with <scope>provided</scope>"
                        + " in your pom.xml (compileOnly in Gradle), rebuild, and check that no dev/interlayer/api/ entry is left in the jar", null);
            }
            ZipEntry services = zip.getEntry(SERVICE_FILE);
            if (services == null) {
                throw fail(location, null, "jar " + location + " declares no module: add " + SERVICE_FILE
                        + " listing your module classes (one fully qualified class name per line)", null);
            }
            LinkedHashSet<String> names = new LinkedHashSet<>();
            String text;
            try (InputStream in = zip.getInputStream(services)) {
                text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
            for (String line : text.split("\\R")) {
                int hash = line.indexOf('#');
                String name = (hash >= 0 ? line.substring(0, hash) : line).strip();
                if (!name.isEmpty()) {
                    names.add(name);
                }
            }
            if (names.isEmpty()) {
                throw fail(location, null, "jar " + location + ": " + SERVICE_FILE + " lists no module class;"
                        + " add your module classes to it, one fully qualified class name per line", null);
            }
            return List.copyOf(names);
        } catch (ZipException e) {
            throw fail(location, null, "module jar " + location + " is not a readable jar (" + e.getMessage() + "); if it is still being"
                    + " copied, wait until the copy is complete (copy to a temporary name and rename it into place); otherwise rebuild it", e);
        } catch (IOException e) {
            throw fail(location, null, "cannot read module jar " + location + ": " + e + "; check the file and rebuild it if it is damaged", e);
        }
    }

    /**
     * Reads every class of the jar before any of it is defined, and refuses the jar, with every problem, if it uses what no
     * declaration allows or uses a capability in code that runs while its descriptors are read.
     */
    private ModuleVerifier.Scan verify(Path cached, String location, List<String> moduleClasses) throws ModuleLoadException {
        ModuleVerifier.Scan scan;
        try {
            scan = ModuleVerifier.scan(cached);
        } catch (IOException | RuntimeException e) {
            throw fail(location, null, "cannot read the classes of module jar " + location + ": " + e + "; rebuild the jar", e);
        }
        List<ModuleVerifier.Violation> refused = scan.refusals(moduleClasses);
        if (!refused.isEmpty()) {
            List<String> then = scan.requirements();
            throw fail(location, null, "jar " + location + " was refused before any of its code ran (" + problems(refused.size()) + "):"
                    + bullets(refused) + (then.isEmpty() ? "" : "\n  once they are fixed, its code also needs:"
                    + then.stream().map(r -> "\n  - " + r).collect(Collectors.joining())), null);
        }
        LOG.log(Level.DEBUG, "verified {0}: {1} classes in {2} ms", location, scan.classes(), scan.took().toNanos() / 1e6);
        return scan;
    }

    private static String problems(int n) {
        return n + " problem" + (n == 1 ? "" : "s");
    }

    private static String bullets(List<ModuleVerifier.Violation> violations) {
        return violations.stream().map(v -> "\n  - " + v.message()).collect(Collectors.joining());
    }

    /** Instantiates the jar's modules with {@link ServiceLoader} and adds each; one failure does not stop the others. */
    @SuppressWarnings("rawtypes")
    private List<LoadedModule> discover(JarPackage pkg, List<String> listed, Function<String, ModuleConfig> configs, ModuleVerifier.Scan scan,
                                        Predicate<ModuleDescriptor> admit) throws ModuleLoadException {
        ModuleClassLoader loader = pkg.loader();
        String location = pkg.location();
        List<LoadedModule> loaded = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        Spliterator<ServiceLoader.Provider<Module>> providers = withLoader(loader, () -> ServiceLoader.load(Module.class, loader).stream().spliterator());
        int next = 0; // index in `listed` of the provider ServiceLoader is about to produce (it keeps file order)
        // ServiceLoader reports a broken provider by throwing and then goes on with the next one; the
        // bound only guards against a loader that would keep failing on the same entry.
        for (int step = 0; step <= listed.size() * 2 + 1; step++) {
            ServiceLoader.Provider<?>[] got = new ServiceLoader.Provider<?>[1];
            boolean more;
            try {
                more = withLoader(loader, () -> providers.tryAdvance(p -> got[0] = p));
            } catch (ServiceConfigurationError | LinkageError e) {
                String name = culprit(listed, next, e);
                next = listed.indexOf(name) + 1;
                problems.add(fail(location, null, diagnose(location, loader, name, e), e).getMessage());
                continue;
            }
            if (!more) {
                break;
            }
            Class<?> type = got[0].type();
            next = Math.max(next, listed.indexOf(type.getName()) + 1);
            if (type.getClassLoader() != loader) {
                problems.add(fail(location, null, "jar " + location + " lists module class " + type.getName() + " but the jar does not contain it"
                        + " (only the host has a class of that name); add the class to the jar or remove the line from " + SERVICE_FILE, null).getMessage());
                continue;
            }
            Module<?> module;
            try {
                ServiceLoader.Provider<?> provider = got[0];
                module = (Module<?>) withLoader(loader, provider::get);
            } catch (RuntimeException | Error e) {
                Throwable cause = e instanceof ServiceConfigurationError && e.getCause() != null ? e.getCause() : e;
                problems.add(fail(location, null, "the constructor of module class " + type.getName() + " in " + location + " threw " + cause
                        + "; fix the constructor (work that can fail belongs in init(), where its error is reported with the module's name)",
                        cause).getMessage());
                continue;
            }
            pkg.retain();
            try {
                LoadedModule m = add(module, pkg, configs, scan, admit);
                if (m == null) {
                    pkg.release(); // turned away: not loaded, and not a failure
                    continue;
                }
                pkg.loaded(m);
                loaded.add(m);
            } catch (ModuleLoadException e) {
                pkg.release();
                problems.add(e.getMessage());
            }
        }
        if (loaded.isEmpty() && !problems.isEmpty()) {
            // Each problem is already in failures(); this sums them up for the caller.
            throw new ModuleLoadException("no module of jar " + location + " could be loaded:\n  " + String.join("\n  ", problems));
        }
        return List.copyOf(loaded);
    }

    /** The listed class a ServiceLoader error is about: the one its message names, else the next in file order. */
    private static String culprit(List<String> listed, int next, Throwable e) {
        String msg = String.valueOf(e.getMessage());
        for (int i = next; i < listed.size(); i++) {
            if (msg.contains(listed.get(i) + " ") || msg.endsWith(listed.get(i))) {
                return listed.get(i);
            }
        }
        return next < listed.size() ? listed.get(next) : "?";
    }

    /** Says what is wrong with module class {@code name} and how to fix it, after ServiceLoader refused it. */
    private static String diagnose(String location, ClassLoader loader, String name, Throwable e) {
        String in = " (listed in " + SERVICE_FILE + " of " + location + ")";
        Class<?> c;
        try {
            c = Class.forName(name, false, loader);
        } catch (ClassNotFoundException notFound) {
            return "module class " + name + in + " is not in the jar; fix the class name in the service file or add the class to the jar";
        } catch (LinkageError bad) {
            return "module class " + name + in + " cannot be loaded: " + bad + "; rebuild the jar against this agent's interlayer-api"
                    + " and bundle the libraries the module needs";
        }
        if (!Module.class.isAssignableFrom(c)) {
            return "class " + name + in + " does not implement " + Module.class.getName()
                    + "; implement StreamModule, DatagramModule or SocketModule, or remove the line from the service file";
        }
        if (c.isInterface() || Modifier.isAbstract(c.getModifiers())) {
            return "module class " + name + in + " is abstract; list a concrete class";
        }
        if (!Modifier.isPublic(c.getModifiers())) {
            return "module class " + name + in + " is not public; make the class public (the runtime instantiates it with ServiceLoader)";
        }
        try {
            c.getConstructor();
        } catch (NoSuchMethodException noCtor) {
            return "module class " + name + in + " has no public no-argument constructor; add 'public " + c.getSimpleName() + "() {}'"
                    + " (the runtime instantiates modules with ServiceLoader)";
        } catch (LinkageError bad) {
            return "module class " + name + in + " cannot be linked: " + bad + "; rebuild the jar against this agent's interlayer-api";
        }
        Throwable cause = e.getCause();
        return "module class " + name + in + " could not be instantiated: " + (cause != null ? cause : e.getMessage())
                + "; fix the constructor (work that can fail belongs in init())";
    }

    /**
     * Called by a {@link JarPackage} once its loader is closed: frees the cached copy and reports threads
     * the jar left running, which would keep its class loader (and every class of it) in memory.
     */
    void packageClosed(JarPackage pkg) {
        releaseCached(pkg.sha256(), ".jar");
        ClassLoader loader = pkg.loader();
        if (threadsPinning(loader).isEmpty()) {
            return;
        }
        // fini may have told its threads to stop without waiting for them: give them a moment first.
        try {
            timers.schedule(() -> warnLeftThreads(pkg), LEFT_THREAD_GRACE_MS, TimeUnit.MILLISECONDS);
        } catch (RejectedExecutionException registryClosed) {
            warnLeftThreads(pkg);
        }
    }

    private static void warnLeftThreads(JarPackage pkg) {
        for (Thread t : threadsPinning(pkg.loader())) {
            LOG.log(Level.WARNING, "module {0} left thread ''{1}'' running after fini; it pins the module''s class loader."
                    + " Stop the thread in fini() (interrupt and join it), or use ModuleEnv.schedule for module-wide work",
                    pkg.who(), t.getName());
        }
    }

    /** Live platform threads whose context loader is {@code loader} or whose class it defined. */
    static List<Thread> threadsPinning(ClassLoader loader) {
        List<Thread> out = new ArrayList<>();
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.isAlive() && (t.getContextClassLoader() == loader || t.getClass().getClassLoader() == loader)) {
                out.add(t);
            }
        }
        return out;
    }

    private static <T> T withLoader(ClassLoader loader, java.util.function.Supplier<T> call) {
        Thread t = Thread.currentThread();
        ClassLoader prev = t.getContextClassLoader();
        t.setContextClassLoader(loader);
        try {
            return call.get();
        } finally {
            t.setContextClassLoader(prev);
        }
    }

    /** Every module instance still loaded (any state but gone), in load order. */
    public List<LoadedModule> modules() {
        return List.copyOf(modules);
    }

    /** Loads and failures that did not recover, oldest first. */
    /** Forgets the load failures of the jar at {@code source} (its file is gone: they no longer describe anything). */
    public void forgetFailures(String source) {
        failures.removeIf(f -> f.source().equals(source));
    }

    public List<Failure> failures() {
        return List.copyOf(failures);
    }

    /** The current instance named {@code name}: the newest that is not leaving, else the newest at all. */
    public Optional<LoadedModule> find(String name) {
        LoadedModule best = null;
        for (LoadedModule m : modules) {
            if (!m.name().equals(name)) continue;
            if (best == null || !m.state().leaving() && m.state() != ModuleState.DEPRECATED) {
                best = m;
            }
        }
        return Optional.ofNullable(best);
    }

    /**
     * The modules that attach to a new connection: global mode, ACTIVE or INACTIVE, serving its protocol
     * ({@link LoadedModule#serves}), selector matching, in priority order (ties keep load order).
     */
    public List<LoadedModule> candidates(ConnectionInfo info) {
        LoadedModule[] order = attachOrder;
        // sized by what matches, not by every module loaded: this runs for every new connection
        List<LoadedModule> out = new ArrayList<>();
        for (LoadedModule m : order) {
            if (m.attachMode() == AttachMode.GLOBAL && m.state().attachesNew() && m.serves(info.protocol())
                    && SelectorMatcher.matches(m.selector(), info)) {
                out.add(m);
            }
        }
        return out;
    }

    /**
     * Every module that attaches to new connections (ACTIVE or INACTIVE), in priority order (ties keep load order),
     * whatever its attach mode, selector and protocols: {@link #candidates} filters this.
     */
    public List<LoadedModule> attachOrder() {
        return List.of(attachOrder);
    }

    void changed(LoadedModule m) {
        rebuild();
    }

    void stateChanged(LoadedModule m, ModuleState from, ModuleState to) {
        rebuild();
        LOG.log(Level.INFO, "module {0}: {1} -> {2}", m.id(), from, to);
        for (RegistryListener l : listeners) {
            tell(l, "stateChanged", () -> l.stateChanged(m, from, to));
        }
    }

    /** Tells the listeners a module faulted. */
    void faulted(LoadedModule m, String hook, long connectionId, Object cause) {
        for (RegistryListener l : listeners) {
            tell(l, "moduleFault", () -> l.moduleFault(m, hook, connectionId, cause));
        }
    }

    /** Hands a module's published event to the listeners (the control plane's event stream). */
    void published(String module, String version, String kind, String text) {
        if (kind == null || text == null) {
            return;
        }
        for (RegistryListener l : listeners) {
            tell(l, "moduleEvent", () -> l.moduleEvent(module, version, kind, text));
        }
    }

    void removed(LoadedModule m) {
        modules.remove(m);
        rebuild();
        LOG.log(Level.INFO, "module {0} unloaded", m.id());
        for (RegistryListener l : listeners) {
            tell(l, "moduleRemoved", () -> l.moduleRemoved(m));
        }
    }

    /**
     * Makes {@code lm} attach to new connections in place of {@code replaced} in one step, before it can be
     * found by name: a connection accepted at any moment gets exactly one version of the module.
     */
    private synchronized void publish(LoadedModule lm, List<LoadedModule> replaced) {
        attachOrder = Stream.concat(modules.stream(), Stream.of(lm))
                .filter(m -> m.state().attachesNew() && !replaced.contains(m))
                .sorted(Comparator.comparingInt(LoadedModule::priority))
                .toArray(LoadedModule[]::new);
        modules.add(lm);
    }

    private synchronized void rebuild() {
        attachOrder = modules.stream()
                .filter(m -> m.state().attachesNew())
                .sorted(Comparator.comparingInt(LoadedModule::priority))
                .toArray(LoadedModule[]::new);
    }

    /**
     * Unregisters every module (detaching them) and stops module timers. Modules still attached somewhere
     * unload when the engine reports their last detach; a temporary cache directory is deleted once empty.
     */
    @Override
    public void close() {
        closed = true;
        for (LoadedModule m : modules) {
            if (m.state() != ModuleState.FAILED) {
                m.unregister();
            }
        }
        if (ownsTimers) {
            timers.shutdownNow();
        }
        deleteCacheDirIfDone();
    }
}
