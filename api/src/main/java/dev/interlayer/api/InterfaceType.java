package dev.interlayer.api;

/**
 * The pluggable interfaces a module may implement, each versioned {@code major.minor}.
 *
 * <p>The host offers one version of each; {@link #hostMajor()} and {@link #hostMinor()} are the versions
 * of this SDK. A module declares the version it was built against in its descriptor: a different major
 * is refused at load, and so is a higher minor (the module may call what the host lacks); a lower minor
 * means hooks added later are never called.
 */
public enum InterfaceType {
    /** TCP byte hooks: {@link StreamModule}. 1.0: onSend, onRecv. 1.1: onEnd. 1.2: {@link StreamContext#rewrite()}. 1.3: {@link ModuleDescriptor.Builder#warmUp(boolean)}. */
    STREAM("stream", StreamModule.class, 1, 3),
    /** Out-of-band socket operations: {@link SocketModule}. 1.0: connect, bind, listen, options, control, events. */
    SOCKET("socket", SocketModule.class, 1, 0),
    /**
     * UDP datagram hooks: {@link DatagramModule}. 1.0: onSend, onRecv (one call per whole datagram).
     * 1.1: {@link DatagramContext#rewrite()}.
     */
    DATAGRAM("datagram", DatagramModule.class, 1, 1),
    /**
     * The TLS steps of a listener's handshakes: {@link TlsModule}. 1.0: selectCertificate, verifyPeer, selectAlpn, configure,
     * handshakeCompleted, handshakeFailed. 1.1: sessionTicketKeys, keyLog.
     */
    TLS("tls", TlsModule.class, 1, 1);

    private final String id;
    private final Class<?> javaType;
    private final int major;
    private final int minor;

    InterfaceType(String id, Class<?> javaType, int major, int minor) {
        this.id = id;
        this.javaType = javaType;
        this.major = major;
        this.minor = minor;
    }

    /** The interface's name in descriptors, configs and the C ABI ({@code stream}, {@code socket}, {@code datagram}, {@code tls}). */
    public String id() {
        return id;
    }

    /** The Java type a module implements for this interface. */
    public Class<?> javaType() {
        return javaType;
    }

    /** The major version this SDK offers. */
    public int hostMajor() {
        return major;
    }

    /** The minor version this SDK offers. */
    public int hostMinor() {
        return minor;
    }

    /**
     * Looks an interface up by its {@link #id()}.
     *
     * @throws IllegalArgumentException naming the known interfaces
     */
    public static InterfaceType byId(String id) {
        for (InterfaceType t : values()) {
            if (t.id.equals(id)) {
                return t;
            }
        }
        StringBuilder known = new StringBuilder();
        for (InterfaceType t : values()) {
            known.append(known.isEmpty() ? "" : ", ").append(t.id);
        }
        throw new IllegalArgumentException("unknown interface '" + id + "'; known: " + known);
    }
}
