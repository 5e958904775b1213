package dev.interlayer.testkit;

import dev.interlayer.api.TlsInfo;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Objects;

/**
 * A {@link TlsInfo} whose every field a test sets, to give a {@link FakeConnection} TLS ({@link FakeConnection#tls(
 * dev.interlayer.api.Side, TlsInfo)}) and test a module that reads {@code connection().tls(side)}.
 *
 * <p>Defaults: {@code TLSv1.3} with {@code TLS_AES_128_GCM_SHA256}, no server name, no ALPN, a full handshake, no peer
 * certificate, no identity. The peer's subject comes from its certificates, or is set directly with {@link #peerSubject(String)}
 * for a test that has no certificate to hand. Setters return {@code this}; set fields before attaching.
 *
 * <pre>{@code
 * FakeConnection c = new FakeConnection().role(Role.SERVER)
 *     .tls(Side.REMOTE, new FakeTls().serverName("a.example.com").alpn("h2").peerSubject("CN=alice,O=Example"));
 * }</pre>
 */
public final class FakeTls implements TlsInfo {

    private String protocol = "TLSv1.3";
    private String cipherSuite = "TLS_AES_128_GCM_SHA256";
    private String serverName;
    private String alpn;
    private boolean resumed;
    private List<X509Certificate> peerCertificates = List.of();
    private String peerSubject;
    private String identity;

    /** Sets the protocol version ({@code TLSv1.2}, {@code TLSv1.3}). */
    public FakeTls protocol(String protocol) {
        this.protocol = Objects.requireNonNull(protocol, "protocol");
        return this;
    }

    /** Sets the cipher suite by its standard name. */
    public FakeTls cipherSuite(String cipherSuite) {
        this.cipherSuite = Objects.requireNonNull(cipherSuite, "cipherSuite");
        return this;
    }

    /** Sets the server name (SNI) of the handshake; null for none. */
    public FakeTls serverName(String serverName) {
        this.serverName = serverName;
        return this;
    }

    /** Sets the application protocol agreed by ALPN; null for none. */
    public FakeTls alpn(String alpn) {
        this.alpn = alpn;
        return this;
    }

    /** Marks the session resumed (or not). */
    public FakeTls resumed(boolean resumed) {
        this.resumed = resumed;
        return this;
    }

    /** Sets the peer's certificate chain, its leaf first; its subject becomes {@link #peerSubject()} unless one is set. */
    public FakeTls peerCertificates(X509Certificate... chain) {
        this.peerCertificates = List.of(chain);
        return this;
    }

    /**
     * Sets the peer's certificate subject without a certificate, in RFC 2253 form ({@code CN=alice,O=Example}); null: the
     * leaf certificate's, if any.
     */
    public FakeTls peerSubject(String subject) {
        this.peerSubject = subject == null ? null : new javax.security.auth.x500.X500Principal(subject).getName();
        return this;
    }

    /** Sets the identity a {@code tls} module gave the peer; null for none. */
    public FakeTls identity(String identity) {
        this.identity = identity;
        return this;
    }

    @Override public String protocol() { return protocol; }
    @Override public String cipherSuite() { return cipherSuite; }
    @Override public String serverName() { return serverName; }
    @Override public String alpn() { return alpn; }
    @Override public boolean resumed() { return resumed; }
    @Override public List<X509Certificate> peerCertificates() { return peerCertificates; }
    @Override public String identity() { return identity; }

    @Override
    public String peerSubject() {
        return peerSubject != null ? peerSubject : TlsInfo.super.peerSubject();
    }

    @Override
    public String toString() {
        String subject = peerSubject();
        return protocol + " " + cipherSuite + (serverName == null ? "" : " sni=" + serverName) + (alpn == null ? "" : " alpn=" + alpn)
                + (resumed ? " resumed" : "") + (subject == null ? "" : " peer=" + subject) + (identity == null ? "" : " identity=" + identity);
    }
}
