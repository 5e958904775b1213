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
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Function;

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
 * <p>Only regular files named {@code *.jar} not starting with a dot count, so a deployer can write
 * {@code .name.jar.tmp} or {@code name.jar.part} and rename it into place; a jar written in place is
 * loaded once it has stopped changing. Changes are noticed through a {@link WatchService} and, as a
 * fallback for file systems that do not report events, by a rescan every two seconds.
 *
 * <p>Threading: {@link #start()} runs a daemon thread named {@code interlayer-autoload}; scans (from it
 * or from {@link #scanNow()}) are serialized. Closing the watcher stops watching; the modules it
 * loaded stay loaded (the registry owns them).
 */
public final class AutoloadWatcher implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.runtime.autoload");

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
            return wait;
        } finally {
            scanLock.unlock();
        }
    }

    /** The jars in the folder by path, in name order; null if the folder cannot be read (nothing is retired then). */
    private Map<Path, Signature> list() {
        Map<Path, Signature> out = new TreeMap<>();
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "*.jar")) {
            for (Path p : files) {
                if (p.getFileName().toString().startsWith(".")) {
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
        List<LoadedModule> before = live(t.modules);
        List<LoadedModule> loaded;
        try {
            loaded = registry.loadJar(jar, configs);
        } catch (ModuleLoadException e) {
            // The registry logged the details and keeps them in failures().
            LOG.log(Level.ERROR, "autoload: {0} was not loaded{1}; it will be retried when the file changes", jar,
                    before.isEmpty() ? "" : " (the modules loaded from its previous version keep running)");
            t.modules = before;
            return;
        }
        Set<String> kept = new HashSet<>();
        for (LoadedModule m : loaded) {
            kept.add(m.name());
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
        LOG.log(Level.INFO, "autoload: loaded {0} from {1}", loaded.stream().map(LoadedModule::id).toList(), jar);
    }

    private void removed(Path jar, Tracked t) {
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
