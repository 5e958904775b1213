package dev.interlayer.runtime;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Path;
import java.util.List;

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
    private final PackageReferences references;

    JarPackage(ModuleRegistry registry, String location, String sha256, Path cachedCopy, ModuleClassLoader loader) {
        this.registry = registry;
        this.location = location;
        this.sha256 = sha256;
        this.cachedCopy = cachedCopy;
        this.loader = loader;
        this.references = new PackageReferences("jar " + location);
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
        return references.moduleIds();
    }

    /** True once the last module was released and the loader closed. */
    public boolean isClosed() {
        return references.isClosed();
    }

    /** Takes a reference for a module about to be added. */
    void retain() {
        references.retain();
    }

    /** Records that a module of this jar was added. */
    void loaded(LoadedModule m) {
        references.loaded(m);
    }

    @Override
    public void release() {
        if (references.release()) {
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
        List<String> ids = references.moduleIds();
        return ids.isEmpty() ? "jar " + location : String.join(", ", ids) + " (from " + location + ")";
    }

    @Override
    public String toString() {
        return "jar " + location + " (sha256 " + sha256 + ")";
    }
}
