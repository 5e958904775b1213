package dev.interlayer.engine;

import dev.interlayer.api.AppInfo;
import dev.interlayer.api.ConnectionInfo;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Side;
import dev.interlayer.api.SocketOption;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.LocalProcess;
import io.netty.channel.EventLoop;
import java.util.List;

/**
 * One open connection or UDP flow as the engine keeps it, whichever path serves it: {@link DirectConnection} (no
 * module; becomes a {@link ProxyConnection} with the same id when one attaches), {@link ProxyConnection} (TCP through
 * the module chain) or {@link DatagramFlow} (UDP). The engine holds them in one map by id.
 *
 * <p>Threading: {@link #loop()}, {@link #isClosed()}, {@link #execute} and the {@link ConnectionInfo} counters from any
 * thread; everything else on the connection's loop.
 */
interface Connection extends ConnectionInfo, LocalProcess {

    /** The owner of the local application's socket; by default from {@link #app()}. */
    @Override
    default int socketUid() {
        AppInfo a = app();
        return a == null ? -1 : a.uid();
    }

    /** The local process's cgroup2 path, cached with the process. */
    @Override
    default String cgroup() {
        AppInfo a = app();
        return a == null ? null : ProcLookup.cgroup(a.tgid());
    }

    /** The event loop every method of this connection runs on. */
    EventLoop loop();

    /** True once closed or reset. Any thread. */
    boolean isClosed();

    /** Runs {@code r} on the loop: now if called there, else as a task. Any thread. */
    void execute(Runnable r);

    /** The ids ({@code name@version}) of the modules attached now, in chain order. */
    List<String> moduleIds();

    /**
     * Attaches {@code m} from the connection's next data (programmatic attach, apply-now); true if it attached, or will
     * as soon as the upstream is connected; false if closed, declined or attached already.
     */
    boolean attach(LoadedModule m);

    /** Detaches the module named {@code moduleName}; false if it was not attached. */
    boolean detach(String moduleName, DetachReason reason);

    /** A socket option of one side as the modules report it; null if the side has no socket (yet). */
    Object option(Side side, SocketOption option);

    /** What TLS negotiated on its sockets, for the listing; null where it has none. */
    default String tls() {
        return null;
    }

    /** Bytes its modules hold or buffer now (HOLD and NEED_MORE); any thread, a read may be a step behind. */
    default long heldBytes() {
        return 0;
    }

    /** Resets the connection (RST; for a flow: ends it) and records why. */
    void abort(String reason);
}
