package dev.interlayer.control;

import dev.interlayer.orchestrator.v1.LoadedPackage;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.util.HexFormat;
import java.util.List;

/**
 * An agent's proof of the module packages it has loaded, answering an orchestrator's challenge: an ECDSA (P-256,
 * SHA-256) signature with the private key of the agent's client certificate over the challenge's nonce and every
 * package's name, version, SHA-256 and state (orchestrator.proto, {@code Proof}). The nonce makes each proof good for
 * one challenge only; the key makes it the agent's.
 *
 * <p>Stateless and thread-safe.
 */
public final class IntegrityProof {

    /** The signature algorithm. */
    public static final String ALGORITHM = "SHA256withECDSA";

    private IntegrityProof() {}

    /** The bytes a proof signs: {@code interlayer-proof-v1\n}, the nonce in hex, {@code \n}, one line per package. */
    public static byte[] signedBytes(byte[] nonce, List<LoadedPackage> packages) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.writeBytes(("interlayer-proof-v1\n" + HexFormat.of().formatHex(nonce) + "\n").getBytes(StandardCharsets.UTF_8));
        for (LoadedPackage p : packages) {
            b.writeBytes((p.getName() + "@" + p.getVersion() + " " + p.getSha256() + " " + p.getState() + "\n").getBytes(StandardCharsets.UTF_8));
        }
        return b.toByteArray();
    }

    /** Signs the proof of {@code packages} for {@code nonce} with the agent's {@code key}. */
    public static byte[] sign(PrivateKey key, byte[] nonce, List<LoadedPackage> packages) throws GeneralSecurityException {
        Signature s = Signature.getInstance(ALGORITHM);
        s.initSign(key);
        s.update(signedBytes(nonce, packages));
        return s.sign();
    }

    /** Whether {@code signature} is {@code key}'s proof of {@code packages} for {@code nonce}; false when malformed too. */
    public static boolean verify(PublicKey key, byte[] nonce, List<LoadedPackage> packages, byte[] signature) {
        try {
            Signature s = Signature.getInstance(ALGORITHM);
            s.initVerify(key);
            s.update(signedBytes(nonce, packages));
            return s.verify(signature);
        } catch (GeneralSecurityException | RuntimeException e) {
            return false;
        }
    }
}
