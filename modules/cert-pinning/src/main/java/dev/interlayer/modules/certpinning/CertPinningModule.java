package dev.interlayer.modules.certpinning;

import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.ModuleEnv;
import dev.interlayer.api.Param;
import dev.interlayer.api.TlsFunctions;
import dev.interlayer.api.TlsModule;
import dev.interlayer.api.TlsPeer;
import dev.interlayer.api.TlsVerdict;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.cert.X509Certificate;
import java.util.Base64;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * Accepts a peer only if a certificate of its chain carries a pinned public key: the base64 SHA-256 of its
 * SubjectPublicKeyInfo, as HTTP Public Key Pinning wrote pins ({@code pin-sha256}). Meant for an upstream's {@code tls:}
 * block (the agent originates TLS); on a listener's it pins client certificates.
 *
 * <p>By default the chain must also pass the configured verification (its {@code ca} and the upstream's name), as HPKP
 * pinned on top of it; {@code verify-chain: false} makes the pin the only check (a self-signed upstream). Compute a pin:
 * {@code openssl x509 -in upstream.crt -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64}.
 *
 * <pre>{@code
 * listeners:
 *   - name: api
 *     upstream: {address: api.example.com:443, tls: {module: cert-pinning}}
 * modules:
 *   - name: cert-pinning
 *     jar: sample-modules/module-cert-pinning.jar
 *     params: {pins: "YLh1dUR9y6Kja30RrAn7JKnbQG/uEtLMkBgFF2Fuihg=,sRHdihwgkaib1P1gxX8HFszlD+7/gTfNvuAybgLPNis="}
 * }</pre>
 */
public final class CertPinningModule implements TlsModule<Void> {

    private Set<String> pins;
    private boolean verifyChain;

    @Override
    public ModuleDescriptor descriptor() {
        return ModuleDescriptor.builder("cert-pinning", "1.0.0")
                .description("accepts a TLS peer only if its chain carries a pinned public key (SHA-256 of SubjectPublicKeyInfo, base64)")
                .implement(InterfaceType.TLS, 1, 0)
                .param(Param.ofString("pins", "", "comma-separated base64 SHA-256 pins of SubjectPublicKeyInfo (required)"))
                .param(Param.ofBool("verify-chain", true, "also require the configured verification (ca, name)"))
                .build();
    }

    @Override
    public void init(ModuleEnv env) {
        Set<String> p = new LinkedHashSet<>();
        for (String s : env.params().getString("pins").split(",")) {
            String pin = s.strip();
            if (pin.isEmpty()) continue;
            byte[] raw;
            try {
                raw = Base64.getDecoder().decode(pin);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("pin '" + pin + "' is not base64; give the base64 SHA-256 of the key's SubjectPublicKeyInfo");
            }
            if (raw.length != 32) {
                throw new IllegalArgumentException("pin '" + pin + "' is " + raw.length + " bytes, not the 32 of a SHA-256; give the base64"
                        + " SHA-256 of the key's SubjectPublicKeyInfo");
            }
            p.add(pin);
        }
        if (p.isEmpty()) throw new IllegalArgumentException("param pins is required: comma-separated base64 SHA-256 pins of the keys to accept");
        pins = Set.copyOf(p);
        verifyChain = env.params().getBool("verify-chain");
    }

    @Override
    public TlsVerdict verifyPeer(TlsPeer peer, TlsFunctions defaults) {
        if (verifyChain) {
            TlsVerdict chain = defaults.verifyPeer(peer);
            if (!chain.accepted()) return chain;
        }
        for (X509Certificate c : peer.chain()) {
            if (pins.contains(pin(c))) return TlsVerdict.accept();
        }
        return TlsVerdict.refuse("no key of its chain is pinned (its leaf's pin is " + pin(peer.leaf()) + "); add that pin to param pins"
                + " if this key is the right one");
    }

    /** The HPKP pin of a certificate's key: base64 of the SHA-256 of its SubjectPublicKeyInfo. */
    public static String pin(X509Certificate c) {
        try {
            return Base64.getEncoder().encodeToString(MessageDigest.getInstance("SHA-256").digest(c.getPublicKey().getEncoded()));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    }
}
