package dev.interlayer.orchestrator;

import com.google.protobuf.ByteString;
import dev.interlayer.control.IntegrityProof;
import dev.interlayer.orchestrator.v1.Challenge;
import dev.interlayer.orchestrator.v1.DesiredModule;
import dev.interlayer.orchestrator.v1.LoadedPackage;
import dev.interlayer.orchestrator.v1.OrchestratorMessage;
import dev.interlayer.orchestrator.v1.Proof;
import dev.interlayer.orchestrator.v1.Snapshot;
import io.grpc.stub.ServerCallStreamObserver;
import java.lang.System.Logger.Level;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
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

    /**
     * One agent's stream; {@code sent} is the desired state last sent (null before the first); {@code nonce} the
     * integrity challenge not answered yet (null when none is open), sent when {@code sent} was {@code challenged}.
     */
    static final class Session {
        final String agent;
        final ServerCallStreamObserver<OrchestratorMessage> out;
        final PublicKey key;
        Snapshot sent;
        byte[] nonce;
        Snapshot challenged;
        long challengedNanos;
        long lastChallengeNanos;
        volatile boolean closed;

        Session(String agent, ServerCallStreamObserver<OrchestratorMessage> out, PublicKey key) {
            this.agent = agent;
            this.out = out;
            this.key = key;
            // the first challenge FIRST_CHALLENGE after the stream opened (its first snapshot goes before), then every CHALLENGE_EVERY
            this.lastChallengeNanos = System.nanoTime() - CHALLENGE_EVERY.toNanos() + FIRST_CHALLENGE.toNanos();
        }
    }

    /** How often every connected agent is challenged to prove the jars it runs. */
    static final Duration CHALLENGE_EVERY = Duration.ofMinutes(5);
    /** How long after its stream opened an agent is challenged first. */
    static final Duration FIRST_CHALLENGE = Duration.ofSeconds(10);
    /** How long an agent has to answer a challenge. */
    static final Duration ANSWER_WITHIN = Duration.ofSeconds(15);

    private final Store store;
    private final SecureRandom random = new SecureRandom();
    private final Map<String, Session> sessions = new ConcurrentHashMap<>();
    /** Streams opened since the pusher last ran, to be sent their desired state. */
    private final java.util.concurrent.ConcurrentLinkedQueue<Session> pending = new java.util.concurrent.ConcurrentLinkedQueue<>();
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

    /** Adds an agent's stream (ending an older one of the same agent); the pusher sends it its desired state. */
    void add(Session s) {
        Session old = sessions.put(s.agent, s);
        if (old != null && old != s) {
            end(old, "the agent opened a new stream");
        }
        pending.add(s);
        synchronized (wake) {
            wake.notifyAll();
        }
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

    /** Whether a snapshot of {@code revision} (or a later one) was sent on {@code s}: what its agent may acknowledge. */
    boolean wasSent(Session s, long revision) {
        synchronized (s) {
            return s.sent != null && revision <= s.sent.getRevision();
        }
    }

    /** Whether {@code agent} holds a stream here with the certificate key {@code key} (checked when the stream opened). */
    boolean holds(String agent, PublicKey key) {
        Session s = sessions.get(agent);
        return s != null && !s.closed && s.key != null && s.key.equals(key);
    }

    /** The agents connected here. */
    List<String> agents() {
        return List.copyOf(sessions.keySet());
    }

    private void loop() {
        while (!closed) {
            try {
                synchronized (wake) {
                    if (!dirty && pending.isEmpty()) {
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
                List<Session> targets = new ArrayList<>();
                if (dirty || rev != seenRevision) {
                    dirty = false;
                    seenRevision = rev;
                    pending.clear();
                    targets.addAll(sessions.values());
                } else {
                    for (Session s; (s = pending.poll()) != null; ) {
                        targets.add(s);
                    }
                }
                push(targets);
                long now = System.nanoTime();
                for (Session s : sessions.values()) {
                    if (s.nonce != null && now - s.challengedNanos > ANSWER_WITHIN.toNanos()) {
                        unanswered(s);
                    } else if (s.nonce == null && now - s.lastChallengeNanos > CHALLENGE_EVERY.toNanos()) {
                        challenge(s);
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

    /**
     * Sends each of {@code targets} its desired state if it differs from what it was sent last: the snapshots read in
     * one transaction, the sending recorded in one before anything is sent, so that an agent's answer, however quick,
     * is never overwritten by it.
     */
    private void push(List<Session> targets) {
        if (targets.isEmpty()) {
            return;
        }
        Map<String, Snapshot> snaps = store.snapshots(targets.stream().map(s -> s.agent).distinct().toList());
        Map<String, Snapshot> changed = new LinkedHashMap<>();
        for (Session s : targets) {
            Snapshot snap = snaps.get(s.agent);
            synchronized (s) {
                if (!s.closed && sessions.get(s.agent) == s && (s.sent == null || !s.sent.getModulesList().equals(snap.getModulesList()))) {
                    changed.put(s.agent, snap);
                }
            }
        }
        store.sent(changed);
        for (Session s : targets) {
            Snapshot snap = changed.get(s.agent);
            if (snap == null) {
                continue;
            }
            synchronized (s) {
                if (s.closed) {
                    continue;
                }
                try {
                    s.out.onNext(OrchestratorMessage.newBuilder().setSnapshot(snap).build());
                    s.sent = snap;
                } catch (RuntimeException e) {
                    s.closed = true; // the stream is gone; the agent reconnects and is sent its state again
                }
            }
        }
    }

    // ---- integrity -------------------------------------------------------------------------------

    /** Sends {@code s} a new challenge, unless one is open (its answer will do); false if its stream is gone. */
    boolean challenge(Session s) {
        byte[] nonce = new byte[32];
        random.nextBytes(nonce);
        synchronized (s) {
            if (s.closed) {
                return false;
            }
            if (s.nonce != null) {
                return true;
            }
            try {
                s.out.onNext(OrchestratorMessage.newBuilder().setChallenge(Challenge.newBuilder().setNonce(ByteString.copyFrom(nonce))).build());
            } catch (RuntimeException e) {
                s.closed = true;
                return false;
            }
            s.nonce = nonce;
            s.challenged = s.sent;
            s.challengedNanos = System.nanoTime();
            s.lastChallengeNanos = s.challengedNanos;
        }
        return true;
    }

    private void unanswered(Session s) {
        synchronized (s) {
            if (s.nonce == null) {
                return;
            }
            s.nonce = null;
            s.notifyAll();
        }
        LOG.log(Level.WARNING, "orchestrator: agent {0} did not answer its integrity challenge within {1} s", s.agent, ANSWER_WITHIN.toSeconds());
        store.judged(s.agent, "NO_ANSWER", "no answer to the integrity challenge within " + ANSWER_WITHIN.toSeconds() + " s");
    }

    /**
     * Judges {@code s}'s answer to its challenge and records the verdict; only then is the challenge closed, so that
     * whoever waits for it ({@link #verify}) reads the verdict.
     */
    void proof(Session s, Proof p) {
        synchronized (s) {
            if (s.nonce == null || !java.util.Arrays.equals(s.nonce, p.getNonce().toByteArray())) {
                store.judged(s.agent, "MISMATCH", "it answered a challenge it was not sent (or too late): a replayed or forged proof");
                return;
            }
            try {
                String problem = judge(s, p, s.challenged == null ? Snapshot.getDefaultInstance() : s.challenged);
                if (problem == null) {
                    store.judged(s.agent, "VERIFIED", null);
                } else {
                    LOG.log(Level.WARNING, "orchestrator: agent {0} failed its integrity challenge: {1}", s.agent, problem);
                    store.judged(s.agent, "MISMATCH", problem);
                }
            } finally {
                s.nonce = null;
                s.notifyAll();
            }
        }
    }

    private String judge(Session s, Proof p, Snapshot deployed) {
        if (s.key == null || !IntegrityProof.verify(s.key, p.getNonce().toByteArray(), p.getPackagesList(), p.getSignature().toByteArray())) {
            return "the proof's signature does not verify with the key of the agent's certificate";
        }
        List<String> problems = new ArrayList<>();
        Map<String, DesiredModule> byName = new LinkedHashMap<>();
        for (DesiredModule d : deployed.getModulesList()) {
            byName.put(d.getModule().getName(), d);
            boolean runs = p.getPackagesList().stream().anyMatch(x -> x.getName().equals(d.getModule().getName())
                    && x.getVersion().equals(d.getModule().getVersion()) && x.getSha256().equals(d.getSha256()));
            if (!runs) {
                problems.add(d.getModule().getName() + "@" + d.getModule().getVersion() + " (jar SHA-256 " + d.getSha256() + ") is deployed to it"
                        + " but not loaded");
            }
        }
        for (LoadedPackage x : p.getPackagesList()) {
            DesiredModule d = byName.get(x.getName());
            if (d == null || x.getVersion().equals(d.getModule().getVersion()) && x.getSha256().equals(d.getSha256())) {
                continue; // a module the orchestrator does not manage here (the agent's own folder or config), or the deployed jar
            }
            if (!x.getSha256().equals(store.uploadedJar(x.getName(), x.getVersion()))) { // an earlier deployed version may still run, deprecated
                problems.add(x.getName() + "@" + x.getVersion() + " runs (" + x.getState() + ") from " + (x.getSha256().isEmpty() ? "no jar"
                        : "jar SHA-256 " + x.getSha256()) + ", which the orchestrator did not deploy");
            }
        }
        return problems.isEmpty() ? null : String.join("; ", problems)
                + "; load the deployed jar again (fleet rotate or deploy) or find who changed the agent";
    }

    /**
     * Challenges the agents connected here among {@code agents} and waits until each answered or {@link #ANSWER_WITHIN}
     * ran out; agents not connected here are judged NO_ANSWER.
     */
    void verify(List<String> agents) throws InterruptedException {
        List<Session> asked = new ArrayList<>();
        for (String a : agents) {
            Session s = sessions.get(a);
            if (s != null && challenge(s)) {
                asked.add(s);
            } else {
                store.judged(a, "NO_ANSWER", "not connected when challenged");
            }
        }
        long deadline = System.nanoTime() + ANSWER_WITHIN.toNanos();
        for (Session s : asked) {
            synchronized (s) {
                while (s.nonce != null && !s.closed && System.nanoTime() < deadline) {
                    s.wait(Math.max(1, (deadline - System.nanoTime()) / 1_000_000));
                }
            }
            unanswered(s);
        }
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
