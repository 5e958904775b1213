package dev.interlayer.control;

import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import io.grpc.Attributes;
import io.grpc.Context;
import io.grpc.ForwardingServerCall;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Optional;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * The security module: sits in front of every control handler and checks each request and each
 * response, as the KasperskyOS security module checks IPC messages (docs/control-plane.md).
 *
 * <pre>
 *  caller ──request──▶ [1 structure: constraints.yaml] ──malformed──▶ INVALID_ARGUMENT (no rule runs)
 *                              │ well-formed
 *                              ▼
 *                      [2 policy: first matching rule, default deny] ──denied──▶ PERMISSION_DENIED (rule named)
 *                              │ granted
 *                              ▼
 *                          handler ──response──▶ [structure] ──▶ [policy, on: response] ──denied──▶ PERMISSION_DENIED
 *                                                                      │ granted                    (the data is withheld)
 *  caller ◀────────────────────────────────────────────────────────────┘
 * </pre>
 *
 * <p>A denied request never reaches its handler: the handler's listener is created only after the first
 * request message is granted. For client-streaming calls every message is structure-checked, the
 * message sequence is checked against the stream rule, and the policy decides on the first message
 * (the header). For server-streaming calls every response message is checked; the first denied one ends
 * the stream with PERMISSION_DENIED. Every decision is written to the {@link AuditLog}, except granted
 * responses of a server stream after its first (a live stream would flood the log, and a tail of the
 * audit log would audit itself).
 *
 * <p>The caller's identity comes from the transport: {@link #CALLER_ATTRIBUTE} set by the Unix-socket
 * transport from {@code SO_PEERCRED}, or the client certificate of the TLS session. Handlers read it
 * from {@link #CALLER} in their gRPC context.
 */
public final class SecurityModule implements ServerInterceptor {

    private static final System.Logger LOG = System.getLogger("interlayer.control");

    /** The caller as the Unix-socket transport proved it; set per connection. */
    public static final Attributes.Key<Caller> CALLER_ATTRIBUTE = Attributes.Key.create("interlayer.caller");
    /** The caller of the current call, for handlers. */
    public static final Context.Key<Caller> CALLER = Context.key("interlayer.caller");
    /** The rule name reported for a broken constraint. */
    public static final String STRUCTURE_RULE = "structure";

    private final Idl idl;
    private final Constraints constraints;
    private final PolicyHolder policy;
    private final AuditLog audit;
    private final boolean enabled;

    /**
     * A security module.
     *
     * @param enabled false switches every check off (benchmarks compare the cost); the caller is still
     *                identified and handed to handlers
     */
    public SecurityModule(Constraints constraints, PolicyHolder policy, AuditLog audit, boolean enabled) {
        this(Idl.control(), constraints, policy, audit, enabled);
    }

    /**
     * A security module in front of the services of {@code idl}.
     *
     * @param enabled false switches every check off (benchmarks compare the cost); the caller is still
     *                identified and handed to handlers
     */
    public SecurityModule(Idl idl, Constraints constraints, PolicyHolder policy, AuditLog audit, boolean enabled) {
        this.idl = idl;
        this.constraints = constraints;
        this.policy = policy;
        this.audit = audit;
        this.enabled = enabled;
    }

    /** Whether checks are on. */
    public boolean enabled() {
        return enabled;
    }

    /** The IDL whose methods it guards. */
    public Idl idl() {
        return idl;
    }

    /** The policy holder. */
    public PolicyHolder policy() {
        return policy;
    }

    /** The audit log. */
    public AuditLog audit() {
        return audit;
    }

    /** The constraints. */
    public Constraints constraints() {
        return constraints;
    }

    /**
     * The outcome of checking one message.
     *
     * @param decision {@link AuditLog#GRANTED}, {@link AuditLog#DENIED} or {@link AuditLog#INVALID}
     * @param rule the deciding rule, or {@link #STRUCTURE_RULE}
     * @param reason why, in full: for the audit log
     * @param shown why, as the caller is told: what it needs to know, without the agent's internals (where the
     *              policy file lives, the protobuf decoder's own words)
     */
    public record Verdict(String decision, String rule, String reason, String shown) {
        /** A verdict whose reason the caller may see as it is. */
        public Verdict(String decision, String rule, String reason) {
            this(decision, rule, reason, reason);
        }

        /** True if granted. */
        public boolean granted() {
            return AuditLog.GRANTED.equals(decision);
        }
    }

    /**
     * Checks one message without a transport and without auditing: structure first (a request as the
     * first message of its call), then the policy in force. Used by the interceptor, {@code interlayer policy test}, and the fuzz tests.
     */
    public Verdict check(Caller caller, Idl.Method method, Policy.Kind kind, Message message) {
        Optional<Constraints.Violation> v = constraints.check(message);
        if (v.isPresent()) {
            return new Verdict(AuditLog.INVALID, STRUCTURE_RULE, v.get().message());
        }
        if (kind == Policy.Kind.REQUEST) {
            // a request checked on its own is the first message of its call
            Constraints.StreamRule stream = constraints.stream(method.id()).orElse(null);
            if (stream != null && stream.first() != null && !message.hasField(message.getDescriptorForType().findFieldByName(stream.first()))) {
                return new Verdict(AuditLog.INVALID, STRUCTURE_RULE, firstMessageProblem(method, stream));
            }
        }
        return verdict(policy.current().policy().decide(caller, method, kind, message));
    }

    private static Verdict verdict(Policy.Decision d) {
        return new Verdict(d.granted() ? AuditLog.GRANTED : AuditLog.DENIED, d.rule(), d.reason(), d.shown());
    }

    private Verdict checkAndAudit(Caller caller, Idl.Method method, Policy.Kind kind, Message message, boolean audited) {
        Verdict v = check(caller, method, kind, message);
        if (audited || !v.granted()) {
            audit.record(caller, method.endpoint(), method.name(), kind.word(), v.decision(), v.rule(), v.reason());
        }
        return v;
    }

    static String firstMessageProblem(Idl.Method method, Constraints.StreamRule stream) {
        return "message 1 of " + method.id() + " must set '" + stream.first() + "' (the first message)";
    }

    /** The status a denied request gets. */
    public static Status requestStatus(Verdict v) {
        if (AuditLog.INVALID.equals(v.decision())) {
            return Status.INVALID_ARGUMENT.withDescription("invalid request: " + v.shown());
        }
        return Status.PERMISSION_DENIED.withDescription("denied by rule '" + v.rule() + "': " + v.shown());
    }

    /** The status that replaces a denied response. */
    static Status responseStatus(Verdict v) {
        if (AuditLog.INVALID.equals(v.decision())) {
            // What is wrong may quote the response, which the caller must not see: the audit log has it.
            return Status.INTERNAL.withDescription("the agent's response broke the IDL constraints and was withheld"
                    + " (a bug in the agent; its audit log has the details; please report it)");
        }
        return Status.PERMISSION_DENIED.withDescription("response denied by rule '" + v.rule() + "': " + v.shown());
    }

    /** The caller proven by the transport of {@code attrs}, or null if it proves none. */
    public static Caller callerOf(Attributes attrs) {
        Caller c = attrs.get(CALLER_ATTRIBUTE);
        if (c != null) {
            return c;
        }
        SSLSession session = attrs.get(Grpc.TRANSPORT_ATTR_SSL_SESSION);
        if (session == null) {
            return null;
        }
        Object cached = session.getValue("interlayer.caller");
        if (cached instanceof Caller cc) {
            return cc;
        }
        try {
            Certificate[] chain = session.getPeerCertificates();
            if (chain.length == 0 || !(chain[0] instanceof X509Certificate x)) {
                return null;
            }
            Caller tls = Caller.tls(x);
            session.putValue("interlayer.caller", tls);
            return tls;
        } catch (SSLPeerUnverifiedException e) {
            return null;
        }
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        Idl.Method method = idl.byGrpcName(call.getMethodDescriptor().getFullMethodName());
        Caller caller = callerOf(call.getAttributes());
        if (method == null) {
            call.close(Status.UNIMPLEMENTED.withDescription("no such method: " + call.getMethodDescriptor().getFullMethodName()), new Metadata());
            return new ServerCall.Listener<>() {};
        }
        if (caller == null) {
            Caller unknown = new Caller("unknown", -1, -1, -1, "", "", "", List.of());
            audit.record(unknown, method.endpoint(), method.name(), Policy.Kind.REQUEST.word(), AuditLog.DENIED, "identity",
                    "the transport proved no caller identity");
            call.close(Status.UNAUTHENTICATED.withDescription("the agent could not establish who is calling; connect over its Unix socket"
                    + " or with a client certificate"), new Metadata());
            return new ServerCall.Listener<>() {};
        }
        Context ctx = Context.current().withValue(CALLER, caller);
        Guard<Q, R> guard = new Guard<>(call, headers, next, method, caller, ctx);
        call.request(1);
        return guard;
    }

    /** Holds the handler back until the first request is granted, then forwards; checks every response. */
    private final class Guard<Q, R> extends ServerCall.Listener<Q> {
        private final Metadata headers;
        private final ServerCallHandler<Q, R> next;
        private final Idl.Method method;
        private final Caller caller;
        private final Context ctx;
        private final GuardedCall<Q, R> guarded;
        private final Constraints.StreamRule stream;
        private ServerCall.Listener<Q> delegate;
        private long messages;
        private long streamBytes;

        Guard(ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next, Idl.Method method, Caller caller, Context ctx) {
            this.headers = headers;
            this.next = next;
            this.method = method;
            this.caller = caller;
            this.ctx = ctx;
            this.guarded = new GuardedCall<>(call, method, caller);
            this.stream = constraints.stream(method.id()).orElse(null);
        }

        @Override
        public void onMessage(Q message) {
            if (guarded.closed) {
                return;
            }
            messages++;
            if ((Object) message instanceof Undecodable u) {
                String what = "the bytes of message " + messages + " are not a valid " + method.id() + " request";
                Verdict v = new Verdict(AuditLog.INVALID, STRUCTURE_RULE, what + " (" + u.problem() + ")", what + ": they do not decode as "
                        + method.descriptor().getInputType().getFullName() + " (" + idl.fileName() + "); check that the client uses this endpoint's IDL");
                audit.record(caller, method.endpoint(), method.name(), Policy.Kind.REQUEST.word(), v.decision(), v.rule(), v.reason());
                guarded.closeByGuard(requestStatus(v));
                return;
            }
            if (enabled) {
                Message m = (Message) message;
                Verdict v = null;
                Optional<Constraints.Violation> bad = constraints.check(m);
                if (bad.isPresent()) {
                    v = new Verdict(AuditLog.INVALID, STRUCTURE_RULE, (messages > 1 ? "message " + messages + ": " : "") + bad.get().message());
                } else if (stream != null) {
                    String problem = streamProblem(m);
                    if (problem != null) {
                        v = new Verdict(AuditLog.INVALID, STRUCTURE_RULE, problem);
                    }
                }
                if (v == null && messages == 1) {
                    v = verdict(policy.current().policy().decide(caller, method, Policy.Kind.REQUEST, m));
                }
                if (v != null) {
                    if (messages == 1 || !v.granted()) {
                        audit.record(caller, method.endpoint(), method.name(), Policy.Kind.REQUEST.word(), v.decision(), v.rule(), v.reason());
                    }
                    if (!v.granted()) {
                        // A handler that saw earlier messages learns the call is over in onComplete (as a cancel).
                        guarded.closeByGuard(requestStatus(v));
                        return;
                    }
                }
            }
            if (delegate == null) {
                try {
                    delegate = ctx.call(() -> next.startCall(guarded, headers));
                } catch (Exception e) {
                    LOG.log(System.Logger.Level.ERROR, "control handler " + method.id() + " failed to start", e);
                    guarded.closeByGuard(Status.INTERNAL.withDescription(method.id() + " failed to start in the agent"
                            + " (a bug in the agent; its log has the details; please report it)"));
                    return;
                }
            }
            ServerCall.Listener<Q> d = delegate;
            handle(() -> d.onMessage(message));
        }

        /**
         * Runs a handler callback in the call's context; a {@link StatusRuntimeException} it throws becomes the
         * call's status (handlers report "not found" and the like by throwing), anything else is a handler bug
         * and becomes INTERNAL.
         */
        private void handle(Runnable r) {
            try {
                ctx.run(r);
            } catch (StatusRuntimeException e) {
                guarded.close(e.getStatus(), e.getTrailers() == null ? new Metadata() : e.getTrailers());
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.ERROR, "control handler " + method.id() + " failed", e);
                guarded.close(Status.INTERNAL.withDescription(method.id() + " failed in the agent: " + e.getClass().getSimpleName()
                        + " (a bug in the agent; its log has the details; please report it)"), new Metadata());
            }
        }

        /** What is wrong with the message order of a client stream, or null. */
        private String streamProblem(Message m) {
            String want = messages == 1 ? stream.first() : stream.rest();
            if (want != null) {
                FieldDescriptor f = m.getDescriptorForType().findFieldByName(want);
                if (!m.hasField(f)) {
                    return messages == 1 ? firstMessageProblem(method, stream)
                            : "message " + messages + " of " + method.id() + " must set '" + want + "' (every message after the first)";
                }
                if (messages > 1 && f.getJavaType() == FieldDescriptor.JavaType.BYTE_STRING) {
                    streamBytes += ((ByteString) m.getField(f)).size();
                    if (streamBytes > stream.maxTotalBytes()) {
                        return method.id() + " carried more than " + stream.maxTotalBytes() + " bytes in '" + want + "' (max-total-bytes)";
                    }
                }
            }
            return null;
        }

        @Override
        public void onHalfClose() {
            if (guarded.closed) {
                return;
            }
            if (delegate == null) {
                Verdict v = new Verdict(AuditLog.INVALID, STRUCTURE_RULE, method.id() + " needs a request message and the call carried none");
                if (enabled) {
                    audit.record(caller, method.endpoint(), method.name(), Policy.Kind.REQUEST.word(), v.decision(), v.rule(), v.reason());
                }
                guarded.closeByGuard(requestStatus(v));
                return;
            }
            ServerCall.Listener<Q> d = delegate;
            handle(d::onHalfClose);
        }

        @Override
        public void onCancel() {
            if (delegate != null) {
                ServerCall.Listener<Q> d = delegate;
                ctx.run(d::onCancel);
            }
        }

        @Override
        public void onComplete() {
            if (delegate != null) {
                ServerCall.Listener<Q> d = delegate;
                // A stream the guard ended is over for the handler too: let it drop its subscription.
                ctx.run(guarded.closed && guarded.byGuard ? d::onCancel : d::onComplete);
            }
        }

        @Override
        public void onReady() {
            if (delegate != null) {
                ServerCall.Listener<Q> d = delegate;
                ctx.run(d::onReady);
            }
        }
    }

    /** The call as the handler sees it: every response it sends is checked first. */
    private final class GuardedCall<Q, R> extends ForwardingServerCall.SimpleForwardingServerCall<Q, R> {
        private final Idl.Method method;
        private final Caller caller;
        private final boolean serverStreaming;
        volatile boolean closed;
        volatile boolean byGuard;
        private long responses;

        GuardedCall(ServerCall<Q, R> call, Idl.Method method, Caller caller) {
            super(call);
            this.method = method;
            this.caller = caller;
            this.serverStreaming = method.descriptor().isServerStreaming();
        }

        void closeByGuard(Status status) {
            if (closed) {
                return;
            }
            closed = true;
            byGuard = true;
            super.close(status, new Metadata());
        }

        @Override
        public void sendHeaders(Metadata headers) {
            if (!closed) {
                super.sendHeaders(headers);
            }
        }

        @Override
        public void sendMessage(R message) {
            if (closed) {
                return;
            }
            if (enabled) {
                responses++;
                Verdict v = checkAndAudit(caller, method, Policy.Kind.RESPONSE, (Message) message, !serverStreaming || responses == 1);
                if (!v.granted()) {
                    closeByGuard(responseStatus(v));
                    return;
                }
            }
            super.sendMessage(message);
        }

        @Override
        public void close(Status status, Metadata trailers) {
            if (closed) {
                return;
            }
            closed = true;
            super.close(status, trailers);
        }
    }
}
