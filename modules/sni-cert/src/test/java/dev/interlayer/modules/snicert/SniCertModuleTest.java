package dev.interlayer.modules.snicert;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
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
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Which files the module asks the agent to load, and when; the agent's loading itself (and real handshakes) is tested in
 * it/TlsModuleTest.
 */
class SniCertModuleTest {

    @TempDir
    Path tmp;

    /** A handle naming the files it was made from. */
    private record Handle(Path cert) implements TlsCertificate {
        public X509Certificate leaf() {
            throw new UnsupportedOperationException();
        }
    }

    private static final TlsCertificate DEFAULT = new Handle(Path.of("default"));

    /** Records every load the module asks for. */
    private static final class Loads implements TlsFunctions {
        final List<Path> asked = new ArrayList<>();

        public TlsCertificate selectCertificate(ClientHello hello) { return DEFAULT; }
        public TlsCertificate certificate(Path cert, Path key, Path passwordFile) {
            asked.add(cert);
            if (cert.getFileName().toString().startsWith("bad")) throw new IllegalArgumentException("cert " + cert + " holds no certificate");
            return new Handle(cert);
        }
        public TlsCertificate configured(String serverName) { return DEFAULT; }
        public TlsVerdict verifyPeer(TlsPeer peer) { return TlsVerdict.accept(); }
        public String selectAlpn(ClientHello hello, List<String> offered) { return null; }
        public TlsParameters configure(TlsParameters configured) { return configured; }
        public String handshakeCompleted(TlsHandshake handshake) { return null; }
        public void handshakeFailed(TlsHandshake handshake, String reason) {}
    }

    private static ClientHello hello(String name) {
        return new ClientHello("web", null, name, List.of(), List.of(), List.of());
    }

    private void pair(String base) throws Exception {
        Files.writeString(tmp.resolve(base + ".crt"), "x");
        Files.writeString(tmp.resolve(base + ".key"), "x");
    }

    @Test
    void choosesByNameFallsBackToTheListenersAndLooksAgainOnlyAfterRescan() throws Exception {
        pair("a.test");
        pair("_.wild.test");
        SniCertModule m = new SniCertModule();
        try (ModuleHarness h = ModuleHarness.of(m).param("folder", tmp.toString()).param("rescan", Duration.ofSeconds(2)).start()) {
            Loads d = new Loads();
            assertEquals(tmp.resolve("a.test.crt"), ((Handle) m.selectCertificate(hello("a.test"), d)).cert());
            assertEquals(tmp.resolve("_.wild.test.crt"), ((Handle) m.selectCertificate(hello("x.wild.test"), d)).cert());
            assertSame(DEFAULT, m.selectCertificate(hello("b.test"), d), "no files: the listener's certificate");
            assertSame(DEFAULT, m.selectCertificate(hello(null), d), "no server name");
            assertSame(DEFAULT, m.selectCertificate(hello("../etc"), d), "not a server name: never a path");
            int loads = d.asked.size();
            m.selectCertificate(hello("a.test"), d);
            assertEquals(loads, d.asked.size(), "within rescan: no file system call, no load");
            pair("b.test");
            assertSame(DEFAULT, m.selectCertificate(hello("b.test"), d), "b.test was looked for less than rescan ago");
            h.advance(Duration.ofSeconds(3));
            assertEquals(tmp.resolve("b.test.crt"), ((Handle) m.selectCertificate(hello("b.test"), d)).cert(), "a file dropped in is found");
        }
    }

    @Test
    void aBadCertificateFileServesTheListenersAndAMissingFolderRefusesToLoad() throws Exception {
        pair("bad");
        Files.move(tmp.resolve("bad.crt"), tmp.resolve("bad.test.crt"));
        Files.move(tmp.resolve("bad.key"), tmp.resolve("bad.test.key"));
        SniCertModule m = new SniCertModule();
        try (ModuleHarness h = ModuleHarness.of(m).param("folder", tmp.toString()).start()) {
            assertSame(DEFAULT, m.selectCertificate(hello("bad.test"), new Loads()));
        }
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> ModuleHarness.of(new SniCertModule()).param("folder", tmp.resolve("nowhere").toString()).start());
        assertTrue(e.getMessage().contains("is not a folder"), e.getMessage());
    }
}
