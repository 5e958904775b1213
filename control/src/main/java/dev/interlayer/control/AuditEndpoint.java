package dev.interlayer.control;

import dev.interlayer.control.v1.AuditEntry;
import dev.interlayer.control.v1.AuditGrpc;
import dev.interlayer.control.v1.AuditQuery;
import dev.interlayer.control.v1.AuditQueryResponse;
import dev.interlayer.control.v1.ReopenAuditRequest;
import dev.interlayer.control.v1.ReopenAuditResponse;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicReference;

/** The {@code Audit} endpoint: the security module's decisions, queried or followed live; the audit file reopened. */
final class AuditEndpoint extends AuditGrpc.AuditImplBase {

    private final AuditLog log;
    private final Executor executor;

    AuditEndpoint(AuditLog log, Executor executor) {
        this.log = log;
        this.executor = executor;
    }

    private static int limit(AuditQuery q) {
        return q.getLimit() == 0 ? 100 : q.getLimit();
    }

    private static boolean matches(AuditQuery q, AuditLog.Entry e) {
        return (q.getDecision().isEmpty() || q.getDecision().equals(e.decision())) && (q.getEndpoint().isEmpty() || q.getEndpoint().equals(e.endpoint()));
    }

    @Override
    public void query(AuditQuery q, StreamObserver<AuditQueryResponse> out) {
        AuditQueryResponse.Builder b = AuditQueryResponse.newBuilder().setDropped(log.dropped());
        for (AuditLog.Entry e : log.query(limit(q), q.getDecision(), q.getEndpoint(), q.getAfterSeq())) {
            b.addEntries(e.toProto());
        }
        out.onNext(b.build());
        out.onCompleted();
    }

    @Override
    public void tail(AuditQuery q, StreamObserver<AuditEntry> out) {
        AtomicReference<Runnable> unsubscribe = new AtomicReference<>(() -> {});
        StreamSender<AuditEntry> sender = new StreamSender<>((ServerCallStreamObserver<AuditEntry>) out, 4096, executor, () -> unsubscribe.get().run());
        // Subscribe first, then send the backlog: an entry that is in both is sent once (the backlog's
        // newest sequence number separates them), and entries that arrive meanwhile wait in `early`.
        Object lock = new Object();
        java.util.List<AuditLog.Entry> early = new java.util.ArrayList<>();
        long[] backlogMax = {-1}; // -1 while the backlog is being read
        unsubscribe.set(log.subscribe(e -> {
            if (!matches(q, e)) {
                return;
            }
            synchronized (lock) {
                if (backlogMax[0] < 0) {
                    early.add(e);
                } else if (e.seq() > backlogMax[0]) {
                    sender.offer(e.toProto());
                }
            }
        }));
        long max = q.getAfterSeq();
        for (AuditLog.Entry e : log.query(limit(q), q.getDecision(), q.getEndpoint(), q.getAfterSeq())) {
            sender.offer(e.toProto());
            max = Math.max(max, e.seq());
        }
        synchronized (lock) {
            for (AuditLog.Entry e : early) {
                if (e.seq() > max) {
                    sender.offer(e.toProto());
                }
            }
            early.clear();
            backlogMax[0] = max;
        }
    }

    @Override
    public void reopen(ReopenAuditRequest request, StreamObserver<ReopenAuditResponse> out) {
        if (log.file() == null) {
            throw Status.FAILED_PRECONDITION.withDescription("the agent has no audit file to reopen; set agent.control.audit-file").asRuntimeException();
        }
        try {
            long size = log.reopen();
            out.onNext(ReopenAuditResponse.newBuilder().setFile(log.file().toString()).setSize(size).build());
            out.onCompleted();
        } catch (IOException e) {
            throw Status.FAILED_PRECONDITION.withDescription("cannot open the audit file " + log.file() + " again: " + e.getMessage()
                    + "; decisions are kept in memory only until it can be opened (check the folder's permissions, then reopen again)").asRuntimeException();
        }
    }
}
