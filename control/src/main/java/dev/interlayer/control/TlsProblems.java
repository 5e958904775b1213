package dev.interlayer.control;

import io.netty.handler.ssl.NotSslRecordException;
import io.netty.handler.ssl.SslHandshakeTimeoutException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.ClosedChannelException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateException;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateFactory;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.X509Certificate;
import java.util.Date;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.SSLException;

/**
 * Why a TLS handshake with the control endpoint failed, in words, from what the JDK's TLS and Netty raise:
 * for the agent's log ({@link #refusedByAgent}) and for the CLI ({@link #seenByClient}), which knows its own
 * certificate and can say more than the alert the agent sent ("certificate expired", "unknown CA", "the agent
 * requires a client certificate").
 */
public final class TlsProblems {

    /** The alert in a JDK message: {@code (certificate_unknown) Received fatal alert: certificate_unknown}. */
    private static final Pattern ALERT = Pattern.compile("Received fatal alert: ([a-z_]+)");

    private TlsProblems() {}

    /** Why the agent refused a client's handshake, for its log and audit. */
    static String refusedByAgent(Throwable t) {
        if (find(t, SslHandshakeTimeoutException.class) != null) {
            return "the handshake did not complete in time";
        }
        if (find(t, NotSslRecordException.class) != null) {
            return "not TLS: the client sent clear text to the TLS listener";
        }
        CertificateExpiredException expired = find(t, CertificateExpiredException.class);
        if (expired != null) {
            return "the client certificate" + subject(t) + " has expired (" + expired.getMessage() + ")";
        }
        CertificateNotYetValidException early = find(t, CertificateNotYetValidException.class);
        if (early != null) {
            return "the client certificate" + subject(t) + " is not valid yet (" + early.getMessage() + ")";
        }
        String all = messages(t);
        if (all.contains("unable to find valid certification path") || all.contains("PKIX path")) {
            return "the client certificate" + subject(t) + " is not signed by agent.control.tls.client-ca (unknown CA)";
        }
        if (all.contains("Empty client certificate chain") || all.contains("certificate_required")) {
            return "the client sent no certificate (it has none signed by agent.control.tls.client-ca, or none at all)";
        }
        String alert = alert(all);
        if (alert != null) {
            return "the client refused the agent's certificate (alert " + alert + "): the client's CA is not the one that signed"
                    + " agent.control.tls.cert, or that certificate has expired";
        }
        if (find(t, ClosedChannelException.class) != null || all.contains("closed") || all.contains("user_canceled")) {
            return "the client closed the connection during the handshake";
        }
        Throwable root = t;
        while (root.getCause() != null) {
            root = root.getCause();
        }
        return root.getClass().getSimpleName() + ": " + root.getMessage();
    }

    /**
     * Why the client's handshake with the agent at {@code where} failed, with what to do, or null if
     * {@code t} is not a TLS failure. {@code certFile} and {@code caFile} are the client's certificate and the
     * CA it trusts for the agent's certificate.
     */
    public static String seenByClient(Throwable t, String where, Path certFile, Path caFile) {
        if (find(t, SSLException.class) == null && find(t, NotSslRecordException.class) == null) {
            return null;
        }
        if (find(t, NotSslRecordException.class) != null) {
            return "the agent at " + where + " does not speak TLS there; check the port of agent.control.tls.listen";
        }
        String all = messages(t);
        String alert = alert(all);
        X509Certificate mine = read(certFile);
        if (alert != null) {
            String validity = mine == null ? null : validity(mine, "your client certificate " + certFile);
            return switch (alert) {
                case "certificate_required" -> "the agent requires a client certificate signed by its client-ca (agent.control.tls.client-ca);"
                        + (mine == null ? " give one with --cert" : " yours (" + certFile + ", issued by " + issuer(mine)
                        + ") is not signed by it (unknown CA), so it was not offered");
                case "certificate_expired" -> "certificate expired: " + (validity != null ? validity
                        : "the agent says your client certificate " + certFile + " has expired or is not valid yet");
                case "certificate_unknown", "bad_certificate", "unknown_ca", "unsupported_certificate" -> validity != null
                        ? "certificate expired: " + validity
                        : "the agent does not trust your client certificate (" + certFile + (mine == null ? "" : ", issued by " + issuer(mine))
                        + "): unknown CA, it is not signed by the agent's client-ca (agent.control.tls.client-ca)";
                case "certificate_revoked" -> "the agent says your client certificate " + certFile + " is revoked";
                default -> "the agent refused the TLS handshake (alert " + alert + ")";
            };
        }
        if (find(t, CertificateExpiredException.class) != null) {
            return "certificate expired: the agent's certificate has expired (" + find(t, CertificateExpiredException.class).getMessage()
                    + "); the agent needs a new agent.control.tls.cert";
        }
        if (find(t, CertificateNotYetValidException.class) != null) {
            return "the agent's certificate is not valid yet (" + find(t, CertificateNotYetValidException.class).getMessage()
                    + "); check the clocks";
        }
        if (all.contains("unable to find valid certification path") || all.contains("PKIX path")) {
            return "unknown CA: the agent's certificate is not signed by " + caFile + " (--ca); give the CA that signed the agent's certificate";
        }
        if (all.contains("No subject alternative") || all.contains("No name matching")) {
            return "the agent's certificate is not for " + where + " (no matching subject alternative name); call it by a name its certificate has";
        }
        return null;
    }

    /** Null if {@code c} is valid now, else what is wrong with its dates. */
    private static String validity(X509Certificate c, String what) {
        Date now = new Date();
        if (now.after(c.getNotAfter())) {
            return what + " expired on " + c.getNotAfter().toInstant() + "; get a new one";
        }
        if (now.before(c.getNotBefore())) {
            return what + " is valid only from " + c.getNotBefore().toInstant() + "; check the clocks";
        }
        return null;
    }

    private static X509Certificate read(Path file) {
        if (file == null) {
            return null;
        }
        try (InputStream in = Files.newInputStream(file)) {
            return CertificateFactory.getInstance("X.509").generateCertificate(in) instanceof X509Certificate x ? x : null;
        } catch (IOException | CertificateException e) {
            return null;
        }
    }

    private static String issuer(X509Certificate c) {
        return c.getIssuerX500Principal().getName();
    }

    /** {@code " CN=x"} of the certificate a path validation failed on, or empty. */
    private static String subject(Throwable t) {
        CertPathValidatorException v = find(t, CertPathValidatorException.class);
        if (v != null && v.getCertPath() != null && v.getIndex() >= 0 && v.getIndex() < v.getCertPath().getCertificates().size()
                && v.getCertPath().getCertificates().get(v.getIndex()) instanceof X509Certificate x) {
            return " " + x.getSubjectX500Principal().getName();
        }
        return "";
    }

    private static String alert(String messages) {
        Matcher m = ALERT.matcher(messages);
        return m.find() ? m.group(1).toLowerCase(Locale.ROOT) : null;
    }

    private static String messages(Throwable t) {
        StringBuilder b = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause()) {
            b.append(c.getMessage()).append(" | ");
        }
        return b.toString();
    }

    private static <T extends Throwable> T find(Throwable t, Class<T> type) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (type.isInstance(c)) {
                return type.cast(c);
            }
        }
        return null;
    }
}
