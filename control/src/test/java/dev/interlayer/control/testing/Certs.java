package dev.interlayer.control.testing;

import java.io.IOException;
import java.io.StringWriter;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.concurrent.atomic.AtomicLong;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/** Makes a CA and certificates signed by it, written as PEM files, for mutual-TLS tests. */
public final class Certs {

    private static final AtomicLong SERIAL = new AtomicLong(System.nanoTime());

    /** A certificate, its key, and where both were written. */
    public record Issued(X509Certificate cert, PrivateKey key, Path certFile, Path keyFile) {}

    private final Issued ca;

    private Certs(Issued ca) {
        this.ca = ca;
    }

    /** A new self-signed CA named {@code cn}, written to {@code dir}. */
    public static Certs newCa(Path dir, String cn) throws Exception {
        KeyPair kp = keyPair();
        X500Name name = new X500Name("CN=" + cn);
        X509v3CertificateBuilder b = builder(name, name, kp);
        b.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
        b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
        X509Certificate cert = sign(b, kp.getPrivate());
        return new Certs(write(dir, cn, cert, kp.getPrivate()));
    }

    /** The CA's certificate and key. */
    public Issued ca() {
        return ca;
    }

    /** A server certificate for localhost and 127.0.0.1. */
    public Issued server(Path dir, String cn) throws Exception {
        return issue(dir, cn, new GeneralNames(new GeneralName[] {new GeneralName(GeneralName.dNSName, "localhost"),
                new GeneralName(GeneralName.iPAddress, "127.0.0.1")}));
    }

    /** A client certificate with subject {@code CN=cn} and a DNS SAN {@code cn}.test. */
    public Issued client(Path dir, String cn) throws Exception {
        return issue(dir, cn, new GeneralNames(new GeneralName(GeneralName.dNSName, cn + ".test")));
    }

    /**
     * A client certificate written as {@code name}.crt and .key, with {@code subject} in the order
     * {@code openssl req -subj} writes it ({@code "CN=orchestrator,O=n4"} is {@code -subj /CN=orchestrator/O=n4},
     * which the JDK shows as {@code O=n4,CN=orchestrator}), a DNS SAN {@code name}.test, valid from
     * {@code notBefore} to {@code notAfter}.
     */
    public Issued client(Path dir, String name, String subject, Instant notBefore, Instant notAfter) throws Exception {
        return issue(dir, name, new X500Name(subject), new GeneralNames(new GeneralName(GeneralName.dNSName, name + ".test")), notBefore, notAfter);
    }

    /** A client certificate {@code CN=cn} that expired an hour ago. */
    public Issued expiredClient(Path dir, String cn) throws Exception {
        Instant now = Instant.now();
        return client(dir, cn, "CN=" + cn, now.minus(Duration.ofDays(2)), now.minus(Duration.ofHours(1)));
    }

    private Issued issue(Path dir, String cn, GeneralNames sans) throws Exception {
        Instant now = Instant.now();
        return issue(dir, cn, new X500Name("CN=" + cn), sans, now.minus(Duration.ofHours(1)), now.plus(Duration.ofDays(2)));
    }

    private Issued issue(Path dir, String name, X500Name subject, GeneralNames sans, Instant notBefore, Instant notAfter) throws Exception {
        KeyPair kp = keyPair();
        X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(new X500Name(ca.cert().getSubjectX500Principal().getName()),
                BigInteger.valueOf(SERIAL.incrementAndGet()), Date.from(notBefore), Date.from(notAfter), subject, kp.getPublic());
        b.addExtension(Extension.subjectAlternativeName, false, sans);
        b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
        return write(dir, name, sign(b, ca.key()), kp.getPrivate());
    }

    private static KeyPair keyPair() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(256);
        return g.generateKeyPair();
    }

    private static X509v3CertificateBuilder builder(X500Name issuer, X500Name subject, KeyPair kp) {
        Instant now = Instant.now();
        return new JcaX509v3CertificateBuilder(issuer, BigInteger.valueOf(SERIAL.incrementAndGet()), Date.from(now.minus(Duration.ofHours(1))),
                Date.from(now.plus(Duration.ofDays(2))), subject, kp.getPublic());
    }

    private static X509Certificate sign(X509v3CertificateBuilder b, PrivateKey key) throws Exception {
        ContentSigner signer = new JcaContentSignerBuilder("SHA256withECDSA").build(key);
        return new JcaX509CertificateConverter().getCertificate(b.build(signer));
    }

    private static Issued write(Path dir, String name, X509Certificate cert, PrivateKey key) throws IOException {
        Files.createDirectories(dir);
        Path c = dir.resolve(name + ".crt");
        Path k = dir.resolve(name + ".key");
        Files.writeString(c, pem(cert));
        Files.writeString(k, pem(new JcaPKCS8Generator(key, null).generate()));
        return new Issued(cert, key, c, k);
    }

    private static String pem(Object o) throws IOException {
        StringWriter sw = new StringWriter();
        try (JcaPEMWriter w = new JcaPEMWriter(sw)) {
            w.writeObject(o);
        }
        return sw.toString();
    }
}
