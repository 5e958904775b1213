package dev.interlayer.runtime;

/**
 * The package (jar, or the host itself for built-in modules) a module was loaded from.
 *
 * <p>Several modules may share one package; the package closes its class loader when the last of them
 * has released it.
 */
public interface PackageRef {

    /** Where the package came from: a jar path, or {@code builtin:...}. */
    String location();

    /** SHA-256 of the package bytes in hex, or empty for built-in modules. */
    String sha256();

    /** The class loader of the package's modules; every call into module code runs with it as context loader. */
    ClassLoader loader();

    /** Called once per module of this package after its fini; the last release closes the loader. */
    void release();

    /** A package for modules that live on the host's class path (tests, built-ins): release does nothing. */
    static PackageRef builtin(String name, ClassLoader loader) {
        return new PackageRef() {
            @Override public String location() { return "builtin:" + name; }
            @Override public String sha256() { return ""; }
            @Override public ClassLoader loader() { return loader; }
            @Override public void release() {}
        };
    }
}
