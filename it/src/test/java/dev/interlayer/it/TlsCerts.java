package dev.interlayer.it;

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
import java.util.List;
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
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/** A CA and the certificates the TLS tests need (names, validity, encrypted keys), written as PEM files. */
final class TlsCerts {

    private static final AtomicLong SERIAL = new AtomicLong(System.nanoTime());

    /** A certificate, its key, and where both were written. */
    record Issued(X509Certificate cert, PrivateKey key, Path certFile, Path keyFile) {}

    private final Path dir;
    private final Issued ca;

    private TlsCerts(Path dir, Issued ca) {
        this.dir = dir;
        this.ca = ca;
    }

    /** A new self-signed CA named {@code cn}, its files in {@code dir}. */
    static TlsCerts newCa(Path dir, String cn) throws Exception {
        KeyPair kp = keyPair();
        X500Name name = new X500Name("CN=" + cn);
        Instant now = Instant.now();
        X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(name, serial(), Date.from(now.minus(Duration.ofHours(1))),
                Date.from(now.plus(Duration.ofDays(2))), name, kp.getPublic());
        b.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
        b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
        return new TlsCerts(dir, write(dir, cn, sign(b, kp.getPrivate()), kp.getPrivate(), null));
    }

    Issued ca() {
        return ca;
    }

    /** A certificate for {@code cn} with DNS names {@code names} (and 127.0.0.1), valid now. */
    Issued issue(String cn, String... names) throws Exception {
        return issue(cn, Instant.now().minus(Duration.ofHours(1)), Instant.now().plus(Duration.ofDays(2)), null, names);
    }

    /** A certificate for {@code cn} that expired an hour ago. */
    Issued expired(String cn, String... names) throws Exception {
        return issue(cn, Instant.now().minus(Duration.ofDays(3)), Instant.now().minus(Duration.ofHours(1)), null, names);
    }

    /** A certificate whose key is written encrypted with {@code password} by {@code openssl pkcs8} (PKCS#8, AES-256-CBC). */
    Issued encrypted(String cn, String password, String... names) throws Exception {
        return issue(cn, Instant.now().minus(Duration.ofHours(1)), Instant.now().plus(Duration.ofDays(2)), password, names);
    }

    private Issued issue(String cn, Instant from, Instant to, String password, String... names) throws Exception {
        KeyPair kp = keyPair();
        X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(new X500Name(ca.cert().getSubjectX500Principal().getName()), serial(),
                Date.from(from), Date.from(to), new X500Name("CN=" + cn), kp.getPublic());
        List<GeneralName> sans = new java.util.ArrayList<>();
        for (String n : names) sans.add(new GeneralName(GeneralName.dNSName, n));
        sans.add(new GeneralName(GeneralName.iPAddress, "127.0.0.1"));
        b.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(sans.toArray(GeneralName[]::new)));
        b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
        return write(dir, cn, sign(b, ca.key()), kp.getPrivate(), password);
    }

    private static BigInteger serial() {
        return BigInteger.valueOf(SERIAL.incrementAndGet());
    }

    private static KeyPair keyPair() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(256);
        return g.generateKeyPair();
    }

    private static X509Certificate sign(X509v3CertificateBuilder b, PrivateKey key) throws Exception {
        return new JcaX509CertificateConverter().getCertificate(b.build(new JcaContentSignerBuilder("SHA256withECDSA").build(key)));
    }

    private static Issued write(Path dir, String name, X509Certificate cert, PrivateKey key, String password) throws Exception {
        Files.createDirectories(dir);
        Path c = dir.resolve(name + ".crt");
        Path k = dir.resolve(name + ".key");
        Files.writeString(c, pem(cert));
        Files.writeString(k, pem(new JcaPKCS8Generator(key, null).generate()));
        if (password != null) {
            // encrypted as operators do it: PKCS#8, PBES2 with AES-256-CBC
            Path pass = dir.resolve(name + ".pass");
            Files.writeString(pass, password + "\n");
            Process p = new ProcessBuilder("/usr/bin/openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", k.toString(), "-out",
                    k + ".enc", "-passout", "file:" + pass).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            if (p.waitFor() != 0) throw new IOException("openssl pkcs8 failed: " + out);
            Files.move(Path.of(k + ".enc"), k, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            Files.delete(pass);
        }
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
