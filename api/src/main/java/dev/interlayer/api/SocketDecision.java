package dev.interlayer.api;

import java.net.InetSocketAddress;

/** A module's answer to a connect, bind or listen: allow, deny with a reason, or use another address. */
public final class SocketDecision {

    /** The kind of decision. */
    public enum Kind { ALLOW, DENY, REDIRECT }

    private static final SocketDecision ALLOW = new SocketDecision(Kind.ALLOW, null, null);

    private final Kind kind;
    private final InetSocketAddress address;
    private final String reason;

    private SocketDecision(Kind kind, InetSocketAddress address, String reason) {
        this.kind = kind;
        this.address = address;
        this.reason = reason;
    }

    /** Let the operation proceed unchanged. */
    public static SocketDecision allow() {
        return ALLOW;
    }

    /** Refuse the operation; the connection (or listener) fails with {@code reason}. */
    public static SocketDecision deny(String reason) {
        return new SocketDecision(Kind.DENY, null, reason == null ? "denied" : reason);
    }

    /** Proceed with {@code address} instead: the connect target for connect, the local address for bind. */
    public static SocketDecision redirect(InetSocketAddress address) {
        if (address == null) {
            throw new IllegalArgumentException("redirect needs an address");
        }
        return new SocketDecision(Kind.REDIRECT, address, null);
    }

    /** The kind of decision. */
    public Kind kind() {
        return kind;
    }

    /** For REDIRECT, the address to use; else null. */
    public InetSocketAddress address() {
        return address;
    }

    /** For DENY, the reason; else null. */
    public String reason() {
        return reason;
    }

    @Override
    public String toString() {
        return switch (kind) {
            case ALLOW -> "ALLOW";
            case DENY -> "DENY(" + reason + ")";
            case REDIRECT -> "REDIRECT(" + address + ")";
        };
    }
}
