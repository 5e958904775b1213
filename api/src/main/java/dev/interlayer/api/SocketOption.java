package dev.interlayer.api;

/** Socket options the engine sets through the module chain, each with its value type. */
public enum SocketOption {
    /** Disable Nagle's algorithm. */
    TCP_NODELAY(Boolean.class),
    /** Send TCP keep-alive probes. */
    SO_KEEPALIVE(Boolean.class),
    /** Receive buffer size in bytes. */
    SO_RCVBUF(Integer.class),
    /** Send buffer size in bytes. */
    SO_SNDBUF(Integer.class),
    /** IP type-of-service byte (DSCP in the upper six bits). */
    IP_TOS(Integer.class),
    /** Linger on close, in seconds; 0 makes close send a reset, -1 disables. */
    SO_LINGER(Integer.class);

    private final Class<?> valueType;

    SocketOption(Class<?> valueType) {
        this.valueType = valueType;
    }

    /** The Java type of this option's values. */
    public Class<?> valueType() {
        return valueType;
    }
}
