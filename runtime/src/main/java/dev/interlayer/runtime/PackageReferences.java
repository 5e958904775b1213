package dev.interlayer.runtime;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The references on a package ({@link JarPackage}, {@link NativePackage}): one "loading" reference from its creation until
 * discovery is over, one per module from just before the module is added until its unload. The release that drops the last
 * one is the only one that answers true, so the package closes exactly once. Thread-safe.
 */
final class PackageReferences {

    private final String what;
    private final AtomicInteger references = new AtomicInteger(1);
    private final AtomicBoolean closed = new AtomicBoolean();
    private final List<String> moduleIds = new CopyOnWriteArrayList<>();

    /** @param what the package for messages, e.g. {@code jar /x/tag.jar} */
    PackageReferences(String what) {
        this.what = what;
    }

    /** Takes a reference for a module about to be added. */
    void retain() {
        references.incrementAndGet();
    }

    /** Records that a module of the package was added. */
    void loaded(LoadedModule m) {
        moduleIds.add(m.id());
    }

    /** Ids ({@code name@version}) of the modules loaded from the package so far. */
    List<String> moduleIds() {
        return List.copyOf(moduleIds);
    }

    /** True once the last reference was released. */
    boolean isClosed() {
        return closed.get();
    }

    /**
     * Drops a reference; true if it was the last, and the caller must close the package now.
     *
     * @throws IllegalStateException on a release without a reference (it would close the package under a running module)
     */
    boolean release() {
        int left = references.decrementAndGet();
        if (left < 0) {
            references.incrementAndGet();
            throw new IllegalStateException(what + " released more often than its modules were loaded");
        }
        return left == 0 && closed.compareAndSet(false, true);
    }
}
