package dev.interlayer.engine;

import io.netty.channel.Channel;
import io.netty.channel.IoEvent;
import io.netty.channel.IoHandle;
import io.netty.channel.IoHandler;
import io.netty.channel.IoHandlerContext;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.IoOps;
import io.netty.channel.IoRegistration;
import io.netty.channel.unix.UnixChannel;
import io.netty.channel.epoll.EpollIoEvent;
import io.netty.channel.epoll.EpollIoHandle;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollIoOps;
import io.netty.channel.unix.FileDescriptor;
import io.netty.util.collection.IntObjectHashMap;
import io.netty.util.concurrent.FastThreadLocal;
import io.netty.util.concurrent.ThreadAwareExecutor;

/**
 * The engine's epoll I/O handler: Netty's, with a fix for half-closed sockets and a way for the splice path
 * to take a socket's epoll registration over from its channel.
 *
 * <p><b>Half-close fix.</b> When a channel's interest set becomes empty, which happens once its input is shut
 * down and nothing waits to be written, Netty 4.2.18 (the release this build is pinned to) removes the fd from
 * epoll ({@code EPOLL_CTL_DEL}) but still believes it is added. The next write that needs {@code EPOLLOUT} then
 * fails with {@code epoll_ctl(..) ENOENT}, and Netty shuts the output down, discarding the queued bytes: a
 * half-closed connection loses the tail of its reply. This handler never submits an empty set; it submits
 * {@code EPOLLET} alone instead, which keeps the fd registered without any level-triggered event, so later
 * interest changes are plain modifications.
 *
 * <p><b>One interest change per socket per loop turn.</b> A channel changes its interest several times while it
 * connects and starts reading (add {@code EPOLLOUT}, clear it, add {@code EPOLLIN}), each an {@code epoll_ctl}
 * call. This handler keeps the latest interest of each registration and applies it once, before the event loop
 * next waits for events: the kernel sees the same interest at every wait, with fewer system calls.
 *
 * <p><b>No stale event for a reused descriptor.</b> Netty 4.2.18 hands each ready event of a turn to the registration
 * that holds the event's fd <em>number</em> when the event is processed. A socket closed while a turn's events are
 * handled (a reset) frees its number, and a socket opened later in the same turn (an accept, an upstream connect) may
 * get it: the closed socket's events still waiting in the turn (a hang-up, an error) then reach the new socket's
 * channel, which takes them for its own, shuts its input, and the engine resets a healthy connection. Events can only
 * be a descriptor's own from the turn after it was registered (its interest reaches the kernel before the loop next
 * waits), so this handler drops the events a registration receives in the turn it was made in.
 *
 * <p><b>Takeover.</b> {@link #registrationOf(Channel)} finds a channel's registration; {@link Registration#take}
 * routes the socket's epoll events to an {@link Owner} (the splice relay) with the owner's interest set, while
 * the interest changes the channel asks for meanwhile are only remembered; {@link Registration#giveBack}
 * restores the channel's latest interest and its events. No extra file descriptor or epoll registration is
 * needed: the same registration serves both.
 */
final class EngineEpoll implements IoHandlerFactory {

    /** The handler of the current event-loop thread, for {@link #registrationOf}. */
    private static final FastThreadLocal<Handler> CURRENT = new FastThreadLocal<>();

    private final IoHandlerFactory delegate = EpollIoHandler.newFactory();

    @Override
    public IoHandler newHandler(ThreadAwareExecutor ioExecutor) {
        return new Handler(delegate.newHandler(ioExecutor));
    }

    @Override
    public boolean isChangingThreadSupported() {
        return delegate.isChangingThreadSupported();
    }

    /** The registration of an epoll channel on the calling event loop, or null (other transport or thread, not registered). */
    static Registration registrationOf(Channel ch) {
        Handler h = CURRENT.getIfExists();
        if (h == null || !(ch instanceof UnixChannel e) || !ch.eventLoop().inEventLoop()) return null;
        Registration r = h.byFd.get(e.fd().intValue());
        return r != null && r.isValid() ? r : null;
    }

    /** Receives the epoll events of a registration it took. */
    interface Owner {
        /** {@code ops}: the ready epoll flags (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLRDHUP). */
        void ready(Registration r, int ops);
    }

    private static final class Handler implements IoHandler {
        private final IoHandler delegate;
        private final IntObjectHashMap<Registration> byFd = new IntObjectHashMap<>();
        /** Counts the loop's turns (each run: wait, then handle what is ready); see {@link Registration#turn}. */
        private long turn;
        /** Registrations whose channel changed its interest since the loop last waited. */
        private final java.util.ArrayList<Registration> changed = new java.util.ArrayList<>();

        Handler(IoHandler delegate) {
            this.delegate = delegate;
        }

        @Override public void initialize() { delegate.initialize(); }
        @Override
        public int run(IoHandlerContext context) {
            turn++;
            applyChanges();
            return delegate.run(context);
        }

        private void applyChanges() {
            java.util.ArrayList<Registration> c = changed;
            for (int i = 0; i < c.size(); i++) {
                c.get(i).apply();
            }
            c.clear();
        }
        @Override public void prepareToDestroy() { delegate.prepareToDestroy(); }
        @Override public void destroy() { delegate.destroy(); }
        @Override public void wakeup() { delegate.wakeup(); }
        @Override public boolean isCompatible(Class<? extends IoHandle> handleType) { return delegate.isCompatible(handleType); }

        @Override
        public IoRegistration register(IoHandle handle) throws Exception {
            if (CURRENT.getIfExists() != this) CURRENT.set(this);
            if (!(handle instanceof EpollIoHandle eh)) {
                return delegate.register(handle);
            }
            Routed routed = new Routed(eh);
            Registration r = new Registration(this, delegate.register(routed), eh.fd().intValue());
            routed.reg = r;
            byFd.put(r.fd, r);
            return r;
        }
    }

    /** The channel's handle, as registered: events go to the owner while there is one, to the channel otherwise. */
    private static final class Routed implements EpollIoHandle {
        private final EpollIoHandle channel;
        Registration reg;

        Routed(EpollIoHandle channel) {
            this.channel = channel;
        }

        @Override public FileDescriptor fd() { return channel.fd(); }
        @Override public void registered() { channel.registered(); }
        @Override public void close() throws Exception { channel.close(); }

        @Override
        public void unregistered() {
            reg.forget();
            channel.unregistered();
        }

        @Override
        public void handle(IoRegistration registration, IoEvent event) {
            Registration r = reg;
            if (r.turn == r.handler.turn) {
                return; // the event of a socket closed this turn whose fd number this new one took (see the class doc)
            }
            Owner o = r.owner;
            if (o != null) {
                o.ready(r, ((EpollIoEvent) event).ops().value());
            } else {
                channel.handle(r, event);
            }
        }
    }

    /** One socket's registration, as its channel sees it. Its methods run on the event loop. */
    static final class Registration implements IoRegistration {
        private final Handler handler;
        private final IoRegistration delegate;
        private final int fd;
        /** The loop's turn when it was registered: events it receives in that turn are another socket's. */
        private final long turn;
        /** The interest the channel asked for last (applied unless an owner has the registration). */
        private EpollIoOps wanted = EpollIoOps.EPOLLET;
        private Owner owner;
        private int ownerOps = -1;
        /** The interest the kernel has from the channel (-1: unknown), and whether a change waits for the next turn. */
        private int applied = -1;
        private boolean queued;

        Registration(Handler handler, IoRegistration delegate, int fd) {
            this.handler = handler;
            this.delegate = delegate;
            this.fd = fd;
            this.turn = handler.turn;
        }

        @Override public <T> T attachment() { return delegate.attachment(); }
        @Override public boolean isValid() { return delegate.isValid(); }

        @Override
        public boolean cancel() {
            forget();
            return delegate.cancel();
        }

        private void forget() {
            owner = null;
            handler.byFd.remove(fd, this);
        }

        @Override
        public long submit(IoOps ops) {
            EpollIoOps e = nonEmpty((EpollIoOps) ops);
            wanted = e;
            if (owner == null && !queued) {
                // applied before the loop waits next (the owner's interest stays in force while there is one)
                queued = true;
                handler.changed.add(this);
            }
            return e.value();
        }

        /** Applies the channel's latest interest if it differs from what the kernel has. */
        private void apply() {
            queued = false;
            if (owner != null || !delegate.isValid() || wanted.value() == applied) return;
            applied = wanted.value();
            delegate.submit(wanted);
        }

        /** Routes this socket's events to {@code o}, with {@code ops} (level-triggered) as the interest. */
        void take(Owner o, int ops) {
            owner = o;
            ownerOps = -1;
            interest(ops);
        }

        /** Sets the owner's interest; an empty set keeps the fd registered, edge-triggered, with nothing to report. */
        void interest(int ops) {
            if (owner == null || ops == ownerOps || !delegate.isValid()) return;
            ownerOps = ops;
            applied = -1;
            delegate.submit(ops == 0 ? EpollIoOps.EPOLLET : EpollIoOps.valueOf(ops));
        }

        /** Gives the registration back to its channel, with the interest the channel asked for last. */
        void giveBack() {
            if (owner == null) return;
            owner = null;
            ownerOps = -1;
            if (delegate.isValid()) {
                applied = wanted.value();
                delegate.submit(wanted);
            }
        }

        private static EpollIoOps nonEmpty(EpollIoOps e) {
            return e.value() == EpollIoOps.NONE.value() ? EpollIoOps.EPOLLET : e;
        }
    }
}
