package dev.interlayer.runtime;

import dev.interlayer.api.ClientHello;
import dev.interlayer.api.TlsFunctions;
import dev.interlayer.api.TlsHandshake;
import dev.interlayer.api.TlsInfo;
import dev.interlayer.api.TlsParameters;
import dev.interlayer.api.TlsPeer;
import dev.interlayer.api.TlsTicketKey;
import dev.interlayer.api.TlsVerdict;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.nio.file.Path;
import java.security.cert.CertificateEncodingException;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@code tls} half of {@code module.h}: the C structs of a step ({@code il_client_hello}, {@code il_tls_peer},
 * {@code il_tls_handshake}, {@code il_tls_params}) written into the step's arena, one downcall handle per step, and the
 * {@code il_tls_functions} table whose upcalls run the agent's own steps ({@link TlsFunctions}) for the step in progress.
 *
 * <p>A step is a {@link NativeAbi.Frame} like a hook call, with a {@link Step}: the {@code il_call} a default takes finds
 * the Java objects the step was given, so a default sees exactly what the agent handed the module. Offsets are those of
 * LP64 (x86-64, aarch64), as gcc lays the structs out.
 */
final class NativeTls {

    private NativeTls() {}

    private static final ValueLayout.OfLong P = ValueLayout.JAVA_LONG;
    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT;

    static final long HELLO_SIZE = 80, PEER_SIZE = 48, HANDSHAKE_SIZE = 88, PARAMS_SIZE = 32;
    static final int IDENTITY_MAX = 256;
    static final int TICKET_KEYS_MAX = 8;

    // ---- downcalls: (module, call, ..., defaults) ----------------------------------------------------------------

    static final MethodHandle SELECT_CERTIFICATE = down(FunctionDescriptor.of(P, P, P, P, P));
    static final MethodHandle VERIFY_PEER = down(FunctionDescriptor.of(I, P, P, P, P));
    static final MethodHandle SELECT_ALPN = down(FunctionDescriptor.of(P, P, P, P, P));
    static final MethodHandle CONFIGURE = down(FunctionDescriptor.of(I, P, P, P, P));
    static final MethodHandle HANDSHAKE_COMPLETED = down(FunctionDescriptor.of(I, P, P, P, P, P, P));
    static final MethodHandle HANDSHAKE_FAILED = down(FunctionDescriptor.ofVoid(P, P, P, P, P));
    static final MethodHandle TICKET_KEYS = down(FunctionDescriptor.of(I, P, P, P, I, P, P, P));
    static final MethodHandle KEY_LOG = down(FunctionDescriptor.ofVoid(P, P, P, P, P));

    private static MethodHandle down(FunctionDescriptor fd) {
        return NativeAbi.LINKER.downcallHandle(fd);
    }

    /** What one tls step was given: what the defaults a C step calls act on. */
    static final class Step {
        final TlsFunctions defaults;
        final Arena arena;
        ClientHello hello;
        long helloAddress;
        /** hello->alpn's strings, by index. */
        long[] alpn = new long[0];
        TlsPeer peer;
        long peerAddress;
        TlsHandshake handshake;
        long handshakeAddress;
        List<TlsTicketKey> current;

        Step(TlsFunctions defaults, Arena arena) {
            this.defaults = defaults;
            this.arena = arena;
        }
    }

    // ---- structs -----------------------------------------------------------------------------------------------

    private static long str(Arena a, String s) {
        return s == null ? 0 : a.allocateFrom(s).address();
    }

    /** An array of C strings; {@code out} (if not null) receives their addresses. */
    private static long strings(Arena a, List<String> list, long[] out) {
        if (list.isEmpty()) return 0;
        MemorySegment arr = a.allocate(8L * list.size(), 8);
        for (int i = 0; i < list.size(); i++) {
            long s = str(a, list.get(i));
            arr.setAtIndex(ValueLayout.JAVA_LONG, i, s);
            if (out != null) out[i] = s;
        }
        return arr.address();
    }

    private static List<String> readStrings(long array, int count) {
        List<String> out = new ArrayList<>(count);
        if (array == 0) return out;
        MemorySegment arr = NativeAbi.at(array, 8L * count);
        for (int i = 0; i < count; i++) {
            String s = NativeAbi.string(arr.getAtIndex(ValueLayout.JAVA_LONG, i));
            if (s == null) throw new IllegalArgumentException("entry " + i + " of a list of " + count + " strings is NULL");
            out.add(s);
        }
        return out;
    }

    /** {@code il_client_hello} for {@code h}; the step remembers it and its ALPN strings. */
    static MemorySegment hello(Step step, ClientHello h) {
        Arena a = step.arena;
        MemorySegment s = a.allocate(HELLO_SIZE, 8);
        s.set(P, 0, str(a, h.listener()));
        NativeAbi.writeAddr(s.asSlice(8, NativeAbi.ADDR_SIZE), h.remoteAddress());
        s.set(P, 32, str(a, h.serverName()));
        step.alpn = new long[h.alpn().size()];
        s.set(P, 40, strings(a, h.alpn(), step.alpn));
        s.set(I, 48, h.alpn().size());
        s.set(I, 52, h.cipherSuites().size());
        if (!h.cipherSuites().isEmpty()) {
            MemorySegment c = a.allocate(2L * h.cipherSuites().size(), 2);
            for (int i = 0; i < h.cipherSuites().size(); i++) c.setAtIndex(ValueLayout.JAVA_SHORT, i, (short) (int) h.cipherSuites().get(i));
            s.set(P, 56, c.address());
        }
        s.set(P, 64, strings(a, h.versions(), null));
        s.set(I, 72, h.versions().size());
        step.hello = h;
        step.helloAddress = s.address();
        return s;
    }

    /** {@code il_tls_peer} for {@code p}, its chain DER-encoded. */
    static MemorySegment peer(Step step, TlsPeer p) throws CertificateEncodingException {
        Arena a = step.arena;
        MemorySegment s = a.allocate(PEER_SIZE, 8);
        s.set(P, 0, str(a, p.listener()));
        s.set(I, 8, p.terminating() ? 1 : 0);
        int n = p.chain().size();
        s.set(I, 12, n);
        MemorySegment ptrs = a.allocate(8L * Math.max(1, n), 8);
        MemorySegment lens = a.allocate(8L * Math.max(1, n), 8);
        for (int i = 0; i < n; i++) {
            byte[] der = p.chain().get(i).getEncoded();
            MemorySegment d = a.allocate(der.length);
            MemorySegment.copy(der, 0, d, ValueLayout.JAVA_BYTE, 0, der.length);
            ptrs.setAtIndex(ValueLayout.JAVA_LONG, i, d.address());
            lens.setAtIndex(ValueLayout.JAVA_LONG, i, der.length);
        }
        s.set(P, 16, ptrs.address());
        s.set(P, 24, lens.address());
        s.set(P, 32, str(a, p.serverName()));
        s.set(P, 40, str(a, p.authType()));
        step.peer = p;
        step.peerAddress = s.address();
        return s;
    }

    /** {@code il_tls_handshake} for {@code hs} (its TlsInfo may be null: a failed handshake, a key log line). */
    static MemorySegment handshake(Step step, TlsHandshake hs) {
        Arena a = step.arena;
        MemorySegment s = a.allocate(HANDSHAKE_SIZE, 8);
        s.set(P, 0, str(a, hs.listener()));
        s.set(I, 8, hs.terminating() ? 1 : 0);
        TlsInfo t = hs.tls();
        s.set(I, 12, t != null && t.resumed() ? 1 : 0);
        s.set(P, 16, hs.connectionId());
        NativeAbi.writeAddr(s.asSlice(24, NativeAbi.ADDR_SIZE), hs.peerAddress());
        if (t != null) {
            s.set(P, 48, str(a, t.protocol()));
            s.set(P, 56, str(a, t.cipherSuite()));
            s.set(P, 64, str(a, t.serverName()));
            s.set(P, 72, str(a, t.alpn()));
            s.set(P, 80, str(a, t.peerSubject()));
        }
        step.handshake = hs;
        step.handshakeAddress = s.address();
        return s;
    }

    /** {@code il_tls_params} for {@code p}. */
    static MemorySegment params(Arena a, TlsParameters p) {
        MemorySegment s = a.allocate(PARAMS_SIZE, 8);
        writeParams(a, s, p);
        return s;
    }

    private static void writeParams(Arena a, MemorySegment s, TlsParameters p) {
        s.set(I, 0, p.terminating() ? 1 : 0);
        s.set(I, 4, p.protocols().size());
        s.set(P, 8, strings(a, p.protocols(), null));
        s.set(P, 16, strings(a, p.ciphers(), null));
        s.set(I, 24, p.ciphers().size());
    }

    /** What a configure step left in {@code s}, read as it returns. */
    static TlsParameters readParams(MemorySegment s, boolean terminating) {
        int protocols = s.get(I, 4);
        int ciphers = s.get(I, 24);
        if (protocols < 1 || protocols > 16 || ciphers < 0 || ciphers > 1024) {
            throw new IllegalArgumentException("params has " + protocols + " protocols and " + ciphers + " ciphers; keep at least one"
                    + " protocol (TLSv1.2, TLSv1.3) and at most 1024 ciphers");
        }
        return new TlsParameters(terminating, readStrings(s.get(P, 8), protocols), readStrings(s.get(P, 16), ciphers));
    }

    /** The keys in {@code keys}: {@code count} of 48 bytes each. */
    static List<TlsTicketKey> readKeys(long keys, int count) {
        List<TlsTicketKey> out = new ArrayList<>(count);
        MemorySegment k = NativeAbi.at(keys, (long) TlsTicketKey.SIZE * count);
        for (int i = 0; i < count; i++) {
            out.add(TlsTicketKey.of(k.asSlice((long) i * TlsTicketKey.SIZE, TlsTicketKey.SIZE).toArray(ValueLayout.JAVA_BYTE)));
        }
        return out;
    }

    static MemorySegment writeKeys(Arena a, List<TlsTicketKey> keys) {
        MemorySegment k = a.allocate((long) TlsTicketKey.SIZE * Math.max(1, keys.size()), 8);
        for (int i = 0; i < keys.size(); i++) {
            MemorySegment.copy(keys.get(i).encoded(), 0, k, ValueLayout.JAVA_BYTE, (long) i * TlsTicketKey.SIZE, TlsTicketKey.SIZE);
        }
        return k;
    }

    // ---- il_tls_functions: the agent's steps, callable from C ----------------------------------------------------

    private record Entry(String name, FunctionDescriptor fd) {}

    private static final List<Entry> ENTRIES = List.of(
            new Entry("certificate", FunctionDescriptor.of(P, P, P, P, P)),
            new Entry("configured", FunctionDescriptor.of(P, P, P)),
            new Entry("selectCertificate", FunctionDescriptor.of(P, P, P)),
            new Entry("verifyPeer", FunctionDescriptor.of(I, P, P)),
            new Entry("selectAlpn", FunctionDescriptor.of(P, P, P)),
            new Entry("configure", FunctionDescriptor.of(I, P, P)),
            new Entry("handshakeCompleted", FunctionDescriptor.of(I, P, P, P, P)),
            new Entry("handshakeFailed", FunctionDescriptor.ofVoid(P, P, P)),
            new Entry("sessionTicketKeys", FunctionDescriptor.of(I, P, P, I, P, P)),
            new Entry("keyLog", FunctionDescriptor.ofVoid(P, P, P)));

    /** The il_tls_functions table, made once: it and its upcall stubs live as long as the JVM. */
    static final MemorySegment DEFAULTS = table();

    private static MemorySegment table() {
        Arena global = Arena.global();
        MemorySegment t = global.allocate(8 + 8L * ENTRIES.size(), 8);
        t.set(I, 0, (int) t.byteSize());
        MethodHandles.Lookup lookup = MethodHandles.lookup();
        for (int i = 0; i < ENTRIES.size(); i++) {
            Entry e = ENTRIES.get(i);
            try {
                MethodHandle target = lookup.findStatic(NativeTls.class, e.name, e.fd.toMethodType());
                t.set(ValueLayout.ADDRESS, 8 + 8L * i, NativeAbi.LINKER.upcallStub(target, e.fd, global));
            } catch (ReflectiveOperationException x) {
                throw new ExceptionInInitializerError(x);
            }
        }
        return t;
    }

    /** The frame of {@code call} if it is a tls step running on this thread, else null (and the misuse is recorded). */
    private static NativeAbi.Frame step(long call, String what) {
        NativeAbi.Frame f = NativeAbi.FRAMES.get().get(call);
        if (f == null || f.step == null) {
            if (f != null && f.module != null) f.module.misuse(what + " called outside a tls step (its il_call is valid during the step only)");
            else NativeModule.misuseWithoutCall(what + " called outside a tls step (its il_call is valid during the step only)");
            return null;
        }
        return f;
    }

    private static void failed(NativeAbi.Frame f, String what, Throwable t) {
        f.module.misuse(what + ": " + (t.getMessage() == null ? t.toString() : t.getMessage()));
    }

    static long certificate(long call, long cert, long key, long password) {
        NativeAbi.Frame f = step(call, "certificate");
        if (f == null) return 0;
        try {
            String c = NativeAbi.string(cert), k = NativeAbi.string(key), p = NativeAbi.string(password);
            if (c == null || k == null) throw new IllegalArgumentException("cert and key must not be NULL");
            return f.module.certHandle(f.step.defaults.certificate(Path.of(c), Path.of(k), p == null ? null : Path.of(p)));
        } catch (Throwable t) {
            failed(f, "certificate", t);
            return 0;
        }
    }

    static long configured(long call, long serverName) {
        NativeAbi.Frame f = step(call, "configured");
        if (f == null) return 0;
        try {
            return f.module.certHandle(f.step.defaults.configured(NativeAbi.string(serverName)));
        } catch (Throwable t) {
            failed(f, "configured", t);
            return 0;
        }
    }

    /** The hello a default was given: the step's own, or the module's copy with another server name. */
    private static ClientHello helloOf(NativeAbi.Frame f, long hello) {
        Step s = f.step;
        if (s.hello == null) throw new IllegalArgumentException("this step has no ClientHello");
        if (hello == s.helloAddress) return s.hello;
        if (hello == 0) throw new IllegalArgumentException("hello is NULL; pass the one the step received");
        ClientHello h = s.hello;
        String name = NativeAbi.string(NativeAbi.at(hello, HELLO_SIZE).get(P, 32));
        return new ClientHello(h.listener(), h.remoteAddress(), name, h.alpn(), h.cipherSuites(), h.versions());
    }

    static long selectCertificate(long call, long hello) {
        NativeAbi.Frame f = step(call, "select_certificate");
        if (f == null) return 0;
        try {
            return f.module.certHandle(f.step.defaults.selectCertificate(helloOf(f, hello)));
        } catch (Throwable t) {
            failed(f, "default select_certificate", t);
            return 0;
        }
    }

    static int verifyPeer(long call, long peer) {
        NativeAbi.Frame f = step(call, "verify_peer");
        if (f == null) return NativeAbi.IL_ERR_FAILED;
        try {
            if (peer != f.step.peerAddress || f.step.peer == null) {
                throw new IllegalArgumentException("pass the il_tls_peer the step received");
            }
            TlsVerdict v = f.step.defaults.verifyPeer(f.step.peer);
            if (v.accepted()) return NativeAbi.IL_ALLOW;
            f.reason = v.reason();
            return NativeAbi.IL_DENY;
        } catch (Throwable t) {
            failed(f, "default verify_peer", t);
            return NativeAbi.IL_ERR_FAILED;
        }
    }

    static long selectAlpn(long call, long hello) {
        NativeAbi.Frame f = step(call, "select_alpn");
        if (f == null) return 0;
        try {
            ClientHello h = helloOf(f, hello);
            String chosen = f.step.defaults.selectAlpn(h, h.alpn());
            int i = chosen == null ? -1 : f.step.hello.alpn().indexOf(chosen);
            return i < 0 ? 0 : f.step.alpn[i];
        } catch (Throwable t) {
            failed(f, "default select_alpn", t);
            return 0;
        }
    }

    static int configure(long call, long params) {
        NativeAbi.Frame f = step(call, "configure");
        if (f == null) return NativeAbi.IL_ERR_FAILED;
        try {
            MemorySegment s = NativeAbi.at(params, PARAMS_SIZE);
            TlsParameters in = readParams(s, s.get(I, 0) != 0);
            TlsParameters out = f.step.defaults.configure(in);
            if (!out.equals(in)) writeParams(f.step.arena, s, out);
            return NativeAbi.IL_OK;
        } catch (Throwable t) {
            failed(f, "default configure", t);
            return NativeAbi.IL_ERR_FAILED;
        }
    }

    private static TlsHandshake handshakeOf(NativeAbi.Frame f, long hs) {
        if (hs != f.step.handshakeAddress || f.step.handshake == null) {
            throw new IllegalArgumentException("pass the il_tls_handshake the step received");
        }
        return f.step.handshake;
    }

    static int handshakeCompleted(long call, long hs, long identity, long capacity) {
        NativeAbi.Frame f = step(call, "handshake_completed");
        if (f == null) return NativeAbi.IL_ERR_FAILED;
        try {
            String id = f.step.defaults.handshakeCompleted(handshakeOf(f, hs));
            if (id != null && identity != 0 && capacity > 0) writeString(NativeAbi.at(identity, capacity), id);
            return NativeAbi.IL_OK;
        } catch (Throwable t) {
            failed(f, "default handshake_completed", t);
            return NativeAbi.IL_ERR_FAILED;
        }
    }

    /** {@code s} as UTF-8 with its NUL into {@code buffer}, cut to fit. */
    static void writeString(MemorySegment buffer, String s) {
        byte[] b = s.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        int n = (int) Math.min(b.length, buffer.byteSize() - 1);
        MemorySegment.copy(b, 0, buffer, ValueLayout.JAVA_BYTE, 0, n);
        buffer.set(ValueLayout.JAVA_BYTE, n, (byte) 0);
    }

    static void handshakeFailed(long call, long hs, long reason) {
        NativeAbi.Frame f = step(call, "handshake_failed");
        if (f == null) return;
        try {
            f.step.defaults.handshakeFailed(handshakeOf(f, hs), NativeAbi.string(reason));
        } catch (Throwable t) {
            failed(f, "default handshake_failed", t);
        }
    }

    static int sessionTicketKeys(long call, long current, int currentCount, long keys, long count) {
        NativeAbi.Frame f = step(call, "session_ticket_keys");
        if (f == null) return NativeAbi.IL_ERR_FAILED;
        try {
            if (keys == 0 || count == 0) throw new IllegalArgumentException("keys and count must not be NULL");
            List<TlsTicketKey> in = f.step.current != null && currentCount == f.step.current.size() ? f.step.current
                    : readKeys(current, Math.max(0, currentCount));
            List<TlsTicketKey> out = f.step.defaults.sessionTicketKeys(in);
            int n = Math.min(out.size(), TICKET_KEYS_MAX);
            MemorySegment k = NativeAbi.at(keys, (long) TlsTicketKey.SIZE * TICKET_KEYS_MAX);
            for (int i = 0; i < n; i++) {
                MemorySegment.copy(out.get(i).encoded(), 0, k, ValueLayout.JAVA_BYTE, (long) i * TlsTicketKey.SIZE, TlsTicketKey.SIZE);
            }
            NativeAbi.at(count, 4).set(I, 0, n);
            return NativeAbi.IL_OK;
        } catch (Throwable t) {
            failed(f, "default session_ticket_keys", t);
            return NativeAbi.IL_ERR_FAILED;
        }
    }

    static void keyLog(long call, long hs, long line) {
        NativeAbi.Frame f = step(call, "key_log");
        if (f == null) return;
        try {
            f.step.defaults.keyLog(handshakeOf(f, hs), NativeAbi.string(line));
        } catch (Throwable t) {
            failed(f, "default key_log", t);
        }
    }
}
