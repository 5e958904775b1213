package dev.interlayer.orchestrator;

import com.google.protobuf.ByteString;
import dev.interlayer.control.Caller;
import dev.interlayer.control.SecurityModule;
import dev.interlayer.orchestrator.v1.AgentMessage;
import dev.interlayer.orchestrator.v1.AgentsGrpc;
import dev.interlayer.orchestrator.v1.FetchChunk;
import dev.interlayer.orchestrator.v1.FetchRequest;
import dev.interlayer.orchestrator.v1.OrchestratorMessage;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.lang.System.Logger.Level;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * {@code Agents}: each enrolled agent's stream (hello, then acknowledgements and reports; its desired state comes back)
 * and the jars it fetches. The agent is the CN of its certificate, which must be the certificate it enrolled with last.
 */
final class AgentsEndpoint extends AgentsGrpc.AgentsImplBase {

    private static final System.Logger LOG = System.getLogger("interlayer.orchestrator");
    private static final int CHUNK = 1 << 20;

    private final Store store;
    private final AgentStreams streams;
    private final Recorder recorder;
    private final String instance;
    /** Jars agents fetched lately, by SHA-256 (a jar never changes): a deployment to many agents reads each once. */
    private final Map<String, Store.Artifact> jars = java.util.Collections.synchronizedMap(new java.util.LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Store.Artifact> eldest) {
            return size() > 8;
        }
    });

    AgentsEndpoint(Store store, AgentStreams streams, Recorder recorder, String instance) {
        this.store = store;
        this.streams = streams;
        this.recorder = recorder;
        this.instance = instance;
    }

    /** The agent its certificate names. */
    private static String named() {
        Caller c = SecurityModule.CALLER.get();
        List<String> cn = c == null ? List.of() : c.subjectAttribute("CN");
        if (cn.size() != 1) {
            throw Status.PERMISSION_DENIED.withDescription("the client certificate names no agent (CN)").asRuntimeException();
        }
        return cn.getFirst();
    }

    /** The enrolled agent calling, checked against its last enrollment. */
    private String agent() {
        String agent = named();
        String serial;
        try {
            serial = store.certificateSerial(agent);
        } catch (Store.Unavailable e) {
            throw FleetEndpoint.status(e);
        }
        if (serial == null) {
            throw Status.PERMISSION_DENIED.withDescription("no agent named " + agent + " is enrolled; enroll it with a new token").asRuntimeException();
        }
        if (!serial.equals(Peer.current().serial())) {
            throw Status.PERMISSION_DENIED.withDescription("agent " + agent + " enrolled again since this certificate was issued; use the newer one")
                    .asRuntimeException();
        }
        return agent;
    }

    @Override
    public StreamObserver<AgentMessage> connect(StreamObserver<OrchestratorMessage> out) {
        ServerCallStreamObserver<OrchestratorMessage> call = (ServerCallStreamObserver<OrchestratorMessage>) out;
        String agent;
        try {
            agent = agent();
        } catch (StatusRuntimeException e) {
            out.onError(e); // the stream ends with the reason (a database down, a replaced certificate), not as a failed handler
            return new StreamObserver<>() {
                @Override
                public void onNext(AgentMessage m) {}

                @Override
                public void onError(Throwable t) {}

                @Override
                public void onCompleted() {}
            };
        }
        String address = Peer.current().address();
        AgentStreams.Session session = new AgentStreams.Session(agent, call, Peer.current().key());
        return new StreamObserver<>() {
            private volatile boolean hello;
            /** Set once the stream is refused (from the stream's thread, or the recorder's). */
            private final AtomicBoolean refused = new AtomicBoolean();
            /** Set once the agent's leaving is recorded. */
            private final AtomicBoolean left = new AtomicBoolean();

            @Override
            public void onNext(AgentMessage m) {
                if (refused.get()) {
                    return;
                }
                try {
                    if (!hello && m.getKindCase() != AgentMessage.KindCase.HELLO) {
                        refuse(Status.INVALID_ARGUMENT.withDescription("the stream began with " + kind(m) + "; an agent's stream begins with its hello"
                                + " (version, applied revision, report), and nothing else comes before it"));
                        return;
                    }
                    switch (m.getKindCase()) {
                        case HELLO -> {
                            if (hello) {
                                return;
                            }
                            hello = true;
                            store.connected(agent, instance, address, m.getHello().getVersion(), m.getHello().getReport());
                            LOG.log(Level.INFO, "orchestrator: agent {0} connected from {1} (version {2}, applied revision {3,number,#})", agent, address,
                                    m.getHello().getVersion(), m.getHello().getAppliedRevision());
                            streams.add(session);
                        }
                        case ACK -> {
                            var a = m.getAck();
                            if (!streams.wasSent(session, a.getRevision())) {
                                refuse(Status.INVALID_ARGUMENT.withDescription("agent " + agent + " answered revision " + a.getRevision()
                                        + ", which was not sent on this stream; an agent answers only the snapshots it receives"));
                                return;
                            }
                            recorder.add(new Store.Acked(agent, a.getRevision(), a.getApplied(), a.getReason(), a.getReport()), this::lost);
                            if (!a.getApplied()) {
                                LOG.log(Level.WARNING, "orchestrator: agent {0} refused revision {1,number,#}: {2}", agent, a.getRevision(), a.getReason());
                            }
                        }
                        case REPORT -> recorder.add(new Store.Reported(agent, m.getReport()), this::lost);
                        case PROOF -> streams.proof(session, m.getProof());
                        case KIND_NOT_SET -> refuse(Status.INVALID_ARGUMENT.withDescription("an empty message (no hello, ack, report or proof);"
                                + " every message on an agent's stream carries one of them"));
                    }
                } catch (Store.Unavailable e) {
                    refuse(FleetEndpoint.status(e).getStatus());
                }
            }

            /** What the agent said could not be recorded: the stream ends, the agent connects again and says it again. */
            private void lost(Store.Unavailable e) {
                refuse(FleetEndpoint.status(e).getStatus());
            }

            /** Ends the stream with {@code status}, once; later messages of the agent are dropped. */
            private void refuse(Status status) {
                if (refused.getAndSet(true)) {
                    return;
                }
                if (!hello) {
                    LOG.log(Level.WARNING, "orchestrator: refused the stream of agent {0} from {1}: {2}", agent, address, status.getDescription());
                } else {
                    LOG.log(Level.WARNING, "orchestrator: ended the stream of agent {0}: {1}", agent, status.getDescription());
                    gone("refused: " + status.getDescription());
                }
                streams.remove(session);
                synchronized (session) {
                    out.onError(status.asRuntimeException());
                }
            }

            @Override
            public void onError(Throwable t) {
                gone("the stream broke: " + Status.fromThrowable(t).getCode());
            }

            @Override
            public void onCompleted() {
                gone("the agent closed its stream");
                if (!refused.getAndSet(true)) {
                    synchronized (session) {
                        out.onCompleted();
                    }
                }
            }

            private void gone(String why) {
                if (left.getAndSet(true)) {
                    return;
                }
                streams.remove(session);
                try {
                    store.disconnected(agent, instance, why);
                } catch (Store.Unavailable e) {
                    LOG.log(Level.DEBUG, "cannot record that {0} left: {1}", agent, e.getMessage());
                }
            }
        };
    }

    private static String kind(AgentMessage m) {
        return m.getKindCase() == AgentMessage.KindCase.KIND_NOT_SET ? "an empty message" : "a message of kind " + m.getKindCase().name().toLowerCase(java.util.Locale.ROOT);
    }

    @Override
    public void fetch(FetchRequest r, StreamObserver<FetchChunk> out) {
        if (!streams.holds(named(), Peer.current().key())) { // its stream was checked when it opened
            agent();
        }
        Store.Artifact a = jars.get(r.getSha256());
        try {
            if (a == null) {
                a = store.artifact(r.getSha256());
                if (a != null) {
                    jars.put(a.sha256(), a);
                }
            }
        } catch (Store.Unavailable e) {
            throw FleetEndpoint.status(e);
        }
        if (a == null) {
            throw Status.NOT_FOUND.withDescription("no jar with SHA-256 " + r.getSha256() + " was uploaded").asRuntimeException();
        }
        byte[] b = a.content();
        for (int off = 0; off < b.length; off += CHUNK) {
            out.onNext(FetchChunk.newBuilder().setData(ByteString.copyFrom(b, off, Math.min(CHUNK, b.length - off))).build());
        }
        out.onCompleted();
    }
}
