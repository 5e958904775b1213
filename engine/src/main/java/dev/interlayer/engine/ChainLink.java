package dev.interlayer.engine;

import dev.interlayer.api.Module;
import dev.interlayer.api.SocketModule;
import dev.interlayer.runtime.AttachmentSite;
import dev.interlayer.runtime.LoadedModule;

/**
 * One module on one connection or flow, as {@link ModuleChain} sees it: what every path keeps per attachment
 * (the module, its hooks, class loader and per-connection state, whether it attached and whether it is detached).
 * {@link RealAttachment} (streams) and {@link DatagramAttachment} (datagrams) add their data path.
 *
 * <p>Threading: on the connection's event loop, except {@link #detached}, which "any thread" methods read.
 */
abstract class ChainLink implements dev.interlayer.api.Attachment, Watchdog.Caller, AttachmentSite {

    final LoadedModule lm;
    /** Timers one module may have pending on one connection: a module that forgets to cancel its timers meets it. */
    static final int TIMER_LIMIT = 1024;

    final String name;
    final int hooks;
    final Module<Object> module;
    final SocketModule<Object> socket;
    /** The module's class loader, made the thread's context class loader during each call into the module. */
    final ClassLoader loader;

    /** The engine's chain trace (the testkit's), or null. */
    final ChainTrace trace;

    Object state;
    boolean attachedOk;
    volatile boolean detached;

    @SuppressWarnings("unchecked")
    ChainLink(LoadedModule lm, ChainTrace trace) {
        this.lm = lm;
        this.trace = trace;
        this.name = lm.name();
        this.hooks = lm.hooks();
        this.module = lm.module();
        this.socket = module instanceof SocketModule<?> s ? (SocketModule<Object>) s : null;
        this.loader = lm.loader();
    }

    final boolean has(int hook) {
        return (hooks & hook) != 0;
    }

    @Override
    public final String moduleId() {
        return lm.id();
    }

    /** Reports a breach of the contract by this module to the trace, if there is one; the caller then handles it as always. */
    final void breach(ChainTrace.Breach rule, String detail) {
        if (trace != null) {
            trace.breach(connection(), name, rule, detail);
        }
    }

    /** Releases what the attachment still owns (held bytes, outputs, timers); once, after the module's detach. */
    abstract void releaseAll();

    /** Adds the attachment's counters to the module's totals; once, after the module's detach. */
    abstract void flushCounters();

    /** What {@code schedule} throws at {@link #TIMER_LIMIT}: which module, the limit, and what to do instead. */
    final String tooManyTimers() {
        return "module " + name + " has " + TIMER_LIMIT + " timers pending on connection " + connectionId()
                + ", the most a module may have on one connection: cancel the timers it no longer needs (Cancellable.cancel),"
                + " or keep one timer per connection and a queue of what is due";
    }
}
