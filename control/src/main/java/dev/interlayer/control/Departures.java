package dev.interlayer.control;

import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleRegistry;
import dev.interlayer.runtime.ModuleState;
import dev.interlayer.runtime.RegistryListener;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * How each module that is no longer loaded left, and the jar it came from, so that a call naming it can say what
 * happened and how to bring it back: a revoked or unregistered module does not come back by itself (docs/architecture.md,
 * "Lifecycle"), and the modules folder loads a jar again only when its content changes. Keeps the last departure of
 * each name, for the {@link #CAPACITY} names that left last.
 */
final class Departures implements RegistryListener, AutoCloseable {

    static final int CAPACITY = 256;

    /**
     * One module's departure.
     *
     * @param id name@version
     * @param how the state it left in: REVOKED, UNREGISTERING, or DEPRECATED (retired: its jar was replaced or removed)
     * @param at when it finished unloading
     * @param source the jar it was loaded from (an upload's temporary file is gone by then)
     */
    record Departure(String id, ModuleState how, Instant at, String source) {
        /** "was revoked at T", "was unregistered at T", ... */
        String what() {
            String verb = switch (how) {
                case REVOKED -> "was revoked";
                case UNREGISTERING -> "was unregistered";
                case DEPRECATED -> "retired (its jar was replaced or removed)";
                default -> "was unloaded";
            };
            return id + " " + verb + " at " + at;
        }
    }

    private final ModuleRegistry registry;
    private final Map<String, Departure> byName = new LinkedHashMap<>() {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Departure> eldest) {
            return size() > CAPACITY;
        }
    };

    Departures(ModuleRegistry registry) {
        this.registry = registry;
        registry.addListener(this);
    }

    @Override
    public void moduleRemoved(LoadedModule m) {
        synchronized (byName) {
            byName.remove(m.name()); // the newest departure goes last, so the oldest name is the one dropped
            byName.put(m.name(), new Departure(m.id(), m.state(), Instant.now(), m.pkg().location()));
        }
    }

    /** The last departure of a module named {@code name}, if it left while this endpoint ran. */
    Optional<Departure> last(String name) {
        synchronized (byName) {
            return Optional.ofNullable(byName.get(name));
        }
    }

    /**
     * How to run a module from {@code source} again, as a command: loading its jar again, by the path the agent loaded it
     * from when that file is still there.
     */
    static String revival(String source) {
        return "to run it again, load its jar again: interlayer modules load " + (isFile(source) ? source : "JAR");
    }

    private static boolean isFile(String source) {
        try {
            return source != null && Files.isRegularFile(Path.of(source));
        } catch (InvalidPathException e) {
            return false; // builtin:... and the like
        }
    }

    @Override
    public void close() {
        registry.removeListener(this);
    }
}
