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
    final String name;
    final int hooks;
    final Module<Object> module;
    final SocketModule<Object> socket;
    /** The module's class loader, made the thread's context class loader during each call into the module. */
    final ClassLoader loader;

    Object state;
    boolean attachedOk;
    volatile boolean detached;

    @SuppressWarnings("unchecked")
    ChainLink(LoadedModule lm) {
        this.lm = lm;
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

    /** Releases what the attachment still owns (held bytes, outputs, timers); once, after the module's detach. */
    abstract void releaseAll();

    /** Adds the attachment's counters to the module's totals; once, after the module's detach. */
    abstract void flushCounters();
}
