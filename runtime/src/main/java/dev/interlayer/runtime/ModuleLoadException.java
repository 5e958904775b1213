package dev.interlayer.runtime;

/** A package or module could not be loaded; the message says what is wrong and what to do. */
public final class ModuleLoadException extends Exception {
    public ModuleLoadException(String message) {
        super(message);
    }

    public ModuleLoadException(String message, Throwable cause) {
        super(message, cause);
    }
}
