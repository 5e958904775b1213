package dev.interlayer.engine;

import javax.net.ssl.SSLException;

/**
 * A handshake a {@code tls} module failed: it threw, ran past its budget, returned something unusable, or refused the
 * peer. The message is the whole line to log (which module, which step, what to do); {@link TlsSide} logs it as is.
 */
final class TlsModuleException extends SSLException {
    TlsModuleException(String message) {
        super(message);
    }

    /** The first TlsModuleException in {@code t}'s causes, or null. */
    static TlsModuleException in(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof TlsModuleException e) return e;
            for (Throwable s : c.getSuppressed()) {
                if (s instanceof TlsModuleException e) return e;
            }
        }
        return null;
    }
}
