package dev.interlayer.api;

/** What the engine does with a connection when a module faults on it (throws, breaks the contract, overruns its time budget). */
public enum FaultPolicy {
    /** Detach the module from that connection and keep passing traffic. */
    FAIL_OPEN,
    /** Reset the connection. */
    FAIL_CLOSED
}
