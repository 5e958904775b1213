package dev.interlayer.runtime;

import dev.interlayer.api.Attach;
import dev.interlayer.api.Attachment;
import dev.interlayer.api.ByteView;
import dev.interlayer.api.ConnectionEvent;
import dev.interlayer.api.ControlRequest;
import dev.interlayer.api.ControlResponse;
import dev.interlayer.api.DatagramContext;
import dev.interlayer.api.DatagramModule;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.ListenerInfo;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.ModuleEnv;
import dev.interlayer.api.ModuleLog;
import dev.interlayer.api.OptionDecision;
import dev.interlayer.api.ParamType;
import dev.interlayer.api.Side;
import dev.interlayer.api.SocketDecision;
import dev.interlayer.api.SocketModule;
import dev.interlayer.api.SocketOption;
import dev.interlayer.api.StreamContext;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.ClientHello;
import dev.interlayer.api.TlsCertificate;
import dev.interlayer.api.TlsFunctions;
import dev.interlayer.api.TlsHandshake;
import dev.interlayer.api.TlsModule;
import dev.interlayer.api.TlsParameters;
import dev.interlayer.api.TlsPeer;
import dev.interlayer.api.TlsTicketKey;
import dev.interlayer.api.TlsVerdict;
import dev.interlayer.api.Verdict;
import java.lang.System.Logger.Level;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetSocketAddress;

/**
 * A module of a C package seen as a Java module: the engine, the watchdog's budgets, the fault policy and quarantine
 * treat it like any jar's module.
 *
 * <p>Each hook is one downcall through a handle shared by every module of that signature; the chunk goes in as the
 * address of the engine's buffer (or of the thread's scratch copy when the view is not one piece of native memory), the
 * replacement comes back through {@code host->emit} into the engine's output buffer. Nothing is allocated per call.
 * A hook that returns a negative status throws {@link NativeHookException}, which the engine handles as a fault.
 *
 * <p>A {@code tls} step is one downcall with the step's inputs as C structs in an arena of the step (a handshake's
 * allocation, not a data hook's) and the {@link NativeTls#DEFAULTS} table; the certificates it hands back are handles this
 * module made for the {@link TlsCertificate}s of the agent, kept until fini.
 *
 * <p>Lifecycle: created by {@link NativePackage} with the vtables its initvt functions filled; {@link #init} runs the C
 * init and {@link #fini} the C fini, after which the module's handle, its parameter strings and its connections'
 * handles are gone.
 */
final class NativeModule implements StreamModule<NativeModule.State>, DatagramModule<NativeModule.State>, SocketModule<NativeModule.State>,
        TlsModule<NativeModule.State> {

    private static final System.Logger LOG = System.getLogger("interlayer.runtime");

    /** One attachment: the C state pointer and the handle C knows the connection by. */
    static final class State {
        final NativeModule module;
        final Attachment attachment;
        final long id;
        long ptr;

        State(NativeModule module, Attachment attachment, long id) {
            this.module = module;
            this.attachment = attachment;
            this.id = id;
        }
    }

    /** The addresses of a module's C functions (NULL where it has none), read once at load. */
    record Functions(MemorySegment init, MemorySegment fini, MemorySegment attach, MemorySegment detach,
                     MemorySegment send, MemorySegment recv, MemorySegment end,
                     MemorySegment datagramSend, MemorySegment datagramRecv,
                     MemorySegment connect, MemorySegment bind, MemorySegment listen, MemorySegment setOption,
                     MemorySegment getOption, MemorySegment control, MemorySegment event,
                     /* il_tls_vtable's entries, in its order */
                     MemorySegment[] tls) {}

    /** Indexes into {@link Functions#tls}. */
    static final int SELECT_CERTIFICATE = 0, VERIFY_PEER = 1, SELECT_ALPN = 2, CONFIGURE = 3, HANDSHAKE_COMPLETED = 4,
            HANDSHAKE_FAILED = 5, TICKET_KEYS = 6, KEY_LOG = 7;

    private final ModuleDescriptor descriptor;
    private final NativePackage pkg;
    private final Functions fn;
    private final Hooks.Detected hooks;
    private final long ctx;
    private final Arena strings = Arena.ofShared();
    private final java.util.concurrent.atomic.AtomicBoolean gone = new java.util.concurrent.atomic.AtomicBoolean();
    private volatile ModuleEnv env;
    private volatile ModuleLog log;
    private long module; // the pointer C init returned
    /** The certificate handles C holds ({@code il_cert *}), both ways; dropped at fini. */
    private final java.util.concurrent.ConcurrentHashMap<Long, TlsCertificate> certs = new java.util.concurrent.ConcurrentHashMap<>();
    private final java.util.concurrent.ConcurrentHashMap<TlsCertificate, Long> certHandles = new java.util.concurrent.ConcurrentHashMap<>();
    /** What set_error recorded on this thread for the call in progress: read right after the call. */
    private final ThreadLocal<String[]> error = ThreadLocal.withInitial(() -> new String[1]);

    NativeModule(ModuleDescriptor descriptor, NativePackage pkg, Functions fn, Hooks.Detected hooks, long ctx) {
        this.ctx = ctx;
        this.descriptor = descriptor;
        this.pkg = pkg;
        this.fn = fn;
        this.hooks = hooks;
        NativeAbi.MODULES.put(ctx, this);
    }

    /** The hooks the module's vtables fill, within the minors it declares. */
    Hooks.Detected hooks() {
        return hooks;
    }

    long ctx() {
        return ctx;
    }

    String id() {
        return descriptor.name() + "@" + descriptor.version();
    }

    @Override
    public ModuleDescriptor descriptor() {
        return descriptor;
    }

    // ---- module-wide ---------------------------------------------------------------------------------------

    @Override
    public void init(ModuleEnv env) throws Exception {
        this.env = env;
        this.log = env.log();
        if (isNull(fn.init)) {
            return;
        }
        NativeAbi.Frames fs = NativeAbi.FRAMES.get();
        MemorySegment out = fs.scratch;
        out.set(ValueLayout.JAVA_LONG, 0, 0);
        clearError();
        int rc = (int) invoke(() -> (int) NativeAbi.INIT.invokeExact(fn.init, ctx, out.address()));
        if (rc != NativeAbi.IL_OK) {
            throw new IllegalStateException("C init returned " + status(rc) + ": " + errorText("no message; call host->set_error before"
                    + " returning a negative status"));
        }
        module = out.get(ValueLayout.JAVA_LONG, 0);
    }

    @Override
    public void fini() {
        try {
            if (!isNull(fn.fini)) {
                invoke(() -> {
                    NativeAbi.FINI.invokeExact(fn.fini, module);
                    return 0;
                });
            }
        } finally {
            forget();
        }
    }

    /** Drops the module's handle and parameter strings; idempotent (fini calls it; so does the package for a module never loaded). */
    void forget() {
        if (gone.compareAndSet(false, true)) {
            NativeAbi.MODULES.remove(ctx);
            certs.clear();
            certHandles.clear();
            strings.close();
        }
    }

    @Override
    public Attach<State> attach(Attachment attachment) {
        State s = new State(this, attachment, NativeAbi.nextHandle());
        NativeAbi.CONNS.put(s.id, s);
        if (isNull(fn.attach)) {
            return Attach.with(s);
        }
        NativeAbi.Frames fs = NativeAbi.FRAMES.get();
        MemorySegment out = fs.scratch;
        out.set(ValueLayout.JAVA_LONG, 0, 0);
        clearError();
        int rc;
        try {
            rc = (int) invoke(() -> (int) NativeAbi.ATTACH.invokeExact(fn.attach, module, s.id, out.address()));
        } catch (RuntimeException e) {
            NativeAbi.forget(s);
            throw e;
        }
        if (rc == 1) {
            NativeAbi.forget(s);
            return Attach.decline();
        }
        if (rc != NativeAbi.IL_OK) {
            NativeAbi.forget(s);
            throw failed("attach", rc);
        }
        s.ptr = out.get(ValueLayout.JAVA_LONG, 0);
        return Attach.with(s);
    }

    @Override
    public void detach(State s, DetachReason reason) {
        try {
            if (!isNull(fn.detach)) {
                invoke(() -> {
                    NativeAbi.DETACH.invokeExact(fn.detach, module, s.ptr, reason.ordinal());
                    return 0;
                });
            }
        } finally {
            NativeAbi.forget(s);
        }
    }

    // ---- stream ---------------------------------------------------------------------------------------------

    @Override
    public Verdict onSend(State s, StreamContext ctx, ByteView data) {
        return data(fn.send, "on_send", s, ctx, null, data);
    }

    @Override
    public Verdict onRecv(State s, StreamContext ctx, ByteView data) {
        return data(fn.recv, "on_recv", s, ctx, null, data);
    }

    @Override
    public Verdict onEnd(State s, StreamContext ctx, ByteView rest) {
        return data(fn.end, "on_end", s, ctx, null, rest);
    }

    // ---- datagram ------------------------------------------------------------------------------------------

    @Override
    public Verdict onSend(State s, DatagramContext ctx, ByteView datagram) {
        return data(fn.datagramSend, "datagram on_send", s, null, ctx, datagram);
    }

    @Override
    public Verdict onRecv(State s, DatagramContext ctx, ByteView datagram) {
        return data(fn.datagramRecv, "datagram on_recv", s, null, ctx, datagram);
    }

    /** One data hook: the hot path. */
    private Verdict data(MemorySegment hook, String name, State s, StreamContext sc, DatagramContext dc, ByteView data) {
        NativeAbi.Frames fs = NativeAbi.FRAMES.get();
        int len = data.length();
        long address = data instanceof NativeChunk nc ? nc.address() : 0;
        if (address == 0 && len > 0) {
            address = data instanceof NativeChunk nc ? fs.copy(nc, len) : fs.copy(data, len);
        }
        NativeAbi.Frame f = fs.push();
        f.reset(this, s, sc, dc);
        int rc;
        try {
            rc = (int) NativeAbi.DATA_HOOK.invokeExact(hook, module, s.ptr, (long) fs.depth, address, (long) len);
        } catch (Throwable t) {
            throw new NativeHookException("C module " + id() + ": " + name + " could not be called: " + t, t);
        } finally {
            fs.pop();
        }
        return switch (rc) {
            case NativeAbi.IL_PASS -> Verdict.PASS;
            case NativeAbi.IL_DROP -> Verdict.DROP;
            case NativeAbi.IL_HOLD -> Verdict.HOLD;
            case NativeAbi.IL_DETACH -> Verdict.DETACH;
            case NativeAbi.IL_CLOSE -> Verdict.CLOSE;
            case NativeAbi.IL_NEED_MORE -> Verdict.needMore(f.needMore);
            case NativeAbi.IL_ABORT -> Verdict.error(f.abortCode == 0 ? 1 : f.abortCode, f.reason);
            default -> throw failed(name, rc);
        };
    }

    // ---- socket --------------------------------------------------------------------------------------------

    @Override
    public SocketDecision onConnect(State s, Attachment attachment, InetSocketAddress target) {
        return addressHook(fn.connect, "on_connect", s, target);
    }

    @Override
    public SocketDecision onBind(State s, Attachment attachment, InetSocketAddress local) {
        return addressHook(fn.bind, "on_bind", s, local);
    }

    private SocketDecision addressHook(MemorySegment hook, String name, State s, InetSocketAddress address) {
        NativeAbi.Frames fs = NativeAbi.FRAMES.get();
        MemorySegment addr = fs.scratch.asSlice(8, NativeAbi.ADDR_SIZE);
        NativeAbi.writeAddr(addr, address);
        NativeAbi.Frame f = fs.push();
        f.reset(this, s, null, null);
        clearError();
        try {
            int rc = (int) invoke(() -> (int) NativeAbi.SOCKET_ADDR_HOOK.invokeExact(hook, module, s.ptr, s.id, (long) fs.depth,
                    address == null ? 0L : addr.address()));
            return decision(name, rc, f);
        } finally {
            fs.pop();
        }
    }

    @Override
    public SocketDecision onListen(ListenerInfo listener) {
        NativeAbi.Frames fs = NativeAbi.FRAMES.get();
        NativeAbi.Frame f = fs.push();
        f.reset(this, null, null, null);
        clearError();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment name = a.allocateFrom(listener.name() == null ? "" : listener.name());
            MemorySegment addr = a.allocate(NativeAbi.ADDR_SIZE, 2);
            NativeAbi.writeAddr(addr, listener.listen());
            int rc = (int) invoke(() -> (int) NativeAbi.LISTEN_HOOK.invokeExact(fn.listen, module, (long) fs.depth, name.address(),
                    addr.address()));
            return decision("on_listen", rc, f);
        } finally {
            fs.pop();
        }
    }

    private SocketDecision decision(String name, int rc, NativeAbi.Frame f) {
        return switch (rc) {
            case NativeAbi.IL_ALLOW -> SocketDecision.allow();
            case NativeAbi.IL_DENY -> SocketDecision.deny(f.reason);
            case NativeAbi.IL_REDIRECT -> {
                if (f.redirect == null) throw failed(name + " returned IL_REDIRECT without host->redirect", NativeAbi.IL_ERR_FAILED);
                yield SocketDecision.redirect(f.redirect);
            }
            default -> throw failed(name, rc);
        };
    }

    @Override
    public OptionDecision onSetOption(State s, Attachment attachment, Side side, SocketOption option, Object value) {
        NativeAbi.Frames fs = NativeAbi.FRAMES.get();
        NativeAbi.Frame f = fs.push();
        f.reset(this, s, null, null);
        clearError();
        try {
            int rc = (int) invoke(() -> (int) NativeAbi.SET_OPTION_HOOK.invokeExact(fn.setOption, module, s.ptr, s.id, (long) fs.depth,
                    side.ordinal(), option.ordinal(), optionValue(value)));
            return switch (rc) {
                case NativeAbi.IL_ALLOW -> OptionDecision.allow();
                case NativeAbi.IL_DENY -> OptionDecision.deny(f.reason);
                case NativeAbi.IL_MODIFY -> OptionDecision.modify(option.valueType() == Boolean.class ? (Object) (f.modified != 0)
                        : (Object) (int) f.modified);
                default -> throw failed("on_set_option", rc);
            };
        } finally {
            fs.pop();
        }
    }

    @Override
    public Object onGetOption(State s, Attachment attachment, Side side, SocketOption option, Object value) {
        long v = (long) invoke(() -> (long) NativeAbi.GET_OPTION_HOOK.invokeExact(fn.getOption, module, s.ptr, s.id, side.ordinal(),
                option.ordinal(), optionValue(value)));
        return option.valueType() == Boolean.class ? (Object) (v != 0) : (Object) (int) v;
    }

    private static long optionValue(Object value) {
        return value instanceof Boolean b ? (b ? 1 : 0) : value instanceof Number n ? n.longValue() : 0;
    }

    @Override
    public ControlResponse control(ControlRequest request) {
        NativeAbi.Frames fs = NativeAbi.FRAMES.get();
        NativeAbi.Frame f = fs.push();
        f.reset(this, null, null, null);
        clearError();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment command = a.allocateFrom(request.command() == null ? "" : request.command());
            byte[] b = request.body() == null ? new byte[0] : request.body();
            MemorySegment body = a.allocate(Math.max(1, b.length));
            MemorySegment.copy(b, 0, body, ValueLayout.JAVA_BYTE, 0, b.length);
            int rc = (int) invoke(() -> (int) NativeAbi.CONTROL_HOOK.invokeExact(fn.control, module, (long) fs.depth, command.address(),
                    body.address(), (long) b.length));
            byte[] reply = f.reply == null ? new byte[0] : f.reply;
            if (rc == NativeAbi.IL_OK) {
                return ControlResponse.ok(reply);
            }
            return new ControlResponse(false, reply.length > 0 ? reply : errorText("the C module answered " + status(rc)).getBytes(
                    java.nio.charset.StandardCharsets.UTF_8));
        } finally {
            fs.pop();
        }
    }

    @Override
    public void onEvent(State s, Attachment attachment, ConnectionEvent event) {
        invoke(() -> {
            NativeAbi.EVENT_HOOK.invokeExact(fn.event, module, s.ptr, s.id, event.ordinal());
            return 0;
        });
    }

    /** A timer the module set with host->schedule fired: runs on the connection's event loop. */
    void timer(MemorySegment function, long arg) {
        invoke(() -> {
            NativeAbi.TIMER.invokeExact(function, module, arg);
            return 0;
        });
    }

    // ---- tls -----------------------------------------------------------------------------------------------

    /** The handle C knows {@code c} by (the same for the same certificate); 0 for null. */
    long certHandle(TlsCertificate c) {
        if (c == null) return 0;
        return certHandles.computeIfAbsent(c, k -> {
            long id = NativeAbi.nextHandle();
            certs.put(id, k);
            return id;
        });
    }

    /** A tls step: its frame carries the step's inputs for the defaults; the arena holds its structs until it returns. */
    private interface TlsCall<T> {
        T run(NativeTls.Step step, long call) throws Throwable;
    }

    @SuppressWarnings("unchecked")
    private <T> T step(TlsFunctions defaults, TlsCall<T> c) {
        NativeAbi.Frames fs = NativeAbi.FRAMES.get();
        NativeAbi.Frame f = fs.push();
        f.reset(this, null, null, null);
        clearError();
        try (Arena a = Arena.ofConfined()) {
            f.step = new NativeTls.Step(defaults, a);
            long call = fs.depth;
            return (T) invoke(() -> c.run(f.step, call));
        } finally {
            fs.pop();
        }
    }

    @Override
    public TlsCertificate selectCertificate(ClientHello hello, TlsFunctions defaults) {
        if (isNull(fn.tls[SELECT_CERTIFICATE])) return defaults.selectCertificate(hello);
        return step(defaults, (st, call) -> {
            MemorySegment h = NativeTls.hello(st, hello);
            long handle = (long) NativeTls.SELECT_CERTIFICATE.invokeExact(fn.tls[SELECT_CERTIFICATE], module, call, h.address(),
                    NativeTls.DEFAULTS.address());
            if (handle == 0) throw failed("select_certificate returned NULL", NativeAbi.IL_ERR_FAILED);
            TlsCertificate c = certs.get(handle);
            if (c == null) {
                throw new NativeHookException("C module " + id() + ": select_certificate returned " + Long.toHexString(handle)
                        + ", which is no il_cert of this module; return one from defaults->certificate, ->configured or ->select_certificate");
            }
            return c;
        });
    }

    @Override
    public TlsVerdict verifyPeer(TlsPeer peer, TlsFunctions defaults) {
        if (isNull(fn.tls[VERIFY_PEER])) return defaults.verifyPeer(peer);
        return step(defaults, (st, call) -> {
            MemorySegment p = NativeTls.peer(st, peer);
            int rc = (int) NativeTls.VERIFY_PEER.invokeExact(fn.tls[VERIFY_PEER], module, call, p.address(), NativeTls.DEFAULTS.address());
            NativeAbi.Frame f = NativeAbi.FRAMES.get().get(call);
            return switch (rc) {
                case NativeAbi.IL_ALLOW -> TlsVerdict.accept();
                case NativeAbi.IL_DENY -> TlsVerdict.refuse(f.reason == null || f.reason.isBlank() ? "refused (no reason given to host->deny)"
                        : f.reason);
                default -> throw failed("verify_peer", rc);
            };
        });
    }

    @Override
    public String selectAlpn(ClientHello hello, java.util.List<String> offered, TlsFunctions defaults) {
        if (isNull(fn.tls[SELECT_ALPN])) return defaults.selectAlpn(hello, offered);
        return step(defaults, (st, call) -> {
            MemorySegment h = NativeTls.hello(st, hello);
            long chosen = (long) NativeTls.SELECT_ALPN.invokeExact(fn.tls[SELECT_ALPN], module, call, h.address(), NativeTls.DEFAULTS.address());
            if (chosen == 0) return (String) null;
            for (int i = 0; i < st.alpn.length; i++) {
                if (st.alpn[i] == chosen) return hello.alpn().get(i);
            }
            throw new NativeHookException("C module " + id() + ": select_alpn returned a pointer that is none of hello->alpn's; return"
                    + " hello->alpn[i], or NULL for none");
        });
    }

    @Override
    public TlsParameters configure(TlsParameters configured, TlsFunctions defaults) {
        if (isNull(fn.tls[CONFIGURE])) return defaults.configure(configured);
        return step(defaults, (st, call) -> {
            MemorySegment p = NativeTls.params(st.arena, configured);
            int rc = (int) NativeTls.CONFIGURE.invokeExact(fn.tls[CONFIGURE], module, call, p.address(), NativeTls.DEFAULTS.address());
            if (rc != NativeAbi.IL_OK) throw failed("configure", rc);
            try {
                return NativeTls.readParams(p, configured.terminating());
            } catch (IllegalArgumentException e) {
                throw new NativeHookException("C module " + id() + ": configure left " + e.getMessage());
            }
        });
    }

    @Override
    public String handshakeCompleted(TlsHandshake handshake, TlsFunctions defaults) {
        if (isNull(fn.tls[HANDSHAKE_COMPLETED])) return defaults.handshakeCompleted(handshake);
        return step(defaults, (st, call) -> {
            MemorySegment hs = NativeTls.handshake(st, handshake);
            MemorySegment identity = st.arena.allocate(NativeTls.IDENTITY_MAX); // zeroed: no identity
            int rc = (int) NativeTls.HANDSHAKE_COMPLETED.invokeExact(fn.tls[HANDSHAKE_COMPLETED], module, call, hs.address(),
                    identity.address(), (long) NativeTls.IDENTITY_MAX, NativeTls.DEFAULTS.address());
            if (rc != NativeAbi.IL_OK) throw failed("handshake_completed", rc);
            identity.set(ValueLayout.JAVA_BYTE, NativeTls.IDENTITY_MAX - 1, (byte) 0); // a module that filled it to the brim
            String id = identity.getString(0);
            return id.isEmpty() ? null : id;
        });
    }

    @Override
    public void handshakeFailed(TlsHandshake handshake, String reason, TlsFunctions defaults) {
        if (isNull(fn.tls[HANDSHAKE_FAILED])) {
            defaults.handshakeFailed(handshake, reason);
            return;
        }
        step(defaults, (st, call) -> {
            MemorySegment hs = NativeTls.handshake(st, handshake);
            long r = st.arena.allocateFrom(reason == null ? "" : reason).address();
            NativeTls.HANDSHAKE_FAILED.invokeExact(fn.tls[HANDSHAKE_FAILED], module, call, hs.address(), r, NativeTls.DEFAULTS.address());
            return null;
        });
    }

    @Override
    public java.util.List<TlsTicketKey> sessionTicketKeys(java.util.List<TlsTicketKey> current, TlsFunctions defaults) {
        if (isNull(fn.tls[TICKET_KEYS])) return defaults.sessionTicketKeys(current);
        return step(defaults, (st, call) -> {
            st.current = current;
            MemorySegment in = NativeTls.writeKeys(st.arena, current);
            MemorySegment out = st.arena.allocate((long) TlsTicketKey.SIZE * NativeTls.TICKET_KEYS_MAX, 8);
            MemorySegment count = st.arena.allocate(ValueLayout.JAVA_INT);
            int rc = (int) NativeTls.TICKET_KEYS.invokeExact(fn.tls[TICKET_KEYS], module, call, in.address(), current.size(), out.address(),
                    count.address(), NativeTls.DEFAULTS.address());
            if (rc != NativeAbi.IL_OK) throw failed("session_ticket_keys", rc);
            int n = count.get(ValueLayout.JAVA_INT, 0);
            if (n < 1 || n > NativeTls.TICKET_KEYS_MAX) {
                throw new NativeHookException("C module " + id() + ": session_ticket_keys set *count to " + n + "; write 1 to "
                        + NativeTls.TICKET_KEYS_MAX + " keys and set *count");
            }
            return NativeTls.readKeys(out.address(), n);
        });
    }

    @Override
    public void keyLog(TlsHandshake handshake, String line, TlsFunctions defaults) {
        if (isNull(fn.tls[KEY_LOG])) {
            defaults.keyLog(handshake, line);
            return;
        }
        step(defaults, (st, call) -> {
            MemorySegment hs = NativeTls.handshake(st, handshake);
            long l = st.arena.allocateFrom(line).address();
            NativeTls.KEY_LOG.invokeExact(fn.tls[KEY_LOG], module, call, hs.address(), l, NativeTls.DEFAULTS.address());
            return null;
        });
    }

    // ---- services' side --------------------------------------------------------------------------------------

    void log(int code, String message) {
        ModuleLog l = log;
        if (l == null) {
            LOG.log(code == 0 ? Level.INFO : Level.ERROR, "module {0}: {1}", id(), message);
        } else if (code == 0) {
            l.info("%s", message);
        } else {
            l.error(code, "%s", message);
        }
    }

    void setError(int code, String message) {
        error.get()[0] = (code == 0 ? "" : "error " + code + ": ") + message;
        log(code == 0 ? 1 : code, message);
    }

    /** A service was misused or failed during a call of this module: remembered as the call's error and logged. */
    void misuse(String what) {
        error.get()[0] = what;
        LOG.log(Level.WARNING, "C module {0}: {1}", id(), what);
    }

    static void misuseWithoutCall(String what) {
        LOG.log(Level.WARNING, "C module: {0}", what);
    }

    long paramInt(String name) {
        ParamType t = type(name);
        return switch (t) {
            case INT -> env.params().getInt(name);
            case LONG -> env.params().getLong(name);
            case SIZE -> env.params().getSize(name);
            case BOOL -> env.params().getBool(name) ? 1 : 0;
            case DURATION -> env.params().getDuration(name).toNanos();
            case STRING -> throw new IllegalArgumentException("parameter '" + name + "' is a string; use param_string");
        };
    }

    MemorySegment paramString(String name) {
        if (type(name) != ParamType.STRING) {
            throw new IllegalArgumentException("parameter '" + name + "' is not a string; use param_int");
        }
        return strings.allocateFrom(env.params().getString(name));
    }

    private ParamType type(String name) {
        return descriptor.params().stream().filter(p -> p.name().equals(name)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("module " + id() + " has no parameter '" + name + "'; declared: "
                        + descriptor.params().stream().map(dev.interlayer.api.Param::name).toList()))
                .type();
    }

    private void clearError() {
        error.get()[0] = null;
    }

    private String errorText(String otherwise) {
        String e = error.get()[0];
        return e == null ? otherwise : e;
    }

    private NativeHookException failed(String hook, int rc) {
        return new NativeHookException("C module " + id() + ": " + hook + " returned " + status(rc) + ": "
                + errorText("no message (call host->set_error before returning a negative status)"));
    }

    static String status(int rc) {
        return switch (rc) {
            case NativeAbi.IL_ERR_VERSION -> "IL_ERR_VERSION (-1)";
            case NativeAbi.IL_ERR_FAILED -> "IL_ERR_FAILED (-2)";
            case -3 -> "IL_ERR_NOMEM (-3)";
            case -4 -> "IL_ERR_INVALID (-4)";
            default -> rc < 0 ? "status " + rc : rc + ", which is no verdict of this hook";
        };
    }

    private interface Call {
        Object run() throws Throwable;
    }

    private Object invoke(Call c) {
        try {
            return c.run();
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new NativeHookException("C module " + id() + " could not be called: " + t, t);
        }
    }

    private static boolean isNull(MemorySegment s) {
        return s == null || s.address() == 0;
    }

    /** The package this module came from. */
    NativePackage pkg() {
        return pkg;
    }

    @Override
    public String toString() {
        return "C module " + id() + " from " + pkg.location();
    }
}
