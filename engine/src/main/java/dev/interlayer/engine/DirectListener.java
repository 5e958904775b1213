package dev.interlayer.engine;

import io.netty.channel.EventLoop;
import io.netty.channel.IoEvent;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoRegistration;
import io.netty.channel.epoll.EpollIoHandle;
import io.netty.channel.epoll.EpollIoOps;
import io.netty.channel.unix.FileDescriptor;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;

/**
 * One listening socket of a TCP listener on one event loop, accepting below Netty's channels: every event loop has
 * one on the listener's address ({@code SO_REUSEPORT}; the kernel spreads the connections), and the connections it
 * accepts stay on its loop. A connection no module selects runs as a {@link DirectConnection}; any other is
 * wrapped in a Netty channel and runs as a {@link ProxyConnection}, as it would from Netty's own acceptor.
 */
final class DirectListener implements EpollIoHandle {

    private static final System.Logger LOG = System.getLogger("interlayer.engine");
    /** Connections accepted per wake-up before the loop serves other work (the socket stays readable). */
    private static final int ACCEPTS_PER_TURN = 64;
    private static final int EMFILE = 24;
    private static final int ENFILE = 23;
    private static final int ENOBUFS = 105;
    private static final int ENOMEM = 12;
    private static final int SHUT_RD = 0;

    private final Engine engine;
    private final ListenerSpec spec;
    private final EventLoop loop;
    private final LinuxSockets sys;
    /** The listening socket; replaced by a new one when the listener rejoins its port after its loop was stuck. */
    private volatile FileDescriptor fd;
    private final boolean shared;
    private final InetSocketAddress bound;
    private final boolean wildcard;
    /** The socket options of the listener's connections (see {@link Engine#effectiveOptions}), worked out once. */
    private final java.util.List<java.util.Map.Entry<dev.interlayer.api.SocketOption, Object>> options;
    private IoRegistration reg;
    private boolean paused;
    /** Out of the port's group while the loop is stuck in a module call (see {@link StuckLoops}). */
    private volatile boolean withdrawn;
    private long lastWarning;

    private DirectListener(Engine engine, ListenerSpec spec, EventLoop loop, LinuxSockets sys, int fd, InetSocketAddress bound, boolean shared) {
        this.shared = shared;
        this.engine = engine;
        this.spec = spec;
        this.loop = loop;
        this.sys = sys;
        this.fd = new FileDescriptor(fd);
        this.bound = bound;
        this.wildcard = bound.getAddress().isAnyLocalAddress();
        this.options = java.util.List.copyOf(engine.effectiveOptions(spec).entrySet());
    }

    /**
     * Binds {@code addr} ({@code SO_REUSEADDR}, and {@code SO_REUSEPORT} if {@code shared}: other loops bind it too)
     * and starts accepting on {@code loop}.
     *
     * @throws EngineException with the reason and what to do if the address cannot be bound
     */
    static DirectListener bind(Engine engine, ListenerSpec spec, EventLoop loop, InetSocketAddress addr, boolean shared)
            throws EngineException {
        LinuxSockets sys = new LinuxSockets();
        String[] step = {"socket"};
        int s = open(sys, addr, shared, step);
        InetSocketAddress bound = s >= 0 ? sys.localAddress(s) : null;
        if (s < 0 || bound == null) {
            if (s >= 0) sys.close(s);
            String why = s < 0 ? LinuxSockets.describe(-s) : "getsockname failed";
            throw new EngineException("listener '" + spec.name() + "' cannot bind " + addr + ": " + step[0] + ": " + why
                    + "; pick another address or port, or stop what holds it");
        }
        return register(new DirectListener(engine, spec, loop, sys, s, bound, shared));
    }

    /**
     * Starts accepting on {@code loop} from a listening socket another process bound and handed over ({@code fd}, this
     * process's number for it); {@code shared} as in {@link #bind}.
     *
     * @throws EngineException if {@code fd} is not a bound socket
     */
    static DirectListener adopt(Engine engine, ListenerSpec spec, EventLoop loop, int fd, boolean shared) throws EngineException {
        LinuxSockets sys = new LinuxSockets();
        InetSocketAddress bound = sys.localAddress(fd);
        if (bound == null) {
            throw new EngineException("listener '" + spec.name() + "': the inherited socket (fd " + fd + ") is not a bound socket; start without --takeover");
        }
        return register(new DirectListener(engine, spec, loop, sys, fd, bound, shared));
    }

    private static DirectListener register(DirectListener l) throws EngineException {
        try {
            l.loop.submit((Runnable) l::register).syncUninterruptibly();
        } catch (RuntimeException e) {
            l.closeNow();
            throw new EngineException("listener '" + l.spec.name() + "' cannot register with the event loop: " + e, e);
        }
        return l;
    }

    /** A listening socket on {@code addr}, or {@code -errno} with the failed step in {@code step[0]}. */
    private static int open(LinuxSockets sys, InetSocketAddress addr, boolean shared, String[] step) {
        step[0] = "socket";
        int s = sys.socket(addr);
        if (s < 0) return s;
        step[0] = "setsockopt";
        int r = sys.setInt(s, LinuxSockets.SOL_SOCKET, LinuxSockets.SO_REUSEADDR, 1);
        if (r == 0 && shared) r = sys.setInt(s, LinuxSockets.SOL_SOCKET, LinuxSockets.SO_REUSEPORT, 1);
        if (r == 0) {
            step[0] = "bind";
            r = sys.bind(s, addr);
        }
        if (r == 0) {
            step[0] = "listen";
            r = sys.listen(s, 4096);
        }
        if (r < 0) {
            sys.close(s);
            return r;
        }
        return s;
    }

    private void register() {
        reg = ((IoEventLoop) loop).register(this).syncUninterruptibly().getNow();
        reg.submit(EpollIoOps.EPOLLIN); // level-triggered: a backlog left by one turn is reported again
    }

    ListenerSpec spec() { return spec; }
    EventLoop loop() { return loop; }
    LinuxSockets sys() { return sys; }
    InetSocketAddress boundAddress() { return bound; }
    java.util.List<java.util.Map.Entry<dev.interlayer.api.SocketOption, Object>> options() { return options; }

    /** The local address of an accepted socket: the bound one, unless the listener binds every address. */
    InetSocketAddress localAddressOf(int acceptedFd) {
        if (!wildcard || acceptedFd < 0) return bound;
        InetSocketAddress a = sys.localAddress(acceptedFd);
        return a != null ? a : bound;
    }

    @Override
    public FileDescriptor fd() {
        return fd;
    }

    @Override
    public void handle(IoRegistration registration, IoEvent event) {
        if (withdrawn) {
            // the socket is shut (it reports a hang-up until it listens again): stay quiet until rejoin()
            if (reg != null) reg.submit(EpollIoOps.EPOLLET);
            return;
        }
        if (paused) return;
        for (int i = 0; i < ACCEPTS_PER_TURN; i++) {
            int c = sys.accept(fd.intValue());
            if (c == -LinuxSockets.EAGAIN) return;
            if (c < 0) {
                refused(-c);
                return;
            }
            engine.acceptDirect(this, c, sys.peer());
        }
    }

    /**
     * Accept failed with {@code errno}: out of descriptors or memory, say so (once a second at most) and stop accepting
     * for 100 ms instead of spinning on a socket that stays readable; anything else is the one connection's problem.
     */
    private void refused(int errno) {
        engine.stats(spec.name()).refused.increment();
        boolean resources = errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM;
        long now = System.nanoTime();
        if (now - lastWarning > TimeUnit.SECONDS.toNanos(1)) {
            lastWarning = now;
            LOG.log(Level.WARNING, "listener {0}: cannot accept a connection: {1}{2}", spec.name(), LinuxSockets.describe(errno),
                    resources ? "; pausing accepts for 100 ms (raise the open-files limit, ulimit -n, if this repeats)" : "");
        }
        if (resources && reg != null) {
            paused = true;
            reg.submit(EpollIoOps.EPOLLET);
            loop.schedule(() -> {
                paused = false;
                if (reg != null && reg.isValid()) reg.submit(EpollIoOps.EPOLLIN);
            }, 100, TimeUnit.MILLISECONDS);
        }
    }

    /**
     * Takes the socket out of its port's {@code SO_REUSEPORT} group while its loop is stuck: the kernel then hands new
     * connections to the other loops' sockets, and resets those waiting in this one's backlog rather than leave them
     * hanging. The descriptor stays open (the stuck loop still has it registered). Any thread; false if closed, already
     * withdrawn, or alone on its port (no other loop to take its connections).
     */
    synchronized boolean withdraw() {
        if (!shared || !fd.isOpen() || withdrawn) return false;
        withdrawn = true;
        // a LinuxSockets of its own: this runs on the watchdog's thread, and sys's scratch memory is the loop's
        return new LinuxSockets().shutdown(fd.intValue(), SHUT_RD) == 0;
    }

    /**
     * Joins the port's group again with a new listening socket, once the loop has returned from the stuck call; on the
     * loop. A new socket, because the kernel does not always take a socket that listens again back into the group (the
     * port's first socket stays out of it).
     */
    void rejoin() {
        synchronized (this) {
            if (!withdrawn || !fd.isOpen()) return;
            String[] step = {"socket"};
            int s = open(sys, bound, true, step);
            if (s < 0) {
                LOG.log(Level.WARNING, "listener {0}: event loop {1} serves again but cannot accept on {2}: {3}: {4}; the other"
                        + " event loops accept its connections", spec.name(), Thread.currentThread().getName(), bound, step[0],
                        LinuxSockets.describe(-s));
                return;
            }
            if (reg != null) {
                reg.cancel(); // while fd() is still the old socket
                reg = null;
            }
            try {
                fd.close();
            } catch (IOException ignored) {
                // it is out of the port's group already
            }
            fd = new FileDescriptor(s);
            withdrawn = false;
            register();
        }
    }

    /**
     * Stops accepting and closes the listening socket; open connections continue. Waits up to {@code waitNanos} for the
     * loop to do it, not at all while the loop is stuck (the socket accepts nothing then, and closes once it returns).
     */
    void stop(long waitNanos) {
        if (loop.inEventLoop()) {
            closeNow();
        } else if (withdrawn) {
            loop.execute(this::closeNow);
        } else {
            loop.submit(this::closeNow).awaitUninterruptibly(waitNanos, TimeUnit.NANOSECONDS);
        }
    }

    private synchronized void closeNow() {
        if (!fd.isOpen()) return;
        // out of the epoll set first: a socket handed to another process stays open after close, and would stay in the set
        if (reg != null) {
            reg.cancel();
            reg = null;
        }
        try {
            fd.close();
        } catch (IOException ignored) {
            // nothing left to do
        }
    }


    @Override
    public void close() {
        closeNow(); // the event loop is shutting down
    }
}
