package dev.interlayer.control;

import io.grpc.stub.ServerCallStreamObserver;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Sends items to one server-streaming call without ever blocking the thread that produces them (an
 * engine event loop publishing a module event, a call being audited): items wait in a bounded queue and
 * are sent on {@code executor} while the client keeps up; when the queue is full new items are dropped
 * and counted.
 *
 * <p>Thread-safe: {@link #offer} from any thread; sending is serialized.
 */
final class StreamSender<T> {

    private final ServerCallStreamObserver<T> out;
    private final ArrayBlockingQueue<T> queue;
    private final Executor executor;
    private final AtomicBoolean scheduled = new AtomicBoolean();
    private final AtomicLong dropped = new AtomicLong();
    private volatile boolean done;

    StreamSender(ServerCallStreamObserver<T> out, int capacity, Executor executor, Runnable onEnd) {
        this.out = out;
        this.queue = new ArrayBlockingQueue<>(capacity);
        this.executor = executor;
        out.setOnReadyHandler(this::schedule);
        out.setOnCancelHandler(() -> {
            done = true;
            onEnd.run();
        });
    }

    /** Queues an item; false (and counted) if the queue is full or the stream is over. */
    boolean offer(T item) {
        if (done) {
            return false;
        }
        if (!queue.offer(item)) {
            dropped.incrementAndGet();
            return false;
        }
        schedule();
        return true;
    }

    /** Items dropped so far because the client did not keep up. */
    long dropped() {
        return dropped.get();
    }

    private void schedule() {
        if (!done && scheduled.compareAndSet(false, true)) {
            executor.execute(this::drain);
        }
    }

    private void drain() {
        synchronized (this) {
            scheduled.set(false);
            while (!done && out.isReady()) {
                T item = queue.poll();
                if (item == null) {
                    break;
                }
                out.onNext(item);
            }
        }
    }
}
