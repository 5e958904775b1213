package dev.interlayer.orchestrator;

import dev.interlayer.control.JarSignature;
import java.io.IOException;
import java.io.StringWriter;
import java.math.BigInteger;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Date;
import java.util.List;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * The orchestrator's keys, kept in its data folder: a certificate authority (made at first start) that issues the
 * orchestrator's own TLS certificate and each enrolled agent's client certificate, and the Ed25519 key every module jar
 * is signed with.
 *
 * <pre>
 *   DATA/ca.crt, ca.key             the CA (EC P-256, 10 years); agents trust ca.crt (agent.orchestrator.ca)
 *   DATA/server.crt, server.key     the orchestrator's TLS certificate, issued anew at every start for its names
 *   DATA/signing.key, signing.pub   the module-signing key (Ed25519); agents get signing.pub when they enroll
 * </pre>
 *
 * <p>Private keys are written with mode 0600 and never leave the folder. Agent certificates carry
 * {@code CN=<agent>, O=interlayer-agent}; the orchestrator's policy grants the agents' endpoint to that organisation.
 */
public final class Authority {

    /** The organisation of every agent certificate. */
    public static final String AGENT_ORGANISATION = "interlayer-agent";
    private static final Duration AGENT_VALIDITY = Duration.ofDays(365);

    private final KeyPair ca;
    private final X509Certificate caCert;
    private final KeyPair signing;
    private final Path serverCert;
    private final Path serverKey;
    private final Path caFile;
    private final SecureRandom random = new SecureRandom();

    private Authority(KeyPair ca, X509Certificate caCert, KeyPair signing, Path serverCert, Path serverKey, Path caFile) {
        this.ca = ca;
        this.caCert = caCert;
        this.signing = signing;
        this.serverCert = serverCert;
        this.serverKey = serverKey;
        this.caFile = caFile;
    }

    /**
     * Loads the keys from {@code folder}, making those that are missing, and issues the orchestrator's TLS certificate for
     * {@code names} (host names and IP addresses agents reach it by).
     *
     * @throws OrchestratorException if the folder's keys cannot be read or written
     */
    public static Authority open(Path folder, List<String> names) throws OrchestratorException {
        try {
            Files.createDirectories(folder);
            Path caCrt = folder.resolve("ca.crt");
            Path caKey = folder.resolve("ca.key");
            KeyPair ca;
            X509Certificate caCert;
            if (Files.exists(caCrt) && Files.exists(caKey)) {
                caCert = Pem.certificate(Files.readString(caCrt));
                ca = new KeyPair(caCert.getPublicKey(), Pem.privateKey(Files.readString(caKey), "EC"));
            } else {
                ca = ec();
                X500Name subject = new X500Name("CN=Interlayer orchestrator CA,O=interlayer");
                JcaX509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(subject, serial(new SecureRandom()), Date.from(Instant.now().minusSeconds(300)),
                        Date.from(Instant.now().plus(Duration.ofDays(3650))), subject, ca.getPublic());
                b.addExtension(Extension.basicConstraints, true, new BasicConstraints(0));
                b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
                b.addExtension(Extension.subjectKeyIdentifier, false, new JcaX509ExtensionUtils().createSubjectKeyIdentifier(ca.getPublic()));
                caCert = sign(b, ca.getPrivate());
                writeSecret(caKey, Pem.of(ca.getPrivate()));
                Files.writeString(caCrt, Pem.of(caCert));
            }
            Path sKey = folder.resolve("signing.key");
            Path sPub = folder.resolve("signing.pub");
            KeyPair signing;
            if (Files.exists(sKey)) {
                PrivateKey k = Pem.privateKey(Files.readString(sKey), JarSignature.ALGORITHM);
                signing = new KeyPair(JarSignature.publicKey(Files.readString(sPub)), k);
            } else {
                signing = KeyPairGenerator.getInstance(JarSignature.ALGORITHM).generateKeyPair();
                writeSecret(sKey, Pem.of(signing.getPrivate()));
                Files.writeString(sPub, JarSignature.publicKeyPem(signing.getPublic()));
            }
            Authority a = new Authority(ca, caCert, signing, folder.resolve("server.crt"), folder.resolve("server.key"), caCrt);
            a.issueServer(names);
            return a;
        } catch (IOException | GeneralSecurityException | OperatorCreationException e) {
            throw new OrchestratorException("cannot read or make the orchestrator's keys in " + folder + ": " + e.getMessage()
                    + "; check the folder's permissions (the keys are kept there, mode 0600)", e);
        }
    }

    private void issueServer(List<String> names) throws GeneralSecurityException, IOException, OperatorCreationException {
        KeyPair k = ec();
        JcaX509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(caCert, serial(random), Date.from(Instant.now().minusSeconds(300)),
                Date.from(Instant.now().plus(Duration.ofDays(825))), new X500Name("CN=interlayer orchestrator,O=interlayer"), k.getPublic());
        List<GeneralName> sans = new ArrayList<>();
        for (String n : names) {
            sans.add(n.matches("[0-9.]+|.*:.*") ? new GeneralName(GeneralName.iPAddress, n) : new GeneralName(GeneralName.dNSName, n));
        }
        b.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(sans.toArray(GeneralName[]::new)));
        b.addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(KeyPurposeId.id_kp_serverAuth));
        b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
        X509Certificate cert = sign(b, ca.getPrivate());
        writeSecret(serverKey, Pem.of(k.getPrivate()));
        Files.writeString(serverCert, Pem.of(cert) + Pem.of(caCert));
    }

    /** The names the orchestrator's certificate carries by default: localhost, 127.0.0.1, ::1 and this host's name. */
    public static List<String> defaultNames() {
        List<String> out = new ArrayList<>(List.of("localhost", "127.0.0.1", "::1"));
        try {
            String h = InetAddress.getLocalHost().getHostName();
            if (!out.contains(h)) {
                out.add(h);
            }
        } catch (IOException e) {
            // no host name: loopback names only
        }
        return out;
    }

    /**
     * Issues {@code agent}'s client certificate for {@code publicKeyDer} (X.509 SubjectPublicKeyInfo) with serial number {@code serial}.
     *
     * @return the certificate
     * @throws GeneralSecurityException if the key is not a usable public key
     */
    public X509Certificate issueAgent(String agent, byte[] publicKeyDer, BigInteger serial) throws GeneralSecurityException {
        PublicKey key = agentKey(publicKeyDer);
        try {
            JcaX509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(caCert, serial, Date.from(Instant.now().minusSeconds(300)),
                    Date.from(Instant.now().plus(AGENT_VALIDITY)), new X500Name("CN=" + agent + ",O=" + AGENT_ORGANISATION), key);
            b.addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(KeyPurposeId.id_kp_clientAuth));
            b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
            return sign(b, ca.getPrivate());
        } catch (IOException | OperatorCreationException e) {
            throw new GeneralSecurityException("cannot issue the certificate: " + e.getMessage(), e);
        }
    }

    /** A new random certificate serial number. */
    public BigInteger newSerial() {
        return serial(random);
    }

    /**
     * An agent's public key from its X.509 SubjectPublicKeyInfo (DER).
     *
     * @throws GeneralSecurityException if it is not an EC public key
     */
    public static PublicKey agentKey(byte[] der) throws GeneralSecurityException {
        try {
            return KeyFactory.getInstance("EC").generatePublic(new X509EncodedKeySpec(der));
        } catch (GeneralSecurityException | RuntimeException e) {
            throw new GeneralSecurityException("the agent's public key is not an EC public key (X.509 SubjectPublicKeyInfo, DER)", e);
        }
    }

    /** The CA certificate. */
    public X509Certificate caCertificate() {
        return caCert;
    }

    /** The CA certificate's file, which agents are given as {@code agent.orchestrator.ca}. */
    public Path caFile() {
        return caFile;
    }

    /** The orchestrator's TLS certificate chain (PEM). */
    public Path serverCertificate() {
        return serverCert;
    }

    /** The orchestrator's TLS private key (PEM, PKCS#8). */
    public Path serverKey() {
        return serverKey;
    }

    /** Signs a module jar. */
    public byte[] signJar(byte[] jar) throws GeneralSecurityException {
        return JarSignature.sign(signing.getPrivate(), jar);
    }

    /** The module-signing public key (PEM). */
    public String signingKeyPem() {
        return JarSignature.publicKeyPem(signing.getPublic());
    }

    private static KeyPair ec() throws GeneralSecurityException {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"));
        return g.generateKeyPair();
    }

    private static BigInteger serial(SecureRandom r) {
        return new BigInteger(64, r).add(BigInteger.ONE);
    }

    private static X509Certificate sign(X509v3CertificateBuilder b, PrivateKey key) throws OperatorCreationException, GeneralSecurityException {
        return new JcaX509CertificateConverter().getCertificate(b.build(new JcaContentSignerBuilder("SHA256withECDSA").build(key)));
    }

    private static void writeSecret(Path file, String text) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.deleteIfExists(tmp);
        Files.createFile(tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(tmp, text);
        Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    /** PEM text of certificates and keys. */
    static final class Pem {
        private Pem() {}

        static String of(Object o) throws IOException {
            StringWriter w = new StringWriter();
            try (JcaPEMWriter p = new JcaPEMWriter(w)) {
                p.writeObject(o instanceof PrivateKey k ? new org.bouncycastle.util.io.pem.PemObject("PRIVATE KEY", k.getEncoded()) : o);
            }
            return w.toString();
        }

        static X509Certificate certificate(String pem) throws GeneralSecurityException {
            return (X509Certificate) java.security.cert.CertificateFactory.getInstance("X.509")
                    .generateCertificate(new java.io.ByteArrayInputStream(pem.getBytes(java.nio.charset.StandardCharsets.US_ASCII)));
        }

        static PrivateKey privateKey(String pem, String algorithm) throws GeneralSecurityException {
            String body = pem.replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
            return KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(body)));
        }
    }
}
