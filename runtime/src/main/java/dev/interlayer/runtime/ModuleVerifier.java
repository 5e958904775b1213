package dev.interlayer.runtime;

import dev.interlayer.api.Capability;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.InterfaceVersion;
import dev.interlayer.api.Module;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.Since;
import java.io.IOException;
import java.io.InputStream;
import java.lang.classfile.Attributes;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassModel;
import java.lang.classfile.CodeElement;
import java.lang.classfile.CodeModel;
import java.lang.classfile.FieldModel;
import java.lang.classfile.MethodModel;
import java.lang.classfile.Opcode;
import java.lang.classfile.constantpool.ClassEntry;
import java.lang.classfile.instruction.ConstantInstruction;
import java.lang.classfile.instruction.ExceptionCatch;
import java.lang.classfile.instruction.FieldInstruction;
import java.lang.classfile.instruction.InvokeDynamicInstruction;
import java.lang.classfile.instruction.InvokeInstruction;
import java.lang.classfile.instruction.LineNumber;
import java.lang.classfile.instruction.NewMultiArrayInstruction;
import java.lang.classfile.instruction.NewObjectInstruction;
import java.lang.classfile.instruction.NewReferenceArrayInstruction;
import java.lang.classfile.instruction.TypeCheckInstruction;
import java.lang.constant.ClassDesc;
import java.lang.constant.ConstantDesc;
import java.lang.constant.DirectMethodHandleDesc;
import java.lang.constant.MethodTypeDesc;
import java.lang.invoke.MethodType;
import java.lang.reflect.AccessFlag;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Deque;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BiPredicate;
import java.util.stream.Collectors;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/**
 * Reads a module's class files before any of its code runs and says what the agent refuses: stopping
 * the JVM, the agent's own classes, the JDK's internals, SDK methods that do not exist or are newer than
 * the interface version the module declares, and uses of a {@link Capability} the module does not
 * declare or the agent's config does not allow.
 *
 * <p>The check is on the bytecode, with the JDK's class-file API: it sees the calls written in the code
 * (including method references and the classes a string constant names for {@code Class.forName}), never
 * what the code computes at run time. It is a guard against a careless module, not a sandbox: see the
 * module guide's "What the agent refuses" for exactly what is and is not caught.
 *
 * <p>Two steps, because capabilities and versions are declared in the descriptor, which is code:
 * <ol>
 *   <li>{@link #scan(Path)} reads every class of the jar, and {@link Scan#refusals} lists what no
 *       declaration allows, plus any capability use in code that runs while the descriptor is read
 *       (static initialisers, the module's constructor, {@code descriptor()}, and what they call), where no
 *       capability can be granted yet. The registry refuses the jar on any of them before defining a
 *       class of it.
 *   <li>Once a module's descriptor is known, {@link Scan#check} compares what the module's code uses
 *       with what it declares and what the config allows.
 * </ol>
 *
 * <pre>{@code
 * ModuleVerifier.Scan scan = ModuleVerifier.scan(jar);
 * List<Violation> early = scan.refusals(List.of("com.example.Upper"));
 * // ... after descriptor():
 * List<Violation> late = scan.check("com.example.Upper", descriptor, allowedByConfig);
 * }</pre>
 *
 * <p>A scan is immutable once built and safe to share between threads.
 */
public final class ModuleVerifier {

    private ModuleVerifier() {}

    /**
     * One refused use, with where it is and how to fix it.
     *
     * @param className the class that uses it (dotted name)
     * @param method the method, as {@code name(ParamType, ...)}, or null for the class itself (a field
     *               type, a superclass)
     * @param line the source line, or -1 when the class file has no line numbers
     * @param target what is used: {@code java.lang.System.exit(int)}, {@code new java.lang.Thread(Runnable)},
     *               {@code uses sun.misc.Unsafe}, {@code Class.forName("dev.interlayer.engine.Engine")}, {@code native method}, or
     *               the capability a module declares but may not use
     * @param capability the capability that would allow it, or null if nothing does
     * @param message the whole report in one line: where, what, why, and the fix
     */
    public record Violation(String className, String method, int line, String target, Capability capability, String message) {
        @Override
        public String toString() {
            return message;
        }
    }

    /**
     * What the verifier found for a module that loaded, for reports ({@code interlayer check-module}).
     *
     * @param classes the class files read in the module's jar
     * @param took how long reading them took
     * @param capabilities the capabilities the module's code uses (each one declared and allowed, or it would not have loaded)
     */
    public record Summary(int classes, Duration took, Set<Capability> capabilities) {
        public Summary {
            capabilities = capabilities.isEmpty() ? Set.of() : java.util.Collections.unmodifiableSet(EnumSet.copyOf(capabilities));
        }
    }

    // ---- the rules -------------------------------------------------------------------------------

    /** A call (or constructor) the rules care about: owner is an internal name, or a package prefix ending in '/'. */
    private record Rule(String owner, BiPredicate<String, String> member, Capability capability, String effect, String fix) {
        boolean matches(String o, String name, String desc) {
            boolean ownerMatches = owner.endsWith("/") ? o.startsWith(owner) : o.equals(owner);
            return ownerMatches && member.test(name, desc);
        }
    }

    private static BiPredicate<String, String> named(String... names) {
        Set<String> set = Set.of(names);
        return (n, d) -> set.contains(n);
    }

    private static final String EXIT_FIX = "a module never stops the agent: return Verdict.error(code, reason) to reset the connection,"
            + " or throw from init() to refuse to start";
    private static final String THREADS_WHY = "creates a thread";
    private static final String COMMON_POOL_WHY = "runs work on the JDK's common pool, outside the agent's hook budget";
    private static final String PROCESS_WHY = "starts a process";
    private static final String NATIVE_WHY = "reaches native code or raw memory";

    private static final List<Rule> RULES = List.of(
            new Rule("java/lang/System", named("exit"), null, "stops the JVM, and with it the agent and every connection", EXIT_FIX),
            new Rule("java/lang/Runtime", named("exit", "halt"), null, "stops the JVM, and with it the agent and every connection", EXIT_FIX),

            new Rule("java/lang/Thread", named("<init>", "ofPlatform", "ofVirtual", "startVirtualThread"), Capability.THREADS, THREADS_WHY, null),
            new Rule("java/util/concurrent/Executors", (n, d) -> n.startsWith("new") || n.endsWith("ThreadFactory"), Capability.THREADS,
                    "creates a thread pool", null),
            new Rule("java/util/concurrent/ThreadPoolExecutor", named("<init>"), Capability.THREADS, "creates a thread pool", null),
            new Rule("java/util/concurrent/ScheduledThreadPoolExecutor", named("<init>"), Capability.THREADS, "creates a thread pool", null),
            new Rule("java/util/concurrent/ForkJoinPool", named("<init>"), Capability.THREADS, "creates a thread pool", null),
            new Rule("java/util/concurrent/ForkJoinPool", named("commonPool"), Capability.THREADS, COMMON_POOL_WHY, null),
            new Rule("java/util/Timer", named("<init>"), Capability.THREADS, THREADS_WHY, null),
            new Rule("java/lang/ref/Cleaner", named("create"), Capability.THREADS, THREADS_WHY, null),
            new Rule("java/util/concurrent/CompletableFuture", (n, d) -> n.endsWith("Async") && !d.contains("Ljava/util/concurrent/Executor;"),
                    Capability.THREADS, COMMON_POOL_WHY, null),
            new Rule("java/util/", named("parallelStream"), Capability.THREADS, COMMON_POOL_WHY, null),
            new Rule("java/util/stream/", named("parallel"), Capability.THREADS, COMMON_POOL_WHY, null),
            new Rule("java/util/Arrays", (n, d) -> n.startsWith("parallel"), Capability.THREADS, COMMON_POOL_WHY, null),

            new Rule("java/lang/Runtime", named("exec"), Capability.PROCESSES, PROCESS_WHY, null),
            new Rule("java/lang/ProcessBuilder", named("<init>", "startPipeline"), Capability.PROCESSES, PROCESS_WHY, null),
            new Rule("java/lang/ProcessHandle", named("destroy", "destroyForcibly"), Capability.PROCESSES, "kills a process", null),

            new Rule("java/lang/System", named("load", "loadLibrary"), Capability.NATIVE, "loads native code", null),
            new Rule("java/lang/Runtime", named("load", "loadLibrary"), Capability.NATIVE, "loads native code", null),
            new Rule("java/lang/foreign/Linker", (n, d) -> true, Capability.NATIVE, "calls native code", null),
            new Rule("java/lang/foreign/SymbolLookup", named("libraryLookup"), Capability.NATIVE, "loads native code", null),
            new Rule("java/lang/foreign/MemorySegment", named("reinterpret"), Capability.NATIVE, NATIVE_WHY, null),
            new Rule("java/lang/foreign/AddressLayout", named("withTargetLayout"), Capability.NATIVE, NATIVE_WHY, null),
            new Rule("java/lang/ModuleLayer$Controller", named("enableNativeAccess"), Capability.NATIVE, NATIVE_WHY, null),

            new Rule("java/lang/reflect/", named("setAccessible", "trySetAccessible"), Capability.REFLECTION,
                    "opens a member Java's access checks close", null),
            new Rule("java/lang/invoke/MethodHandles", named("privateLookupIn"), Capability.REFLECTION,
                    "opens a class's private members", null));

    /** Calls that turn a class name into a class; a constant naming the agent's classes next to them is refused. */
    private static final List<Rule> CLASS_BY_NAME = List.of(
            new Rule("java/lang/Class", named("forName"), null, "", null),
            new Rule("java/lang/", named("loadClass"), null, "", null),
            new Rule("java/net/URLClassLoader", named("loadClass"), null, "", null),
            new Rule("java/lang/invoke/MethodHandles$Lookup", named("findClass"), null, "", null));

    private static String capabilityFix(Capability c) {
        String declare = "add .capability(Capability." + c.name() + ") to the module's descriptor";
        return switch (c) {
            case THREADS -> declare + " and stop the threads in fini(); timed work needs no thread of its own: ModuleEnv.schedule"
                    + " and Attachment.schedule run it on the agent's threads";
            case PROCESSES -> declare + ", or do the work without another process";
            case NATIVE -> declare + "; to change a chunk's bytes in place, ctx.rewrite() needs no capability";
            case REFLECTION -> declare + ", or use public members only";
        };
    }

    /** The agent's own packages, which a module never sees (unless its jar has its own copy of the class). */
    static boolean isAgentInternal(String internalName) {
        return internalName.startsWith("dev/interlayer/") && !internalName.startsWith(API) || internalName.startsWith("io/netty/");
    }

    private static final String API = Module.class.getPackageName().replace('.', '/') + "/";
    private static final String UNSAFE = "sun/misc/Unsafe";

    /** JDK internals: not exported to class-path code, and never offered to modules. */
    private static boolean isJdkInternal(String internalName) {
        return internalName.startsWith("jdk/internal/") || internalName.startsWith("sun/") && !internalName.equals(UNSAFE);
    }

    // ---- scanning --------------------------------------------------------------------------------

    /**
     * Reads every class file of a jar (multi-release versions included).
     *
     * @throws IOException if the jar cannot be read
     */
    public static Scan scan(Path jar) throws IOException {
        long t0 = System.nanoTime();
        Scan scan = new Scan();
        try (ZipFile zip = new ZipFile(jar.toFile())) {
            List<ZipEntry> entries = zip.stream().map(ZipEntry.class::cast).filter(e -> !e.isDirectory() && e.getName().endsWith(".class")
                    && !e.getName().endsWith("module-info.class")).toList();
            // the jar's base classes first, so they define the hierarchy where a versioned copy exists too
            List<ZipEntry> ordered = new ArrayList<>(entries.stream().filter(e -> !e.getName().startsWith("META-INF/")).toList());
            ordered.addAll(entries.stream().filter(e -> e.getName().startsWith("META-INF/")).toList());
            for (ZipEntry e : ordered) {
                byte[] bytes;
                try (InputStream in = zip.getInputStream(e)) {
                    bytes = in.readAllBytes();
                }
                scan.read(e.getName(), bytes);
            }
        }
        scan.done(t0);
        return scan;
    }

    /**
     * Reads {@code moduleClass} and every class it references, transitively, that its class loader has as a
     * class file and that is not the JDK's: for a host that runs modules from the class path rather than from a jar
     * (the testkit). Of Interlayer's packages only the module's own classes are read: those in the class-path entry
     * the module class comes from (its build output), whatever their package, so a module in a {@code dev.interlayer}
     * package of its own is its own code, not the agent's.
     */
    public static Scan scan(Class<?> moduleClass) {
        long t0 = System.nanoTime();
        Scan scan = new Scan();
        ClassLoader loader = moduleClass.getClassLoader() == null ? ClassLoader.getSystemClassLoader() : moduleClass.getClassLoader();
        String self = moduleClass.getName().replace('.', '/');
        java.net.URL selfUrl = loader.getResource(self + ".class");
        String root = selfUrl == null ? null : selfUrl.toString().substring(0, selfUrl.toString().length() - (self + ".class").length());
        java.util.function.Predicate<String> own = ref -> {
            if (root == null || ref.startsWith(API)) {
                return false;
            }
            java.net.URL u = loader.getResource(ref + ".class");
            return u != null && u.toString().startsWith(root);
        };
        Deque<String> todo = new ArrayDeque<>(List.of(self));
        Set<String> seen = new HashSet<>(todo);
        while (!todo.isEmpty()) {
            String name = todo.poll();
            byte[] bytes;
            try (InputStream in = loader.getResourceAsStream(name + ".class")) {
                if (in == null) {
                    continue;
                }
                bytes = in.readAllBytes();
            } catch (IOException e) {
                continue; // not readable as a class file: nothing to check, as for a class the loader lacks
            }
            ClassInfo c = scan.read(name + ".class", bytes);
            for (String ref : c.refs) {
                if (!ref.startsWith("java/") && !ref.startsWith("javax/") && !ref.startsWith("jdk/") && !ref.startsWith("sun/")
                        && !ref.startsWith("com/sun/") && (!ref.startsWith("dev/interlayer/") || own.test(ref)) && seen.add(ref)) {
                    todo.add(ref);
                }
            }
        }
        scan.done(t0);
        return scan;
    }

    /**
     * Everything {@code moduleClass} would be refused for by an agent: {@link Scan#refusals} and
     * {@link Scan#check} of a {@link #scan(Class)}, for hosts that run a module from the class path.
     *
     * @param allowed the capabilities the host allows this module
     */
    public static List<Violation> verify(Class<?> moduleClass, ModuleDescriptor descriptor, Set<Capability> allowed) {
        Scan scan = scan(moduleClass);
        List<Violation> out = new ArrayList<>(scan.refusals(List.of(moduleClass.getName())));
        out.addAll(scan.check(moduleClass.getName(), descriptor, allowed));
        return out;
    }

    /**
     * One use the rules care about, where it was found; {@code ref} is the class it names when it is refused
     * for being the agent's (so a jar with its own copy of that class is not refused).
     */
    private record Use(ClassInfo c, MethodInfo m, int line, String target, Capability capability, String effect, String fix, boolean never,
                       String ref) {
        /** Where it is, for reports: {@code t.Careless.onSend(Object, StreamContext, ByteView) (Careless.java:13)}, or the class. */
        String where() {
            return m == null ? dotted(c.name) : ModuleVerifier.where(c, m, line);
        }

        String className() {
            return dotted(c.name);
        }

        String method() {
            return m == null ? null : ModuleVerifier.method(m);
        }
    }

    /** A call of an SDK method or field, checked against the host's SDK; where it is is worked out only when reported. */
    private record ApiUse(ClassInfo c, MethodInfo m, int line, String owner, String name, String desc, boolean field) {
        String where() {
            return ModuleVerifier.where(c, m, line);
        }

        String className() {
            return dotted(c.name);
        }

        String method() {
            return ModuleVerifier.method(m);
        }
    }

    /** An edge of the call graph inside the jar. */
    private record Call(String owner, String name, String desc, boolean virtual, boolean initializes) {}

    private static final class MethodInfo {
        final ClassInfo owner;
        final String name;
        final String desc;
        final List<Use> uses = new ArrayList<>();
        final List<ApiUse> apiUses = new ArrayList<>();
        final List<Call> calls = new ArrayList<>();
        /** Each class the code names, with the first line that names it; checked once the whole jar is known. */
        final Map<String, Integer> refLines = new LinkedHashMap<>();

        MethodInfo(ClassInfo owner, String name, String desc) {
            this.owner = owner;
            this.name = name;
            this.desc = desc;
        }

        String key() {
            return name + desc;
        }
    }

    private static final class ClassInfo {
        final String name;
        String superName;
        final List<String> interfaces = new ArrayList<>();
        String sourceFile;
        final Map<String, MethodInfo> methods = new LinkedHashMap<>();
        final Set<String> refs = new LinkedHashSet<>();
        final List<Use> classUses = new ArrayList<>();

        ClassInfo(String name) {
            this.name = name;
        }
    }

    /**
     * What a scan of a module's classes found. Build one with {@link ModuleVerifier#scan(Path)} or
     * {@link ModuleVerifier#scan(Class)}.
     */
    public static final class Scan {
        private final List<ClassInfo> all = new ArrayList<>();
        private final Map<String, ClassInfo> classes = new HashMap<>();
        private final Map<String, List<MethodInfo>> byNameDesc = new HashMap<>();
        private final Map<String, List<ClassInfo>> subtypes = new HashMap<>();
        private final List<Use> unreadable = new ArrayList<>();
        private final Map<String, List<String>> descriptorRefs = new HashMap<>();
        private long nanos;

        private Scan() {}

        /** How many class files were read. */
        public int classes() {
            return all.size();
        }

        /** How long reading and indexing them took. */
        public Duration took() {
            return Duration.ofNanos(nanos);
        }

        /**
         * What no declaration allows, in every class: stopping the JVM, the agent's classes, the JDK's
         * internals, SDK members this agent does not have, class files that cannot be read; and any use of a
         * capability in code that runs while the module's descriptor is read, from each of
         * {@code moduleClasses} (dotted names): its static initialiser and those of the classes it uses, its
         * no-argument constructor, {@code descriptor()}, and every method of the jar they may call.
         */
        public List<Violation> refusals(Collection<String> moduleClasses) {
            List<Violation> out = new ArrayList<>();
            for (Use u : unreadable) {
                out.add(new Violation(u.className(), null, -1, u.target, null, u.target + " " + u.effect + "; " + u.fix));
            }
            for (ClassInfo c : all) {
                for (Use u : c.classUses) {
                    if (u.never) out.add(never(u));
                }
                for (MethodInfo m : c.methods.values()) {
                    for (Use u : m.uses) {
                        if (u.never) out.add(never(u));
                    }
                    for (ApiUse a : m.apiUses) {
                        String missing = missingFromSdk(a);
                        if (missing != null) {
                            out.add(new Violation(a.className(), a.method(), a.line, apiName(a), null, a.where() + ": " + missing));
                        }
                    }
                }
            }
            for (MethodInfo m : earlyCode(moduleClasses)) {
                for (Use u : m.uses) {
                    if (!u.never) {
                        out.add(new Violation(u.className(), u.method(), u.line, u.target, u.capability, u.where() + ": " + phrase(u)
                                + ", which needs capability " + u.capability.id() + ", in code that runs while the agent reads the module's"
                                + " descriptor (a static initialiser, the module's constructor or descriptor(), or a method they call),"
                                + " before any capability is granted: do it in init() instead"
                                + (u.capability == Capability.THREADS ? " and stop it in fini()" : "")));
                    }
                }
            }
            return dedupe(out);
        }

        /**
         * What the jar's code will need of its descriptors and config once {@link #refusals} are fixed, one line per use: each
         * capability it uses (outside the code {@code refusals} already names) and each SDK call newer than 1.0 of its
         * interface; for a report that lists everything at once, since {@link #check} needs the descriptor, which is code.
         */
        public List<String> requirements() {
            Set<String> out = new LinkedHashSet<>();
            for (ClassInfo c : all) {
                List<Use> uses = new ArrayList<>(c.classUses);
                c.methods.values().forEach(m -> uses.addAll(m.uses));
                for (Use u : uses) {
                    if (!u.never) {
                        out.add(u.where() + ": " + phrase(u) + ", which needs capability " + u.capability.id()
                                + ": the descriptor must declare it (.capability(Capability." + u.capability.name()
                                + ")) and the agent's config allow it");
                    }
                }
                for (MethodInfo m : c.methods.values()) {
                    for (ApiUse a : m.apiUses) {
                        Since since = since(a);
                        if (since != null && since.minor() > 0) {
                            out.add(a.where() + ": calls " + apiName(a) + ", which is " + since.type().id() + " " + since.major() + "."
                                    + since.minor() + ": the descriptor must declare .implement(InterfaceType." + since.type().name() + ", "
                                    + since.major() + ", " + since.minor() + ") or later");
                        }
                    }
                }
            }
            return List.copyOf(out);
        }

        /**
         * Compares what the code of {@code moduleClass} (dotted name) uses with what its descriptor declares
         * and what the host allows: a capability used but not declared, a capability declared but not
         * allowed, an SDK method newer than the interface minor the module declares.
         *
         * <p>The code of a module is its class and every class of the scan it reaches through the classes
         * they name; a class no module of the jar reaches counts for every module of it.
         *
         * @param allowed the capabilities the agent's config allows this module
         */
        public List<Violation> check(String moduleClass, ModuleDescriptor d, Set<Capability> allowed) {
            Set<Capability> declared = d.capabilities();
            List<Violation> out = new ArrayList<>();
            Map<Capability, List<Use>> used = new EnumMap<>(Capability.class);
            for (ClassInfo c : codeOf(moduleClass)) {
                List<Use> uses = new ArrayList<>(c.classUses);
                c.methods.values().forEach(m -> uses.addAll(m.uses));
                for (Use u : uses) {
                    if (u.never) {
                        continue; // refused by refusals() already
                    }
                    used.computeIfAbsent(u.capability, k -> new ArrayList<>()).add(u);
                    if (!declared.contains(u.capability)) {
                        out.add(new Violation(u.className(), u.method(), u.line, u.target, u.capability, u.where() + ": " + phrase(u)
                                + ", which needs capability " + u.capability.id() + ", and module " + d.name() + " does not declare it: "
                                + (u.fix != null ? u.fix : capabilityFix(u.capability))));
                    }
                }
                for (MethodInfo m : c.methods.values()) {
                    for (ApiUse a : m.apiUses) {
                        String newer = newerThanDeclared(a, d);
                        if (newer != null) {
                            out.add(new Violation(a.className(), a.method(), a.line, apiName(a), null, a.where() + ": " + newer));
                        }
                    }
                }
            }
            Set<Capability> notAllowed = EnumSet.noneOf(Capability.class);
            for (Capability c : declared) {
                if (allowed == null || !allowed.contains(c)) {
                    notAllowed.add(c);
                }
            }
            for (Capability c : notAllowed) {
                List<Use> at = used.getOrDefault(c, List.of());
                Set<Capability> want = new TreeSet<>(allowed == null ? Set.of() : allowed);
                want.addAll(declared);
                String list = want.stream().map(Capability::id).collect(Collectors.joining(", "));
                out.add(new Violation(moduleClass, null, -1, c.id(), c, "module " + d.name() + " declares capability " + c.id()
                        + (at.isEmpty() ? "" : " (used at " + at.getFirst().where() + (at.size() > 1 ? " and " + (at.size() - 1) + " more" : "") + ")")
                        + " but the agent's config does not allow it: add 'allow: [" + list + "]' to the module's entry under modules:"
                        + " in the agent's config (- name: " + d.name() + "), or remove the capability and the code that needs it"));
            }
            return dedupe(out);
        }

        /** The capabilities the code of {@code moduleClass} (dotted name) uses, as {@link #check} counts them. */
        public Set<Capability> capabilitiesUsed(String moduleClass) {
            Set<Capability> out = EnumSet.noneOf(Capability.class);
            for (ClassInfo c : codeOf(moduleClass)) {
                c.classUses.stream().filter(u -> !u.never).forEach(u -> out.add(u.capability));
                c.methods.values().forEach(m -> m.uses.stream().filter(u -> !u.never).forEach(u -> out.add(u.capability)));
            }
            return out;
        }

        // ---- reading ----

        private ClassInfo read(String entry, byte[] bytes) {
            ClassModel cm;
            try {
                cm = ClassFile.of(ClassFile.DebugElementsOption.DROP_DEBUG).parse(bytes);
            } catch (IllegalArgumentException e) {
                ClassInfo bad = new ClassInfo(entry.replace(".class", ""));
                unreadable.add(new Use(bad, null, -1, entry, null,
                        "is not a class file this agent can read (" + e.getMessage() + ")",
                        "rebuild the jar with a Java compiler for release 25 or lower", true, null));
                return bad;
            }
            ClassInfo c = new ClassInfo(cm.thisClass().asInternalName());
            c.superName = cm.superclass().map(ClassEntry::asInternalName).orElse(null);
            cm.interfaces().forEach(i -> c.interfaces.add(i.asInternalName()));
            c.sourceFile = cm.findAttribute(Attributes.sourceFile()).map(a -> a.sourceFile().stringValue()).orElse(null);
            all.add(c);
            classes.putIfAbsent(c.name, c);
            // What the class's code and signatures name; not the InnerClasses or NestHost attributes, which load nothing
            // (so a module written as a nested class of its test does not bring the test in).
            cm.superclass().ifPresent(e -> addRef(c, e.asSymbol()));
            cm.interfaces().forEach(e -> addRef(c, e.asSymbol()));
            for (FieldModel f : cm.fields()) {
                addDescriptorRefs(c, f.fieldType().stringValue());
            }
            for (MethodModel mm : cm.methods()) {
                MethodInfo m = new MethodInfo(c, mm.methodName().stringValue(), mm.methodType().stringValue());
                c.methods.put(m.key(), m);
                addDescriptorRefs(c, m.desc);
                if (mm.flags().has(AccessFlag.NATIVE)) {
                    m.uses.add(new Use(c, m, -1, "native method", Capability.NATIVE, "(JNI)", null, false, null));
                }
                mm.code().ifPresent(code -> readCode(c, m, code));
            }
            for (String s : c.interfaces) subtypes.computeIfAbsent(s, k -> new ArrayList<>()).add(c);
            if (c.superName != null) subtypes.computeIfAbsent(c.superName, k -> new ArrayList<>()).add(c);
            for (MethodInfo m : c.methods.values()) {
                byNameDesc.computeIfAbsent(m.key(), k -> new ArrayList<>()).add(m);
            }
            return c;
        }

        /**
         * Checks the classes each class names, now that the whole jar is known: a class the jar has itself is the module's own
         * copy (its loader is child-first), not the agent's. A class only the signatures name (a superclass, a field's type) is
         * reported at the class.
         */
        private void done(long startedNanos) {
            for (ClassInfo c : all) {
                Set<String> inCode = new HashSet<>();
                for (MethodInfo m : c.methods.values()) {
                    m.refLines.forEach((ref, line) -> {
                        inCode.add(ref);
                        Use u = classUse(c, m, line, ref);
                        if (u != null && (u.ref == null || !classes.containsKey(u.ref))) {
                            m.uses.add(u);
                        }
                    });
                    m.uses.removeIf(u -> u.ref != null && classes.containsKey(u.ref)); // Class.forName of its own class
                }
                for (String ref : c.refs) {
                    Use u = inCode.contains(ref) ? null : classUse(c, null, -1, ref);
                    if (u != null && (u.ref == null || !classes.containsKey(u.ref))) {
                        c.classUses.add(u);
                    }
                }
            }
            this.nanos = System.nanoTime() - startedNanos;
        }

        private void readCode(ClassInfo c, MethodInfo m, CodeModel code) {
            int line = -1;
            int byNameLine = 0; // 0: no call that turns a name into a class
            List<String> strings = new ArrayList<>();
            for (CodeElement e : code) {
                switch (e) {
                    case LineNumber ln -> line = ln.line();
                    case ExceptionCatch x -> x.catchType().ifPresent(t -> addRef(c, t.asSymbol()));
                    case InvokeInstruction i -> {
                        String owner = i.owner().asInternalName();
                        boolean isStatic = i.opcode() == Opcode.INVOKESTATIC;
                        boolean virtual = i.opcode() == Opcode.INVOKEVIRTUAL || i.opcode() == Opcode.INVOKEINTERFACE;
                        member(c, m, line, owner, i.name().stringValue(), i.type().stringValue(), virtual, isStatic, false);
                        for (Rule r : CLASS_BY_NAME) {
                            if (r.matches(owner, i.name().stringValue(), i.type().stringValue())) {
                                byNameLine = line;
                            }
                        }
                    }
                    case FieldInstruction f -> {
                        String owner = f.owner().asInternalName();
                        boolean isStatic = f.opcode() == Opcode.GETSTATIC || f.opcode() == Opcode.PUTSTATIC;
                        member(c, m, line, owner, f.name().stringValue(), f.type().stringValue(), false, isStatic, true);
                    }
                    case NewObjectInstruction n -> {
                        String owner = n.className().asInternalName();
                        classRef(c, m, line, owner);
                        m.calls.add(new Call(owner, "<clinit>", "()V", false, true));
                    }
                    case TypeCheckInstruction t -> classRef(c, m, line, internal(t.type().asSymbol()));
                    case NewReferenceArrayInstruction a -> classRef(c, m, line, internal(a.componentType().asSymbol()));
                    case NewMultiArrayInstruction a -> classRef(c, m, line, internal(a.arrayType().asSymbol()));
                    case InvokeDynamicInstruction d -> {
                        handle(c, m, line, d.bootstrapMethod());
                        for (ConstantDesc arg : d.bootstrapArgs()) {
                            constant(c, m, line, arg, strings);
                        }
                    }
                    case ConstantInstruction k -> constant(c, m, line, k.constantValue(), strings);
                    default -> { }
                }
            }
            if (byNameLine != 0) {
                for (String s : strings) {
                    String internalName = s.replace('.', '/');
                    if (isAgentInternal(internalName) || isJdkInternal(internalName)) {
                        m.uses.add(new Use(c, m, byNameLine, "Class.forName(\"" + s + "\")", null,
                                "loads " + (isAgentInternal(internalName) ? "a class of the agent itself" : "a JDK internal") + " by name",
                                internalFix(internalName), true, internalName));
                    }
                }
            }
        }

        private void constant(ClassInfo c, MethodInfo m, int line, ConstantDesc k, List<String> strings) {
            switch (k) {
                case String s -> strings.add(s);
                case DirectMethodHandleDesc h -> handle(c, m, line, h);
                case ClassDesc cd -> classRef(c, m, line, internal(cd));
                case MethodTypeDesc mt -> {
                    classRef(c, m, line, internal(mt.returnType()));
                    mt.parameterList().forEach(p -> classRef(c, m, line, internal(p)));
                }
                default -> { }
            }
        }

        /** A method handle constant (a method reference, a lambda's body): used as if called. */
        private void handle(ClassInfo c, MethodInfo m, int line, DirectMethodHandleDesc h) {
            String owner = internal(h.owner());
            if (owner == null) {
                return;
            }
            boolean field = switch (h.kind()) {
                case GETTER, SETTER, STATIC_GETTER, STATIC_SETTER -> true;
                default -> false;
            };
            boolean isStatic = switch (h.kind()) {
                case STATIC, INTERFACE_STATIC, STATIC_GETTER, STATIC_SETTER -> true;
                default -> false;
            };
            boolean virtual = switch (h.kind()) {
                case VIRTUAL, INTERFACE_VIRTUAL -> true;
                default -> false;
            };
            member(c, m, line, owner, h.methodName(), h.lookupDescriptor(), virtual, isStatic || h.kind() == DirectMethodHandleDesc.Kind.CONSTRUCTOR,
                    field);
        }

        private void member(ClassInfo c, MethodInfo m, int line, String owner, String name, String desc, boolean virtual, boolean initializes,
                            boolean field) {
            if (owner.startsWith("[")) {
                owner = internal(ClassDesc.ofDescriptor(owner));
                if (owner == null) return;
            }
            classRef(c, m, line, owner);
            addDescriptorRefs(c, desc);
            if (!field) {
                for (Rule r : RULES) {
                    if (r.matches(owner, name, desc)) {
                        String target = memberName(owner, name, desc);
                        m.uses.add(new Use(c, m, line, target, r.capability(), r.effect(), r.fix(), r.capability() == null, null));
                        break;
                    }
                }
            }
            if (owner.startsWith(API)) {
                m.apiUses.add(new ApiUse(c, m, line, owner, name, desc, field));
            }
            if (!field) {
                m.calls.add(new Call(owner, name, desc, virtual, initializes));
            } else if (initializes) {
                m.calls.add(new Call(owner, "<clinit>", "()V", false, true));
            }
        }

        /** A class named by an instruction: refused where it is the agent's or the JDK's internals. */
        private void classRef(ClassInfo c, MethodInfo m, int line, String ref) {
            if (ref == null) {
                return;
            }
            if (!ref.equals(c.name)) {
                c.refs.add(ref);
                m.refLines.putIfAbsent(ref, line);
            }
        }

        private static Use classUse(ClassInfo c, MethodInfo m, int line, String ref) {
            if (isAgentInternal(ref)) {
                return new Use(c, m, line, "uses " + dotted(ref), null, "(a class of the agent itself)", internalFix(ref), true, ref);
            }
            if (ref.equals(UNSAFE)) {
                return new Use(c, m, line, "uses " + dotted(ref), Capability.NATIVE, "(raw memory)", null, false, null);
            }
            if (isJdkInternal(ref)) {
                return new Use(c, m, line, "uses " + dotted(ref), null, "(a JDK internal, not exported to modules)", internalFix(ref), true, null);
            }
            return null;
        }

        private static String internalFix(String ref) {
            if (isAgentInternal(ref)) {
                return "a module sees only dev.interlayer.api, the classes of its own jar and the JDK: use what the SDK hands the module"
                        + " (its context, attachment and ModuleEnv), and bundle any library it needs in its jar";
            }
            return "use the JDK's public API instead";
        }

        private static void addRef(ClassInfo c, ClassDesc d) {
            String n = internal(d);
            if (n != null && !n.equals(c.name)) {
                c.refs.add(n);
            }
        }

        private void addDescriptorRefs(ClassInfo c, String descriptor) {
            for (String ref : descriptorRefs.computeIfAbsent(descriptor, Scan::classesIn)) {
                if (!ref.equals(c.name)) {
                    c.refs.add(ref);
                }
            }
        }

        /** The classes a field or method descriptor names, as internal names. */
        private static List<String> classesIn(String descriptor) {
            List<String> out = new ArrayList<>(2);
            for (int i = descriptor.indexOf('L'); i >= 0; i = descriptor.indexOf('L', i)) {
                int end = descriptor.indexOf(';', i);
                if (end < 0) {
                    break; // malformed: the JVM refuses such a class when it loads it; nothing of it can run
                }
                out.add(descriptor.substring(i + 1, end));
                i = end + 1;
            }
            return out;
        }

        // ---- the SDK ----

        /** Why an SDK member the code uses cannot work with this agent, or null if it exists. */
        private static String missingFromSdk(ApiUse a) {
            Class<?> type = apiClass(a.owner);
            if (type == null) {
                return "uses " + dotted(a.owner) + ", which this agent's SDK does not have: the module was built against another"
                        + " interlayer-api; build it against this agent's (interlayer check-module shows the versions it offers)";
            }
            if (apiMember(type, a.name, a.desc, a.field).isEmpty()) {
                return (a.field ? "uses " : "calls ") + apiName(a) + ", which this agent's SDK does not have: the module was built against"
                        + " another interlayer-api; build it against this agent's (interlayer check-module shows the versions it offers)";
            }
            return null;
        }

        /** The version an SDK method the code calls carries, or null (a field, a constructor, a method of every version). */
        private static Since since(ApiUse a) {
            Class<?> type = apiClass(a.owner);
            if (type == null || a.field) {
                return null;
            }
            Optional<Object> found = apiMember(type, a.name, a.desc, false);
            return found.isPresent() && found.get() instanceof Method method ? method.getAnnotation(Since.class) : null;
        }

        /** Why an SDK method the code calls is newer than what the module declares, or null. */
        private static String newerThanDeclared(ApiUse a, ModuleDescriptor d) {
            Since since = since(a);
            if (since == null) {
                return null;
            }
            InterfaceType t = since.type();
            InterfaceVersion v = d.interfaces().get(t);
            if (v != null && v.major() == since.major() && v.minor() >= since.minor()) {
                return null;
            }
            String needs = t.id() + " " + since.major() + "." + since.minor();
            return "calls " + apiName(a) + ", which is " + needs + ", but module " + d.name() + " declares "
                    + (v == null ? "no " + t.id() + " interface" : t.id() + " " + v.major() + "." + v.minor())
                    + " (an agent offering only that would fail at the call): declare .implement(InterfaceType." + t.name() + ", "
                    + since.major() + ", " + since.minor() + ") or do without the call";
        }

        private static final Map<String, Optional<Class<?>>> API_CLASSES = new ConcurrentHashMap<>();

        private static Class<?> apiClass(String owner) {
            return API_CLASSES.computeIfAbsent(owner, o -> {
                try {
                    return Optional.of(Class.forName(dotted(o), false, Module.class.getClassLoader()));
                } catch (ClassNotFoundException | LinkageError e) {
                    return Optional.empty();
                }
            }).orElse(null);
        }

        private static final Map<String, Optional<Object>> API_MEMBERS = new ConcurrentHashMap<>();

        /** The SDK method, constructor or field {@code name desc} of {@code type} or one of its supertypes. */
        private static Optional<Object> apiMember(Class<?> type, String name, String desc, boolean field) {
            return API_MEMBERS.computeIfAbsent(type.getName() + (field ? "#" : ".") + name + desc, k -> findApiMember(type, name, desc, field));
        }

        private static Optional<Object> findApiMember(Class<?> type, String name, String desc, boolean field) {
            Deque<Class<?>> todo = new ArrayDeque<>(List.of(type));
            todo.add(Object.class); // an interface's calls of toString(), equals() ...
            Set<Class<?>> seen = new HashSet<>();
            while (!todo.isEmpty()) {
                Class<?> t = todo.poll();
                if (!seen.add(t)) continue;
                if (field) {
                    for (Field f : t.getDeclaredFields()) {
                        if (f.getName().equals(name) && f.getType().descriptorString().equals(desc)) return Optional.of(f);
                    }
                } else if (name.equals("<init>")) {
                    for (Constructor<?> k : t.getDeclaredConstructors()) {
                        if (MethodType.methodType(void.class, k.getParameterTypes()).toMethodDescriptorString().equals(desc)) return Optional.of(k);
                    }
                    return Optional.empty(); // constructors are not inherited
                } else {
                    for (Method mm : t.getDeclaredMethods()) {
                        if (mm.getName().equals(name)
                                && MethodType.methodType(mm.getReturnType(), mm.getParameterTypes()).toMethodDescriptorString().equals(desc)) {
                            return Optional.of(mm);
                        }
                    }
                }
                if (t.getSuperclass() != null) todo.add(t.getSuperclass());
                todo.addAll(List.of(t.getInterfaces()));
            }
            return Optional.empty();
        }

        private static String apiName(ApiUse a) {
            return a.field ? dotted(a.owner) + "." + a.name : memberName(a.owner, a.name, a.desc);
        }

        // ---- reachability ----

        /** The methods that may run while the descriptor of one of {@code moduleClasses} is read. */
        private Set<MethodInfo> earlyCode(Collection<String> moduleClasses) {
            Set<MethodInfo> reached = new LinkedHashSet<>();
            Deque<MethodInfo> todo = new ArrayDeque<>();
            for (String mc : moduleClasses) {
                ClassInfo c = classes.get(mc.replace('.', '/'));
                if (c == null) {
                    continue;
                }
                initialise(c.name, reached, todo);
                enqueue(c.methods.get("<init>()V"), reached, todo);
                resolveUp(c.name, "descriptor()L" + API + "ModuleDescriptor;").ifPresent(m -> enqueue(m, reached, todo));
            }
            while (!todo.isEmpty()) {
                MethodInfo m = todo.poll();
                initialise(m.owner.name, reached, todo);
                for (Call call : m.calls) {
                    if (call.initializes) {
                        initialise(call.owner, reached, todo);
                    }
                    if (call.name.equals("<clinit>")) {
                        continue;
                    }
                    for (MethodInfo target : targets(call)) {
                        enqueue(target, reached, todo);
                    }
                }
            }
            return reached;
        }

        private void initialise(String className, Set<MethodInfo> reached, Deque<MethodInfo> todo) {
            ClassInfo c = classes.get(className);
            while (c != null) {
                enqueue(c.methods.get("<clinit>()V"), reached, todo);
                for (String i : c.interfaces) {
                    ClassInfo ic = classes.get(i);
                    if (ic != null) enqueue(ic.methods.get("<clinit>()V"), reached, todo);
                }
                c = c.superName == null ? null : classes.get(c.superName);
            }
        }

        private static void enqueue(MethodInfo m, Set<MethodInfo> reached, Deque<MethodInfo> todo) {
            if (m != null && reached.add(m)) {
                todo.add(m);
            }
        }

        /**
         * The jar's methods a call may run: for a class of the jar, the method it resolves to and, for a
         * virtual call, every override below it; for a virtual call on a class outside the jar (a JDK
         * interface such as {@code Runnable}), every method of the jar with that name and type.
         */
        private List<MethodInfo> targets(Call call) {
            String key = call.name + call.desc;
            List<MethodInfo> out = new ArrayList<>();
            if (classes.containsKey(call.owner)) {
                resolveUp(call.owner, key).ifPresent(out::add);
                if (call.virtual) {
                    Deque<String> todo = new ArrayDeque<>(List.of(call.owner));
                    Set<String> seen = new HashSet<>();
                    while (!todo.isEmpty()) {
                        String t = todo.poll();
                        if (!seen.add(t)) continue;
                        for (ClassInfo sub : subtypes.getOrDefault(t, List.of())) {
                            MethodInfo m = sub.methods.get(key);
                            if (m != null) out.add(m);
                            todo.add(sub.name);
                        }
                    }
                }
            } else if (call.virtual) {
                out.addAll(byNameDesc.getOrDefault(key, List.of()));
            }
            return out;
        }

        private Optional<MethodInfo> resolveUp(String className, String key) {
            Deque<String> todo = new ArrayDeque<>(List.of(className));
            Set<String> seen = new HashSet<>();
            while (!todo.isEmpty()) {
                ClassInfo c = classes.get(todo.poll());
                if (c == null || !seen.add(c.name)) continue;
                MethodInfo m = c.methods.get(key);
                if (m != null) return Optional.of(m);
                if (c.superName != null) todo.add(c.superName);
                todo.addAll(c.interfaces);
            }
            return Optional.empty();
        }

        /**
         * The classes whose code counts for {@code moduleClass}: those it reaches through the classes it
         * names, and those no module class of the scan reaches at all.
         */
        private List<ClassInfo> codeOf(String moduleClass) {
            Set<String> mine = reachableFrom(moduleClass.replace('.', '/'));
            List<ClassInfo> out = new ArrayList<>();
            Set<String> anyModule = null;
            for (ClassInfo c : all) {
                if (mine.contains(c.name)) {
                    out.add(c);
                    continue;
                }
                if (anyModule == null) {
                    anyModule = new HashSet<>();
                    for (ClassInfo k : all) {
                        if (isModuleClass(k)) anyModule.addAll(reachableFrom(k.name));
                    }
                }
                if (!anyModule.contains(c.name)) {
                    out.add(c);
                }
            }
            return out;
        }

        private boolean isModuleClass(ClassInfo c) {
            Deque<String> todo = new ArrayDeque<>(List.of(c.name));
            Set<String> seen = new HashSet<>();
            while (!todo.isEmpty()) {
                String t = todo.poll();
                if (!seen.add(t)) continue;
                if (t.startsWith(API) && (t.endsWith("/StreamModule") || t.endsWith("/DatagramModule") || t.endsWith("/SocketModule")
                        || t.endsWith("/Module"))) {
                    return true;
                }
                ClassInfo k = classes.get(t);
                if (k != null) {
                    if (k.superName != null) todo.add(k.superName);
                    todo.addAll(k.interfaces);
                }
            }
            return false;
        }

        private Set<String> reachableFrom(String start) {
            Set<String> seen = new HashSet<>();
            Deque<String> todo = new ArrayDeque<>(List.of(start));
            while (!todo.isEmpty()) {
                String n = todo.poll();
                ClassInfo c = classes.get(n);
                if (c == null || !seen.add(n)) continue;
                todo.addAll(c.refs);
            }
            return seen;
        }

        private static List<Violation> dedupe(List<Violation> in) {
            Map<String, Violation> out = new LinkedHashMap<>();
            for (Violation v : in) {
                out.putIfAbsent(v.message(), v);
            }
            return List.copyOf(out.values());
        }
    }

    private static Violation never(Use u) {
        return new Violation(u.className(), u.method(), u.line, u.target, null, u.where() + ": " + phrase(u) + "; no capability allows it: " + u.fix);
    }

    /** What the code does, as a phrase: "calls java.lang.System.exit(int), which stops the JVM ...". */
    private static String phrase(Use u) {
        boolean call = !(u.target.startsWith("new ") || u.target.startsWith("uses ") || u.target.startsWith("native ")
                || u.target.startsWith("Class.forName("));
        return (call ? "calls " : "") + u.target + (u.effect.startsWith("(") ? " " + u.effect : ", which " + u.effect);
    }

    // ---- names ----

    private static String where(ClassInfo c, MethodInfo m, int line) {
        String at = line > 0 ? " (" + (c.sourceFile != null ? c.sourceFile : simple(c.name) + ".java") + ":" + line + ")" : "";
        return dotted(c.name) + "." + method(m) + at;
    }

    private static String method(MethodInfo m) {
        return m.name + params(m.desc);
    }

    private static String params(String desc) {
        try {
            return MethodTypeDesc.ofDescriptor(desc).parameterList().stream().map(p -> p.displayName().replace('$', '.'))
                    .collect(Collectors.joining(", ", "(", ")"));
        } catch (IllegalArgumentException e) {
            return desc;
        }
    }

    private static String memberName(String owner, String name, String desc) {
        if (name.equals("<init>")) {
            return "new " + dotted(owner) + params(desc);
        }
        return dotted(owner) + "." + name + (desc.startsWith("(") ? params(desc) : "");
    }

    private static String simple(String internalName) {
        String s = internalName.substring(internalName.lastIndexOf('/') + 1);
        int dollar = s.indexOf('$');
        return dollar > 0 ? s.substring(0, dollar) : s;
    }

    static String dotted(String internalName) {
        return internalName.replace('/', '.');
    }

    /** The internal name of a class type (array element types included), or null for a primitive. */
    private static String internal(ClassDesc d) {
        while (d.isArray()) {
            d = d.componentType();
        }
        if (d.isPrimitive()) {
            return null;
        }
        String s = d.descriptorString();
        return s.substring(1, s.length() - 1);
    }
}
