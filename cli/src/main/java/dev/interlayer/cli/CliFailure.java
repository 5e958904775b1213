package dev.interlayer.cli;

/** A command failed with a message for the user and the exit code scripts see. */
final class CliFailure extends RuntimeException {
    final int code;

    CliFailure(int code, String message) {
        super(message, null, false, false);
        this.code = code;
    }
}
