package dev.interlayer.runtime;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * What a loaded package ({@link JarPackage}, {@link NativePackage}) has whatever its kind: where it came from, its
 * content-addressed copy in the module cache, and its references. One "loading" reference from its creation until
 * discovery is over, one per module from just before the module is added until its unload; the release that drops the
 * last one closes the package, exactly once ({@link #close()}). Thread-safe: releases may come from any thread.
 */
abstract sealed class CachedPackage implements PackageRef permits JarPackage, NativePackage {

    private final String location;
    private final String sha256;
    private final Path cachedCopy;
    private final AtomicInteger references = new AtomicInteger(1);
    private final AtomicBoolean closed = new AtomicBoolean();
    private final List<String> moduleIds = new CopyOnWriteArrayList<>();

    CachedPackage(String location, String sha256, Path cachedCopy) {
        this.location = location;
        this.sha256 = sha256;
        this.cachedCopy = cachedCopy;
    }

    @Override
    public final String location() {
        return location;
    }

    @Override
    public final String sha256() {
        return sha256;
    }

    /** The content-addressed copy that is loaded ({@code <cache>/<sha256>.jar} or {@code .so}); the original may change freely. */
    public final Path cachedCopy() {
        return cachedCopy;
    }

    /** Ids ({@code name@version}) of the modules loaded from this package so far. */
    public final List<String> moduleIds() {
        return List.copyOf(moduleIds);
    }

    /** True once the last module was released and the package closed. */
    public final boolean isClosed() {
        return closed.get();
    }

    /** Takes a reference for a module about to be added. */
    final void retain() {
        references.incrementAndGet();
    }

    /** Records that a module of this package was added. */
    final void loaded(LoadedModule m) {
        moduleIds.add(m.id());
    }

    /**
     * Drops a reference; the last one closes the package.
     *
     * @throws IllegalStateException on a release without a reference (it would close the package under a running module)
     */
    @Override
    public final void release() {
        int left = references.decrementAndGet();
        if (left < 0) {
            references.incrementAndGet();
            throw new IllegalStateException(this + " released more often than its modules were loaded");
        }
        if (left == 0 && closed.compareAndSet(false, true)) {
            close();
        }
    }

    /** Lets the package go (its class loader, or its mapping): runs once, after the last release. */
    abstract void close();
}
