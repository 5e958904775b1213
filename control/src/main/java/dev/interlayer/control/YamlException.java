package dev.interlayer.control;

/** A problem in one of the control plane's YAML files (policy, policy test cases, constraints); the message starts with {@code file:line: }. */
public final class YamlException extends Exception {
    public YamlException(String message) {
        super(message);
    }
}
