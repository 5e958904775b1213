package dev.interlayer.runtime;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A module jar loaded by {@link ModuleRegistry#loadJar}: its cached copy, its class loader and the
 * modules that came from it.
 *
 * <p>Lifecycle: the registry creates it holding one "loading" reference, adds one reference per module
 * before that module is added, drops the reference of every module that failed, and drops the loading
 * reference when discovery is over. Each module's unload calls {@link #release()}; the last release
 * closes the class loader, lets the registry look for threads the jar left running, and frees the cached
 * copy. So a jar whose modules all failed is closed at the end of {@code loadJar}, and a jar with
 * running modules stays open exactly as long as one of them is loaded.
 *
 * <p>Thread-safe: releases may come from any thread (the engine's event loops, control calls).
 */
public final class JarPackage implements PackageRef {

    private static final System.Logger LOG = System.getLogger("interlayer.runtime");

    private final ModuleRegistry registry;
    private final String location;
    private final String sha256;
    private final Path cachedCopy;
    private final ModuleClassLoader loader;
    private final AtomicInteger references = new AtomicInteger(1);
    private final AtomicBoolean closed = new AtomicBoolean();
    private final List<String> moduleIds = new CopyOnWriteArrayList<>();

    JarPackage(ModuleRegistry registry, String location, String sha256, Path cachedCopy, ModuleClassLoader loader) {
        this.registry = registry;
        this.location = location;
        this.sha256 = sha256;
        this.cachedCopy = cachedCopy;
        this.loader = loader;
    }

    @Override
    public String location() {
        return location;
    }

    @Override
    public String sha256() {
        return sha256;
    }

    @Override
    public ModuleClassLoader loader() {
        return loader;
    }

    /** The content-addressed copy the loader reads ({@code <cache>/<sha256>.jar}); the original may change freely. */
    public Path cachedCopy() {
        return cachedCopy;
    }

    /** Ids ({@code name@version}) of the modules loaded from this jar so far. */
    public List<String> moduleIds() {
        return List.copyOf(moduleIds);
    }

    /** True once the last module was released and the loader closed. */
    public boolean isClosed() {
        return closed.get();
    }

    /** Takes a reference for a module about to be added. */
    void retain() {
        references.incrementAndGet();
    }

    /** Records that a module of this jar was added. */
    void loaded(LoadedModule m) {
        moduleIds.add(m.id());
    }

    @Override
    public void release() {
        int left = references.decrementAndGet();
        if (left < 0) {
            // A double release would close the loader under a running module; refuse loudly instead.
            references.incrementAndGet();
            throw new IllegalStateException("jar " + location + " released more often than its modules were loaded");
        }
        if (left == 0 && closed.compareAndSet(false, true)) {
            close();
        }
    }

    private void close() {
        try {
            loader.close();
        } catch (IOException e) {
            LOG.log(Level.WARNING, "closing the class loader of {0} failed: {1}", location, e.toString());
        }
        registry.packageClosed(this);
    }

    /** Names the jar's modules for diagnostics, or the jar itself when none was loaded. */
    String who() {
        return moduleIds.isEmpty() ? "jar " + location : String.join(", ", moduleIds) + " (from " + location + ")";
    }

    @Override
    public String toString() {
        return "jar " + location + " (sha256 " + sha256 + ")";
    }
}
