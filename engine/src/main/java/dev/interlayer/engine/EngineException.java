package dev.interlayer.engine;

/** The engine could not do what was asked (bind a listener, a module denied it); the message says why and what to do. */
public final class EngineException extends Exception {
    public EngineException(String message) {
        super(message);
    }

    public EngineException(String message, Throwable cause) {
        super(message, cause);
    }
}
