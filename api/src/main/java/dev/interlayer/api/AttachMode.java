package dev.interlayer.api;

/** How a module comes to be attached to connections. */
public enum AttachMode {
    /** Attaches to every new connection its selector matches. */
    GLOBAL,
    /** Attaches only where asked: a config entry naming a listener, a control request, an application's request. */
    PROGRAMMATIC
}
