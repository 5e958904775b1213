package dev.interlayer.api;

/**
 * Which way bytes travel, seen from the local application.
 *
 * <p>A listener's role fixes the mapping: for a {@link Role#CLIENT} listener the local application is
 * the accepted peer, for a {@link Role#SERVER} listener it is the upstream.
 */
public enum Direction {
    /** From the local application toward the network. */
    SEND,
    /** From the network toward the local application. */
    RECV;

    /** The other direction. */
    public Direction opposite() {
        return this == SEND ? RECV : SEND;
    }
}
