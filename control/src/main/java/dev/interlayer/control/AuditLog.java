package dev.interlayer.control;

import dev.interlayer.control.v1.AuditEntry;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipalNotFoundException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * The security module's decisions: a bounded in-memory ring (the newest {@code capacity} decisions,
 * queryable through the {@code Audit} endpoint) and, optionally, an append-only file with one JSON object
 * per line that the agent never truncates.
 *
 * <p>The file is readable by the agent's user only (mode 0600), or also by one group (0640) that
 * {@link FileOptions#group} names; a file found with a wider mode is narrowed when it is opened. When it would grow
 * past {@link FileOptions#maxSize} it is rotated: {@code audit.jsonl} becomes {@code audit.jsonl.1}, {@code .1}
 * becomes {@code .2}, and so on up to {@link FileOptions#keep} files; the oldest is deleted. {@link #reopen}
 * closes the file and opens its path again, for rotation by another tool ({@code mv} then
 * {@code interlayer audit reopen} or SIGUSR1).
 *
 * <p>Thread-safe. Recording takes a short lock; subscribers ({@code Audit.Tail}) are called on the
 * recording thread and must not block (they queue).
 */
public final class AuditLog implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.control");

    /** The decision words. */
    public static final String GRANTED = "granted";
    /** A policy rule (or the default) denied the message. */
    public static final String DENIED = "denied";
    /** The message broke the IDL constraints. */
    public static final String INVALID = "invalid";

    /**
     * One decision.
     *
     * @param seq its number, from 1, increasing
     * @param at when
     * @param caller who called
     * @param endpoint the endpoint
     * @param method the method
     * @param kind request or response
     * @param decision {@link #GRANTED}, {@link #DENIED} or {@link #INVALID}
     * @param rule the deciding rule, {@code default}, or {@code structure} for a constraint
     * @param reason why
     */
    public record Entry(long seq, Instant at, Caller caller, String endpoint, String method, String kind, String decision, String rule,
                        String reason) {

        /** The entry as the wire shows it. */
        public AuditEntry toProto() {
            return AuditEntry.newBuilder().setSeq(seq).setAtMs(at.toEpochMilli()).setCaller(caller.toProto()).setEndpoint(endpoint)
                    .setMethod(method).setKind(kind).setDecision(decision).setRule(rule).setReason(reason).build();
        }

        /** One line of the audit file. */
        String toJson() {
            StringBuilder b = new StringBuilder(256);
            b.append("{\"seq\":").append(seq).append(",\"time\":");
            Json.str(b, at.toString());
            b.append(",\"transport\":");
            Json.str(b, caller.transport());
            if (caller.uid() >= 0) {
                b.append(",\"uid\":").append(caller.uid()).append(",\"gid\":").append(caller.gid()).append(",\"pid\":").append(caller.pid());
                b.append(",\"user\":");
                Json.str(b, caller.user());
                b.append(",\"command\":");
                Json.str(b, caller.command());
                if (!caller.exe().isEmpty()) {
                    b.append(",\"exe\":");
                    Json.str(b, caller.exe());
                }
            }
            if (!caller.subject().isEmpty()) {
                b.append(",\"subject\":");
                Json.str(b, caller.subject());
            }
            b.append(",\"endpoint\":");
            Json.str(b, endpoint);
            b.append(",\"method\":");
            Json.str(b, method);
            b.append(",\"kind\":");
            Json.str(b, kind);
            b.append(",\"decision\":");
            Json.str(b, decision);
            b.append(",\"rule\":");
            Json.str(b, rule);
            b.append(",\"reason\":");
            Json.str(b, reason);
            return b.append('}').toString();
        }
    }

    /**
     * How the audit file is kept.
     *
     * @param maxSize the size in bytes past which the file is rotated; 0 never rotates
     * @param keep how many rotated files to keep ({@code audit.jsonl.1} .. {@code .keep}), at least 1
     * @param group the group that may read the file (mode 0640), or null: only the agent's user (0600)
     */
    public record FileOptions(long maxSize, int keep, String group) {
        /** 64 MiB per file, 8 rotated files, readable by the agent's user only. */
        public static final FileOptions DEFAULT = new FileOptions(64L << 20, 8, null);

        public FileOptions {
            if (maxSize < 0 || keep < 1) {
                throw new IllegalArgumentException("audit file: max size must be 0 or more and keep at least 1");
            }
        }

        /** The mode the file gets. */
        Set<PosixFilePermission> mode() {
            return PosixFilePermissions.fromString(group == null ? "rw-------" : "rw-r-----");
        }
    }

    private final Entry[] ring;
    private int head;
    private int size;
    private long seq;
    private long dropped;
    private final Path file;
    private final FileOptions options;
    private FileChannel out;
    private long written;
    private final CopyOnWriteArrayList<Consumer<Entry>> subscribers = new CopyOnWriteArrayList<>();

    /**
     * A log keeping the newest {@code capacity} decisions in memory and, if {@code file} is not null,
     * appending every decision to it, kept as {@link FileOptions#DEFAULT} says.
     *
     * @throws IOException if the file cannot be opened for appending
     */
    public AuditLog(int capacity, Path file) throws IOException {
        this(capacity, file, FileOptions.DEFAULT);
    }

    /**
     * A log keeping the newest {@code capacity} decisions in memory and, if {@code file} is not null,
     * appending every decision to it, kept as {@code options} say.
     *
     * @throws IOException if the file cannot be opened for appending, or its group or mode cannot be set
     */
    public AuditLog(int capacity, Path file, FileOptions options) throws IOException {
        if (capacity < 1) {
            throw new IllegalArgumentException("audit capacity must be at least 1");
        }
        this.ring = new Entry[capacity];
        this.file = file;
        this.options = options;
        if (file != null) {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            open();
        }
    }

    /** Opens (creating it with the right mode) the file for appending and makes its group and mode what the options say. */
    private void open() throws IOException {
        FileChannel ch = FileChannel.open(file, Set.of(StandardOpenOption.CREATE, StandardOpenOption.APPEND, StandardOpenOption.WRITE),
                PosixFilePermissions.asFileAttribute(options.mode()));
        try {
            PosixFileAttributeView view = Files.getFileAttributeView(file, PosixFileAttributeView.class);
            if (options.group() != null) {
                GroupPrincipal g;
                try {
                    g = FileSystems.getDefault().getUserPrincipalLookupService().lookupPrincipalByGroupName(options.group());
                } catch (UserPrincipalNotFoundException e) {
                    throw new IOException("there is no group " + options.group() + " (agent.control.audit-group)");
                }
                view.setGroup(g);
            }
            Set<PosixFilePermission> was = view.readAttributes().permissions();
            if (!was.equals(options.mode())) {
                // a file made before (by hand, or by an older agent) may be readable by others
                view.setPermissions(options.mode());
                LOG.log(Level.WARNING, "audit file {0} had mode {1}; set it to {2}", file, PosixFilePermissions.toString(was),
                        PosixFilePermissions.toString(options.mode()));
            }
            written = ch.size();
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
        out = ch;
    }

    /** The audit file, or null. */
    public Path file() {
        return file;
    }

    /** How the audit file is kept. */
    public FileOptions options() {
        return options;
    }

    /**
     * Closes the audit file and opens its path again: after another tool moved the file away, decisions go
     * to a new file at the configured path; after a write error, writing starts again.
     *
     * @return the bytes in the file now open
     * @throws IllegalStateException if there is no audit file
     * @throws IOException if the file cannot be opened (decisions are then kept in memory only, until a
     *         reopen succeeds)
     */
    public synchronized long reopen() throws IOException {
        if (file == null) {
            throw new IllegalStateException("the agent has no audit file; set agent.control.audit-file");
        }
        closeQuietly();
        open();
        LOG.log(Level.INFO, "audit file {0} reopened ({1} bytes)", file, written);
        return written;
    }

    /** Moves the full file to {@code .1} (and older ones up by one, dropping the oldest) and starts an empty one. */
    private void rotate() throws IOException {
        closeQuietly();
        Files.deleteIfExists(rotated(options.keep()));
        for (int i = options.keep() - 1; i >= 1; i--) {
            if (Files.exists(rotated(i))) {
                Files.move(rotated(i), rotated(i + 1), StandardCopyOption.REPLACE_EXISTING);
            }
        }
        if (Files.exists(file)) {
            Files.move(file, rotated(1), StandardCopyOption.REPLACE_EXISTING);
        }
        open();
        LOG.log(Level.INFO, "audit file {0} reached {1} bytes (agent.control.audit-max-size) and was rotated to {2}", file, options.maxSize(),
                rotated(1).getFileName());
    }

    private Path rotated(int n) {
        return file.resolveSibling(file.getFileName() + "." + n);
    }

    /** How many decisions the ring keeps. */
    public int capacity() {
        return ring.length;
    }

    /** Records a decision and returns it. */
    public Entry record(Caller caller, String endpoint, String method, String kind, String decision, String rule, String reason) {
        Entry e;
        synchronized (this) {
            e = new Entry(++seq, Instant.now(), caller, endpoint, method, kind, decision, rule, reason);
            if (size < ring.length) {
                ring[(head + size) % ring.length] = e;
                size++;
            } else {
                ring[head] = e;
                head = (head + 1) % ring.length;
                dropped++;
            }
            if (out != null) {
                byte[] line = (e.toJson() + "\n").getBytes(StandardCharsets.UTF_8);
                try {
                    if (options.maxSize() > 0 && written > 0 && written + line.length > options.maxSize()) {
                        rotate();
                    }
                    ByteBuffer b = ByteBuffer.wrap(line);
                    while (b.hasRemaining()) {
                        out.write(b);
                    }
                    written += line.length;
                } catch (IOException ex) {
                    LOG.log(Level.ERROR, "cannot append to the audit file {0}: {1}; decisions are kept in memory only until"
                            + " interlayer audit reopen (or SIGUSR1) opens it again", file, ex.toString());
                    closeQuietly();
                }
            }
        }
        for (Consumer<Entry> s : subscribers) {
            try {
                s.accept(e);
            } catch (RuntimeException ex) {
                LOG.log(Level.WARNING, "audit subscriber failed: {0}", ex.toString());
            }
        }
        return e;
    }

    /**
     * The newest {@code limit} entries that match, oldest first.
     *
     * @param decision only this decision, or null/empty for all
     * @param endpoint only this endpoint, or null/empty for all
     * @param afterSeq only entries with a larger sequence number
     */
    public synchronized List<Entry> query(int limit, String decision, String endpoint, long afterSeq) {
        List<Entry> out = new ArrayList<>();
        for (int i = size - 1; i >= 0 && out.size() < limit; i--) {
            Entry e = ring[(head + i) % ring.length];
            if (e.seq() <= afterSeq) {
                break;
            }
            if ((decision == null || decision.isEmpty() || decision.equals(e.decision())) && (endpoint == null || endpoint.isEmpty()
                    || endpoint.equals(e.endpoint()))) {
                out.add(e);
            }
        }
        return out.reversed();
    }

    /** Decisions pushed out of the ring so far (they are still in the file, if there is one). */
    public synchronized long dropped() {
        return dropped;
    }

    /** The sequence number of the newest decision, 0 if none. */
    public synchronized long lastSeq() {
        return seq;
    }

    /** Calls {@code s} with every decision recorded from now on, until the returned handle is run. */
    public Runnable subscribe(Consumer<Entry> s) {
        subscribers.add(s);
        return () -> subscribers.remove(s);
    }

    private void closeQuietly() {
        if (out != null) {
            try {
                out.close();
            } catch (IOException ignored) {
                // closing after a write error: nothing more to report
            }
            out = null;
        }
    }

    @Override
    public synchronized void close() {
        closeQuietly();
    }
}
