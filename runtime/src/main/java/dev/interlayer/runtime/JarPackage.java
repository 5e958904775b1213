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
public final class JarPackage extends CachedPackage {

    private static final System.Logger LOG = System.getLogger("interlayer.runtime");

    private final ModuleRegistry registry;
    private final ModuleClassLoader loader;

    JarPackage(ModuleRegistry registry, String location, String sha256, Path cachedCopy, ModuleClassLoader loader) {
        super(location, sha256, cachedCopy);
        this.registry = registry;
        this.loader = loader;
    }

    @Override
    public ModuleClassLoader loader() {
        return loader;
    }

    @Override
    void close() {
        try {
            loader.close();
        } catch (IOException e) {
            LOG.log(Level.WARNING, "closing the class loader of {0} failed: {1}", location(), e.toString());
        }
        registry.packageClosed(this);
    }

    /** Names the jar's modules for diagnostics, or the jar itself when none was loaded. */
    String who() {
        List<String> ids = moduleIds();
        return ids.isEmpty() ? "jar " + location() : String.join(", ", ids) + " (from " + location() + ")";
    }

    @Override
    public String toString() {
        return "jar " + location() + " (sha256 " + sha256() + ")";
    }
}
