package dev.interlayer.orchestrator;

import dev.interlayer.orchestrator.v1.OrchestratorMessage;
import dev.interlayer.orchestrator.v1.Snapshot;
import io.grpc.stub.ServerCallStreamObserver;
import java.lang.System.Logger.Level;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The agents' streams this orchestrator holds, and the one thread that sends them their desired state: at once after
 * a change made here ({@link #changed()}), and within a second of a change another orchestrator on the same database
 * made (the fleet's revision is polled).
 *
 * <p>Lifecycle: {@link #start()} starts the thread; {@link #close()} stops it and ends every stream.
 */
final class AgentStreams implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.orchestrator");

    /** One agent's stream; {@code sent} is the desired state last sent (null before the first). */
    static final class Session {
        final String agent;
        final ServerCallStreamObserver<OrchestratorMessage> out;
        Snapshot sent;
        volatile boolean closed;

        Session(String agent, ServerCallStreamObserver<OrchestratorMessage> out) {
            this.agent = agent;
            this.out = out;
        }
    }

    private final Store store;
    private final Map<String, Session> sessions = new ConcurrentHashMap<>();
    private final Object wake = new Object();
    private final Thread pusher;
    private volatile boolean dirty = true;
    private volatile boolean closed;
    private long seenRevision = -1;
    private boolean databaseDown;

    AgentStreams(Store store) {
        this.store = store;
        this.pusher = Thread.ofPlatform().daemon().name("interlayer-orchestrator-push").unstarted(this::loop);
    }

    void start() {
        pusher.start();
    }

    /** Adds an agent's stream (ending an older one of the same agent) and sends it its desired state. */
    void add(Session s) {
        Session old = sessions.put(s.agent, s);
        if (old != null && old != s) {
            end(old, "the agent opened a new stream");
        }
        push(s);
    }

    void remove(Session s) {
        s.closed = true;
        sessions.remove(s.agent, s);
    }

    /** The desired state may have changed: send it to every agent now. */
    void changed() {
        dirty = true;
        synchronized (wake) {
            wake.notifyAll();
        }
    }

    /** The agents connected here. */
    List<String> agents() {
        return List.copyOf(sessions.keySet());
    }

    private void loop() {
        while (!closed) {
            try {
                synchronized (wake) {
                    if (!dirty) {
                        wake.wait(1000);
                    }
                }
                if (closed) {
                    return;
                }
                long rev = store.revision();
                if (databaseDown) {
                    LOG.log(Level.INFO, "orchestrator: the database answers again");
                    databaseDown = false;
                }
                if (dirty || rev != seenRevision) {
                    dirty = false;
                    seenRevision = rev;
                    for (Session s : sessions.values()) {
                        push(s);
                    }
                }
            } catch (InterruptedException e) {
                return;
            } catch (Store.Unavailable e) {
                if (!databaseDown) {
                    LOG.log(Level.WARNING, "orchestrator: {0}", e.getMessage());
                    databaseDown = true;
                }
                dirty = true;
            } catch (RuntimeException e) {
                LOG.log(Level.ERROR, "orchestrator: sending desired state failed", e);
            }
        }
    }

    /** Sends {@code s} its desired state if it differs from what it was sent last. */
    private void push(Session s) {
        Snapshot snap = store.snapshot(s.agent);
        synchronized (s) {
            if (s.closed || s.sent != null && s.sent.getModulesList().equals(snap.getModulesList())) {
                return;
            }
            try {
                s.out.onNext(OrchestratorMessage.newBuilder().setSnapshot(snap).build());
                s.sent = snap;
            } catch (RuntimeException e) {
                s.closed = true; // the stream is gone; the agent reconnects
                return;
            }
        }
        store.sent(s.agent, snap.getRevision());
    }

    private static void end(Session s, String why) {
        synchronized (s) {
            if (s.closed) {
                return;
            }
            s.closed = true;
            try {
                s.out.onError(io.grpc.Status.ABORTED.withDescription(why).asRuntimeException());
            } catch (RuntimeException e) {
                // already gone
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        pusher.interrupt();
        for (Session s : sessions.values()) {
            end(s, "the orchestrator is stopping; connect again");
        }
        sessions.clear();
    }
}
