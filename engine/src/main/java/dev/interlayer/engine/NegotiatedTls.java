package dev.interlayer.engine;

import dev.interlayer.api.TlsInfo;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * What one socket's completed TLS handshake negotiated ({@link TlsInfo}), made by {@link TlsSide} when the handshake
 * completes. Everything is fixed then, except the identity a {@code tls} module may give the peer right after.
 */
final class NegotiatedTls implements TlsInfo {

    private final String protocol;
    private final String cipherSuite;
    private final String serverName;
    private final String alpn;
    private final boolean resumed;
    private final List<X509Certificate> peerCertificates;
    private volatile String identity;

    NegotiatedTls(String protocol, String cipherSuite, String serverName, String alpn, boolean resumed, List<X509Certificate> peerCertificates) {
        this.protocol = protocol;
        this.cipherSuite = cipherSuite;
        this.serverName = serverName;
        this.alpn = alpn;
        this.resumed = resumed;
        this.peerCertificates = List.copyOf(peerCertificates);
    }

    /** Reads a completed handshake's session; {@code serverName} and {@code alpn} come from the handlers, which know them. */
    static NegotiatedTls of(SSLSession s, String serverName, String alpn, boolean resumed) {
        List<X509Certificate> chain = new ArrayList<>();
        try {
            for (Certificate c : s.getPeerCertificates()) {
                if (c instanceof X509Certificate x) chain.add(x);
            }
        } catch (SSLPeerUnverifiedException e) {
            // the peer sent no certificate: a client without client-auth
        }
        return new NegotiatedTls(s.getProtocol(), s.getCipherSuite(), serverName, alpn, resumed, chain);
    }

    /** Gives the peer an identity (a {@code tls} module's handshake-completed step). */
    void identity(String identity) {
        this.identity = identity;
    }

    @Override public String protocol() { return protocol; }
    @Override public String cipherSuite() { return cipherSuite; }
    @Override public String serverName() { return serverName; }
    @Override public String alpn() { return alpn; }
    @Override public boolean resumed() { return resumed; }
    @Override public List<X509Certificate> peerCertificates() { return peerCertificates; }
    @Override public String identity() { return identity; }

    /** One line for listings and logs: {@code TLSv1.3 TLS_AES_128_GCM_SHA256 sni=a.test alpn=h2 resumed peer=CN=alice}. */
    @Override
    public String toString() {
        String subject = peerSubject();
        return protocol + " " + cipherSuite + (serverName == null ? "" : " sni=" + serverName) + (alpn == null ? "" : " alpn=" + alpn)
                + (resumed ? " resumed" : "") + (subject == null ? "" : " peer=" + subject) + (identity == null ? "" : " identity=" + identity);
    }
}
