package dev.interlayer.control;

import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * What the control endpoint refuses below the security module: connections refused before any call (a
 * caller over its connection limit, bytes that are not the HTTP/2 preface of a gRPC client, no preface in
 * time, a refused TLS handshake) and calls whose message the transport refused (larger than the limit).
 * Each refusal is one line in the agent's log (no stack trace) and one audit entry ({@code Transport.Connect},
 * kind {@code connection}, for a connection). A caller that repeats one kind of refusal gets {@link #PER_WINDOW}
 * lines and entries per {@link #WINDOW}, and one more line and entry at its end that counts the rest, so
 * that no local user can flood the log or the audit file through the control socket.
 */
final class Rejections implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.control");

    /** The audit entry's endpoint, method and kind for a refused connection. */
    static final String ENDPOINT = "Transport";
    static final String METHOD = "Connect";
    static final String KIND = "connection";

    /** Rule names of refusals. */
    static final String CONNECTION_LIMIT = "connection-limit";
    static final String NOT_HTTP2 = "not-http2";
    static final String HANDSHAKE_TIMEOUT = "handshake-timeout";
    static final String TLS_HANDSHAKE = "tls-handshake";

    /** The window of the rate limit, and how many refusals per caller and rule it reports one by one. */
    static final Duration WINDOW = Duration.ofSeconds(10);
    static final int PER_WINDOW = 3;

    /** What is grouped: who (a uid, a peer address) and the rule. */
    private record Key(String who, String rule) {}

    /** One refusal. */
    private record Refusal(Caller caller, String endpoint, String method, String kind, String decision, String reason) {}

    private final AuditLog audit;
    private final WindowCounter<Key, Refusal> counter = new WindowCounter<>(PER_WINDOW, 256, new Key("other callers", "any"));
    private final ScheduledFuture<?> flusher;

    /** Reports to {@code audit} and the log; ends a window every {@link #WINDOW} on {@code timer}. */
    Rejections(AuditLog audit, ScheduledExecutorService timer) {
        this.audit = audit;
        this.flusher = timer.scheduleAtFixedRate(this::flush, WINDOW.toMillis(), WINDOW.toMillis(), TimeUnit.MILLISECONDS);
    }

    /**
     * Reports a refused connection.
     *
     * @param caller who, as far as known (a TLS peer whose handshake failed has no certificate to show)
     * @param who what refusals are grouped by: {@code uid 1001}, a peer address
     * @param decision {@link AuditLog#DENIED} or {@link AuditLog#INVALID}
     * @param rule one of the rule names above
     * @param reason what happened, one line
     */
    void refuse(Caller caller, String who, String decision, String rule, String reason) {
        report(new Key(who, rule), new Refusal(caller, ENDPOINT, METHOD, KIND, decision, reason));
    }

    /** Reports a call whose request the transport refused before the security module saw it (rule {@code structure}). */
    void refuseCall(Caller caller, String who, Idl.Method method, String reason) {
        report(new Key(who, SecurityModule.STRUCTURE_RULE), new Refusal(caller, method.endpoint(), method.name(), Policy.Kind.REQUEST.word(),
                AuditLog.INVALID, reason));
    }

    private void report(Key key, Refusal r) {
        if (counter.pass(key, r)) {
            LOG.log(Level.WARNING, "control: refused {0}{1}: {2} (rule {3})", what(r), of(r.caller(), key.who()), r.reason(), key.rule());
            audit.record(r.caller(), r.endpoint(), r.method(), r.kind(), r.decision(), key.rule(), r.reason());
        }
    }

    private static String what(Refusal r) {
        return KIND.equals(r.kind()) ? "a connection" : "a " + r.endpoint() + "." + r.method() + " call";
    }

    /** Ends the window: one line and one audit entry for each caller and rule with refusals held back. */
    void flush() {
        TransportNoise.flush();
        for (WindowCounter.Held<Key, Refusal> h : counter.drain()) {
            Refusal last = h.last();
            String text = h.count() + " more refused like this in the last " + WINDOW.toSeconds() + " s; the last: " + last.reason();
            LOG.log(Level.WARNING, "control: refused {0} more like {1}{2} in the last {3} s (rule {4}); the last: {5}", h.count(), what(last),
                    of(last.caller(), h.key().who()), WINDOW.toSeconds(), h.key().rule(), last.reason());
            audit.record(last.caller(), last.endpoint(), last.method(), last.kind(), last.decision(), h.key().rule(), text);
        }
    }

    /** {@code " of CALLER"}; empty for a TLS client without a certificate yet, whose reason names its address. */
    private static String of(Caller c, String who) {
        if (Caller.UDS.equals(c.transport())) {
            return " of " + c;
        }
        return c.subject().isEmpty() ? "" : " of " + c + " from " + who;
    }

    @Override
    public void close() {
        flusher.cancel(false);
        flush();
    }
}
