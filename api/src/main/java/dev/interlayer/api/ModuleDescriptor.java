package dev.interlayer.api;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Who a module is and what it implements: name, version, interfaces with the API versions it was built
 * against, the capabilities its code uses beyond its hooks, and defaults for where and how it attaches.
 *
 * <p>Read once at load. Configs may override priority, selector, mode, fault policy and parameters.
 *
 * <pre>{@code
 * ModuleDescriptor.builder("tag", "1.2.0")
 *     .description("inserts a tag every N bytes on SEND, removes it on RECV")
 *     .implement(InterfaceType.STREAM, 1, 1)
 *     .priority(50)
 *     .param(Param.ofInt("every", 1000, "bytes between tags"))
 *     .build();
 * }</pre>
 */
public final class ModuleDescriptor {

    /** Valid module names: lower-kebab-case, 1 to 63 characters. */
    public static final Pattern NAME = Pattern.compile("[a-z][a-z0-9-]{0,62}");
    /** Valid versions: {@code MAJOR.MINOR.PATCH} with an optional {@code -qualifier}. */
    public static final Pattern VERSION = Pattern.compile("\\d{1,9}\\.\\d{1,9}\\.\\d{1,9}(-[A-Za-z0-9.]{1,32})?");

    private final String name;
    private final String version;
    private final String description;
    private final Map<InterfaceType, InterfaceVersion> interfaces;
    private final int priority;
    private final Selector selector;
    private final AttachMode attachMode;
    private final FaultPolicy faultPolicy;
    private final List<Param> params;
    private final Set<Capability> capabilities;
    private final boolean warmUp;

    private ModuleDescriptor(Builder b) {
        this.name = b.name;
        this.version = b.version;
        this.description = b.description;
        this.interfaces = Map.copyOf(b.interfaces);
        this.priority = b.priority;
        this.selector = b.selector;
        this.attachMode = b.attachMode;
        this.faultPolicy = b.faultPolicy;
        this.params = List.copyOf(b.params);
        this.capabilities = Collections.unmodifiableSet(b.capabilities.isEmpty() ? EnumSet.noneOf(Capability.class) : EnumSet.copyOf(b.capabilities));
        this.warmUp = b.warmUp;
    }

    /** Starts a descriptor for module {@code name} at {@code version}. */
    public static Builder builder(String name, String version) {
        return new Builder(name, version);
    }

    /** The module's name: unique within an agent, stable across versions. */
    public String name() {
        return name;
    }

    /** The module's version ({@code MAJOR.MINOR.PATCH[-qualifier]}). */
    public String version() {
        return version;
    }

    /** One line on what the module does. */
    public String description() {
        return description;
    }

    /** The interfaces the module implements, with the versions it was built against. */
    public Map<InterfaceType, InterfaceVersion> interfaces() {
        return interfaces;
    }

    /** Default position in the chain: lower runs first on SEND. */
    public int priority() {
        return priority;
    }

    /** Default selector: which connections the module attaches to. */
    public Selector selector() {
        return selector;
    }

    /** Default attach mode. */
    public AttachMode attachMode() {
        return attachMode;
    }

    /** Default fault policy. */
    public FaultPolicy faultPolicy() {
        return faultPolicy;
    }

    /** Declared parameters, in declaration order. */
    public List<Param> params() {
        return params;
    }

    /** What the module's code may do beyond its hooks (empty for most modules); the agent's config must allow each. */
    public Set<Capability> capabilities() {
        return capabilities;
    }

    /**
     * True if the agent may run the module's stream hooks on made-up traffic of its own before it serves
     * ({@link Builder#warmUp(boolean)}); false by default.
     */
    @Since(type = InterfaceType.STREAM, major = 1, minor = 3)
    public boolean warmUp() {
        return warmUp;
    }

    @Override
    public String toString() {
        return name + " " + version;
    }

    /** Builds a {@link ModuleDescriptor}; {@link #build()} checks everything and names what is wrong. */
    public static final class Builder {
        private final String name;
        private final String version;
        private String description = "";
        private final Map<InterfaceType, InterfaceVersion> interfaces = new LinkedHashMap<>();
        private int priority = 100;
        private Selector selector = Selector.ANY;
        private AttachMode attachMode = AttachMode.GLOBAL;
        private FaultPolicy faultPolicy = FaultPolicy.FAIL_OPEN;
        private final List<Param> params = new ArrayList<>();
        private final Set<Capability> capabilities = EnumSet.noneOf(Capability.class);
        private boolean warmUp;

        private Builder(String name, String version) {
            this.name = name;
            this.version = version;
        }

        /** Sets the one-line description. */
        public Builder description(String description) {
            this.description = description == null ? "" : description;
            return this;
        }

        /** Declares that the module implements {@code type}, built against version {@code major.minor}. */
        public Builder implement(InterfaceType type, int major, int minor) {
            interfaces.put(type, new InterfaceVersion(type, major, minor));
            return this;
        }

        /** Sets the default priority (lower runs first on SEND); any int. */
        public Builder priority(int priority) {
            this.priority = priority;
            return this;
        }

        /** Sets the default selector. */
        public Builder selector(Selector selector) {
            this.selector = selector == null ? Selector.ANY : selector;
            return this;
        }

        /** Sets the default attach mode. */
        public Builder attachMode(AttachMode mode) {
            this.attachMode = mode == null ? AttachMode.GLOBAL : mode;
            return this;
        }

        /** Sets the default fault policy. */
        public Builder faultPolicy(FaultPolicy policy) {
            this.faultPolicy = policy == null ? FaultPolicy.FAIL_OPEN : policy;
            return this;
        }

        /** Declares a parameter. */
        public Builder param(Param param) {
            params.add(param);
            return this;
        }

        /**
         * Declares that the module's code uses {@code capability} (a thread of its own, say); the agent
         * refuses a module whose code uses a capability it does not declare, and loads one that declares a
         * capability only where the agent's config allows it ({@code allow: [threads]}).
         */
        public Builder capability(Capability capability) {
            if (capability == null) {
                throw new IllegalArgumentException("module " + name + ": capability(null); pass one of " + Arrays.toString(Capability.values()));
            }
            capabilities.add(capability);
            return this;
        }

        /**
         * Declares that the module's stream hooks act on nothing but the connection in hand and the state
         * {@code attach} gave it: no files, no shared counters or token buckets, no calls out, nothing a
         * connection that never carried a user's bytes could leave behind. The agent may then attach it to
         * the connections of its warm-up ({@code agent.warm-up}): made-up requests and replies between
         * listeners of its own, run before it takes over or opens the configured listeners, so that the JIT
         * has compiled the hooks before the first user's byte. A warm-up leaves no trace in the module's
         * statistics, but it does call {@code attach}, the hooks and {@code detach}. Off by default: a
         * module that logs, counts across connections or rate-limits must not declare it. Stream 1.3: a module
         * that calls it declares {@code .implement(InterfaceType.STREAM, 1, 3)}.
         */
        @Since(type = InterfaceType.STREAM, major = 1, minor = 3)
        public Builder warmUp(boolean safe) {
            this.warmUp = safe;
            return this;
        }

        /**
         * Checks and returns the descriptor.
         *
         * @throws IllegalArgumentException saying which field is wrong and what is expected
         */
        public ModuleDescriptor build() {
            if (name == null || !NAME.matcher(name).matches()) {
                throw new IllegalArgumentException("module name '" + name + "' must match " + NAME.pattern() + " (lower-kebab-case)");
            }
            if (version == null || !VERSION.matcher(version).matches()) {
                throw new IllegalArgumentException("module " + name + ": version '" + version + "' must be MAJOR.MINOR.PATCH[-qualifier], e.g. 1.0.0");
            }
            if (interfaces.isEmpty()) {
                throw new IllegalArgumentException("module " + name + ": declare at least one interface with implement(InterfaceType, major, minor)");
            }
            List<String> seen = new ArrayList<>();
            for (Param p : params) {
                if (seen.contains(p.name())) {
                    throw new IllegalArgumentException("module " + name + ": parameter '" + p.name() + "' declared twice");
                }
                seen.add(p.name());
            }
            return new ModuleDescriptor(this);
        }
    }
}
