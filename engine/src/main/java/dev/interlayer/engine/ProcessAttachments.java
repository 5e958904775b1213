package dev.interlayer.engine;

import dev.interlayer.api.AppInfo;
import dev.interlayer.api.AttachMode;
import dev.interlayer.api.ConnectionInfo;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleRegistry;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Programmatic attach by the application itself: which process asked for which module on the connections it opens from
 * now on (docs/interception.md, "Programmatic attach"). A new connection or UDP flow whose local process
 * ({@link ConnectionInfo#app()}, the engine's process lookup) is a registered one gets the module, as a listener's
 * programmatic modules are attached.
 *
 * <p>A process is remembered with its start time ({@code /proc/PID/stat}, field 22): a pid the kernel hands to another
 * process later matches nothing. A registration ends when its process exits (watched with {@link ProcessHandle#onExit}),
 * when the asker ends it, after its number of connections, or once its time is up (checked when a connection looks at it
 * and when the registrations are listed). Thread-safe.
 */
public final class ProcessAttachments {

    private static final System.Logger LOG = System.getLogger("interlayer.engine");
    /** Registrations one process may hold at once. */
    public static final int PER_PROCESS = 64;

    private final ModuleRegistry registry;
    private final Map<Long, Registration> byId = new ConcurrentHashMap<>();
    private final AtomicLong ids = new AtomicLong();

    ProcessAttachments(ModuleRegistry registry) {
        this.registry = registry;
    }

    /**
     * One process's request.
     *
     * @param id its id, unique for this agent's life
     * @param pid the process (thread-group id)
     * @param command the process's command name when it asked
     * @param startTime the process's start time, in clock ticks since boot
     * @param module the module's name
     * @param version the version the process asked for, or empty for whichever is loaded
     * @param limit connections it attaches to at most, 0 for no limit
     * @param expiresAtMs when it ends (epoch ms), 0 for never
     */
    public record Registration(long id, int pid, String command, String startTime, String module, String version, long limit, long expiresAtMs,
                               AtomicLong attached) {
        /** Connections it was attached to so far. */
        public long attachedCount() {
            return attached.get();
        }

        boolean expired(long nowMs) {
            return expiresAtMs > 0 && nowMs >= expiresAtMs || limit > 0 && attached.get() >= limit;
        }
    }

    /** Why a request is refused: a message that says what to do. */
    public static final class Refused extends Exception {
        public Refused(String message) {
            super(message);
        }
    }

    /**
     * Registers {@code module} for process {@code pid}'s next connections.
     *
     * @param version the loaded version it must be, or empty for any
     * @param connections how many connections, 0 for no limit
     * @param time how long, or null for no limit
     * @throws Refused if the module is not loaded, not at that version, not {@code mode: programmatic}, not attaching
     *         new connections in its state, or the process is gone or holds {@link #PER_PROCESS} registrations
     */
    public Registration add(int pid, String module, String version, long connections, Duration time) throws Refused {
        LoadedModule m = registry.find(module).orElseThrow(() -> new Refused("no module named '" + module
                + "' is loaded in this agent; load it (interlayer modules load JAR) or ask for one that interlayer modules list shows"));
        if (!version.isEmpty() && !version.equals(m.version())) {
            throw new Refused("module " + module + " is loaded at version " + m.version() + ", not " + version + "; ask for " + m.version()
                    + " or for no version");
        }
        if (m.attachMode() != AttachMode.PROGRAMMATIC) {
            throw new Refused("module " + m.id() + " is mode: global: it attaches by its selector to every connection it matches, so a process"
                    + " cannot ask for it; ask for a module of mode: programmatic");
        }
        if (!m.state().attachesNew()) {
            throw new Refused("module " + m.id() + " is " + m.state().name().toLowerCase() + " and attaches to no new connection; activate it first");
        }
        String start = startTime(pid);
        if (start == null) {
            throw new Refused("process " + pid + " has exited");
        }
        if (byId.values().stream().filter(r -> r.pid() == pid).count() >= PER_PROCESS) {
            throw new Refused("process " + pid + " already holds " + PER_PROCESS + " registrations; end one first");
        }
        long expires = time == null || time.isZero() ? 0 : System.currentTimeMillis() + time.toMillis();
        Registration r = new Registration(ids.incrementAndGet(), pid, command(pid), start, module, version, connections, expires, new AtomicLong());
        byId.put(r.id(), r);
        ProcessHandle h = ProcessHandle.of(pid).orElse(null);
        if (h == null) {
            exited(pid, start);
        } else if (h.pid() != ProcessHandle.current().pid()) { // the agent's own registrations end with it
            h.onExit().thenRun(() -> exited(pid, start));
        }
        LOG.log(Level.INFO, "process {0} ({1}): module {2} attaches to its next connections (registration {3})", pid, r.command(), m.id(), r.id());
        return r;
    }

    /** Ends registration {@code id} of process {@code pid}; false if the process holds no such registration. */
    public boolean remove(long id, int pid) {
        Registration r = byId.get(id);
        return r != null && r.pid() == pid && byId.remove(id, r);
    }

    /** Ends registration {@code id} whoever holds it; false if there is none. */
    public boolean remove(long id) {
        return byId.remove(id) != null;
    }

    /** The registrations in force, oldest first. */
    public List<Registration> list() {
        long now = System.currentTimeMillis();
        byId.values().removeIf(r -> r.expired(now));
        return byId.values().stream().sorted(Comparator.comparingLong(Registration::id)).toList();
    }

    /** The registered modules for a new connection or flow {@code c}: those its process asked for (none if no process asked). */
    List<LoadedModule> modulesFor(ConnectionInfo c) {
        if (byId.isEmpty()) return List.of();
        AppInfo app = c.app();
        if (app == null) return List.of();
        List<LoadedModule> out = new ArrayList<>();
        long now = System.currentTimeMillis();
        String start = null;
        for (Registration r : byId.values()) {
            if (r.pid() != app.tgid()) continue;
            if (start == null) start = startTime(r.pid());
            if (!r.startTime().equals(start) || r.expired(now)) {
                byId.remove(r.id(), r); // a reused pid, or over its limit
                continue;
            }
            LoadedModule m = registry.find(r.module()).orElse(null);
            if (m == null || !m.state().attachesNew() || !m.serves(c.protocol()) || out.contains(m)
                    || !r.version().isEmpty() && !r.version().equals(m.version())) {
                continue;
            }
            if (r.limit() > 0 && r.attached().incrementAndGet() > r.limit()) continue;
            if (r.limit() == 0) r.attached().incrementAndGet();
            out.add(m);
        }
        return out;
    }

    private void exited(int pid, String start) {
        if (byId.values().removeIf(r -> r.pid() == pid && r.startTime().equals(start))) {
            LOG.log(Level.INFO, "process {0} exited: its programmatic attach registrations ended", pid);
        }
    }

    /** Field 22 of {@code /proc/PID/stat} (start time in clock ticks since boot), or null if the process is gone. */
    static String startTime(int pid) {
        try {
            String stat = Files.readString(Path.of("/proc", Integer.toString(pid), "stat"), StandardCharsets.US_ASCII);
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return f.length > 19 ? f[19] : null;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    private static String command(int pid) {
        try {
            return Files.readString(Path.of("/proc", Integer.toString(pid), "comm"), StandardCharsets.UTF_8).strip();
        } catch (IOException | RuntimeException e) {
            return "";
        }
    }
}
