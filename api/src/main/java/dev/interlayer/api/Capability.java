package dev.interlayer.api;

/**
 * What a module's code may do beyond its hooks, declared in its descriptor and allowed per module by the
 * agent's config.
 *
 * <p>The agent reads every class of a module jar before any of it runs and refuses a module whose code
 * uses one of these without declaring it ({@link ModuleDescriptor.Builder#capability(Capability)}), or
 * declares one its agent's config does not allow ({@code allow: [threads]} in the module's entry). The
 * checks are on the class files, so they see calls written in the code, not what a library decides at
 * run time (see the module guide for what is and is not caught). Stopping the JVM ({@code System.exit},
 * {@code Runtime.halt}) and using the agent's own classes have no capability: they are always refused.
 *
 * <pre>{@code
 * ModuleDescriptor.builder("resolver", "1.0.0")
 *     .implement(InterfaceType.SOCKET, 1, 0)
 *     .capability(Capability.THREADS)     // a worker thread started in init(), stopped in fini()
 *     .build();
 * }</pre>
 */
public enum Capability {
    /**
     * Starting threads: {@code new Thread}, {@code Thread.ofPlatform()}/{@code ofVirtual()}, executors
     * ({@code Executors.new*}, thread pools, {@code ForkJoinPool}, {@code Timer}, {@code Cleaner}), and work
     * handed to the JDK's common pool (parallel streams, {@code CompletableFuture.*Async} without an
     * executor). Such threads escape the agent's hook budget and must be stopped in {@code fini()}; timed
     * work needs no thread: use {@link ModuleEnv#schedule} or {@link Attachment#schedule}.
     */
    THREADS("threads"),
    /** Starting or killing processes: {@code Runtime.exec}, {@code ProcessBuilder}, {@code ProcessHandle.destroy}. */
    PROCESSES("processes"),
    /**
     * Native code and raw memory: {@code System.load}/{@code loadLibrary}, {@code native} methods, the
     * restricted methods of {@code java.lang.foreign} ({@code Linker}, {@code SymbolLookup.libraryLookup},
     * {@code MemorySegment.reinterpret}, {@code AddressLayout.withTargetLayout}) and {@code sun.misc.Unsafe}.
     * The memory API itself (segments, arenas, layouts, and the segment {@link StreamContext#rewrite()}
     * lends) needs nothing.
     */
    NATIVE("native"),
    /**
     * Opening what Java's access checks close: {@code setAccessible}, {@code trySetAccessible},
     * {@code MethodHandles.privateLookupIn}. With it a module can reach private state of any class, the
     * agent's included. Reflection on public members needs nothing.
     */
    REFLECTION("reflection");

    private final String id;

    Capability(String id) {
        this.id = id;
    }

    /** The capability's name in configs and reports: {@code threads}, {@code processes}, {@code native}, {@code reflection}. */
    public String id() {
        return id;
    }

    /**
     * Looks a capability up by its {@link #id()}.
     *
     * @throws IllegalArgumentException naming the known capabilities
     */
    public static Capability byId(String id) {
        for (Capability c : values()) {
            if (c.id.equals(id)) {
                return c;
            }
        }
        StringBuilder known = new StringBuilder();
        for (Capability c : values()) {
            known.append(known.isEmpty() ? "" : ", ").append(c.id);
        }
        throw new IllegalArgumentException("unknown capability '" + id + "'; known: " + known);
    }
}
