package dev.interlayer.control;

/** The control endpoint could not start; the message says what is wrong and what to do. */
public final class ControlException extends Exception {
    public ControlException(String message) {
        super(message);
    }
}
