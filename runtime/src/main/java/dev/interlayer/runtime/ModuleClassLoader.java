package dev.interlayer.runtime;

import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.net.URLClassLoader;
import java.security.CodeSigner;
import java.security.CodeSource;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Enumeration;
import java.util.List;
import java.util.jar.JarFile;
import java.util.jar.Manifest;

/**
 * The class loader of one module jar: child-first, except the JDK and the SDK, which always come from
 * the host.
 *
 * <p>Child-first lets a module bundle its own copy of a library the host also has (another version of a
 * JSON parser, say) without either side seeing the other's. The JDK ({@code java.*}, {@code javax.*},
 * {@code jdk.*}, {@code sun.*}, {@code com.sun.*}) and the SDK ({@code dev.interlayer.api.*}) are
 * parent-first so that {@code Module}, {@code Verdict} and friends are the very classes the engine uses:
 * a second copy would make every module fail with {@link ClassCastException}. Service files under
 * {@code META-INF/services/} are looked up in the jar only, so {@link java.util.ServiceLoader} never
 * discovers the host's or another jar's providers through this loader. The agent's own classes
 * ({@code dev.interlayer.*} other than the SDK, and its Netty) are never handed out: a module that names one,
 * even by a computed string, gets {@link ClassNotFoundException} unless its jar has its own copy.
 *
 * <p>Every class the loader defines from the jar gets pre-emption checks ({@link PreemptionPoints}) on its way in, so
 * that the engine can stop a hook that runs past its budget; {@link Preemption}, which those checks call, is
 * delegated to the host like the SDK, so a jar cannot shadow it.
 *
 * <p>Ownership: created and closed by {@link JarPackage}; after {@link #close()} no new class or resource
 * can be loaded, and once nothing refers to the module's objects the loader and its classes can be
 * garbage-collected. Thread-safe (parallel capable).
 */
public final class ModuleClassLoader extends URLClassLoader {

    static {
        registerAsParallelCapable();
    }

    private static final String[] HOST_CLASSES = {"java.", "javax.", "jdk.", "sun.", "com.sun.", "dev.interlayer.api."};
    private static final String[] HOST_RESOURCES = {"java/", "javax/", "jdk/", "sun/", "com/sun/", "dev/interlayer/api/"};
    private static final String SERVICES = "META-INF/services/";

    private final String location;
    private final CodeSource codeSource;
    private Manifest manifest; // guarded by codeSource
    private boolean manifestRead;

    /**
     * A loader for the jar at {@code jar} (the runtime's cached copy) with {@code host} as parent.
     *
     * @param location where the jar came from, for names in diagnostics
     * @param jar the jar file to load from
     * @param host the loader that supplies the JDK and the SDK (normally the runtime's own)
     */
    public ModuleClassLoader(String location, URL jar, ClassLoader host) {
        super("module-jar:" + location, new URL[] {jar}, host);
        this.location = location;
        this.codeSource = new CodeSource(jar, (CodeSigner[]) null);
    }

    /** Where the jar came from (the path the user gave, not the cached copy). */
    public String location() {
        return location;
    }

    /** True if {@code className} always comes from the host: the JDK and the SDK. */
    public static boolean isHostClass(String className) {
        for (String p : HOST_CLASSES) {
            if (className.startsWith(p)) {
                return true;
            }
        }
        return false;
    }

    private static boolean isHostResource(String name) {
        for (String p : HOST_RESOURCES) {
            if (name.startsWith(p)) {
                return true;
            }
        }
        return false;
    }

    @Override
    protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
        if (isHostClass(name) || name.equals(Preemption.CLASS_NAME)) {
            return super.loadClass(name, resolve); // parent-first: the standard delegation
        }
        synchronized (getClassLoadingLock(name)) {
            Class<?> c = findLoadedClass(name);
            if (c == null) {
                try {
                    c = findClass(name);
                } catch (ClassNotFoundException notInJar) {
                    if (ModuleVerifier.isAgentInternal(name.replace('.', '/'))) {
                        throw new ClassNotFoundException(name + " is a class of the agent itself; a module sees only dev.interlayer.api,"
                                + " the classes of its own jar and the JDK", notInJar);
                    }
                    c = getParent().loadClass(name);
                }
            }
            if (resolve) {
                resolveClass(c);
            }
            return c;
        }
    }

    /** Defines a class of the jar with its pre-emption checks added (see {@link PreemptionPoints}). */
    @Override
    protected Class<?> findClass(String name) throws ClassNotFoundException {
        String path = name.replace('.', '/').concat(".class");
        byte[] bytes;
        try (InputStream in = findResource(path) == null ? null : getResourceAsStream(path)) { // closed with the loader
            if (in == null) {
                throw new ClassNotFoundException(name);
            }
            bytes = PreemptionPoints.instrument(in.readAllBytes());
        } catch (IOException e) {
            throw new ClassNotFoundException("cannot read class " + name + " from module jar " + location + ": " + e, e);
        } catch (IllegalArgumentException e) {
            throw new ClassFormatError("class " + name + " of module jar " + location + " cannot be given the checks that let the"
                    + " agent stop a hook that overruns its budget: " + e.getMessage() + "; rebuild the jar with a current Java compiler");
        }
        definePackageOf(name);
        return defineClass(name, bytes, 0, bytes.length, codeSource);
    }

    /** Defines the package of {@code className} as URLClassLoader would, with the jar's manifest attributes. */
    private void definePackageOf(String className) {
        int dot = className.lastIndexOf('.');
        if (dot < 0 || getDefinedPackage(className.substring(0, dot)) != null) {
            return;
        }
        String pkg = className.substring(0, dot);
        try {
            Manifest m = manifest();
            if (m != null) {
                definePackage(pkg, m, codeSource.getLocation());
            } else {
                definePackage(pkg, null, null, null, null, null, null, null);
            }
        } catch (IllegalArgumentException definedMeanwhile) {
            // another thread defined it first (parallel capable): the same package
        }
    }

    private Manifest manifest() {
        synchronized (codeSource) {
            if (!manifestRead) {
                manifestRead = true;
                try (InputStream in = findResource(JarFile.MANIFEST_NAME) == null ? null : getResourceAsStream(JarFile.MANIFEST_NAME)) {
                    manifest = in == null ? null : new Manifest(in);
                } catch (IOException e) {
                    manifest = null; // a damaged manifest only loses the package's version attributes
                }
            }
            return manifest;
        }
    }

    @Override
    public URL getResource(String name) {
        if (isHostResource(name)) {
            return super.getResource(name);
        }
        URL own = findResource(name);
        if (own != null || name.startsWith(SERVICES)) {
            return own;
        }
        return getParent().getResource(name);
    }

    @Override
    public Enumeration<URL> getResources(String name) throws IOException {
        if (isHostResource(name)) {
            return super.getResources(name);
        }
        if (name.startsWith(SERVICES)) {
            return findResources(name);
        }
        List<URL> all = new ArrayList<>(Collections.list(findResources(name)));
        all.addAll(Collections.list(getParent().getResources(name)));
        return Collections.enumeration(all);
    }

    @Override
    public String toString() {
        return "ModuleClassLoader[" + location + "]";
    }
}
