package dev.interlayer.api;

/** Why a module leaves a connection; passed to {@link Module#detach}. */
public enum DetachReason {
    /** The connection closed (gracefully or by reset). */
    CLOSED,
    /** The module returned {@link Verdict#DETACH}. */
    VERDICT,
    /** The module is being unregistered (unloaded, replaced after deprecation, removed). */
    UNREGISTERED,
    /** The module was revoked: detached everywhere at once. */
    REVOKED,
    /** The control plane detached it from this connection. */
    REQUESTED,
    /** A fault in the module and its fail-open policy took it off this connection. */
    FAULT
}
