package dev.interlayer.runtime.testing;

import dev.interlayer.api.Module;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.jar.Attributes;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.tools.Diagnostic;
import javax.tools.DiagnosticCollector;
import javax.tools.FileObject;
import javax.tools.ForwardingJavaFileManager;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.SimpleJavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.StandardLocation;
import javax.tools.ToolProvider;

/**
 * Builds real module jars for tests: compiles Java source strings against the SDK on the test class
 * path with the JDK's compiler and writes a jar, with or without a service file and with any extra
 * entries (a copy of SDK classes, to simulate a jar that bundles the SDK).
 *
 * <pre>{@code
 * Path jar = TestJars.jar()
 *     .source("com.example.Upper", TestJars.streamModule("com.example.Upper", "upper", "1.0.0"))
 *     .service("com.example.Upper")
 *     .write(dir.resolve("upper.jar"));
 * }</pre>
 *
 * <p>Not thread-safe per builder; builders are independent. Used by the runtime's tests and, through
 * the runtime's test-jar, by the end-to-end tests.
 */
public final class TestJars {

    private static final Pattern TYPE_NAME = Pattern.compile("(?:class|interface|enum|record)\\s+([A-Za-z_$][A-Za-z0-9_$]*)");

    private TestJars() {}

    /** Starts an empty jar. */
    public static Builder jar() {
        return new Builder();
    }

    /**
     * Source of a minimal {@code StreamModule} named {@code name} at {@code version}, declaring stream
     * {@code major.minor} of the host, with {@code body} pasted into the class (extra methods or fields).
     */
    public static String streamModule(String className, String name, String version, String body) {
        int dot = className.lastIndexOf('.');
        String pkg = dot < 0 ? "" : "package " + className.substring(0, dot) + ";\n";
        String simple = className.substring(dot + 1);
        return pkg + """
                import dev.interlayer.api.*;
                public class %s implements StreamModule<Object> {
                    public ModuleDescriptor descriptor() {
                        return ModuleDescriptor.builder("%s", "%s").implement(InterfaceType.STREAM, 1, 0).build();
                    }
                %s
                }
                """.formatted(simple, name, version, body == null ? "" : body);
    }

    /** {@link #streamModule(String, String, String, String)} with no extra body. */
    public static String streamModule(String className, String name, String version) {
        return streamModule(className, name, version, "");
    }

    /** The bytes of a class as the host loaded it (e.g. an SDK class, to build a jar that bundles the SDK). */
    public static byte[] classBytes(Class<?> c) {
        String resource = c.getName().replace('.', '/') + ".class";
        try (InputStream in = c.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("no class file for " + c.getName() + " on the class path");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The entry name of a class file: {@code dev/interlayer/api/Module.class}. */
    public static String entryName(Class<?> c) {
        return c.getName().replace('.', '/') + ".class";
    }

    /** Writes {@code jar} to {@code target} through a temporary file and an atomic rename, as a careful deployer would. */
    public static Path deploy(Path jar, Path target) {
        try {
            Path tmp = Files.createTempFile(target.getParent(), ".deploy-", ".tmp");
            Files.copy(jar, tmp, StandardCopyOption.REPLACE_EXISTING);
            return Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Collects sources and entries for one jar. */
    public static final class Builder {
        private final Map<String, String> sources = new LinkedHashMap<>();
        private final Set<String> services = new LinkedHashSet<>();
        private final Map<String, byte[]> entries = new LinkedHashMap<>();
        private boolean serviceFile;

        private Builder() {}

        /** Adds a compilation unit for {@code className} (its fully qualified name). */
        public Builder source(String className, String code) {
            sources.put(className, code);
            return this;
        }

        /** Adds a compilation unit, its class name taken from the package and the first type declared. */
        public Builder source(String code) {
            Matcher pkg = Pattern.compile("package\\s+([\\w.]+)\\s*;").matcher(code);
            Matcher type = TYPE_NAME.matcher(code);
            if (!type.find()) {
                throw new IllegalArgumentException("no type declaration found in source:\n" + code);
            }
            return source((pkg.find() ? pkg.group(1) + "." : "") + type.group(1), code);
        }

        /** Lists module classes in {@code META-INF/services/dev.interlayer.api.Module} (the file is written even if empty). */
        public Builder service(String... moduleClasses) {
            serviceFile = true;
            services.addAll(List.of(moduleClasses));
            return this;
        }

        /** Adds a raw entry, such as a copy of an SDK class file. */
        public Builder entry(String name, byte[] bytes) {
            entries.put(name, bytes.clone());
            return this;
        }

        /** Adds a text entry. */
        public Builder entry(String name, String text) {
            return entry(name, text.getBytes(StandardCharsets.UTF_8));
        }

        /** Compiles the sources and writes the jar to {@code target} (parent directories created); returns it. */
        public Path write(Path target) {
            byte[] bytes = bytes();
            try {
                if (target.getParent() != null) {
                    Files.createDirectories(target.getParent());
                }
                Files.write(target, bytes);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return target;
        }

        /** Compiles the sources and returns the jar's bytes. */
        public byte[] bytes() {
            Map<String, byte[]> classes = compile(sources);
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            Manifest manifest = new Manifest();
            manifest.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
            try (JarOutputStream out = new JarOutputStream(buf, manifest)) {
                Set<String> dirs = new LinkedHashSet<>();
                for (Map.Entry<String, byte[]> c : classes.entrySet()) {
                    put(out, dirs, c.getKey().replace('.', '/') + ".class", c.getValue());
                }
                if (serviceFile) {
                    StringBuilder sb = new StringBuilder("# modules in this jar\n");
                    services.forEach(s -> sb.append(s).append('\n'));
                    put(out, dirs, "META-INF/services/" + Module.class.getName(), sb.toString().getBytes(StandardCharsets.UTF_8));
                }
                for (Map.Entry<String, byte[]> e : entries.entrySet()) {
                    put(out, dirs, e.getKey(), e.getValue());
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return buf.toByteArray();
        }

        private static void put(JarOutputStream out, Set<String> dirs, String name, byte[] bytes) throws IOException {
            int slash = name.indexOf('/');
            while (slash > 0) {
                String dir = name.substring(0, slash + 1);
                if (!dir.equals("META-INF/") && dirs.add(dir)) {
                    out.putNextEntry(new JarEntry(dir));
                    out.closeEntry();
                }
                slash = name.indexOf('/', slash + 1);
            }
            out.putNextEntry(new JarEntry(name));
            out.write(bytes);
            out.closeEntry();
        }
    }

    /** Compiles {@code sources} (class name to code) in memory against the test class path; class name to bytes. */
    static Map<String, byte[]> compile(Map<String, String> sources) {
        if (sources.isEmpty()) {
            return Map.of();
        }
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        if (javac == null) {
            throw new IllegalStateException("no Java compiler: run the tests on a JDK, not a JRE");
        }
        DiagnosticCollector<JavaFileObject> diagnostics = new DiagnosticCollector<>();
        Map<String, ByteArrayOutputStream> out = new LinkedHashMap<>();
        List<JavaFileObject> units = new ArrayList<>();
        sources.forEach((name, code) -> units.add(new SourceFile(name, code)));
        try (StandardJavaFileManager std = javac.getStandardFileManager(diagnostics, Locale.ROOT, StandardCharsets.UTF_8);
             ForwardingJavaFileManager<StandardJavaFileManager> files = new ForwardingJavaFileManager<>(std) {
                 @Override
                 public JavaFileObject getJavaFileForOutput(Location location, String className, JavaFileObject.Kind kind, FileObject sibling) {
                     return new SimpleJavaFileObject(URI.create("mem:///" + className.replace('.', '/') + kind.extension), kind) {
                         @Override
                         public OutputStream openOutputStream() {
                             ByteArrayOutputStream b = new ByteArrayOutputStream();
                             out.put(className, b);
                             return b;
                         }
                     };
                 }
             }) {
            std.setLocation(StandardLocation.CLASS_PATH, classPath());
            List<String> options = List.of("--release", Integer.toString(Runtime.version().feature()), "-proc:none", "-Xlint:none");
            boolean ok = javac.getTask(null, files, diagnostics, options, null, units).call();
            if (!ok) {
                StringBuilder sb = new StringBuilder("test module sources do not compile:\n");
                for (Diagnostic<? extends JavaFileObject> d : diagnostics.getDiagnostics()) {
                    sb.append("  ").append(d.getSource() == null ? "" : d.getSource().getName() + ":" + d.getLineNumber() + ": ")
                            .append(d.getMessage(Locale.ROOT)).append('\n');
                }
                throw new IllegalArgumentException(sb.toString());
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Map<String, byte[]> classes = new LinkedHashMap<>();
        out.forEach((name, b) -> classes.put(name, b.toByteArray()));
        return classes;
    }

    /**
     * The SDK's location (wherever the host loaded {@link Module} from) followed by the test class path,
     * so sources see the SDK and, for child-first tests, the host's own copies of classes.
     */
    private static List<File> classPath() {
        List<File> cp = new ArrayList<>();
        try {
            cp.add(Path.of(Module.class.getProtectionDomain().getCodeSource().getLocation().toURI()).toFile());
        } catch (URISyntaxException | RuntimeException e) {
            throw new IllegalStateException("cannot locate the SDK (interlayer-api) on the test class path", e);
        }
        for (String entry : System.getProperty("java.class.path", "").split(File.pathSeparator)) {
            if (!entry.isBlank()) {
                cp.add(new File(entry));
            }
        }
        return cp;
    }

    private static final class SourceFile extends SimpleJavaFileObject {
        private final String code;

        SourceFile(String className, String code) {
            super(URI.create("string:///" + className.replace('.', '/') + Kind.SOURCE.extension), Kind.SOURCE);
            this.code = code;
        }

        @Override
        public CharSequence getCharContent(boolean ignoreEncodingErrors) {
            return code;
        }
    }
}
