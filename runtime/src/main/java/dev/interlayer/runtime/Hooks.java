package dev.interlayer.runtime;

import dev.interlayer.api.DatagramModule;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.InterfaceVersion;
import dev.interlayer.api.Module;
import dev.interlayer.api.Since;
import dev.interlayer.api.SocketModule;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.TlsModule;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The hooks a module overrides, detected once at load as a bit set, so a hook it does not implement
 * costs nothing per call; hooks newer than the minor version the module declares are left out.
 */
public final class Hooks {

    public static final int ATTACH = 1;
    public static final int DETACH = 1 << 1;
    public static final int SEND = 1 << 2;
    public static final int RECV = 1 << 3;
    public static final int END = 1 << 4;
    public static final int CONNECT = 1 << 5;
    public static final int BIND = 1 << 6;
    public static final int LISTEN = 1 << 7;
    public static final int SET_OPTION = 1 << 8;
    public static final int GET_OPTION = 1 << 9;
    public static final int CONTROL = 1 << 10;
    public static final int EVENT = 1 << 11;
    /** {@code DatagramModule.onSend}. */
    public static final int DATAGRAM_SEND = 1 << 12;
    /** {@code DatagramModule.onRecv}. */
    public static final int DATAGRAM_RECV = 1 << 13;
    /** {@code TlsModule.selectCertificate}. */
    public static final int TLS_SELECT_CERTIFICATE = 1 << 14;
    /** {@code TlsModule.verifyPeer}. */
    public static final int TLS_VERIFY_PEER = 1 << 15;
    /** {@code TlsModule.selectAlpn}. */
    public static final int TLS_SELECT_ALPN = 1 << 16;
    /** {@code TlsModule.configure}. */
    public static final int TLS_CONFIGURE = 1 << 17;
    /** {@code TlsModule.handshakeCompleted}. */
    public static final int TLS_HANDSHAKE_COMPLETED = 1 << 18;
    /** {@code TlsModule.handshakeFailed}. */
    public static final int TLS_HANDSHAKE_FAILED = 1 << 19;
    /** {@code TlsModule.sessionTicketKeys} (tls 1.1). */
    public static final int TLS_TICKET_KEYS = 1 << 20;
    /** {@code TlsModule.keyLog} (tls 1.1). */
    public static final int TLS_KEY_LOG = 1 << 21;

    private record Hook(int bit, String name, InterfaceType type, Class<?> owner, Method method) {
        /** The hook's name in notes and reports; datagram hooks share their method names with stream hooks. */
        String label() {
            return type == InterfaceType.DATAGRAM ? "datagram " + name : name;
        }
    }

    private static final List<Hook> ALL = List.of(
            hook(ATTACH, "attach", null, Module.class),
            hook(DETACH, "detach", null, Module.class),
            hook(SEND, "onSend", InterfaceType.STREAM, StreamModule.class),
            hook(RECV, "onRecv", InterfaceType.STREAM, StreamModule.class),
            hook(END, "onEnd", InterfaceType.STREAM, StreamModule.class),
            hook(CONNECT, "onConnect", InterfaceType.SOCKET, SocketModule.class),
            hook(BIND, "onBind", InterfaceType.SOCKET, SocketModule.class),
            hook(LISTEN, "onListen", InterfaceType.SOCKET, SocketModule.class),
            hook(SET_OPTION, "onSetOption", InterfaceType.SOCKET, SocketModule.class),
            hook(GET_OPTION, "onGetOption", InterfaceType.SOCKET, SocketModule.class),
            hook(CONTROL, "control", InterfaceType.SOCKET, SocketModule.class),
            hook(EVENT, "onEvent", InterfaceType.SOCKET, SocketModule.class),
            hook(DATAGRAM_SEND, "onSend", InterfaceType.DATAGRAM, DatagramModule.class),
            hook(DATAGRAM_RECV, "onRecv", InterfaceType.DATAGRAM, DatagramModule.class),
            hook(TLS_SELECT_CERTIFICATE, "selectCertificate", InterfaceType.TLS, TlsModule.class),
            hook(TLS_VERIFY_PEER, "verifyPeer", InterfaceType.TLS, TlsModule.class),
            hook(TLS_SELECT_ALPN, "selectAlpn", InterfaceType.TLS, TlsModule.class),
            hook(TLS_CONFIGURE, "configure", InterfaceType.TLS, TlsModule.class),
            hook(TLS_HANDSHAKE_COMPLETED, "handshakeCompleted", InterfaceType.TLS, TlsModule.class),
            hook(TLS_HANDSHAKE_FAILED, "handshakeFailed", InterfaceType.TLS, TlsModule.class),
            hook(TLS_TICKET_KEYS, "sessionTicketKeys", InterfaceType.TLS, TlsModule.class),
            hook(TLS_KEY_LOG, "keyLog", InterfaceType.TLS, TlsModule.class));

    private static Hook hook(int bit, String name, InterfaceType type, Class<?> owner) {
        for (Method m : owner.getDeclaredMethods()) {
            if (m.getName().equals(name) && !m.isSynthetic()) {
                return new Hook(bit, name, type, owner, m);
            }
        }
        throw new AssertionError("SDK has no hook " + owner.getSimpleName() + "." + name);
    }

    private Hooks() {}

    /** The outcome of detection: the bit set and notes on hooks left out. */
    public record Detected(int bits, List<String> notes) {}

    /**
     * Detects the hooks {@code moduleClass} overrides, keeping only those its declared interface
     * versions include.
     */
    public static Detected detect(Class<?> moduleClass, Map<InterfaceType, InterfaceVersion> declared) {
        int bits = 0;
        List<String> notes = new ArrayList<>();
        for (Hook h : ALL) {
            if (!h.owner.isAssignableFrom(moduleClass)) {
                continue;
            }
            Method found;
            try {
                found = moduleClass.getMethod(h.method.getName(), h.method.getParameterTypes());
            } catch (NoSuchMethodException e) {
                continue;
            }
            if (found.getDeclaringClass() == h.owner || found.getDeclaringClass().isInterface()
                    && found.getDeclaringClass().getName().startsWith("dev.interlayer.api.")) {
                continue; // the SDK's default: not overridden
            }
            if (h.type != null) {
                InterfaceVersion v = declared.get(h.type);
                Since since = h.method.getAnnotation(Since.class);
                if (v == null) {
                    notes.add(h.label() + " is implemented but the descriptor does not declare " + h.type.id() + ": it will not be called");
                    continue;
                }
                if (since != null && (since.major() != v.major() || since.minor() > v.minor())) {
                    notes.add(h.label() + " needs " + h.type.id() + " " + since.major() + "." + since.minor() + " but the module declares "
                            + v.major() + "." + v.minor() + ": it will not be called");
                    continue;
                }
            }
            bits |= h.bit;
        }
        return new Detected(bits, List.copyOf(notes));
    }

    /** Names of the hooks in {@code bits}, for reports. */
    public static List<String> names(int bits) {
        List<String> out = new ArrayList<>();
        for (Hook h : ALL) {
            if ((bits & h.bit) != 0) {
                out.add(h.label());
            }
        }
        return out;
    }
}
