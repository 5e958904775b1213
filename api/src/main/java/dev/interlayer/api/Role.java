package dev.interlayer.api;

/** A listener's role: which of its two sides is the local application. */
public enum Role {
    /** The local application connects to the listener; the upstream is remote. SEND = accepted → upstream. */
    CLIENT,
    /** Remote peers connect to the listener; the upstream is the local application. SEND = upstream → accepted. */
    SERVER
}
