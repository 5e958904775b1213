package dev.interlayer.engine;

import dev.interlayer.runtime.AttachmentSite;
import dev.interlayer.runtime.LoadedModule;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.EventExecutorChooserFactory;
import java.lang.System.Logger.Level;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * The event loops stuck in a module call that did not stop when asked ({@link Watchdog}), and what the engine does
 * about them: keeps new connections away from them and ends a revoked module's connections on the other loops.
 *
 * <ul>
 *   <li>Listening sockets of its own (epoll, {@code SO_REUSEPORT}, the default): a stuck loop's sockets leave the
 *       port's group ({@code shutdown(SHUT_RD)}, {@link DirectListener#withdraw}), so the kernel hands new connections
 *       to the other loops only; they rejoin when the call returns. Connections already waiting in a withdrawn socket's
 *       backlog are reset by the kernel rather than left hanging.
 *   <li>One listening socket whose loop hands connections out (NIO, {@code reuse-port: false}): the hand-out
 *       ({@link #newChooser}) skips stuck loops. If the listening socket's own loop is stuck, nothing is accepted until
 *       it returns; the agent cannot accept on a thread that never comes back.
 *   <li>Netty's listening channels, one per loop ({@code direct: false} with {@code reuse-port}): not withdrawn; the
 *       stuck loop keeps its share of new connections, which wait in its backlog until it returns.
 *   <li>A UDP listener lives on one loop with all its flows: while that loop is stuck the listener is too.
 * </ul>
 *
 * <p>Threading: {@link #stuck} and {@link #recovered} on the watchdog's thread; the rest on any thread.
 */
final class StuckLoops implements Watchdog.Events, EventExecutorChooserFactory {

    private static final System.Logger LOG = System.getLogger("interlayer.engine");

    private final Set<Thread> stuck = ConcurrentHashMap.newKeySet();
    private final Supplier<List<DirectListener>> listeners;

    /** @param listeners the direct listeners running now (each on one loop) */
    StuckLoops(Supplier<List<DirectListener>> listeners) {
        this.listeners = listeners;
    }

    /** True while {@code loop}'s thread is stuck in a module call. */
    boolean isStuck(EventExecutor loop) {
        if (stuck.isEmpty()) return false;
        for (Thread t : stuck) {
            if (loop.inEventLoop(t)) return true;
        }
        return false;
    }

    @Override
    public void stuck(Watchdog.Slot slot, StuckCall call) {
        stuck.add(slot.thread);
        int n = 0;
        for (DirectListener l : listeners.get()) {
            if (l.loop().inEventLoop(slot.thread) && l.withdraw()) n++;
        }
        if (n > 0) {
            LOG.log(Level.WARNING, "{0} listening socket(s) of stuck event loop {1} left their ports: new connections go to the other"
                    + " event loops until it returns", n, slot.thread.getName());
        }
    }

    @Override
    public void recovered(Watchdog.Slot slot, StuckCall call) {
        stuck.remove(slot.thread);
        for (DirectListener l : listeners.get()) {
            if (l.loop().inEventLoop(slot.thread)) l.loop().execute(l::rejoin);
        }
    }

    /**
     * {@code m} was revoked while calls into it are stuck ({@code calls}): resets its connections on the loops that are not
     * stuck, without waiting for its stuck calls (which may never return). The stuck loops' own connections stay until
     * their loop returns.
     */
    void revokedWhileStuck(LoadedModule m, List<StuckCall> calls) {
        String why = "module " + m.id() + " revoked while stuck in " + calls.getFirst().hook() + " on " + calls.getFirst().thread();
        int n = 0;
        for (AttachmentSite site : m.sites()) {
            Connection c = site instanceof RealAttachment r ? r.conn : site instanceof DatagramAttachment d ? d.flow : null;
            if (c != null && !isStuck(c.loop())) {
                c.execute(() -> c.abort(why));
                n++;
            }
        }
        LOG.log(Level.WARNING, "{0}: resetting its {1} connection(s) on event loops that are not stuck", why, n);
    }

    /** Hands out loops round-robin, skipping stuck ones (all stuck: round-robin over all). */
    @Override
    public EventExecutorChooser newChooser(EventExecutor[] executors) {
        AtomicInteger next = new AtomicInteger();
        return () -> {
            EventExecutor e = executors[Math.floorMod(next.getAndIncrement(), executors.length)];
            for (int i = 1; i < executors.length && isStuck(e); i++) {
                e = executors[Math.floorMod(next.getAndIncrement(), executors.length)];
            }
            return e;
        };
    }
}
