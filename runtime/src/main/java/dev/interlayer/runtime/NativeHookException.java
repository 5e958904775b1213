package dev.interlayer.runtime;

/**
 * A hook of a C module failed: it returned a negative status (with the message it set through {@code host->set_error})
 * or something that is not a verdict. Thrown into the engine, which handles it as the module's fault.
 */
public final class NativeHookException extends RuntimeException {

    NativeHookException(String message) {
        super(message);
    }

    NativeHookException(String message, Throwable cause) {
        super(message, cause);
    }
}
