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

    private final Engine engine;
    private final ListenerSpec spec;
    private final EventLoop loop;
    private final LinuxSockets sys;
    private final FileDescriptor fd;
    private final InetSocketAddress bound;
    private final boolean wildcard;
    /** The socket options of the listener's connections (see {@link Engine#effectiveOptions}), worked out once. */
    private final java.util.List<java.util.Map.Entry<dev.interlayer.api.SocketOption, Object>> options;
    private IoRegistration reg;
    private boolean paused;
    private long lastWarning;

    private DirectListener(Engine engine, ListenerSpec spec, EventLoop loop, LinuxSockets sys, int fd, InetSocketAddress bound) {
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
        int s = sys.socket(addr);
        String step = "socket";
        int r = s;
        if (s >= 0) {
            step = "setsockopt";
            r = sys.setInt(s, LinuxSockets.SOL_SOCKET, LinuxSockets.SO_REUSEADDR, 1);
            if (r == 0 && shared) r = sys.setInt(s, LinuxSockets.SOL_SOCKET, LinuxSockets.SO_REUSEPORT, 1);
            if (r == 0) {
                step = "bind";
                r = sys.bind(s, addr);
            }
            if (r == 0) {
                step = "listen";
                r = sys.listen(s, 4096);
            }
        }
        InetSocketAddress bound = r >= 0 ? sys.localAddress(s) : null;
        if (r < 0 || bound == null) {
            if (s >= 0) sys.close(s);
            String why = r < 0 ? LinuxSockets.describe(-r) : "getsockname failed";
            throw new EngineException("listener '" + spec.name() + "' cannot bind " + addr + ": " + step + ": " + why
                    + "; pick another address or port, or stop what holds it");
        }
        DirectListener l = new DirectListener(engine, spec, loop, sys, s, bound);
        try {
            loop.submit(l::register).syncUninterruptibly();
        } catch (RuntimeException e) {
            l.closeNow();
            throw new EngineException("listener '" + spec.name() + "' cannot register with the event loop: " + e, e);
        }
        return l;
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

    /** Stops accepting and closes the listening socket; open connections continue. */
    void stop() {
        if (loop.inEventLoop()) {
            closeNow();
        } else {
            loop.submit(this::closeNow).awaitUninterruptibly(5, TimeUnit.SECONDS);
        }
    }

    private void closeNow() {
        if (!fd.isOpen()) return;
        try {
            fd.close();
        } catch (IOException ignored) {
            // nothing left to do
        }
        if (reg != null) {
            reg.cancel();
            reg = null;
        }
    }

    @Override
    public void close() {
        closeNow(); // the event loop is shutting down
    }
}
