package dev.interlayer.runtime;

/** Told about modules coming, changing state and going; the engine uses it for "apply now". */
public interface RegistryListener {

    /** A module was loaded and initialized (state ACTIVE or INACTIVE). */
    default void moduleAdded(LoadedModule module) {}

    /** A module changed state. */
    default void stateChanged(LoadedModule module, ModuleState from, ModuleState to) {}

    /** A module finished unloading (fini ran, package released). */
    default void moduleRemoved(LoadedModule module) {}

    /**
     * A module published an event ({@code ModuleEnv.publish}); called on the module's thread (often an
     * event loop), so it must not block.
     */
    default void moduleEvent(String module, String version, String kind, String text) {}

    /**
     * A module faulted: it threw, overran its budget or broke the SDK's contract ({@code cause}: the exception, or a
     * description). Called on the thread that saw it, after the fault was counted and before its policy is applied.
     */
    default void moduleFault(LoadedModule module, String hook, long connectionId, Object cause) {}
}
