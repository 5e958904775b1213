package dev.interlayer.control;

import dev.interlayer.control.v1.AuditEntry;
import java.io.BufferedWriter;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * The security module's decisions: a bounded in-memory ring (the newest {@code capacity} decisions,
 * queryable through the {@code Audit} endpoint) and, optionally, an append-only file with one JSON object
 * per line that is never truncated by the agent.
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

    private final Entry[] ring;
    private int head;
    private int size;
    private long seq;
    private long dropped;
    private final Path file;
    private BufferedWriter out;
    private final CopyOnWriteArrayList<Consumer<Entry>> subscribers = new CopyOnWriteArrayList<>();

    /**
     * A log keeping the newest {@code capacity} decisions in memory and, if {@code file} is not null,
     * appending every decision to it.
     *
     * @throws IOException if the file cannot be opened for appending
     */
    public AuditLog(int capacity, Path file) throws IOException {
        if (capacity < 1) {
            throw new IllegalArgumentException("audit capacity must be at least 1");
        }
        this.ring = new Entry[capacity];
        this.file = file;
        if (file != null) {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            out = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND, StandardOpenOption.WRITE);
        }
    }

    /** The audit file, or null. */
    public Path file() {
        return file;
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
                try {
                    out.write(e.toJson());
                    out.write('\n');
                    out.flush();
                } catch (IOException ex) {
                    LOG.log(Level.ERROR, "cannot append to the audit file {0}: {1}; decisions are kept in memory only from now on", file, ex.toString());
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
