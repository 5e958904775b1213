package dev.interlayer.engine.contract;

import dev.interlayer.api.Direction;
import dev.interlayer.api.Role;
import dev.interlayer.engine.testing.EngineFixture;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The engine on real sockets: a listener on loopback, the test as the local application (a client socket) and as the
 * network (the upstream socket the engine connects to), each peer's input read to its end by a thread of its own.
 *
 * <p>Nothing tells a socket test when the engine is done with a step, so after each one the driver waits until what it
 * observes matches the guide's snapshot for that step (another driver's, normally the embedded engine's), up to a
 * timeout, and then a little longer to catch anything that happens after. A step that never matches leaves the
 * difference for the caller's comparison to report. Chunk boundaries are the kernel's: only the bytes, the ends and the
 * module records are compared, and each step is one small write, which the engine reads as one chunk on loopback.
 */
final class SocketDriver implements Driver {

    /** How long a step may take to reach the guide's snapshot; an advance step adds its own duration. */
    private static final Duration SETTLE_TIMEOUT = Duration.ofSeconds(3);
    /** How long after a match the driver still watches for more. */
    private static final Duration AFTERWARDS = Duration.ofMillis(50);
    /** Without a guide: a step has settled once nothing changed for this long. */
    private static final Duration QUIET = Duration.ofMillis(250);

    @Override
    public String name() {
        return "sockets";
    }

    @Override
    public List<Snapshot> run(Scenario s, List<Snapshot> guide) throws Exception {
        List<RecordingModule> modules = s.modules.stream().map(ModuleScript::newModule).toList();
        List<Snapshot> out = new ArrayList<>();
        try (EngineFixture fx = new EngineFixture();
             ServerSocket upstream = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            for (RecordingModule m : modules) fx.add(m);
            InetSocketAddress listener = fx.listen(Role.CLIENT, (InetSocketAddress) upstream.getLocalSocketAddress());
            upstream.setSoTimeout((int) SETTLE_TIMEOUT.toMillis());
            try (Socket app = EngineFixture.connect(listener); Socket net = upstream.accept()) {
                app.setSoTimeout(0);
                net.setTcpNoDelay(true);
                Peer atNetwork = new Peer(net);
                Peer atApp = new Peer(app);
                Observer o = new Observer(modules, atNetwork, atApp);
                out.add(o.settle(guide == null ? null : guide.get(0), Duration.ZERO));
                for (int i = 0; i < s.steps.size(); i++) {
                    Scenario.Step step = s.steps.get(i);
                    Duration extra = Duration.ZERO;
                    if (o.failure == null) {
                        try {
                            switch (step) {
                                case Scenario.Write w -> {
                                    Socket from = w.direction() == Direction.SEND ? app : net;
                                    from.getOutputStream().write(RecordingModule.bytes(w.text()));
                                    from.getOutputStream().flush();
                                }
                                case Scenario.End e -> (e.direction() == Direction.SEND ? app : net).shutdownOutput();
                                case Scenario.Advance a -> {
                                    extra = a.by();
                                    if (guide == null) Thread.sleep(a.by());
                                }
                                case Scenario.Detach d -> {
                                    long id = fx.engine.connections().getFirst().id();
                                    if (!fx.engine.detach(id, d.module())) {
                                        o.failure = "the engine did not detach " + d.module() + " from connection " + id;
                                    }
                                }
                            }
                        } catch (IOException e) {
                            o.failure = "the socket driver could not " + step + ": " + e;
                        }
                    }
                    out.add(o.settle(guide == null ? null : guide.get(i + 1), extra));
                }
                atNetwork.closing = true;
                atApp.closing = true;
            }
        }
        return out;
    }

    /** What one peer reads: every byte until its end, and how it ended. */
    private static final class Peer {
        private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        private volatile Snapshot.End end = Snapshot.End.OPEN;
        /** Set before the test closes the socket itself: the exception that follows is not a reset by the engine. */
        volatile boolean closing;

        Peer(Socket s) throws IOException {
            InputStream in = s.getInputStream();
            Thread.ofVirtual().start(() -> {
                byte[] buf = new byte[8192];
                try {
                    int n;
                    while ((n = in.read(buf)) > 0) {
                        synchronized (bytes) {
                            bytes.write(buf, 0, n);
                        }
                    }
                    end = Snapshot.End.FIN;
                } catch (IOException e) {
                    if (!closing) end = Snapshot.End.RESET;
                }
            });
        }

        String text() {
            synchronized (bytes) {
                return bytes.toString(StandardCharsets.ISO_8859_1);
            }
        }
    }

    /** Takes snapshots of the peers and the modules' records, and waits for a step to settle. */
    private static final class Observer {
        private final List<RecordingModule> modules;
        private final Peer atNetwork;
        private final Peer atApp;
        String failure;

        Observer(List<RecordingModule> modules, Peer atNetwork, Peer atApp) {
            this.modules = modules;
            this.atNetwork = atNetwork;
            this.atApp = atApp;
        }

        Snapshot snapshot() {
            Map<String, List<String>> records = new LinkedHashMap<>();
            for (RecordingModule m : modules) records.put(m.name(), m.entries());
            // the ends before the bytes: a reader sets its end after its last byte, so bytes read after it are all of them
            Snapshot.End sentEnd = atNetwork.end;
            Snapshot.End receivedEnd = atApp.end;
            return new Snapshot(atNetwork.text(), sentEnd, atApp.text(), receivedEnd, records, failure);
        }

        Snapshot settle(Snapshot guide, Duration extra) throws InterruptedException {
            long deadline = System.nanoTime() + SETTLE_TIMEOUT.plus(extra).toNanos();
            Snapshot last = snapshot();
            if (guide != null) {
                while (guide.firstDifference(last, true) != null && System.nanoTime() < deadline) {
                    Thread.sleep(5);
                    last = snapshot();
                }
                Thread.sleep(AFTERWARDS.toMillis());
                return snapshot();
            }
            long quietSince = System.nanoTime();
            while (System.nanoTime() < deadline && System.nanoTime() - quietSince < QUIET.toNanos()) {
                Thread.sleep(10);
                Snapshot now = snapshot();
                if (!now.equals(last)) {
                    last = now;
                    quietSince = System.nanoTime();
                }
            }
            return last;
        }
    }
}
