package dev.interlayer.engine;

import dev.interlayer.api.Attach;
import dev.interlayer.api.ConnectionEvent;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.OptionDecision;
import dev.interlayer.api.Side;
import dev.interlayer.api.SocketDecision;
import dev.interlayer.api.SocketOption;
import dev.interlayer.runtime.Hooks;
import dev.interlayer.runtime.LoadedModule;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;
import java.util.function.Supplier;

/**
 * The modules attached to one connection or UDP flow, in priority order, and the rules every path applies to them.
 *
 * <pre>
 *   attach:  registerSite → attach hook (watchdog, module's loader) → state, or decline / fault
 *   order:   lower priority first on SEND; RECV walks the same array backwards
 *   detach:  exactly once per successful attach: detach hook → host.detaching (what the link still holds) →
 *            releaseAll → counters → siteDetached → host.detached (recount, what waits on the module)
 *   faults:  fail-closed resets the connection (host.abort); fail-open detaches the module (FAULT)
 * </pre>
 *
 * <p>The data hooks are the host's own ({@link ProxyConnection} and {@link StreamEnds} for streams,
 * {@link DatagramFlow} for datagrams), reading {@link #links()}; everything else about modules on a connection — attach, detach, socket decisions,
 * events, timers, fault policy — is here, once.
 *
 * <p>Threading: on the connection's event loop.
 *
 * @param <L> the attachment type of the path
 */
final class ModuleChain<L extends ChainLink> {

    private static final System.Logger LOG = System.getLogger("interlayer.engine");

    /** What the chain needs from the connection or flow it belongs to. */
    interface Host<L extends ChainLink> {
        /** The connection id, for fault records. */
        long id();

        /** A new, not yet attached link of {@code m} on this connection. */
        L newLink(LoadedModule m);

        /** True once closed or reset. */
        boolean isClosed();

        /** Ends the connection with a reset (a flow: ends it) and records why. */
        void abort(String reason);

        /** The module's detach hook has run; {@code link} still owns what it held (a stream passes it on). */
        void detaching(L link);

        /** {@code link} is detached and released: recount hooks, let go of what waited on it. */
        void detached(L link);
    }

    private final Host<L> host;
    private final Watchdog.Slot slot;
    private final IntFunction<L[]> arrays;
    private L[] links;
    /** The module whose DENY {@link #decide} returned last. */
    private String deniedBy;

    ModuleChain(Host<L> host, Watchdog.Slot slot, IntFunction<L[]> arrays) {
        this.host = host;
        this.slot = slot;
        this.arrays = arrays;
        this.links = arrays.apply(0);
    }

    /** The links in priority order (detached ones stay in place, so indices are stable for a call); do not modify. */
    L[] links() {
        return links;
    }

    /** Attaches {@code modules} (sorted by priority) as a new connection's chain; false if the connection closed meanwhile. */
    boolean attachAll(List<LoadedModule> modules) {
        List<L> list = new ArrayList<>(modules.size());
        for (LoadedModule m : modules) {
            L a = attachOne(m);
            if (host.isClosed()) {
                return false;
            }
            if (a != null) {
                list.add(a);
            }
        }
        links = list.toArray(arrays.apply(0));
        return true;
    }

    /**
     * Attaches {@code m} to the open connection at its place by priority (apply now, programmatic attach); false if it is
     * attached already, declined, or the connection closed. {@code connected}: the CONNECTED event has been fired, so the
     * new module hears it now.
     */
    L attachLater(LoadedModule m, boolean connected) {
        if (host.isClosed()) return null;
        for (L a : links) {
            if (a.lm == m && !a.detached) return null;
        }
        L a = attachOne(m);
        if (a == null || host.isClosed()) return null;
        L[] c = links;
        L[] n = arrays.apply(c.length + 1);
        int i = 0;
        int j = 0;
        while (i < c.length && c[i].lm.priority() <= m.priority()) n[j++] = c[i++];
        n[j++] = a;
        while (i < c.length) n[j++] = c[i++];
        links = n;
        if (connected && a.has(Hooks.EVENT)) {
            callEvent(a, ConnectionEvent.CONNECTED);
        }
        return a;
    }

    /** Runs the module's attach hook; the attached link, or null if it declined or faulted (fail-closed: the host is reset). */
    private L attachOne(LoadedModule m) {
        L a = host.newLink(m);
        if (!m.registerSite(a)) {
            return null;
        }
        Attach<Object> r = Attach.stateless();
        if (a.has(Hooks.ATTACH)) {
            long s = slot.enter(a, "attach");
            Thread t = Thread.currentThread();
            ClassLoader prev = t.getContextClassLoader();
            t.setContextClassLoader(a.loader);
            Throwable thrown = null;
            try {
                r = a.module.attach(a);
            } catch (Throwable e) {
                thrown = e;
            } finally {
                t.setContextClassLoader(prev);
            }
            boolean over = slot.exit(s);
            if (thrown == null && r == null) {
                a.breach(ChainTrace.Breach.NULL_VERDICT, "attach returned null; return Attach.decline() to stay off a connection");
            }
            if (thrown != null || over || r == null) {
                m.declined(a);
                Object why = over ? slot.why() + (thrown != null ? " (" + thrown + ")" : "")
                        : thrown != null ? thrown : "returned null; return Attach.decline() to stay off a connection";
                if (m.recordFault("attach", host.id(), why) == FaultPolicy.FAIL_CLOSED) {
                    host.abort("module " + m.id() + " faulted in attach (fail-closed): " + why);
                }
                return null;
            }
        }
        if (!r.attached()) {
            m.declined(a);
            return null;
        }
        a.state = r.state();
        a.attachedOk = true;
        m.attached();
        return a;
    }

    /** The attached link named {@code moduleName}, or null. */
    L find(String moduleName) {
        for (L a : links) {
            if (a.name.equals(moduleName) && !a.detached) return a;
        }
        return null;
    }

    /** Runs the module's detach exactly once, then lets the host pass on or release what the link held. */
    void detach(L a, DetachReason reason) {
        if (a.detached || !a.attachedOk) {
            return;
        }
        a.detached = true;
        if (a.has(Hooks.DETACH)) {
            long s = slot.enter(a, "detach");
            Thread t = Thread.currentThread();
            ClassLoader prev = t.getContextClassLoader();
            t.setContextClassLoader(a.loader);
            Throwable thrown = null;
            try {
                a.module.detach(a.state, reason);
            } catch (Throwable e) {
                thrown = e;
            } finally {
                t.setContextClassLoader(prev);
            }
            // one fault per call: a detach stopped for overrunning both threw and ran long
            boolean over = slot.exit(s);
            if (thrown != null || over) {
                a.lm.recordFault("detach", host.id(), thrown != null ? thrown : slot.why());
            }
        }
        if (a.trace != null) a.trace.detached(a.connection(), a.name, reason);
        host.detaching(a);
        a.releaseAll();
        a.flushCounters();
        a.lm.siteDetached(a);
        host.detached(a);
    }

    /** Detaches every module ({@code CLOSED}); the connection has closed. */
    void detachAll() {
        for (L a : links) {
            detach(a, DetachReason.CLOSED);
        }
    }

    /** The ids of the attached modules, in chain order. */
    List<String> moduleIds() {
        List<String> out = new ArrayList<>();
        for (L a : links) {
            if (!a.detached) out.add(a.lm.id());
        }
        return out;
    }

    /** How many attached modules have {@code hook}. */
    int count(int hook) {
        int n = 0;
        for (L a : links) {
            if (!a.detached && a.has(hook)) n++;
        }
        return n;
    }

    int indexOf(L a) {
        L[] c = links;
        for (int i = 0; i < c.length; i++) {
            if (c[i] == a) return i;
        }
        return -1;
    }

    // ---- socket decisions, events, timers, faults ---------------------------------------------------

    /**
     * The upstream address and local bind address after every module's {@code onConnect} and {@code onBind}; null if a
     * module denied one (the host has been reset with the reason) or the connection closed meanwhile.
     */
    InetSocketAddress[] connectAndBind(InetSocketAddress target) {
        SocketDecision c = decide(true, target);
        if (c == null) return null;
        if (c.kind() == SocketDecision.Kind.DENY) {
            host.abort("connect to " + target + " denied by module " + deniedBy + ": " + c.reason());
            return null;
        }
        if (c.kind() == SocketDecision.Kind.REDIRECT) target = c.address();
        SocketDecision b = decide(false, null);
        if (b == null) return null;
        if (b.kind() == SocketDecision.Kind.DENY) {
            host.abort("bind of the upstream socket denied by module " + deniedBy + ": " + b.reason());
            return null;
        }
        return new InetSocketAddress[] {target, b.kind() == SocketDecision.Kind.REDIRECT ? b.address() : null};
    }

    /**
     * What the modules' {@code onConnect} ({@code connect}) or {@code onBind} hooks decide for {@code address}, in chain
     * order: the first DENY as the module returned it (its name in {@link #deniedBy}), else REDIRECT to the address after every
     * module, else ALLOW; null if the connection closed meanwhile.
     */
    SocketDecision decide(boolean connect, InetSocketAddress address) {
        String hook = connect ? "onConnect" : "onBind";
        boolean redirected = false;
        for (L a : links) {
            if (a.has(connect ? Hooks.CONNECT : Hooks.BIND) && !a.detached) {
                final InetSocketAddress t = address;
                SocketDecision d = callSocket(a, hook, () -> decided(a, hook,
                        connect ? a.socket.onConnect(a.state, a, t) : a.socket.onBind(a.state, a, t)));
                if (host.isClosed()) return null;
                if (d == null) continue;
                if (d.kind() == SocketDecision.Kind.DENY) {
                    deniedBy = a.name;
                    return d;
                }
                if (d.kind() == SocketDecision.Kind.REDIRECT) {
                    address = d.address();
                    redirected = true;
                }
            }
        }
        return redirected ? SocketDecision.redirect(address) : SocketDecision.allow();
    }

    /** A socket decision as the module returned it; null (taken as allow) is a breach of the contract. */
    private static SocketDecision decided(ChainLink a, String hook, SocketDecision d) {
        if (d == null) a.breach(ChainTrace.Breach.NULL_VERDICT, hook + " returned null; return SocketDecision.allow()");
        return d;
    }

    /**
     * What the modules' {@code onSetOption} hooks make of setting {@code opt} of {@code side} to {@code value}: DENY (the
     * first module that denies), MODIFY with the value after every module, or ALLOW; null if the connection closed
     * meanwhile.
     */
    OptionDecision decideOption(Side side, SocketOption opt, Object value) {
        Object v = value;
        boolean modified = false;
        for (L a : links) {
            if (a.has(Hooks.SET_OPTION) && !a.detached) {
                final Object cur = v;
                OptionDecision d = callSocket(a, "onSetOption", () -> {
                    OptionDecision r = a.socket.onSetOption(a.state, a, side, opt, cur);
                    if (r == null) a.breach(ChainTrace.Breach.NULL_VERDICT, "onSetOption returned null; return OptionDecision.allow()");
                    return r;
                });
                if (host.isClosed()) return null;
                if (d == null) continue;
                if (d.kind() == OptionDecision.Kind.DENY) {
                    LOG.log(Level.DEBUG, "connection {0}: {1} {2} not set: denied by module {3}: {4}", host.id(), side, opt, a.name, d.reason());
                    return d;
                }
                if (d.kind() == OptionDecision.Kind.MODIFY) {
                    if (!opt.valueType().isInstance(d.value())) {
                        moduleFault(a, "onSetOption", "modified " + opt + " to a " + d.value().getClass().getSimpleName()
                                + "; the option takes a " + opt.valueType().getSimpleName());
                        continue;
                    }
                    v = d.value();
                    modified = true;
                }
            }
        }
        return modified ? OptionDecision.modify(v) : OptionDecision.allow();
    }

    /** The value of {@code opt} of {@code side} as the modules' {@code onGetOption} report it; {@code value} is the socket's. */
    Object reportedOption(Side side, SocketOption opt, Object value) {
        Object v = value;
        for (L a : links) {
            if (a.has(Hooks.GET_OPTION) && !a.detached) {
                final Object cur = v;
                Object r = callSocket(a, "onGetOption", () -> a.socket.onGetOption(a.state, a, side, opt, cur));
                if (r != null || cur == null) v = r;
            }
        }
        return v;
    }

    /** Tells every attached module with an event hook about {@code ev}. */
    void fireEvent(ConnectionEvent ev) {
        for (L a : links) {
            if (a.has(Hooks.EVENT) && !a.detached) {
                callEvent(a, ev);
            }
        }
    }

    private void callEvent(L a, ConnectionEvent ev) {
        callSocket(a, "onEvent", () -> {
            a.socket.onEvent(a.state, a, ev);
            return null;
        });
    }

    /** Calls a module's socket hook (or timer) under the watchdog with its class loader; null if it faulted. */
    <T> T callSocket(L a, String hook, Supplier<T> call) {
        long s = slot.enter(a, hook);
        Thread t = Thread.currentThread();
        ClassLoader prev = t.getContextClassLoader();
        t.setContextClassLoader(a.loader);
        T r;
        Object fault = null;
        try {
            r = call.get();
        } catch (Throwable e) {
            r = null;
            fault = e;
        } finally {
            t.setContextClassLoader(prev);
        }
        if (slot.exit(s) && fault == null) {
            fault = slot.why();
        }
        if (fault != null) {
            moduleFault(a, hook, fault);
            return null;
        }
        return r;
    }

    /** Runs a module's timer task as {@link #callSocket} runs a hook. */
    void runTimer(L a, Runnable task) {
        callSocket(a, "timer", () -> {
            task.run();
            return null;
        });
    }

    /** Applies the module's fault policy outside a data call: fail-closed resets the connection, fail-open detaches it. */
    void moduleFault(L a, String hook, Object cause) {
        if (a.lm.recordFault(hook, host.id(), cause) == FaultPolicy.FAIL_CLOSED) {
            host.abort("module " + a.lm.id() + " faulted in " + hook + " (fail-closed): " + cause);
        } else {
            detach(a, DetachReason.FAULT);
        }
    }
}
