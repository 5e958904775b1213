package dev.interlayer.orchestrator;

/** The orchestrator cannot do what was asked; the message says what is wrong and what to do. */
public final class OrchestratorException extends Exception {
    private static final long serialVersionUID = 1L;

    public OrchestratorException(String message) {
        super(message);
    }

    public OrchestratorException(String message, Throwable cause) {
        super(message, cause);
    }
}
