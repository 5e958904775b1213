package dev.interlayer.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.interlayer.api.Attach;
import dev.interlayer.api.Attachment;
import dev.interlayer.api.ConnectionInfo;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.Role;
import dev.interlayer.api.Side;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.TlsInfo;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A {@link FakeConnection} given TLS with a {@link FakeTls} reaches the module as {@code connection().tls(side)}. */
class TlsInfoHarnessTest {

    /** Declines plain connections; records the client's server name and subject on TLS ones. */
    static final class TlsAware implements StreamModule<Object> {
        final List<String> seen = new ArrayList<>();

        @Override
        public ModuleDescriptor descriptor() {
            return ModuleDescriptor.builder("tls-aware", "1.0.0").implement(InterfaceType.STREAM, 1, 0).build();
        }

        @Override
        public Attach<Object> attach(Attachment attachment) {
            ConnectionInfo c = attachment.connection();
            TlsInfo t = c.tls(c.role() == Role.SERVER ? Side.REMOTE : Side.LOCAL);
            if (t == null) return Attach.decline();
            seen.add(t.serverName() + " " + t.peerSubject() + " " + t.alpn() + " " + t.identity() + " " + t.protocol());
            return Attach.stateless();
        }
    }

    @Test
    void aModuleSeesTheFakeTlsOfTheAcceptedSideAndDeclinesAPlainConnection() {
        TlsAware m = new TlsAware();
        try (ModuleHarness h = ModuleHarness.of(m)) {
            HarnessConnection tls = h.attach(new FakeConnection().role(Role.SERVER)
                    .tls(Side.REMOTE, new FakeTls().serverName("api.example.com").alpn("h2").peerSubject("cn=alice, o=Example").identity("alice")));
            assertEquals(List.of("api.example.com CN=alice,O=Example h2 alice TLSv1.3"), m.seen);
            assertEquals("api.example.com", tls.connection().tls(Side.REMOTE).serverName());
            assertNull(tls.connection().tls(Side.LOCAL), "the other side stays plain");
            tls.close();
            h.attach(new FakeConnection().role(Role.SERVER)).close();
            assertEquals(1, m.seen.size(), "a plain connection was declined");
        }
    }
}
