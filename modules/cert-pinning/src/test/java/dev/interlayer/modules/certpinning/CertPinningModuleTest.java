package dev.interlayer.modules.certpinning;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.interlayer.api.ClientHello;
import dev.interlayer.api.TlsCertificate;
import dev.interlayer.api.TlsFunctions;
import dev.interlayer.api.TlsHandshake;
import dev.interlayer.api.TlsParameters;
import dev.interlayer.api.TlsPeer;
import dev.interlayer.api.TlsVerdict;
import dev.interlayer.testkit.ModuleHarness;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CertPinningModuleTest {

    @TempDir
    Path tmp;

    /** A self-signed certificate made by openssl, with a key of its own. */
    private X509Certificate cert(String cn) throws Exception {
        Path c = tmp.resolve(cn + ".crt");
        Process p = new ProcessBuilder("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-subj", "/CN=" + cn, "-days", "1", "-keyout", tmp.resolve(cn + ".key").toString(), "-out", c.toString())
                .redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        assertEquals(0, p.waitFor());
        try (InputStream in = Files.newInputStream(c)) {
            return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
    }

    /** The agent's steps as a module sees them, with a configured verification that accepts or refuses everything. */
    private static TlsFunctions defaults(boolean chainOk, AtomicInteger asked) {
        return new TlsFunctions() {
            public TlsCertificate selectCertificate(ClientHello hello) { throw new UnsupportedOperationException(); }
            public TlsCertificate certificate(Path cert, Path key, Path passwordFile) { throw new UnsupportedOperationException(); }
            public TlsCertificate configured(String serverName) { throw new UnsupportedOperationException(); }
            public TlsVerdict verifyPeer(TlsPeer peer) {
                asked.incrementAndGet();
                return chainOk ? TlsVerdict.accept() : TlsVerdict.refuse("PKIX path building failed");
            }
            public String selectAlpn(ClientHello hello, List<String> offered) { return null; }
            public TlsParameters configure(TlsParameters configured) { return configured; }
            public String handshakeCompleted(TlsHandshake handshake) { return null; }
            public void handshakeFailed(TlsHandshake handshake, String reason) {}
        };
    }

    private static TlsPeer peer(X509Certificate c) {
        return new TlsPeer("out", false, null, "upstream.test", List.of(c), "ECDHE_ECDSA");
    }

    @Test
    void acceptsThePinnedKeyAndRefusesAnotherNamingItsPin() throws Exception {
        X509Certificate pinned = cert("pinned");
        X509Certificate other = cert("other");
        CertPinningModule m = new CertPinningModule();
        try (ModuleHarness h = ModuleHarness.of(m).param("pins", " " + CertPinningModule.pin(pinned) + " ,").start()) {
            AtomicInteger asked = new AtomicInteger();
            assertTrue(m.verifyPeer(peer(pinned), defaults(true, asked)).accepted());
            TlsVerdict v = m.verifyPeer(peer(other), defaults(true, asked));
            assertFalse(v.accepted());
            assertTrue(v.reason().contains(CertPinningModule.pin(other)), v.reason());
            assertEquals(2, asked.get(), "verify-chain (the default) asks the configured verification first");
            TlsVerdict chain = m.verifyPeer(peer(pinned), defaults(false, asked));
            assertFalse(chain.accepted(), "a pinned key on a chain the configured verification refuses is refused");
            assertEquals("PKIX path building failed", chain.reason());
        }
    }

    @Test
    void withoutChainVerificationThePinAloneDecides() throws Exception {
        X509Certificate pinned = cert("self-signed");
        CertPinningModule m = new CertPinningModule();
        try (ModuleHarness h = ModuleHarness.of(m).param("pins", CertPinningModule.pin(pinned)).param("verify-chain", false).start()) {
            AtomicInteger asked = new AtomicInteger();
            assertTrue(m.verifyPeer(peer(pinned), defaults(false, asked)).accepted());
            assertEquals(0, asked.get());
        }
    }

    @Test
    void badPinsRefuseToLoadSayingWhatAPinIs() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> ModuleHarness.of(new CertPinningModule()).param("pins", "not-base64!").start());
        assertTrue(e.getMessage().contains("not base64"), e.getMessage());
        e = assertThrows(IllegalStateException.class, () -> ModuleHarness.of(new CertPinningModule()).param("pins", "AAAA").start());
        assertTrue(e.getMessage().contains("not the 32 of a SHA-256"), e.getMessage());
        e = assertThrows(IllegalStateException.class, () -> ModuleHarness.of(new CertPinningModule()).start());
        assertTrue(e.getMessage().contains("param pins is required"), e.getMessage());
    }
}
