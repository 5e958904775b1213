package dev.interlayer.control;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The policy in force and where it comes from: a file (re-read when it changes, or on request) or the
 * built-in default. A file that fails to parse is refused with its {@code file:line} and the policy in
 * force stays.
 *
 * <p>Thread-safe: {@link #current()} is one volatile read on every call.
 */
public final class PolicyHolder implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.control");

    /** The policy in force and when it was loaded. */
    public record Loaded(Policy policy, Instant at) {}

    private final Path file;
    private final long agentUid;
    private final AtomicReference<Loaded> current;
    private volatile String lastError;
    private volatile Instant lastErrorAt;
    private volatile FileTime seenTime;
    private volatile long seenSize;
    private final Thread watcher;
    private volatile boolean closed;

    private PolicyHolder(Path file, long agentUid, Policy first, boolean watch) {
        this.file = file;
        this.agentUid = agentUid;
        this.current = new AtomicReference<>(new Loaded(first, Instant.now()));
        if (file != null) {
            remember();
        }
        if (file != null && watch) {
            watcher = Thread.ofPlatform().daemon().name("interlayer-policy-watch").unstarted(this::watch);
            watcher.start();
        } else {
            watcher = null;
        }
    }

    /** The built-in default policy; nothing to reload. */
    public static PolicyHolder builtin(long agentUid) {
        return new PolicyHolder(null, agentUid, Policy.builtinDefault(agentUid), false);
    }

    /** A fixed policy (tests, benchmarks); nothing to reload. */
    public static PolicyHolder of(Policy policy) {
        return new PolicyHolder(null, policy.agentUid(), policy, false);
    }

    /**
     * Loads {@code file} and, if {@code watch}, re-reads it within about a second of every change.
     *
     * @throws YamlException if the file cannot be read or is not a valid policy (file:line and what to fix)
     */
    public static PolicyHolder file(Path file, long agentUid, boolean watch) throws YamlException {
        return file(file, agentUid, watch, Idl.control());
    }

    /** {@link #file(Path, long, boolean)} for a policy over the methods of {@code idl}. */
    public static PolicyHolder file(Path file, long agentUid, boolean watch, Idl idl) throws YamlException {
        return new PolicyHolder(file, agentUid, Policy.load(file, agentUid, idl), watch);
    }

    /** The policy in force. */
    public Loaded current() {
        return current.get();
    }

    /** The policy file, or null for the built-in default. */
    public Path file() {
        return file;
    }

    /** Why the last reload was refused, or null if it was not. */
    public String lastError() {
        return lastError;
    }

    /** When the last reload was refused, or null if it was not. */
    public Instant lastErrorAt() {
        return lastErrorAt;
    }

    /**
     * Reads the file again and puts it in force.
     *
     * @throws YamlException (the policy in force stays) if the file is bad, or if there is no file
     */
    public synchronized Loaded reload() throws YamlException {
        if (file == null) {
            throw new YamlException("the agent uses the built-in default policy: there is no file to reload;"
                    + " set agent.control.policy to a policy file and restart the agent");
        }
        remember();
        try {
            Policy p = Policy.load(file, agentUid, current.get().policy().idl());
            Loaded l = new Loaded(p, Instant.now());
            current.set(l);
            lastError = null;
            lastErrorAt = null;
            LOG.log(Level.INFO, "control policy {0} loaded: {1} rules", file, p.size());
            return l;
        } catch (YamlException e) {
            lastErrorAt = Instant.now();
            lastError = e.getMessage();
            LOG.log(Level.ERROR, "control policy not reloaded, the previous one stays in force: {0}", e.getMessage());
            throw e;
        }
    }

    private void remember() {
        try {
            seenTime = Files.getLastModifiedTime(file);
            seenSize = Files.size(file);
        } catch (IOException e) {
            seenTime = null;
            seenSize = -1;
        }
    }

    private boolean changed() {
        try {
            return !Objects.equals(Files.getLastModifiedTime(file), seenTime) || Files.size(file) != seenSize;
        } catch (IOException e) {
            return seenTime != null;
        }
    }

    private void watch() {
        while (!closed) {
            try {
                Thread.sleep(500);
            } catch (InterruptedException e) {
                return;
            }
            if (!closed && changed()) {
                try {
                    reload();
                } catch (YamlException e) {
                    // logged by reload; the old policy stays until the file is fixed
                }
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        if (watcher != null) {
            watcher.interrupt();
        }
    }
}
