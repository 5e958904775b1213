package dev.interlayer.runtime;

import dev.interlayer.api.Attachment;
import dev.interlayer.api.Cancellable;
import dev.interlayer.api.DatagramContext;
import dev.interlayer.api.Direction;
import dev.interlayer.api.HeldBytes;
import dev.interlayer.api.Output;
import dev.interlayer.api.StreamContext;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The host's half of {@code native/include/interlayer/module.h}: the layouts of its structs, one downcall handle per
 * hook signature, and the {@code il_host} table of engine services whose upcall stubs are made once per JVM.
 *
 * <p>Handles the C side sees are numbers, never Java objects: an {@code il_call} is the depth of the call on the
 * calling thread's {@link Frames} stack (so a service can only reach the call that is running), an {@code il_ctx}, an
 * {@code il_conn}, an {@code il_held} and a timer are keys of maps that drop them at fini, detach, inject/release and
 * fire/cancel. A stale handle finds nothing and the service returns 0, NULL or {@code IL_ERR_FAILED}.
 *
 * <p>An upcall must never throw: an exception crossing into C would end the JVM. Every service catches everything,
 * records the error against the call or the module and returns a failure value.
 */
final class NativeAbi {

    private NativeAbi() {}

    static final int ABI_VERSION = 1;

    // status codes and verdicts (module.h)
    static final int IL_OK = 0;
    static final int IL_ERR_VERSION = -1;
    static final int IL_ERR_FAILED = -2;
    static final int IL_PASS = 0, IL_DROP = 1, IL_HOLD = 2, IL_DETACH = 3, IL_CLOSE = 4, IL_NEED_MORE = 5, IL_ABORT = 6;
    static final int IL_ALLOW = 0, IL_DENY = 1, IL_REDIRECT = 2, IL_MODIFY = 3;

    static final Linker LINKER = Linker.nativeLinker();
    private static final ValueLayout.OfLong P = ValueLayout.JAVA_LONG; // pointers travel as longs: no segment per call
    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT;
    private static final MemoryLayout PTR = ValueLayout.ADDRESS;

    static final StructLayout MODULE_INFO = MemoryLayout.structLayout(
            ValueLayout.JAVA_INT.withName("size"), MemoryLayout.paddingLayout(4),
            PTR.withName("name"), PTR.withName("version"), PTR.withName("description"), PTR.withName("interfaces"),
            ValueLayout.JAVA_INT.withName("priority"), MemoryLayout.paddingLayout(4),
            PTR.withName("params"), ValueLayout.JAVA_INT.withName("param_count"), MemoryLayout.paddingLayout(4),
            PTR.withName("init"), PTR.withName("fini"), PTR.withName("attach"), PTR.withName("detach"));
    static final StructLayout PARAM = MemoryLayout.structLayout(
            PTR.withName("name"), PTR.withName("type"), PTR.withName("default_value"), PTR.withName("description"));
    /** il_addr: family, port, 16 address bytes. */
    static final long ADDR_SIZE = 20;
    /** il_stream_vtable / il_datagram_vtable / il_socket_vtable: minor, reserved, then one pointer per hook. */
    static final long VT_HEADER = 8;

    static long offset(StructLayout l, String field) {
        return l.byteOffset(MemoryLayout.PathElement.groupElement(field));
    }

    // ---- downcalls: one handle per signature, the function's address as first argument -------------------------

    /** {@code int hook(module, state, call, data, len)}. */
    static final MethodHandle DATA_HOOK = down(FunctionDescriptor.of(I, P, P, P, P, P));
    /** {@code int init(ctx, void **module)}. */
    static final MethodHandle INIT = down(FunctionDescriptor.of(I, P, P));
    /** {@code void fini(module)}, {@code il_timer_fn} has (module, arg). */
    static final MethodHandle FINI = down(FunctionDescriptor.ofVoid(P));
    static final MethodHandle TIMER = down(FunctionDescriptor.ofVoid(P, P));
    /** {@code int attach(module, conn, void **state)}. */
    static final MethodHandle ATTACH = down(FunctionDescriptor.of(I, P, P, P));
    /** {@code void detach(module, state, reason)}. */
    static final MethodHandle DETACH = down(FunctionDescriptor.ofVoid(P, P, I));
    /** {@code int initvt(ctx, major, minor, vtable)}. */
    static final MethodHandle INITVT = down(FunctionDescriptor.of(I, P, I, I, P));
    static final MethodHandle GET_VERSION = down(FunctionDescriptor.of(I));
    static final MethodHandle MODULE_LIST = down(FunctionDescriptor.of(P, P));
    static final MethodHandle PLUGIN_INIT = down(FunctionDescriptor.of(I, P));
    static final MethodHandle PLUGIN_FINI = down(FunctionDescriptor.ofVoid());
    /** on_connect / on_bind (module, state, conn, call, addr); on_listen (module, call, name, addr). */
    static final MethodHandle SOCKET_ADDR_HOOK = down(FunctionDescriptor.of(I, P, P, P, P, P));
    static final MethodHandle LISTEN_HOOK = down(FunctionDescriptor.of(I, P, P, P, P));
    /** on_set_option (module, state, conn, call, side, option, value). */
    static final MethodHandle SET_OPTION_HOOK = down(FunctionDescriptor.of(I, P, P, P, P, I, I, ValueLayout.JAVA_LONG));
    /** on_get_option (module, state, conn, side, option, value) -> value. */
    static final MethodHandle GET_OPTION_HOOK = down(FunctionDescriptor.of(ValueLayout.JAVA_LONG, P, P, P, I, I, ValueLayout.JAVA_LONG));
    /** control (module, call, command, body, len). */
    static final MethodHandle CONTROL_HOOK = down(FunctionDescriptor.of(I, P, P, P, P, P));
    /** on_event (module, state, conn, event). */
    static final MethodHandle EVENT_HOOK = down(FunctionDescriptor.ofVoid(P, P, P, I));
    /** libc's dlopen/dlerror/dlclose, for the RTLD_NOW check before the JDK maps the object. */
    private static final MethodHandle DLOPEN = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("dlopen"),
            FunctionDescriptor.of(P, ValueLayout.ADDRESS, I));
    private static final MethodHandle DLERROR = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("dlerror"), FunctionDescriptor.of(P));
    private static final MethodHandle DLCLOSE = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("dlclose"), FunctionDescriptor.of(I, P));
    private static final int RTLD_NOW = 2;

    private static MethodHandle down(FunctionDescriptor fd) {
        return LINKER.downcallHandle(fd);
    }

    /**
     * Opens {@code file} with {@code RTLD_NOW} (every symbol it needs bound now) and closes it again; returns null if that
     * worked, else dlerror's message. The JDK's own mapping binds lazily, which would defer "undefined symbol" to the
     * first call of the function, in a connection.
     */
    static String probe(String file) {
        try (Arena a = Arena.ofConfined()) {
            long h = (long) DLOPEN.invokeExact(a.allocateFrom(file), RTLD_NOW);
            if (h == 0) {
                long e = (long) DLERROR.invokeExact();
                return e == 0 ? "dlopen failed" : string(e);
            }
            int ignored = (int) DLCLOSE.invokeExact(h);
            return null;
        } catch (Throwable t) {
            return t.toString();
        }
    }

    /** The NUL-terminated UTF-8 string at {@code address}, or null for NULL. */
    static String string(long address) {
        return address == 0 ? null : MemorySegment.ofAddress(address).reinterpret(Long.MAX_VALUE).getString(0, StandardCharsets.UTF_8);
    }

    static MemorySegment at(long address, long size) {
        return MemorySegment.ofAddress(address).reinterpret(size);
    }

    // ---- calls ---------------------------------------------------------------------------------------------

    /** One hook call in progress: what the services of {@code il_call} act on, and what they recorded. */
    static final class Frame {
        NativeModule module;
        StreamContext stream;
        DatagramContext datagram;
        NativeModule.State state;
        int needMore;
        int abortCode;
        String reason;
        InetSocketAddress redirect;
        long modified;
        byte[] reply;
        NativeOutput out;
        /** A tls step's inputs, for the defaults it calls; null in other calls. */
        NativeTls.Step step;

        void reset(NativeModule m, NativeModule.State s, StreamContext sc, DatagramContext dc) {
            module = m;
            step = null;
            state = s;
            stream = sc;
            datagram = dc;
            out = null;
            reason = null;
            redirect = null;
            reply = null;
        }
    }

    /**
     * The calls into C running on one thread, innermost last (a C hook may inject, and the chain may call another C
     * module before the inject returns), with the thread's scratch memory: out-parameters, addresses and a chunk
     * copy for the rare view that is not one piece of native memory.
     */
    static final class Frames {
        private Frame[] stack = new Frame[4];
        int depth;
        /** 8 bytes for an out-parameter, then two il_addr. */
        final MemorySegment scratch = Arena.ofAuto().allocate(64, 8);
        private MemorySegment copy = MemorySegment.NULL;
        private ByteBuffer copyBuffer;

        Frame push() {
            if (depth == stack.length) {
                stack = java.util.Arrays.copyOf(stack, depth * 2);
            }
            Frame f = stack[depth];
            if (f == null) {
                f = stack[depth] = new Frame();
            }
            depth++;
            return f;
        }

        void pop() {
            Frame f = stack[--depth];
            f.module = null; // let a finished call pin nothing
            f.stream = null;
            f.datagram = null;
            f.state = null;
            f.out = null;
            f.step = null;
        }

        /** The frame of {@code call} if it is running on this thread, else null. */
        Frame get(long call) {
            return call >= 1 && call <= depth ? stack[(int) call - 1] : null;
        }

        /** A copy of {@code chunk}'s bytes in native memory owned by this thread, valid until the next copy. */
        long copy(NativeChunk chunk, int len) {
            if (copy.byteSize() < len) {
                copy = Arena.ofAuto().allocate(Math.max(len, 16 * 1024), 64);
                copyBuffer = copy.asByteBuffer();
            }
            chunk.copyTo(copyBuffer);
            return copy.address();
        }

        long copy(dev.interlayer.api.ByteView view, int len) {
            if (copy.byteSize() < len) {
                copy = Arena.ofAuto().allocate(Math.max(len, 16 * 1024), 64);
                copyBuffer = copy.asByteBuffer();
            }
            byte[] tmp = new byte[len]; // a view from outside the engine (a test double): not a hot path
            int p = view.position();
            view.revert(p);
            view.readFully(tmp, 0, len);
            view.revert(len);
            view.advance(p);
            MemorySegment.copy(tmp, 0, copy, ValueLayout.JAVA_BYTE, 0, len);
            return copy.address();
        }
    }

    static final ThreadLocal<Frames> FRAMES = ThreadLocal.withInitial(Frames::new);

    // ---- handles -----------------------------------------------------------------------------------------

    private static final AtomicLong NEXT = new AtomicLong(1);
    static final Map<Long, NativeModule> MODULES = new ConcurrentHashMap<>();
    static final Map<Long, NativeModule.State> CONNS = new ConcurrentHashMap<>();
    static final Map<Long, Held> HELD = new ConcurrentHashMap<>();
    static final Map<Long, Timer> TIMERS = new ConcurrentHashMap<>();

    record Held(HeldBytes bytes, NativeModule.State owner) {}

    record Timer(Cancellable handle, NativeModule.State owner) {}

    static long nextHandle() {
        return NEXT.getAndIncrement();
    }

    /** Drops the held bytes and timers {@code s} still has: the engine releases and cancels them itself at detach. */
    static void forget(NativeModule.State s) {
        CONNS.remove(s.id);
        HELD.values().removeIf(h -> h.owner == s);
        TIMERS.values().removeIf(t -> t.owner == s);
    }

    // ---- the il_host table ---------------------------------------------------------------------------------

    private record Service(String name, FunctionDescriptor fd) {}

    private static final List<Service> SERVICES = List.of(
            new Service("log", FunctionDescriptor.ofVoid(P, I, P)),
            new Service("setError", FunctionDescriptor.ofVoid(P, I, P)),
            new Service("paramInt", FunctionDescriptor.of(ValueLayout.JAVA_LONG, P, P)),
            new Service("paramString", FunctionDescriptor.of(P, P, P, P)),
            new Service("emit", FunctionDescriptor.of(P, P, P)),
            new Service("write", FunctionDescriptor.of(I, P, P, P)),
            new Service("rewrite", FunctionDescriptor.of(P, P)),
            new Service("hold", FunctionDescriptor.of(P, P)),
            new Service("needMore", FunctionDescriptor.of(I, P, I)),
            new Service("abortWith", FunctionDescriptor.of(I, P, I, P)),
            new Service("injected", FunctionDescriptor.of(I, P, P)),
            new Service("deny", FunctionDescriptor.of(I, P, P)),
            new Service("redirect", FunctionDescriptor.of(I, P, P)),
            new Service("modify", FunctionDescriptor.of(I, P, ValueLayout.JAVA_LONG)),
            new Service("reply", FunctionDescriptor.ofVoid(P, P, P)),
            new Service("inject", FunctionDescriptor.of(I, P, I, P, P, ValueLayout.JAVA_LONG)),
            new Service("injectHeld", FunctionDescriptor.of(I, P, I, P)),
            new Service("releaseHeld", FunctionDescriptor.ofVoid(P)),
            new Service("heldLength", FunctionDescriptor.of(P, P)),
            new Service("schedule", FunctionDescriptor.of(ValueLayout.JAVA_LONG, P, ValueLayout.JAVA_LONG, P, P)),
            new Service("cancelTimer", FunctionDescriptor.of(I, ValueLayout.JAVA_LONG)),
            new Service("isWritable", FunctionDescriptor.of(I, P, I)),
            new Service("close", FunctionDescriptor.ofVoid(P)),
            new Service("abort", FunctionDescriptor.ofVoid(P, P)),
            new Service("connectionId", FunctionDescriptor.of(ValueLayout.JAVA_LONG, P)),
            new Service("addresses", FunctionDescriptor.of(I, P, P, P)));

    /** The il_host table, made once: it and its upcall stubs live as long as the JVM. */
    static final MemorySegment HOST = host();

    private static MemorySegment host() {
        Arena global = Arena.global();
        MemorySegment table = global.allocate(8 + 8L * SERVICES.size(), 8);
        table.set(ValueLayout.JAVA_INT, 0, (int) table.byteSize());
        table.set(ValueLayout.JAVA_INT, 4, ABI_VERSION);
        MethodHandles.Lookup lookup = MethodHandles.lookup();
        for (int i = 0; i < SERVICES.size(); i++) {
            Service s = SERVICES.get(i);
            try {
                MethodType type = s.fd.toMethodType();
                MethodHandle target = lookup.findStatic(NativeAbi.class, s.name, type);
                table.set(ValueLayout.ADDRESS, 8 + 8L * i, LINKER.upcallStub(target, s.fd, global));
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }
        return table;
    }

    private static Frame frame(long call) {
        return FRAMES.get().get(call);
    }

    /** Records a misuse or an exception inside a service against the module whose call it was. */
    private static void misuse(Frame f, String what) {
        if (f != null && f.module != null) {
            f.module.misuse(what);
        } else {
            NativeModule.misuseWithoutCall(what);
        }
    }

    static void log(long ctx, int code, long message) {
        try {
            NativeModule m = MODULES.get(ctx);
            if (m != null) {
                m.log(code, string(message));
            }
        } catch (Throwable t) {
            NativeModule.misuseWithoutCall("log failed: " + t);
        }
    }

    static void setError(long ctx, int code, long message) {
        try {
            NativeModule m = MODULES.get(ctx);
            if (m != null) {
                m.setError(code, string(message));
            }
        } catch (Throwable t) {
            NativeModule.misuseWithoutCall("set_error failed: " + t);
        }
    }

    static long paramInt(long ctx, long name) {
        try {
            NativeModule m = MODULES.get(ctx);
            return m == null ? 0 : m.paramInt(string(name));
        } catch (Throwable t) {
            NativeModule m = MODULES.get(ctx);
            if (m != null) m.misuse("param_int: " + t.getMessage());
            return 0;
        }
    }

    static long paramString(long ctx, long name, long lenOut) {
        try {
            NativeModule m = MODULES.get(ctx);
            MemorySegment s = m == null ? MemorySegment.NULL : m.paramString(string(name));
            if (lenOut != 0) {
                at(lenOut, 8).set(ValueLayout.JAVA_LONG, 0, s.byteSize() == 0 ? 0 : s.byteSize() - 1);
            }
            return s.address();
        } catch (Throwable t) {
            NativeModule m = MODULES.get(ctx);
            if (m != null) m.misuse("param_string: " + t.getMessage());
            return 0;
        }
    }

    static long emit(long call, long len) {
        Frame f = frame(call);
        try {
            if (f == null || f.stream == null && f.datagram == null) {
                misuse(f, "emit called outside a data hook (an il_call is valid during its hook only)");
                return 0;
            }
            if (len < 0 || len > Integer.MAX_VALUE) {
                misuse(f, "emit of " + len + " bytes");
                return 0;
            }
            if (f.out == null) {
                Output o = f.stream != null ? f.stream.replace() : f.datagram.replace();
                if (!(o instanceof NativeOutput no)) {
                    misuse(f, "this engine's replacement output cannot be written from C");
                    return 0;
                }
                f.out = no;
            }
            return f.out.reserve((int) len);
        } catch (Throwable t) {
            misuse(f, "emit of " + len + " bytes failed: " + t.getMessage());
            return 0;
        }
    }

    static int write(long call, long src, long len) {
        long dst = emit(call, len);
        if (dst == 0) {
            return len == 0 ? IL_OK : IL_ERR_FAILED;
        }
        MemorySegment.copy(at(src, len), 0, at(dst, len), 0, len);
        return IL_OK;
    }

    static long rewrite(long call) {
        Frame f = frame(call);
        try {
            MemorySegment s = f == null ? null : f.stream != null ? f.stream.rewrite() : f.datagram != null ? f.datagram.rewrite() : null;
            if (s == null) {
                misuse(f, "rewrite called outside a data hook");
                return 0;
            }
            return s.address();
        } catch (Throwable t) {
            misuse(f, "rewrite failed: " + t.getMessage());
            return 0;
        }
    }

    static long hold(long call) {
        Frame f = frame(call);
        try {
            HeldBytes h = f == null ? null : f.stream != null ? f.stream.hold() : f.datagram != null ? f.datagram.hold() : null;
            if (h == null) {
                misuse(f, "hold called outside a data hook");
                return 0;
            }
            long id = nextHandle();
            HELD.put(id, new Held(h, f.state));
            return id;
        } catch (Throwable t) {
            misuse(f, "hold failed: " + t.getMessage());
            return 0;
        }
    }

    static int needMore(long call, int bytes) {
        Frame f = frame(call);
        if (f == null) {
            misuse(null, "need_more called outside a data hook");
            return IL_ERR_FAILED;
        }
        f.needMore = bytes;
        return IL_NEED_MORE;
    }

    static int abortWith(long call, int code, long reason) {
        Frame f = frame(call);
        try {
            if (f == null) {
                misuse(null, "abort_with called outside a data hook");
                return IL_ERR_FAILED;
            }
            f.abortCode = code;
            f.reason = string(reason);
            return IL_ABORT;
        } catch (Throwable t) {
            misuse(f, "abort_with failed: " + t);
            return IL_ERR_FAILED;
        }
    }

    static int injected(long call, long tagOut) {
        Frame f = frame(call);
        try {
            boolean inj = f != null && (f.stream != null ? f.stream.injected() : f.datagram != null && f.datagram.injected());
            if (inj && tagOut != 0) {
                at(tagOut, 8).set(ValueLayout.JAVA_LONG, 0, f.stream != null ? f.stream.injectTag() : f.datagram.injectTag());
            }
            return inj ? 1 : 0;
        } catch (Throwable t) {
            misuse(f, "injected failed: " + t);
            return 0;
        }
    }

    static int deny(long call, long reason) {
        Frame f = frame(call);
        try {
            if (f == null) {
                misuse(null, "deny called outside a socket hook");
                return IL_ERR_FAILED;
            }
            f.reason = string(reason);
            return IL_DENY;
        } catch (Throwable t) {
            misuse(f, "deny failed: " + t);
            return IL_ERR_FAILED;
        }
    }

    static int redirect(long call, long addr) {
        Frame f = frame(call);
        try {
            if (f == null || addr == 0) {
                misuse(f, "redirect called outside a socket hook or without an address");
                return IL_ERR_FAILED;
            }
            f.redirect = readAddr(addr);
            return IL_REDIRECT;
        } catch (Throwable t) {
            misuse(f, "redirect failed: " + t.getMessage());
            return IL_ERR_FAILED;
        }
    }

    static int modify(long call, long value) {
        Frame f = frame(call);
        if (f == null) {
            misuse(null, "modify called outside on_set_option");
            return IL_ERR_FAILED;
        }
        f.modified = value;
        return IL_MODIFY;
    }

    static void reply(long call, long body, long len) {
        Frame f = frame(call);
        try {
            if (f == null) {
                misuse(null, "reply called outside control");
                return;
            }
            f.reply = len == 0 ? new byte[0] : at(body, len).toArray(ValueLayout.JAVA_BYTE);
        } catch (Throwable t) {
            misuse(f, "reply failed: " + t);
        }
    }

    private static Attachment attachment(long conn) {
        NativeModule.State s = CONNS.get(conn);
        return s == null ? null : s.attachment;
    }

    private static Direction direction(int d) {
        return d == 0 ? Direction.SEND : Direction.RECV;
    }

    static int inject(long conn, int dir, long bytes, long len, long tag) {
        try {
            Attachment a = attachment(conn);
            if (a == null || len < 0 || len > Integer.MAX_VALUE) {
                return IL_ERR_FAILED;
            }
            byte[] copy = len == 0 ? new byte[0] : at(bytes, len).toArray(ValueLayout.JAVA_BYTE);
            return a.inject(direction(dir), copy, tag) ? IL_OK : IL_ERR_FAILED;
        } catch (Throwable t) {
            misuse(null, "inject failed: " + t);
            return IL_ERR_FAILED;
        }
    }

    static int injectHeld(long conn, int dir, long held) {
        try {
            Held h = HELD.remove(held);
            Attachment a = attachment(conn);
            if (h == null) {
                return IL_ERR_FAILED;
            }
            if (a == null) {
                h.bytes.release();
                return IL_ERR_FAILED;
            }
            return a.inject(direction(dir), h.bytes) ? IL_OK : IL_ERR_FAILED;
        } catch (Throwable t) {
            misuse(null, "inject_held failed: " + t);
            return IL_ERR_FAILED;
        }
    }

    static void releaseHeld(long held) {
        try {
            Held h = HELD.remove(held);
            if (h != null) {
                h.bytes.release();
            }
        } catch (Throwable t) {
            misuse(null, "release_held failed: " + t);
        }
    }

    static long heldLength(long held) {
        Held h = HELD.get(held);
        return h == null ? 0 : h.bytes.length();
    }

    static long schedule(long conn, long delayNs, long fn, long arg) {
        try {
            NativeModule.State s = CONNS.get(conn);
            if (s == null || fn == 0) {
                return 0;
            }
            long id = nextHandle();
            MemorySegment f = MemorySegment.ofAddress(fn);
            Cancellable c = s.attachment.schedule(Duration.ofNanos(Math.max(0, delayNs)), () -> {
                if (TIMERS.remove(id) != null) {
                    s.module.timer(f, arg);
                }
            });
            TIMERS.put(id, new Timer(c, s));
            return id;
        } catch (Throwable t) {
            misuse(null, "schedule failed: " + t);
            return 0;
        }
    }

    static int cancelTimer(long timer) {
        Timer t = TIMERS.remove(timer);
        return t != null && t.handle.cancel() ? IL_OK : IL_ERR_FAILED;
    }

    static int isWritable(long conn, int dir) {
        try {
            Attachment a = attachment(conn);
            return a != null && a.isWritable(direction(dir)) ? 1 : 0;
        } catch (Throwable t) {
            return 0;
        }
    }

    static void close(long conn) {
        try {
            Attachment a = attachment(conn);
            if (a != null) a.close();
        } catch (Throwable t) {
            misuse(null, "close failed: " + t);
        }
    }

    static void abort(long conn, long reason) {
        try {
            Attachment a = attachment(conn);
            if (a != null) a.abort(string(reason));
        } catch (Throwable t) {
            misuse(null, "abort failed: " + t);
        }
    }

    static long connectionId(long conn) {
        try {
            Attachment a = attachment(conn);
            return a == null ? 0 : a.connection().id();
        } catch (Throwable t) {
            return 0;
        }
    }

    static int addresses(long conn, long local, long remote) {
        try {
            Attachment a = attachment(conn);
            if (a == null) {
                return IL_ERR_FAILED;
            }
            if (local != 0) writeAddr(at(local, ADDR_SIZE), a.connection().localAddress());
            if (remote != 0) writeAddr(at(remote, ADDR_SIZE), a.connection().remoteAddress());
            return IL_OK;
        } catch (Throwable t) {
            return IL_ERR_FAILED;
        }
    }

    // ---- il_addr ---------------------------------------------------------------------------------------------

    static void writeAddr(MemorySegment s, InetSocketAddress a) {
        s.fill((byte) 0);
        if (a == null) {
            return;
        }
        byte[] ip = a.getAddress() == null ? new byte[4] : a.getAddress().getAddress();
        s.set(ValueLayout.JAVA_SHORT, 0, (short) (ip.length == 4 ? 4 : 6));
        s.set(ValueLayout.JAVA_SHORT, 2, (short) a.getPort());
        MemorySegment.copy(ip, 0, s, ValueLayout.JAVA_BYTE, 4, ip.length);
    }

    static InetSocketAddress readAddr(long address) throws UnknownHostException {
        MemorySegment s = at(address, ADDR_SIZE);
        int family = s.get(ValueLayout.JAVA_SHORT, 0);
        int port = Short.toUnsignedInt(s.get(ValueLayout.JAVA_SHORT, 2));
        if (family != 4 && family != 6) {
            throw new IllegalArgumentException("il_addr.family is " + family + "; use 4 or 6");
        }
        byte[] ip = s.asSlice(4, family == 4 ? 4 : 16).toArray(ValueLayout.JAVA_BYTE);
        return new InetSocketAddress(InetAddress.getByAddress(ip), port);
    }
}
