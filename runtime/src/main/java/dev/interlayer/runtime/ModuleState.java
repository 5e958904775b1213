package dev.interlayer.runtime;

/**
 * The lifecycle of a loaded module (docs/architecture.md, "Lifecycle").
 *
 * <pre>
 *              load + init ok                          control / config
 *   (jar) ───────────────────────▶ ACTIVE ◀──────────────────────────▶ INACTIVE
 *      │                             │  │   quarantine after N faults ──▶ (INACTIVE)
 *      │ load or init fails          │  │
 *      ▼                             │  └──▶ DEPRECATED ──(last connection detached, if replaced/removed)──┐
 *   FAILED (error kept)              │          │                                                         │
 *                                    ├──────────┴──▶ UNREGISTERING ──(every attachment detached;          │
 *                                    │                  last call returned: fini, loader closed)──▶ gone ◀┘
 *                                    └─────────────▶ REVOKED ──(detached everywhere at once; fini, closed)──▶ gone
 * </pre>
 *
 * <ul>
 *   <li>{@link #ACTIVE}: attaches to new matching connections and customizes them.
 *   <li>{@link #INACTIVE}: attaches, but traffic passes through untouched (its data hooks are not called).
 *   <li>{@link #DEPRECATED}: keeps customizing the connections it has; attaches to no new one.
 *   <li>{@link #UNREGISTERING}: attaches to nothing new; being detached from every connection; then fini and unload.
 *   <li>{@link #REVOKED}: detached everywhere at once, then unloaded.
 *   <li>{@link #FAILED}: load or init failed; the error is kept and shown.
 * </ul>
 */
public enum ModuleState {
    ACTIVE,
    INACTIVE,
    DEPRECATED,
    UNREGISTERING,
    REVOKED,
    FAILED;

    /** True for states in which the module attaches to new connections. */
    public boolean attachesNew() {
        return this == ACTIVE || this == INACTIVE;
    }

    /** True for states in which the module's data hooks run on connections it is attached to. */
    public boolean customizes() {
        return this == ACTIVE || this == DEPRECATED;
    }

    /** True once the module is on its way out (no way back). */
    public boolean leaving() {
        return this == UNREGISTERING || this == REVOKED;
    }
}
