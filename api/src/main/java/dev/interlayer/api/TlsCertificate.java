package dev.interlayer.api;

import java.security.cert.X509Certificate;

/**
 * A certificate and key the agent has loaded and checked, ready to be shown to clients: a handle made by
 * {@link TlsFunctions} (a module cannot make its own). The agent keeps what the TLS implementation needs with it, so
 * returning the same handle again costs nothing.
 */
public interface TlsCertificate {

    /** The leaf certificate. */
    X509Certificate leaf();

    /** The leaf's subject in RFC 2253 form. */
    default String subject() {
        return leaf().getSubjectX500Principal().getName();
    }
}
