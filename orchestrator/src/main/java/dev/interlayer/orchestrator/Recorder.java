package dev.interlayer.orchestrator;

import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.function.Consumer;

/**
 * Writes what agents say on their streams (answers to snapshots, reports) to the store from one thread, as many as have
 * come in since the last write in one transaction: a deployment to thousands of agents is thousands of answers within
 * a second, which one transaction each would not keep up with. The order of what one agent said is kept.
 *
 * <p>When the store cannot write (the database is down), each stream whose words were lost is told through the
 * callback it gave, which ends it: its agent connects again and is sent its snapshot again, and answers again.
 */
final class Recorder implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.orchestrator");
    /** At most this many in one transaction. */
    private static final int BATCH = 5000;

    private record Entry(Store.Said said, Consumer<Store.Unavailable> lost) {}

    private final Store store;
    private final LinkedBlockingQueue<Entry> queue = new LinkedBlockingQueue<>();
    private final Thread writer;
    private volatile boolean closed;

    Recorder(Store store) {
        this.store = store;
        this.writer = Thread.ofPlatform().daemon().name("interlayer-orchestrator-recorder").start(this::loop);
    }

    /** Queues {@code said}; {@code lost} is called (on the writer's thread) if it cannot be written. */
    void add(Store.Said said, Consumer<Store.Unavailable> lost) {
        queue.add(new Entry(said, lost));
    }

    private void loop() {
        List<Entry> batch = new ArrayList<>();
        while (!closed) {
            try {
                batch.add(queue.take());
            } catch (InterruptedException e) {
                return;
            }
            queue.drainTo(batch, BATCH - 1);
            try {
                store.record(batch.stream().map(Entry::said).toList());
            } catch (Store.Unavailable e) {
                Set<Consumer<Store.Unavailable>> told = new LinkedHashSet<>();
                batch.forEach(x -> told.add(x.lost()));
                told.forEach(c -> c.accept(e));
            } catch (RuntimeException e) {
                LOG.log(Level.ERROR, "orchestrator: recording what " + batch.size() + " agent message(s) said failed", e);
            }
            batch.clear();
        }
    }

    @Override
    public void close() {
        closed = true;
        writer.interrupt();
    }
}
