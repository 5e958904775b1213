package dev.interlayer.modules.mtlsidentity;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.interlayer.modules.mtlsidentity.MtlsIdentityModule.From;
import dev.interlayer.testkit.ModuleHarness;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MtlsIdentityModuleTest {

    @TempDir
    Path tmp;

    private X509Certificate cert(String subject, String san) throws Exception {
        Path c = tmp.resolve("c" + System.nanoTime() + ".crt");
        ProcessBuilder b = new ProcessBuilder("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-subj", subject, "-days", "1", "-keyout", tmp.resolve("k.key").toString(), "-out", c.toString());
        if (san != null) b.command().addAll(java.util.List.of("-addext", "subjectAltName=" + san));
        Process p = b.redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        assertEquals(0, p.waitFor());
        try (InputStream in = Files.newInputStream(c)) {
            return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
    }

    @Test
    void readsTheSubjectItsCommonNameAndEachKindOfAlternativeName() throws Exception {
        X509Certificate c = cert("/O=Example/OU=web/CN=alice", "URI:spiffe://example.org/web,DNS:alice.example.org,email:alice@example.org");
        assertEquals("CN=alice,OU=web,O=Example", MtlsIdentityModule.identity(c, From.SUBJECT));
        assertEquals("alice", MtlsIdentityModule.identity(c, From.CN));
        assertEquals("spiffe://example.org/web", MtlsIdentityModule.identity(c, From.SAN_URI));
        assertEquals("alice.example.org", MtlsIdentityModule.identity(c, From.SAN_DNS));
        assertEquals("alice@example.org", MtlsIdentityModule.identity(c, From.SAN_EMAIL));
    }

    @Test
    void aCertificateWithoutTheFieldGivesNoIdentity() throws Exception {
        X509Certificate c = cert("/O=Example", null);
        assertNull(MtlsIdentityModule.identity(c, From.CN));
        assertNull(MtlsIdentityModule.identity(c, From.SAN_URI));
    }

    @Test
    void anUnknownSourceRefusesToLoadListingTheKnownOnes() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> ModuleHarness.of(new MtlsIdentityModule()).param("from", "serial").start());
        assertTrue(e.getMessage().contains("subject, cn, san-uri, san-dns or san-email"), e.getMessage());
    }
}
