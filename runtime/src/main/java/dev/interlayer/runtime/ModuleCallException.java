package dev.interlayer.runtime;

/** A call into module code failed; the message names the module, the hook and the cause. */
public final class ModuleCallException extends RuntimeException {
    public ModuleCallException(String message, Throwable cause) {
        super(message, cause);
    }
}
