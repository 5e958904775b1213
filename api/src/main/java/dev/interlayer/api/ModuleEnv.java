package dev.interlayer.api;

import java.time.Duration;

/**
 * What a module gets at {@link Module#init}: its parameters, logger and identity. Valid until fini.
 */
public interface ModuleEnv {

    /** The module's name, as in its descriptor. */
    String name();

    /** The module's version, as in its descriptor. */
    String version();

    /** The checked parameter values for this instance. */
    Params params();

    /** The module's logger. */
    ModuleLog log();

    /** The version the host offers for {@code type}; a module may adapt to an older host minor. */
    InterfaceVersion hostVersion(InterfaceType type);

    /**
     * Runs {@code task} once after {@code delay} on an engine thread, with the module's class loader and
     * fault accounting; for module-wide work not tied to a connection. Cancelled at fini. Any thread.
     */
    Cancellable schedule(Duration delay, Runnable task);

    /** Monotonic time in nanoseconds, the clock the engine's timers use (the testkit makes it virtual). */
    long nanoTime();

    /**
     * Publishes an event to the agent's live event stream (the control plane's {@code Events} endpoint,
     * which {@code interlayer log tail} follows); the text is copied, and the event is dropped when nobody
     * listens or a listener reads too slowly. Any thread; never blocks, so it is safe in data hooks.
     *
     * <pre>{@code
     * env.publish("record", "{\"id\":7,\"bytesSent\":1024}");
     * }</pre>
     *
     * @param kind a short lower-case word naming the kind of event, e.g. {@code record}
     * @param text the event, usually one JSON object, at most 64 KiB
     */
    default void publish(String kind, String text) {}
}
