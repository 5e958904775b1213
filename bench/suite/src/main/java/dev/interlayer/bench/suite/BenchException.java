package dev.interlayer.bench.suite;

/** A problem that stops a target or the suite, with a message that says what is wrong and what to do. */
final class BenchException extends Exception {

    BenchException(String message) {
        super(message);
    }

    BenchException(String message, Throwable cause) {
        super(message, cause);
    }
}
