package dev.interlayer.runtime;

import java.io.IOException;
import java.io.InputStream;
import java.lang.System.Logger.Level;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import dev.interlayer.api.ModuleDescriptor;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * Keeps a registry in step with the module jars in a folder: added jars are loaded, replaced jars are
 * loaded again (the old version retires), removed jars' modules retire.
 *
 * <pre>
 *   file appears / changes ──▶ pending ──(size and mtime unchanged for 300 ms)──▶ ready
 *                                                                                   │
 *          ┌──────────── same SHA-256 as what runs: nothing to do ◀─────────────────┤
 *          │                                                                        ▼
 *          │       loadJar ok: new modules ACTIVE; same-name old ones DEPRECATED, unloaded after their
 *          │                   last connection; old ones the new jar no longer has retire too
 *          │       loadJar fails: error logged and kept in registry.failures(); what ran keeps
 *          │                      running; retried when the file changes again
 *   file disappears ──▶ its modules retire (DEPRECATED, unloaded after their last connection)
 * </pre>
 *
 * <p>Two jars of the folder that declare a module of the same name: the higher version runs and the
 * other is not loaded; at equal versions the jar whose file name sorts first (by UTF-16 code units, as
 * {@link String#compareTo}) runs. The choice is logged as a warning naming both files, depends only on
 * what the folder holds (not on which jar arrived first), and is made again when either jar changes or
 * goes: removing the jar that runs loads the other. A module running from a config entry's {@code jar:} or
 * an upload takes no part in this: a folder jar with its name replaces it, as any new version does.
 *
 * <p>Only regular files named {@code *.jar} (Java) or {@code *.so} (C, see {@link NativePackage}) not starting with a dot
 * count, so a deployer can write {@code .name.jar.tmp} or {@code name.jar.part} and rename it into place; a jar written in place is
 * loaded once it has stopped changing. Changes are noticed through a {@link WatchService} and, as a
 * fallback for file systems that do not report events, by a rescan every two seconds.
 *
 * <p>Threading: {@link #start()} runs a daemon thread named {@code interlayer-autoload}; scans (from it
 * or from {@link #scanNow()}) are serialized. Closing the watcher stops watching; the modules it
 * loaded stay loaded (the registry owns them).
 */
public final class AutoloadWatcher implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.runtime.autoload");
    /** A jar that fails again and again while it changes (a slow copy) is logged once per half minute, with a count. */
    private static final RepeatedLog RETRIES = new RepeatedLog(LOG, 1, Duration.ofSeconds(30));

    /** How long a jar's size and modification time must stay the same before it is read. */
    static final long STABLE_NANOS = TimeUnit.MILLISECONDS.toNanos(300);
    /** The fallback rescan period, for file systems whose changes the watch service misses. */
    static final long RESCAN_NANOS = TimeUnit.SECONDS.toNanos(2);
    /** How often pending jars are looked at while they settle. */
    private static final long SETTLE_POLL_MS = 100;
    /** How long {@link #scanNow()} waits for jars that are still changing. */
    private static final long SCAN_NOW_PATIENCE_NANOS = TimeUnit.SECONDS.toNanos(5);

    private final Path dir;
    private final ModuleRegistry registry;
    private final Function<String, ModuleConfig> configs;
    private final ReentrantLock scanLock = new ReentrantLock();
    private final Map<Path, Tracked> tracked = new HashMap<>(); // guarded by scanLock
    private volatile boolean closed;
    private volatile Thread thread;
    private volatile WatchService watcher;
    private boolean dirMissingReported; // guarded by scanLock

    /** What the watcher knows about one jar path. */
    private static final class Tracked {
        Signature seen;         // last observed size and mtime
        long seenSince;         // System.nanoTime() when `seen` was first observed
        Signature handled;      // the signature last loaded or failed: not looked at again until it changes
        String sha;             // content of the modules running from this path, or null
        List<LoadedModule> modules = List.of();
        /** Name -> version of each module this path's content declares that loaded or lost to another jar's. */
        Map<String, String> declares = new LinkedHashMap<>();
        /** Names this path's content declares whose module is not loaded because another jar's wins. */
        Set<String> outranked = new HashSet<>();
    }

    private record Signature(long size, long mtimeNanos, Object fileKey) {}

    /**
     * A watcher for {@code dir} that loads jars into {@code registry}.
     *
     * @param dir the autoload folder (created by {@link #start()} if missing)
     * @param registry where modules go
     * @param configs the config of each module by name; a null result means the descriptor's defaults
     */
    public AutoloadWatcher(Path dir, ModuleRegistry registry, Function<String, ModuleConfig> configs) {
        this.dir = dir.toAbsolutePath().normalize();
        this.registry = registry;
        this.configs = configs == null ? name -> null : configs;
    }

    /** The folder watched. */
    public Path dir() {
        return dir;
    }

    /**
     * Loads every jar in the folder (in name order, waiting for jars still being written), then watches
     * it on the {@code interlayer-autoload} thread.
     *
     * @throws IOException if the folder cannot be created or watched
     * @throws IllegalStateException if already started or closed
     */
    public synchronized void start() throws IOException {
        if (closed || thread != null) {
            throw new IllegalStateException("autoload watcher for " + dir + " is " + (closed ? "closed" : "already started"));
        }
        Files.createDirectories(dir);
        try {
            watcher = dir.getFileSystem().newWatchService();
            dir.register(watcher, StandardWatchEventKinds.ENTRY_CREATE, StandardWatchEventKinds.ENTRY_MODIFY,
                    StandardWatchEventKinds.ENTRY_DELETE);
        } catch (IOException | UnsupportedOperationException e) {
            // Rescanning alone still works, only slower to notice.
            LOG.log(Level.WARNING, "cannot watch {0} for changes ({1}); relying on a rescan every {2} s", dir, e.toString(),
                    TimeUnit.NANOSECONDS.toSeconds(RESCAN_NANOS));
            watcher = null;
        }
        scanNow();
        Thread t = ModuleRegistry.hostThread(this::run, "interlayer-autoload");
        thread = t;
        t.start();
        LOG.log(Level.INFO, "watching {0} for module jars", dir);
    }

    /**
     * Scans the folder now and returns when every jar that was ready (or became ready within a few
     * seconds) has been handled; for start-up and tests. Any thread.
     */
    public void scanNow() {
        long deadline = System.nanoTime() + SCAN_NOW_PATIENCE_NANOS;
        while (!closed) {
            long waitNanos = scan();
            if (waitNanos < 0 || System.nanoTime() >= deadline) {
                return;
            }
            sleepNanos(Math.min(waitNanos, deadline - System.nanoTime()));
        }
    }

    /** Stops watching; loaded modules stay loaded. Idempotent. */
    @Override
    public void close() {
        closed = true;
        WatchService w = watcher;
        if (w != null) {
            try {
                w.close();
            } catch (IOException e) {
                LOG.log(Level.DEBUG, "closing the watch service of {0}: {1}", dir, e.toString());
            }
        }
        Thread t = thread;
        if (t != null && t != Thread.currentThread()) {
            t.interrupt();
            try {
                t.join(TimeUnit.SECONDS.toMillis(5));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private void run() {
        long nextRescan = System.nanoTime() + RESCAN_NANOS;
        long waitNanos = -1;
        while (!closed) {
            try {
                long now = System.nanoTime();
                long timeout = nextRescan - now;
                if (waitNanos >= 0) {
                    timeout = Math.min(timeout, Math.max(waitNanos, TimeUnit.MILLISECONDS.toNanos(SETTLE_POLL_MS)));
                }
                timeout = Math.max(1, timeout);
                boolean event = awaitEvent(timeout);
                now = System.nanoTime();
                if (event || waitNanos >= 0 || now - nextRescan >= 0) {
                    waitNanos = scan();
                    if (now - nextRescan >= 0) {
                        nextRescan = now + RESCAN_NANOS;
                    }
                }
            } catch (InterruptedException | ClosedWatchServiceException e) {
                if (closed) {
                    return;
                }
            } catch (RuntimeException | Error e) {
                // The folder is user-controlled input: whatever it contains, keep watching.
                LOG.log(Level.ERROR, "autoload scan of {0} failed: {1}; retrying in {2} s", dir, e.toString(),
                        TimeUnit.NANOSECONDS.toSeconds(RESCAN_NANOS));
                waitNanos = -1;
                sleepNanos(RESCAN_NANOS);
            }
        }
    }

    /** Waits up to {@code timeoutNanos} for a change event; true if one came (events are drained). */
    private boolean awaitEvent(long timeoutNanos) throws InterruptedException {
        WatchService w = watcher;
        if (w == null) {
            Thread.sleep(TimeUnit.NANOSECONDS.toMillis(timeoutNanos), (int) (timeoutNanos % 1_000_000));
            return false;
        }
        WatchKey key = w.poll(timeoutNanos, TimeUnit.NANOSECONDS);
        if (key == null) {
            return false;
        }
        do {
            key.pollEvents(); // which file changed does not matter: the scan compares every jar
            if (!key.reset()) {
                // The folder was deleted or moved: keep rescanning; re-register if it comes back.
                reRegisterLater();
            }
            key = w.poll();
        } while (key != null);
        return true;
    }

    private void reRegisterLater() {
        WatchService w = watcher;
        if (w != null && Files.isDirectory(dir)) {
            try {
                dir.register(w, StandardWatchEventKinds.ENTRY_CREATE, StandardWatchEventKinds.ENTRY_MODIFY,
                        StandardWatchEventKinds.ENTRY_DELETE);
            } catch (IOException | ClosedWatchServiceException e) {
                LOG.log(Level.DEBUG, "cannot watch {0} again yet: {1}", dir, e.toString());
            }
        }
    }

    /**
     * One pass over the folder.
     *
     * @return nanoseconds until every pending jar may be ready, or -1 if nothing is pending
     */
    private long scan() {
        scanLock.lock();
        try {
            Map<Path, Signature> present = list();
            if (present == null) {
                return -1;
            }
            long now = System.nanoTime();
            long wait = -1;
            for (Map.Entry<Path, Signature> e : present.entrySet()) {
                if (closed) {
                    return -1;
                }
                long w = examine(e.getKey(), e.getValue(), now);
                // The longest wait, not the shortest: jars that settle together are then loaded in one
                // pass, in name order, rather than in the order their writers happened to finish.
                wait = Math.max(wait, w);
            }
            for (Path gone : new ArrayList<>(tracked.keySet())) {
                if (!present.containsKey(gone)) {
                    removed(gone, tracked.remove(gone));
                }
            }
            promoteOutranked();
            return wait;
        } finally {
            scanLock.unlock();
        }
    }

    /** True for a file name the watcher loads: {@code *.jar} or {@code *.so}, not hidden (a dot first). */
    public static boolean isModuleJar(Path file) {
        String name = file.getFileName().toString();
        return (name.endsWith(".jar") || name.endsWith(".so")) && !name.startsWith(".");
    }

    /** The jars in the folder by path, in name order; null if the folder cannot be read (nothing is retired then). */
    private Map<Path, Signature> list() {
        Map<Path, Signature> out = new TreeMap<>();
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "*.{jar,so}")) {
            for (Path p : files) {
                if (!isModuleJar(p)) {
                    continue;
                }
                try {
                    BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class);
                    if (a.isRegularFile()) {
                        out.put(p, new Signature(a.size(), a.lastModifiedTime().to(TimeUnit.NANOSECONDS), a.fileKey()));
                    }
                } catch (NoSuchFileException raced) {
                    // deleted between listing and reading: treat as absent
                }
            }
            dirMissingReported = false;
            return out;
        } catch (IOException e) {
            // A folder that vanished (unmounted, mid-redeploy) must not unload every module: wait for it.
            if (!dirMissingReported) {
                LOG.log(Level.ERROR, "cannot read autoload folder {0}: {1}; modules loaded from it keep running; create the folder"
                        + " or fix its permissions", dir, e.toString());
                dirMissingReported = true;
            }
            return null;
        }
    }

    /** Handles one present jar; returns nanoseconds until it may be ready, or -1 if it needs nothing. */
    private long examine(Path jar, Signature sig, long now) {
        Tracked t = tracked.computeIfAbsent(jar, p -> new Tracked());
        if (!sig.equals(t.seen)) {
            t.seen = sig;
            t.seenSince = now;
        }
        if (sig.equals(t.handled)) {
            return -1;
        }
        // Stable means: unchanged since we first saw it 300 ms ago, or not modified for 300 ms by its own
        // clock (so a jar that was already complete at start-up loads without waiting).
        long quiet = Math.max(now - t.seenSince, System.currentTimeMillis() * 1_000_000L - sig.mtimeNanos());
        if (quiet < STABLE_NANOS) {
            return STABLE_NANOS - quiet;
        }
        t.handled = sig;
        String sha = sha256(jar);
        if (sha == null) {
            t.handled = null; // unreadable just now (deleted or being replaced): look again next scan
            return -1;
        }
        if (sha.equals(t.sha)) {
            return -1; // touched, not changed
        }
        load(jar, t, sha);
        return -1;
    }

    private void load(Path jar, Tracked t, String sha) {
        load(jar, t, sha, false);
    }

    /**
     * Loads the jar at {@code jar}, each module only if no other jar of the folder has a better claim to its name.
     *
     * @param keepRunning true to leave the modules already running from this same content alone (a jar loaded again
     *                    because the module that outranked one of its modules has gone)
     */
    private void load(Path jar, Tracked t, String sha, boolean keepRunning) {
        List<LoadedModule> before = live(t.modules);
        Set<String> running = new HashSet<>();
        if (keepRunning) {
            before.stream().filter(m -> m.state().attachesNew()).forEach(m -> running.add(m.name()));
        }
        Map<String, String> declares = new LinkedHashMap<>();
        Set<String> outranked = new HashSet<>();
        Predicate<ModuleDescriptor> admit = d -> {
            if (running.contains(d.name())) {
                declares.put(d.name(), d.version());
                return false;
            }
            Map.Entry<Path, String> rival = bestRival(jar, d.name());
            if (rival == null) {
                return true;
            }
            boolean wins = outranks(d.version(), jar, rival.getValue(), rival.getKey());
            Path winner = wins ? jar : rival.getKey();
            Path loser = wins ? rival.getKey() : jar;
            LOG.log(Level.WARNING, "autoload: module {0} is declared by two jars of {1}: {2} ({0} {3}) and {4} ({0} {5}); {6} wins ({7}),"
                    + " {8}''s {0} {9}; remove the jar you do not mean to run", d.name(), dir, jar.getFileName(), d.version(),
                    rival.getKey().getFileName(), rival.getValue(), winner.getFileName(), why(d.version(), rival.getValue()),
                    loser.getFileName(), wins ? "retires" : "is not loaded");
            if (wins) {
                tracked.get(rival.getKey()).outranked.add(d.name());
                return true;
            }
            declares.put(d.name(), d.version());
            outranked.add(d.name());
            return false;
        };
        List<LoadedModule> loaded;
        try {
            loaded = registry.load(jar, configs, admit);
        } catch (ModuleLoadException e) {
            // The registry logged the details and keeps them in failures().
            RETRIES.log(jar.toString(), Level.ERROR, "autoload: {0} was not loaded{1}; it will be retried when the file changes (to put a"
                            + " jar in the folder in one step, copy it under a name starting with a dot and rename it)", jar,
                    before.isEmpty() ? "" : " (the modules loaded from its previous version keep running)");
            t.modules = before;
            if (!keepRunning) {
                t.declares = declares;
                t.outranked = outranked;
            }
            return;
        }
        Set<String> kept = new HashSet<>(running);
        for (LoadedModule m : loaded) {
            kept.add(m.name());
            declares.put(m.name(), m.version());
        }
        // A module of the new version that failed keeps its predecessor running, like a jar that failed whole.
        for (Failure f : registry.failures()) {
            if (f.source().equals(jar.toString()) && f.module() != null) {
                kept.add(f.module());
            }
        }
        List<LoadedModule> now = new ArrayList<>(loaded);
        for (LoadedModule old : before) {
            if (loaded.contains(old)) {
                continue;
            }
            if (!kept.contains(old.name())) {
                LOG.log(Level.INFO, "autoload: {0} is no longer in {1}; retiring it", old.id(), jar);
                old.retire();
            } else if (!old.isUnloaded() && !old.state().leaving() && old.state() != ModuleState.DEPRECATED) {
                now.add(old);
            }
        }
        t.sha = sha;
        t.modules = List.copyOf(now);
        if (keepRunning) {
            t.declares.putAll(declares);
            t.outranked.removeAll(kept);
            t.outranked.addAll(outranked);
        } else {
            t.declares = declares;
            t.outranked = outranked;
        }
        if (!loaded.isEmpty()) {
            LOG.log(Level.INFO, "autoload: loaded {0} from {1}", loaded.stream().map(LoadedModule::id).toList(), jar);
        }
    }

    /** The other jar of the folder with the best claim to module {@code name}: its path and the version it declares; or null. */
    private Map.Entry<Path, String> bestRival(Path jar, String name) {
        Map.Entry<Path, String> best = null;
        for (Map.Entry<Path, Tracked> e : tracked.entrySet()) {
            String v = e.getValue().declares.get(name);
            if (v == null || e.getKey().equals(jar)) {
                continue;
            }
            if (best == null || outranks(v, e.getKey(), best.getValue(), best.getKey())) {
                best = Map.entry(e.getKey(), v);
            }
        }
        return best;
    }

    /**
     * True if version {@code v} from {@code jar} wins over version {@code w} from {@code other}: the higher version; at equal
     * versions, the file name that sorts first.
     */
    static boolean outranks(String v, Path jar, String w, Path other) {
        int c = compareVersions(v, w);
        return c != 0 ? c > 0 : jar.getFileName().toString().compareTo(other.getFileName().toString()) < 0;
    }

    private static String why(String v, String w) {
        return compareVersions(v, w) == 0 ? "same version; its file name sorts first" : "higher version";
    }

    /**
     * Compares module versions ({@code MAJOR.MINOR.PATCH[-qualifier]}) as semantic versions: numbers numerically; a version
     * with a qualifier before the same one without ({@code 1.0.0-rc1 < 1.0.0}); qualifiers by their dot-separated parts,
     * numbers numerically and before words.
     */
    static int compareVersions(String a, String b) {
        String[] pa = a.split("-", 2);
        String[] pb = b.split("-", 2);
        int c = compareParts(pa[0], pb[0]);
        if (c != 0) {
            return c;
        }
        if (pa.length == 1 || pb.length == 1) {
            return Integer.compare(pb.length, pa.length);
        }
        return compareParts(pa[1], pb[1]);
    }

    private static int compareParts(String a, String b) {
        String[] xa = a.split("\\.");
        String[] xb = b.split("\\.");
        for (int i = 0; i < Math.min(xa.length, xb.length); i++) {
            boolean na = xa[i].matches("\\d+");
            boolean nb = xb[i].matches("\\d+");
            int c = na && nb ? new java.math.BigInteger(xa[i]).compareTo(new java.math.BigInteger(xb[i]))
                    : na != nb ? (na ? -1 : 1) : xa[i].compareTo(xb[i]);
            if (c != 0) {
                return c;
            }
        }
        return Integer.compare(xa.length, xb.length);
    }

    /**
     * Loads, for every module name no jar of the folder runs any more, the module that another jar of the folder declared but
     * that lost to it (the jar that ran it was removed, changed or lost in its turn).
     */
    private void promoteOutranked() {
        Set<Path> reloaded = new HashSet<>();
        boolean again = true;
        while (again && !closed) {
            again = false;
            Map<String, Path> best = new TreeMap<>();
            for (Map.Entry<Path, Tracked> e : tracked.entrySet()) {
                for (String name : e.getValue().outranked) {
                    if (runsFromFolder(name) || reloaded.contains(e.getKey())) {
                        continue;
                    }
                    Path b = best.get(name);
                    String v = e.getValue().declares.get(name);
                    if (v != null && (b == null || outranks(v, e.getKey(), tracked.get(b).declares.get(name), b))) {
                        best.put(name, e.getKey());
                    }
                }
            }
            for (Map.Entry<String, Path> e : best.entrySet()) {
                Path jar = e.getValue();
                if (reloaded.add(jar)) {
                    Tracked t = tracked.get(jar);
                    LOG.log(Level.INFO, "autoload: no jar of {0} runs module {1} any more; loading it from {2}", dir, e.getKey(), jar.getFileName());
                    load(jar, t, t.sha, true);
                    again = true;
                }
            }
        }
    }

    /** True if a module named {@code name} that takes new connections was loaded from a jar of the folder. */
    private boolean runsFromFolder(String name) {
        for (Tracked t : tracked.values()) {
            for (LoadedModule m : t.modules) {
                if (m.name().equals(name) && m.state().attachesNew() && !m.isUnloaded()) {
                    return true;
                }
            }
        }
        return false;
    }

    /**
     * Each module name that two or more jars of the folder declare, as one line: the jars, their versions, which one runs and
     * why; for {@code run --check} and status reports. Any thread.
     */
    public List<String> clashes() {
        scanLock.lock();
        try {
            Map<String, List<Path>> byName = new TreeMap<>();
            tracked.forEach((path, t) -> t.declares.keySet().forEach(n -> byName.computeIfAbsent(n, k -> new ArrayList<>()).add(path)));
            List<String> out = new ArrayList<>();
            for (Map.Entry<String, List<Path>> e : byName.entrySet()) {
                if (e.getValue().size() < 2) {
                    continue;
                }
                String name = e.getKey();
                List<Path> jars = new ArrayList<>(e.getValue());
                jars.sort((a, b) -> outranks(tracked.get(a).declares.get(name), a, tracked.get(b).declares.get(name), b) ? -1 : 1);
                Path winner = jars.getFirst();
                String v = tracked.get(winner).declares.get(name);
                StringBuilder sb = new StringBuilder("module " + name + " is declared by " + jars.size() + " jars of " + dir + ": ");
                for (int i = 0; i < jars.size(); i++) {
                    sb.append(i == 0 ? "" : ", ").append(jars.get(i).getFileName()).append(" (").append(tracked.get(jars.get(i)).declares.get(name))
                            .append(')');
                }
                sb.append("; ").append(winner.getFileName()).append(" wins (")
                        .append(why(v, tracked.get(jars.get(1)).declares.get(name))).append("), the other").append(jars.size() > 2 ? "s are" : " is")
                        .append(" not loaded; remove the jar").append(jars.size() > 2 ? "s" : "").append(" you do not mean to run");
                out.add(sb.toString());
            }
            return out;
        } finally {
            scanLock.unlock();
        }
    }

    private void removed(Path jar, Tracked t) {
        registry.forgetFailures(jar.toAbsolutePath().normalize().toString());
        List<LoadedModule> live = live(t.modules);
        if (!live.isEmpty()) {
            LOG.log(Level.INFO, "autoload: {0} was removed; retiring {1}", jar, live.stream().map(LoadedModule::id).toList());
        }
        for (LoadedModule m : live) {
            m.retire();
        }
    }

    private static List<LoadedModule> live(List<LoadedModule> modules) {
        List<LoadedModule> out = new ArrayList<>();
        for (LoadedModule m : modules) {
            if (!m.isUnloaded() && !m.state().leaving()) {
                out.add(m);
            }
        }
        return out;
    }

    /** The SHA-256 of the file, or null if it cannot be read right now. */
    private static String sha256(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[64 * 1024];
            for (int n; (n = in.read(buf)) > 0; ) {
                md.update(buf, 0, n);
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (IOException e) {
            LOG.log(Level.DEBUG, "cannot read {0} yet: {1}", file, e.toString());
            return null;
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("this JDK has no SHA-256", e);
        }
    }

    private static void sleepNanos(long nanos) {
        if (nanos <= 0) {
            return;
        }
        try {
            TimeUnit.NANOSECONDS.sleep(nanos);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
