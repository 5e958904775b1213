package dev.interlayer.agent;

/** The agent could not start; the message says what is wrong and what to do. */
public final class AgentException extends Exception {

    /** An agent start failure with its reason. */
    public AgentException(String message, Throwable cause) {
        super(message, cause);
    }
}
