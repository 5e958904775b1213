package dev.interlayer.engine;

/** A TLS setting or file cannot be used; the message names it and says what to do. */
public final class TlsException extends Exception {

    public TlsException(String message) {
        super(message);
    }
}
