package dev.interlayer.api;

/** One of the two sockets of a proxied connection. */
public enum Side {
    /** The socket to the local application. */
    LOCAL,
    /** The socket to the network peer. */
    REMOTE
}
