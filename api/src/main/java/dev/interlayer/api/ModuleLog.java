package dev.interlayer.api;

/**
 * A module's logger; lines carry the module's name and version.
 *
 * <p>As krb5's {@code com_err}: code 0 logs at informational severity, any other code at error severity
 * with the code shown. Arguments are formatted with {@link String#format}. Thread-safe.
 *
 * <pre>{@code
 * log.info("client message contains %d items", n);
 * log.error(42, "while decoding client message: %s", e.getMessage());
 * }</pre>
 */
public interface ModuleLog {

    /** Logs at informational severity. */
    void info(String format, Object... args);

    /** Logs at error severity with a module-defined code (0 logs at informational severity). */
    void error(int code, String format, Object... args);

    /** Logs at debug severity; dropped unless the agent runs with debug logging. */
    void debug(String format, Object... args);
}
