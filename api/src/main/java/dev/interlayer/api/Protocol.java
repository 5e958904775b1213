package dev.interlayer.api;

/** Transport protocol of a connection or selector. */
public enum Protocol {
    /** TCP byte streams. */
    TCP,
    /** UDP datagrams (flows keyed by 5-tuple). */
    UDP
}
