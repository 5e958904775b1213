package dev.interlayer.control;

import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;

/**
 * Module jars signed by an orchestrator: an Ed25519 signature over the jar's bytes, made with the orchestrator's
 * module-signing key when the jar is uploaded and checked by every agent before it loads anything of it.
 *
 * <p>Stateless and thread-safe.
 */
public final class JarSignature {

    /** The signature algorithm. */
    public static final String ALGORITHM = "Ed25519";

    private JarSignature() {}

    /** Signs {@code jar} with {@code key} (an Ed25519 private key). */
    public static byte[] sign(PrivateKey key, byte[] jar) throws GeneralSecurityException {
        Signature s = Signature.getInstance(ALGORITHM);
        s.initSign(key);
        s.update(jar);
        return s.sign();
    }

    /** Whether {@code signature} is {@code key}'s signature over {@code jar}; false for a malformed signature too. */
    public static boolean verify(PublicKey key, byte[] jar, byte[] signature) {
        try {
            Signature s = Signature.getInstance(ALGORITHM);
            s.initVerify(key);
            s.update(jar);
            return s.verify(signature);
        } catch (GeneralSecurityException | RuntimeException e) {
            return false;
        }
    }

    /** The public key as PEM ({@code PUBLIC KEY}, X.509 SubjectPublicKeyInfo). */
    public static String publicKeyPem(PublicKey key) {
        return "-----BEGIN PUBLIC KEY-----\n" + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(key.getEncoded())
                + "\n-----END PUBLIC KEY-----\n";
    }

    /**
     * Reads an Ed25519 public key from PEM.
     *
     * @throws GeneralSecurityException if the text holds no Ed25519 public key
     */
    public static PublicKey publicKey(String pem) throws GeneralSecurityException {
        String body = pem.replace("-----BEGIN PUBLIC KEY-----", "").replace("-----END PUBLIC KEY-----", "").replaceAll("\\s", "");
        try {
            return KeyFactory.getInstance(ALGORITHM).generatePublic(new X509EncodedKeySpec(Base64.getDecoder().decode(body)));
        } catch (IllegalArgumentException e) {
            throw new GeneralSecurityException("not a PEM public key: " + e.getMessage(), e);
        }
    }
}
