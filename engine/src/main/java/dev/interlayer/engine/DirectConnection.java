package dev.interlayer.engine;

import dev.interlayer.api.AppInfo;
import dev.interlayer.api.Protocol;
import dev.interlayer.api.Role;
import dev.interlayer.api.SocketOption;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.EventLoop;
import io.netty.channel.IoEvent;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoRegistration;
import io.netty.channel.epoll.EpollIoEvent;
import io.netty.channel.epoll.EpollIoHandle;
import io.netty.channel.epoll.EpollIoOps;
import io.netty.channel.unix.FileDescriptor;
import io.netty.util.concurrent.Future;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * A TCP connection no module is attached to, served below Netty's channels: two non-blocking sockets registered
 * with the event loop's epoll (edge-triggered, one {@code epoll_ctl} each for the connection's life), bytes read
 * into the loop's buffer and written straight to the other socket. Per connection this costs the system calls
 * HAProxy makes and little else: no channel, pipeline, promise or address look-up.
 *
 * <p>It becomes an ordinary {@link ProxyConnection} ("promotion", {@link #promote}) as soon as it needs anything
 * the direct path does not do: a module attaching (apply-now, a control request) or a bulk transfer, which then
 * goes to the splice relay. The sockets are taken out of epoll, wrapped in Netty channels on
 * the same loop, and bytes not yet written are written first; an end of stream already read is read again by the
 * channel (a socket at its end reads 0 again), so the half-close path is the ordinary one.
 *
 * <p>Back-pressure: a side is read only while nothing read from it waits to be written, so a connection holds at
 * most one partial write per direction (and up to {@link ProxyConnection#EARLY_LIMIT} bytes of the accepted side
 * while the upstream connects). Runs on its event loop only, except the counters' readers.
 */
final class DirectConnection implements Connection {

    private static final System.Logger LOG = System.getLogger("interlayer.engine");
    static final int ACCEPTED = 0;
    static final int UPSTREAM = 1;
    private static final int IN = EpollIoOps.EPOLLIN.value();
    private static final int OUT = EpollIoOps.EPOLLOUT.value();
    private static final int ERR = EpollIoOps.EPOLLERR.value();
    private static final int HUP = 0x010; // EPOLLHUP: Netty names no constant for it; reported whatever the interest
    private static final int RDHUP = EpollIoOps.EPOLLRDHUP.value();
    /** The one interest of both sockets for the connection's life: edge-triggered, everything. */
    private static final EpollIoOps INTEREST = EpollIoOps.valueOf(IN | OUT | RDHUP | EpollIoOps.EPOLLET.value());
    /** Reads per wake-up before the loop serves other work (the rest continues in a task). */
    private static final int READS_PER_TURN = 16;

    private final Engine engine;
    private final DirectListener listener;
    private final LinuxSockets sys;
    private final long id;
    private final ListenerSpec spec;
    private final EventLoop loop;
    private final Instant startedAt = Instant.now();
    private final InetSocketAddress peer;
    /** Where the connection goes: the listener's upstream, or an intercepted connection's original destination. */
    private final InetSocketAddress upstream;
    /** The listener intercepts: {@link #upstream} is where the client meant to connect before the redirect. */
    private final boolean redirected;

    // Per side (ACCEPTED, UPSTREAM): the socket and its state.
    private final int[] fd = {-1, -1};
    private final Side[] side = new Side[2];
    private final boolean[] readable = new boolean[2];
    private final boolean[] writable = {true, false};
    /** The peer's FIN was seen (RDHUP or HUP): read until 0 even after a short read. */
    private final boolean[] finSeen = new boolean[2];
    /** Read 0: the side's input ended. */
    private final boolean[] eof = new boolean[2];
    /** The FIN was sent on the side (its output shut). */
    private final boolean[] finSent = new boolean[2];
    /** Bytes read from the side, not yet written to the other one. */
    private final ByteBuf[] pending = new ByteBuf[2];
    private final long[] bulkRun = new long[2];

    private boolean connected;
    private volatile boolean closed;
    private ProxyConnection promoted;
    /** Work for the ProxyConnection this one becomes, once the upstream connected (see {@link #promote}). */
    private List<Consumer<ProxyConnection>> whenPromoted;
    private io.netty.util.concurrent.ScheduledFuture<?> connectTimer;
    private volatile long bytesSent;
    private volatile long bytesReceived;
    private AppInfo app;
    private boolean appLooked;
    private final Runnable pumpTask = this::pump;

    /**
     * @param originalDestination where a redirected client meant to connect (an intercepting listener's connection: it goes
     *                            there, from a socket with the listener's mark), or null: it goes to the listener's upstream
     */
    DirectConnection(Engine engine, DirectListener listener, long id, int acceptedFd, InetSocketAddress peer,
                     InetSocketAddress originalDestination) {
        this.engine = engine;
        this.listener = listener;
        this.sys = listener.sys();
        this.id = id;
        this.spec = listener.spec();
        this.loop = listener.loop();
        this.peer = peer;
        this.redirected = originalDestination != null;
        this.upstream = redirected ? originalDestination : spec.upstream();
        this.fd[ACCEPTED] = acceptedFd;
    }

    // ---- ConnectionInfo ---------------------------------------------------------------------------

    @Override public long id() { return id; }
    @Override public Protocol protocol() { return Protocol.TCP; }
    @Override public String listener() { return spec.name(); }
    @Override public Role role() { return spec.role(); }
    @Override public Instant startedAt() { return startedAt; }
    @Override public long bytesSent() { return bytesSent; }
    @Override public long bytesReceived() { return bytesReceived; }

    @Override
    public InetSocketAddress localAddress() {
        return spec.role() == Role.CLIENT ? peer : upstream;
    }

    @Override
    public InetSocketAddress remoteAddress() {
        return spec.role() == Role.CLIENT ? upstream : peer;
    }

    @Override
    public AppInfo app() {
        if (appLooked) return app;
        if (spec.role() == Role.CLIENT) {
            appLooked = true;
            // a redirected client's socket is connected to its original destination, not to the listener
            app = ProcLookup.find(peer, redirected ? upstream : listener.localAddressOf(fd[ACCEPTED]));
        } else if (connected && fd[UPSTREAM] >= 0) {
            // the local application is the upstream: known once the connect completed, as on the channel path
            appLooked = true;
            InetSocketAddress mine = sys.localAddress(fd[UPSTREAM]);
            app = mine == null ? null : ProcLookup.find(upstream, mine);
        }
        return app;
    }

    @Override
    public int socketUid() {
        if (appLooked) return app == null ? -1 : app.uid();
        if (redirected && spec.role() == Role.CLIENT && fd[ACCEPTED] >= 0) {
            // the table's uid chain put the client socket's owner in the SYN's mark, which the accepted socket kept
            int uid = Intercepted.uidOf(sys.getUnsigned(fd[ACCEPTED], LinuxSockets.SOL_SOCKET, LinuxSockets.SO_MARK));
            if (uid >= 0) {
                ProcessLookups.BY_MARK.increment();
                return uid;
            }
        }
        return Connection.super.socketUid();
    }

    @Override public EventLoop loop() { return loop; }
    @Override public boolean isClosed() { return closed; }
    ListenerSpec spec() { return spec; }

    @Override
    public void execute(Runnable r) {
        Engine.runOn(loop, r);
    }

    /** The direction of the bytes read from side {@code s}. */
    private int dir(int s) {
        return (s == ACCEPTED) == (spec.role() == Role.CLIENT) ? ProxyConnection.SEND : ProxyConnection.RECV;
    }

    // ---- set-up -----------------------------------------------------------------------------------

    /** Registers the accepted socket, sets the options and starts the upstream connect. On the loop. */
    void start() {
        side[ACCEPTED] = register(ACCEPTED);
        if (closed) return;
        applyOptions(fd[ACCEPTED]);
        int u = sys.socket(upstream);
        if (u < 0) {
            abort("cannot open a socket to upstream " + upstream + ": " + LinuxSockets.describe(-u));
            return;
        }
        fd[UPSTREAM] = u;
        if (redirected) {
            // marked before it connects, or never connected: the redirect rules skip marked packets, so no connection of an
            // intercepting listener can come back to it (a loop)
            int m = sys.setInt(u, LinuxSockets.SOL_SOCKET, LinuxSockets.SO_MARK, spec.interceptMark());
            if (m != 0) {
                abort("cannot mark the socket to " + upstream + " (SO_MARK: " + LinuxSockets.describe(-m)
                        + "); the agent needs CAP_NET_ADMIN to intercept");
                return;
            }
        }
        applyOptions(u);
        int r = sys.connect(u, upstream);
        if (r != 0 && r != -LinuxSockets.EINPROGRESS) {
            connectFailed("cannot connect upstream " + upstream + ": " + LinuxSockets.describe(-r));
            return;
        }
        side[UPSTREAM] = register(UPSTREAM);
        if (closed) return;
        if (r == 0) {
            connected();
        } else {
            long ms = engine.options().connectTimeout().toMillis();
            connectTimer = loop.schedule(() -> {
                if (!connected && !closed) {
                    connectFailed("cannot connect upstream " + upstream + ": connection timed out after " + ms + " ms");
                }
            }, ms, java.util.concurrent.TimeUnit.MILLISECONDS);
        }
    }

    private Side register(int s) {
        Side h = new Side(s, new FileDescriptor(fd[s]));
        Future<IoRegistration> f = ((IoEventLoop) loop).register(h);
        if (!f.isSuccess()) {
            abort("cannot register a socket with the event loop: " + f.cause());
            return h;
        }
        h.reg = f.getNow();
        h.reg.submit(INTEREST);
        return h;
    }

    /**
     * Reads a socket option of one side from the socket itself (no module can report another value: none is
     * attached); null if the socket is gone. On the loop.
     */
    @Override
    public Object option(dev.interlayer.api.Side which, SocketOption opt) {
        int s = (which == dev.interlayer.api.Side.LOCAL) == (spec.role() == Role.CLIENT) ? ACCEPTED : UPSTREAM;
        if (closed || promoted != null || fd[s] < 0) return null;
        int f = fd[s];
        int v = switch (opt) {
            case TCP_NODELAY -> sys.getInt(f, LinuxSockets.IPPROTO_TCP, LinuxSockets.TCP_NODELAY);
            case SO_KEEPALIVE -> sys.getInt(f, LinuxSockets.SOL_SOCKET, LinuxSockets.SO_KEEPALIVE);
            case SO_RCVBUF -> sys.getInt(f, LinuxSockets.SOL_SOCKET, LinuxSockets.SO_RCVBUF);
            case SO_SNDBUF -> sys.getInt(f, LinuxSockets.SOL_SOCKET, LinuxSockets.SO_SNDBUF);
            case IP_TOS -> upstream.getAddress() instanceof java.net.Inet6Address
                    ? sys.getInt(f, LinuxSockets.IPPROTO_IPV6, LinuxSockets.IPV6_TCLASS)
                    : sys.getInt(f, LinuxSockets.IPPROTO_IP, LinuxSockets.IP_TOS);
            case SO_LINGER -> sys.getLinger(f);
        };
        if (opt == SocketOption.SO_LINGER) return v == Integer.MIN_VALUE ? null : v;
        if (v < 0) return null;
        return opt.valueType() == Boolean.class ? (Object) (v != 0) : (Object) v;
    }

    /** The listener's socket options (TCP_NODELAY on unless it says otherwise), as the channel path sets them. */
    private void applyOptions(int s) {
        for (Map.Entry<SocketOption, Object> e : listener.options()) {
            Object v = e.getValue();
            int r = switch (e.getKey()) {
                case TCP_NODELAY -> sys.setInt(s, LinuxSockets.IPPROTO_TCP, LinuxSockets.TCP_NODELAY, Boolean.TRUE.equals(v) ? 1 : 0);
                case SO_KEEPALIVE -> sys.setInt(s, LinuxSockets.SOL_SOCKET, LinuxSockets.SO_KEEPALIVE, Boolean.TRUE.equals(v) ? 1 : 0);
                case SO_RCVBUF -> sys.setInt(s, LinuxSockets.SOL_SOCKET, LinuxSockets.SO_RCVBUF, (Integer) v);
                case SO_SNDBUF -> sys.setInt(s, LinuxSockets.SOL_SOCKET, LinuxSockets.SO_SNDBUF, (Integer) v);
                case IP_TOS -> upstream.getAddress() instanceof java.net.Inet6Address
                        ? sys.setInt(s, LinuxSockets.IPPROTO_IPV6, LinuxSockets.IPV6_TCLASS, (Integer) v)
                        : sys.setInt(s, LinuxSockets.IPPROTO_IP, LinuxSockets.IP_TOS, (Integer) v);
                case SO_LINGER -> sys.setLinger(s, (Integer) v);
            };
            if (r < 0) {
                LOG.log(Level.DEBUG, "connection {0}: {1} not set: {2}", id, e.getKey(), LinuxSockets.describe(-r));
            }
        }
    }

    private void connected() {
        connected = true;
        writable[UPSTREAM] = true;
        if (connectTimer != null) {
            connectTimer.cancel(false);
            connectTimer = null;
        }
        if (whenPromoted != null) {
            promote();
            return;
        }
        pump();
    }

    // ---- events -----------------------------------------------------------------------------------

    private void ready(int s, int ops) {
        if (closed || promoted != null) return;
        if ((ops & (IN | RDHUP | HUP | ERR)) != 0) readable[s] = true;
        if ((ops & (RDHUP | HUP)) != 0) finSeen[s] = true;
        if ((ops & OUT) != 0) writable[s] = true;
        if (s == UPSTREAM && !connected) {
            if ((ops & (ERR | HUP)) != 0) {
                int e = sys.getInt(fd[UPSTREAM], LinuxSockets.SOL_SOCKET, LinuxSockets.SO_ERROR);
                connectFailed("cannot connect upstream " + upstream + ": " + (e != 0 ? LinuxSockets.describe(Math.abs(e)) : "connection closed"));
                return;
            }
            if ((ops & OUT) != 0) {
                connected(); // writable without an error: the connect completed (no SO_ERROR call needed)
            }
            return;
        }
        pump();
    }

    /**
     * Moves what can move: per side, first what waits to be written to the other side, then reads while the other
     * side takes everything read. Ends with a close once both directions ended.
     */
    private void pump() {
        if (closed || promoted != null) return;
        int reads = READS_PER_TURN;
        boolean progress = true;
        while (progress) {
            progress = false;
            for (int s = ACCEPTED; s <= UPSTREAM; s++) {
                int t = 1 - s;
                ByteBuf p = pending[s];
                if (eof[s] && p == null && connected && !finSent[t]) {
                    finish(t); // an end read while the upstream connected, with nothing before it left to write
                    if (closed) return;
                    continue;
                }
                if (p != null && connected) {
                    if (!writable[t]) continue;
                    long w = sys.send(fd[t], address(p), p.readableBytes());
                    if (w < 0) {
                        fail(t, (int) -w);
                        return;
                    }
                    p.skipBytes((int) w);
                    if (p.isReadable()) {
                        writable[t] = false;
                        continue;
                    }
                    p.release();
                    pending[s] = null;
                    progress = true;
                    if (eof[s]) {
                        finish(t);
                        if (closed) return;
                    }
                }
                if (!readable[s] || eof[s] || (connected ? pending[s] != null : s != ACCEPTED || queued(s) >= ProxyConnection.EARLY_LIMIT)) {
                    continue;
                }
                if (reads-- == 0) {
                    loop.execute(pumpTask); // fairness: other connections of this loop get their turn first
                    return;
                }
                long buf = sys.readBuffer;
                long n = sys.recv(fd[s], buf, LinuxSockets.READ_BUFFER);
                if (n > 0) {
                    progress = true;
                    count(s, n);
                    if (n < LinuxSockets.READ_BUFFER && !finSeen[s]) {
                        readable[s] = false; // drained: the next bytes bring a new edge
                    }
                    long w = 0;
                    if (connected && writable[t]) {
                        w = sys.send(fd[t], buf, n);
                        if (w < 0) {
                            fail(t, (int) -w);
                            return;
                        }
                    }
                    if (w < n) {
                        keep(s, buf + w, (int) (n - w));
                        if (connected) writable[t] = false;
                    }
                    if (bulk(s, n)) return;
                } else if (n == 0) {
                    progress = true;
                    eof[s] = true;
                    if (pending[s] == null && connected) finish(t);
                } else if (n == -LinuxSockets.EAGAIN) {
                    readable[s] = false;
                } else {
                    fail(s, (int) -n);
                    return;
                }
                if (closed) return;
            }
        }
    }

    private void count(int s, long n) {
        if (dir(s) == ProxyConnection.SEND) bytesSent += n; else bytesReceived += n;
    }

    /** True if a bulk transfer started and the connection went to the channel path (for the splice relay). */
    private boolean bulk(int s, long n) {
        bulkRun[s] = n >= Engine.SPLICE_BULK_READ ? bulkRun[s] + n : 0;
        if (bulkRun[s] >= Engine.SPLICE_AFTER && engine.spliceAvailable() && connected) {
            promote();
            return true;
        }
        return false;
    }

    private int queued(int s) {
        return pending[s] == null ? 0 : pending[s].readableBytes();
    }

    /** Keeps {@code len} bytes at {@code from} (the loop's read buffer) until the other side takes them. */
    private void keep(int s, long from, int len) {
        ByteBuf p = pending[s];
        if (p == null) {
            p = pending[s] = Engine.ALLOCATOR.directBuffer(len);
        }
        p.ensureWritable(len);
        MemorySegment.copy(MemorySegment.ofAddress(from).reinterpret(len), 0,
                MemorySegment.ofBuffer(p.nioBuffer(p.writerIndex(), len)), 0, len);
        p.writerIndex(p.writerIndex() + len);
    }

    private static long address(ByteBuf b) {
        if (b.hasMemoryAddress()) return b.memoryAddress() + b.readerIndex();
        return MemorySegment.ofBuffer(b.nioBuffer()).address();
    }

    /** Sends the FIN on side {@code t}: the direction into it ended and everything before it was written. */
    private void finish(int t) {
        if (finSent[t]) return;
        finSent[t] = true;
        if (finSent[1 - t]) {
            // The other direction is done too: t was read to its end, so closing it sends the FIN (no shutdown call).
            close();
            return;
        }
        sys.shutdown(fd[t], LinuxSockets.SHUT_WR); // a peer already gone shows as an event on the socket
    }

    private void fail(int s, int errno) {
        abort("peer reset by the " + (dir(s) == ProxyConnection.SEND ? "local application" : "network peer") + ": "
                + LinuxSockets.describe(errno));
    }

    // ---- close ------------------------------------------------------------------------------------

    /** The upstream could not be reached: counted for the listener's metrics, then {@link #abort}. */
    private void connectFailed(String reason) {
        engine.stats(listener.spec().name()).connectFailures.increment();
        abort(reason);
    }

    /** Resets both sockets (RST) and records why. */
    @Override
    public void abort(String reason) {
        if (closed || promoted != null) return;
        Engine.RESETS.log(Engine.resetKind(spec.name(), reason), Level.INFO, "connection {0} ({1}) reset: {2}", id, spec.name(), reason);
        for (int s = ACCEPTED; s <= UPSTREAM; s++) {
            if (fd[s] >= 0) sys.setLinger(fd[s], 0);
        }
        close();
    }

    /** Closes both sockets; nothing waits to be written (or it is dropped, after an abort). */
    private void close() {
        if (closed) return;
        closed = true;
        for (int s = ACCEPTED; s <= UPSTREAM; s++) {
            closeSocket(s);
            if (pending[s] != null) {
                pending[s].release();
                pending[s] = null;
            }
        }
        if (connectTimer != null) connectTimer.cancel(false);
        engine.removedDirect(this);
    }

    /** Closes side {@code s}'s socket, then drops its registration (closed first: the kernel removes it from epoll). */
    private void closeSocket(int s) {
        Side h = side[s];
        if (h != null) {
            try {
                h.fd.close();
            } catch (IOException ignored) {
                // nothing left to do for a socket that will not close
            }
            if (h.reg != null) h.reg.cancel();
        } else if (fd[s] >= 0) {
            sys.close(fd[s]);
        }
        fd[s] = -1;
    }

    // ---- promotion --------------------------------------------------------------------------------

    @Override
    public List<String> moduleIds() {
        return List.of();
    }

    /**
     * Becomes a {@link ProxyConnection} and attaches {@code m} there: at once if the upstream is connected (the result
     * is the attach's), else once it is (true: queued); false if this closed.
     */
    @Override
    public boolean attach(dev.interlayer.runtime.LoadedModule m) {
        boolean[] result = {true};
        boolean[] ran = {false};
        whenPromoted(c -> {
            result[0] = c.attach(m);
            ran[0] = true;
        });
        return ran[0] ? result[0] : !closed;
    }

    /** No module is attached on the direct path. */
    @Override
    public boolean detach(String moduleName, dev.interlayer.api.DetachReason reason) {
        return false;
    }

    /**
     * Runs {@code work} with the {@link ProxyConnection} this connection becomes: now if the upstream is connected,
     * else once it is; never if it closes first. On the loop.
     */
    void whenPromoted(Consumer<ProxyConnection> work) {
        if (closed) return;
        if (promoted != null) {
            work.accept(promoted);
            return;
        }
        if (whenPromoted == null) whenPromoted = new ArrayList<>(2);
        whenPromoted.add(work);
        if (connected) promote();
    }

    /**
     * Hands the sockets to Netty channels and the connection to a {@link ProxyConnection} with the same id, counters
     * and start time; returns it (null if this closed). Bytes not yet written go out first.
     */
    private ProxyConnection promote() {
        if (closed) return null;
        if (promoted != null) return promoted;
        for (int s = ACCEPTED; s <= UPSTREAM; s++) {
            int e = sys.getInt(fd[s], LinuxSockets.SOL_SOCKET, LinuxSockets.SO_ERROR);
            if (e != 0) {
                fail(s, Math.abs(e)); // a socket reset meanwhile: a channel would not take it as connected
                return null;
            }
        }
        Channel[] ch = new Channel[2];
        for (int s = ACCEPTED; s <= UPSTREAM; s++) {
            side[s].reg.cancel(); // out of epoll: the channel registers the socket again
            ch[s] = engine.transport().adopt(fd[s]);
        }
        if (connectTimer != null) connectTimer.cancel(false);
        ProxyConnection c = engine.promoted(this, ch[ACCEPTED], startedAt, bytesSent, bytesReceived);
        promoted = c;
        // a direction is done where the FIN went out on the side it writes to (the side not read for it)
        boolean[] done = {finSent[1 - sideOf(ProxyConnection.SEND)], finSent[1 - sideOf(ProxyConnection.RECV)]};
        c.adopt(ch[UPSTREAM], pending[sideOf(ProxyConnection.SEND)], pending[sideOf(ProxyConnection.RECV)], done);
        pending[ACCEPTED] = null;
        pending[UPSTREAM] = null;
        List<Consumer<ProxyConnection>> w = whenPromoted;
        whenPromoted = null;
        if (w != null) {
            for (Consumer<ProxyConnection> x : w) x.accept(c);
        }
        return c;
    }

    /** The side read for direction {@code d}. */
    private int sideOf(int d) {
        return dir(ACCEPTED) == d ? ACCEPTED : UPSTREAM;
    }

    // ---- epoll handle -----------------------------------------------------------------------------

    /** One socket as the event loop's epoll sees it. */
    private final class Side implements EpollIoHandle {
        private final int s;
        private final FileDescriptor fd;
        IoRegistration reg;

        Side(int s, FileDescriptor fd) {
            this.s = s;
            this.fd = fd;
        }

        @Override public FileDescriptor fd() { return fd; }

        @Override
        public void handle(IoRegistration registration, IoEvent event) {
            ready(s, ((EpollIoEvent) event).ops().value());
        }

        @Override
        public void close() {
            // the event loop is shutting down with the socket still registered
            abort("agent shutting down");
        }
    }
}
