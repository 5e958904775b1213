package dev.interlayer.runtime;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.api.Protocol;
import dev.interlayer.api.Selector;
import org.junit.jupiter.api.Test;

/** Which connections a selector matches; every set field must hold, an empty one matches anything. */
class SelectorMatcherTest {

    private static boolean matches(Selector.Builder s, FakeConnection c) {
        return SelectorMatcher.matches(s.build(), c);
    }

    @Test
    void anEmptySelectorMatchesEverything() {
        assertThat(SelectorMatcher.matches(Selector.ANY, new FakeConnection().protocol(Protocol.UDP).listener(null))).isTrue();
    }

    @Test
    void protocolMustBeTheConnections() {
        assertThat(matches(Selector.builder().protocol(Protocol.TCP), new FakeConnection())).isTrue();
        assertThat(matches(Selector.builder().protocol(Protocol.UDP), new FakeConnection())).isFalse();
    }

    @Test
    void portListsAndRangesMatchInclusively() {
        Selector.Builder s = Selector.builder().remotePorts("80, 443,8000-8100");
        assertThat(matches(s, new FakeConnection().remote("10.0.0.1", 443))).isTrue();
        assertThat(matches(s, new FakeConnection().remote("10.0.0.1", 8000))).isTrue();
        assertThat(matches(s, new FakeConnection().remote("10.0.0.1", 8100))).isTrue();
        assertThat(matches(s, new FakeConnection().remote("10.0.0.1", 8101))).isFalse();
        assertThat(matches(s, new FakeConnection().remote("10.0.0.1", 81))).isFalse();
    }

    @Test
    void localAndRemotePortsAreToldApart() {
        Selector.Builder s = Selector.builder().localPorts("40000");
        assertThat(matches(s, new FakeConnection().local("127.0.0.1", 40000).remote("10.0.0.1", 443))).isTrue();
        assertThat(matches(s, new FakeConnection().local("127.0.0.1", 443).remote("10.0.0.1", 40000))).isFalse();
    }

    @Test
    void ipv4CidrsMatchTheirBlockOnly() {
        Selector.Builder s = Selector.builder().remoteCidrs("10.0.0.0/8", "192.168.1.0/25");
        assertThat(matches(s, new FakeConnection().remote("10.200.3.4", 1))).isTrue();
        assertThat(matches(s, new FakeConnection().remote("192.168.1.127", 1))).isTrue();
        assertThat(matches(s, new FakeConnection().remote("192.168.1.128", 1))).isFalse();
        assertThat(matches(s, new FakeConnection().remote("11.0.0.1", 1))).isFalse();
    }

    @Test
    void ipv4BlocksMatchIpv4MappedIpv6Addresses() {
        Selector.Builder s = Selector.builder().remoteCidrs("10.0.0.0/8");
        assertThat(matches(s, new FakeConnection().remote("::ffff:10.1.2.3", 1))).isTrue();
        assertThat(matches(s, new FakeConnection().remote("::ffff:11.1.2.3", 1))).isFalse();
    }

    @Test
    void ipv6CidrsMatchTheirBlockAndNeverAnIpv4Address() {
        Selector.Builder s = Selector.builder().localCidrs("2001:db8::/32", "::1");
        assertThat(matches(s, new FakeConnection().local("2001:db8:ffff::1", 1))).isTrue();
        assertThat(matches(s, new FakeConnection().local("::1", 1))).isTrue();
        assertThat(matches(s, new FakeConnection().local("2001:db9::1", 1))).isFalse();
        assertThat(matches(s, new FakeConnection().local("127.0.0.1", 1))).isFalse();
    }

    @Test
    void aSlashZeroBlockMatchesEveryAddressOfItsFamily() {
        assertThat(matches(Selector.builder().remoteCidrs("0.0.0.0/0"), new FakeConnection().remote("203.0.113.9", 1))).isTrue();
        assertThat(matches(Selector.builder().remoteCidrs("::/0"), new FakeConnection().remote("2001:db8::9", 1))).isTrue();
    }

    @Test
    void anUnresolvedAddressMatchesNoCidr() {
        FakeConnection c = new FakeConnection();
        c.remote = java.net.InetSocketAddress.createUnresolved("example.invalid", 443);
        assertThat(matches(Selector.builder().remoteCidrs("0.0.0.0/0"), c)).isFalse();
        assertThat(matches(Selector.builder().remotePorts("443"), c)).isTrue();
    }

    @Test
    void listenerNamesMustMatchAndAConnectionWithoutListenerMatchesNone() {
        Selector.Builder s = Selector.builder().listeners("web", "db");
        assertThat(matches(s, new FakeConnection().listener("db"))).isTrue();
        assertThat(matches(s, new FakeConnection().listener("main"))).isFalse();
        assertThat(matches(s, new FakeConnection().listener(null))).isFalse();
    }

    @Test
    void appAndPidMatchWhenTheProcessIsKnown() {
        FakeConnection curl = new FakeConnection().app(4242, 4200, "curl");
        assertThat(matches(Selector.builder().apps("curl", "wget"), curl)).isTrue();
        assertThat(matches(Selector.builder().apps("wget"), curl)).isFalse();
        assertThat(matches(Selector.builder().pids(4200), curl)).as("tgid").isTrue();
        assertThat(matches(Selector.builder().pids(4242), curl)).as("pid").isTrue();
        assertThat(matches(Selector.builder().pids(1), curl)).isFalse();
        assertThat(matches(Selector.builder().apps("curl").pids(1), curl)).as("both fields must hold").isFalse();
    }

    @Test
    void uidAndExeMatchTheProcessOwnerAndItsExecutable() {
        FakeConnection curl = new FakeConnection().app(new dev.interlayer.api.AppInfo(4242, 4200, "curl", 1000, "/usr/bin/curl"));
        assertThat(matches(Selector.builder().uids(1000, 0), curl)).isTrue();
        assertThat(matches(Selector.builder().uids(0), curl)).isFalse();
        assertThat(matches(Selector.builder().exes("/usr/bin/curl"), curl)).isTrue();
        assertThat(matches(Selector.builder().exes("/usr/local/bin/curl"), curl)).isFalse();
        assertThat(matches(Selector.builder().uids(1000).exes("/usr/bin/wget"), curl)).as("both fields must hold").isFalse();
    }

    @Test
    void anUnknownUidOrExecutableNeverMatches() {
        // the process is known, but not its owner (-1) or its executable (another user's process, the agent not root)
        FakeConnection partly = new FakeConnection().app(4242, 4200, "curl");
        assertThat(matches(Selector.builder().apps("curl"), partly)).isTrue();
        assertThat(matches(Selector.builder().uids(0), partly)).isFalse();
        assertThat(matches(Selector.builder().exes("/usr/bin/curl"), partly)).isFalse();
        assertThat(matches(Selector.builder().uids(0), new FakeConnection())).isFalse();
    }

    @Test
    void uidAndExeAreCheckedWhenTheSelectorIsBuilt() {
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> Selector.builder().exes("curl"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("absolute path");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> Selector.builder().uids(-1))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("0 or more");
        assertThat(Selector.builder().uids(7).exes("/bin/x").build().toString()).contains("uid=[7]").contains("exe=/bin/x");
        assertThat(Selector.builder().uids(7).build().isAny()).isFalse();
    }

    @Test
    void appAndPidSelectorsDoNotMatchWhenTheProcessIsUnknown() {
        FakeConnection unknown = new FakeConnection();
        assertThat(matches(Selector.builder().apps("curl"), unknown)).isFalse();
        assertThat(matches(Selector.builder().pids(1), unknown)).isFalse();
        assertThat(matches(Selector.builder().remotePorts("443"), unknown)).as("other fields do not need the process").isTrue();
    }

    @Test
    void aLongAppNameMatchesTheTruncatedCommandNameLinuxReports() {
        FakeConnection c = new FakeConnection().app(1, 1, "interlayer-demo"); // 15 characters: /proc/PID/comm cut it
        assertThat(matches(Selector.builder().apps("interlayer-demo-client"), c)).isTrue();
        assertThat(matches(Selector.builder().apps("interlayer-demo"), c)).isTrue();
        assertThat(matches(Selector.builder().apps("interlayer"), c)).as("a shorter name is not a prefix match").isFalse();
        assertThat(matches(Selector.builder().apps("curl-extended"), new FakeConnection().app(1, 1, "curl")))
                .as("only a full-length command name can have been cut").isFalse();
    }

    @Test
    void everySetFieldMustHold() {
        Selector.Builder s = Selector.builder().protocol(Protocol.TCP).remotePorts("443").remoteCidrs("10.0.0.0/8").listeners("main");
        assertThat(matches(s, new FakeConnection().remote("10.1.2.3", 443))).isTrue();
        assertThat(matches(s, new FakeConnection().remote("10.1.2.3", 444))).isFalse();
        assertThat(matches(s, new FakeConnection().remote("11.1.2.3", 443))).isFalse();
        assertThat(matches(s, new FakeConnection().remote("10.1.2.3", 443).listener("other"))).isFalse();
    }

    // ---- TLS fields ----

    /** What a handshake negotiated, as the engine's NegotiatedTls reports it; the subject as a certificate's principal gives it. */
    private record Tls(String serverName, String alpn, String subjectDn, String identity) implements dev.interlayer.api.TlsInfo {
        @Override public String protocol() { return "TLSv1.3"; }
        @Override public String cipherSuite() { return "TLS_AES_128_GCM_SHA256"; }
        @Override public boolean resumed() { return false; }
        @Override public java.util.List<java.security.cert.X509Certificate> peerCertificates() { return java.util.List.of(); }
        @Override public String peerSubject() {
            return subjectDn == null ? null : new javax.security.auth.x500.X500Principal(subjectDn).getName();
        }
    }

    /** A server-role connection whose accepted (remote) socket negotiated {@code t}. */
    private static FakeConnection terminated(Tls t) {
        FakeConnection c = new FakeConnection();
        c.role = dev.interlayer.api.Role.SERVER;
        c.remoteTls = t;
        return c;
    }

    @Test
    void sniMatchesExactNamesAnyCaseAndOneLabelUnderAWildcard() {
        Selector.Builder s = Selector.builder().tlsSni("a.test", "*.b.test");
        assertThat(matches(s, terminated(new Tls("a.test", null, null, null)))).isTrue();
        assertThat(matches(s, terminated(new Tls("A.Test", null, null, null)))).isTrue();
        assertThat(matches(s, terminated(new Tls("x.b.test", null, null, null)))).isTrue();
        assertThat(matches(s, terminated(new Tls("X.B.TEST", null, null, null)))).isTrue();
        assertThat(matches(s, terminated(new Tls("b.test", null, null, null)))).as("the wildcard's own domain").isFalse();
        assertThat(matches(s, terminated(new Tls("y.x.b.test", null, null, null)))).as("two labels under").isFalse();
        assertThat(matches(s, terminated(new Tls("xb.test", null, null, null)))).isFalse();
        assertThat(matches(s, terminated(new Tls("c.test", null, null, null)))).isFalse();
        assertThat(matches(s, terminated(new Tls(null, null, null, null)))).as("a client that sent no SNI").isFalse();
    }

    @Test
    void aConnectionWithoutTlsNeverMatchesATlsField() {
        assertThat(matches(Selector.builder().tlsSni("a.test"), new FakeConnection())).isFalse();
        assertThat(matches(Selector.builder().tlsSubjects("O=Example"), new FakeConnection())).isFalse();
        assertThat(matches(Selector.builder().tlsIdentities("alice"), new FakeConnection())).isFalse();
        assertThat(matches(Selector.builder().tlsAlpn("h2"), new FakeConnection())).isFalse();
        // TLS only towards the upstream (remote in the client role) is not the accepted socket's
        FakeConnection upstreamOnly = new FakeConnection();
        upstreamOnly.remoteTls = new Tls("a.test", "h2", "O=Example", "alice");
        assertThat(matches(Selector.builder().tlsSni("a.test"), upstreamOnly)).isFalse();
        // the same handshake on the accepted socket of the client role (local) does match
        FakeConnection clientRole = new FakeConnection();
        clientRole.localTls = upstreamOnly.remoteTls;
        assertThat(matches(Selector.builder().tlsSni("a.test"), clientRole)).isTrue();
    }

    @Test
    void aSubjectPatternMatchesWhenEveryAttributeItNamesIsThereInAnyOrder() {
        Tls alice = new Tls("a.test", null, "CN=alice, OU=Eng, O=Example, C=DE", null);
        assertThat(matches(Selector.builder().tlsSubjects("O=Example"), terminated(alice))).isTrue();
        assertThat(matches(Selector.builder().tlsSubjects("o=Example"), terminated(alice))).as("attribute names any case").isTrue();
        assertThat(matches(Selector.builder().tlsSubjects("O=Example,CN=alice"), terminated(alice))).as("any order").isTrue();
        assertThat(matches(Selector.builder().tlsSubjects("CN=alice,O=Example,OU=Eng,C=DE"), terminated(alice))).isTrue();
        assertThat(matches(Selector.builder().tlsSubjects("O=example"), terminated(alice))).as("values case-sensitive").isFalse();
        assertThat(matches(Selector.builder().tlsSubjects("CN=bob,O=Example"), terminated(alice))).as("every attribute").isFalse();
        assertThat(matches(Selector.builder().tlsSubjects("O=Other", "CN=alice"), terminated(alice))).as("any pattern").isTrue();
        assertThat(matches(Selector.builder().tlsSubjects("O=Example"), terminated(new Tls("a.test", null, null, null))))
                .as("a client without a certificate").isFalse();
        // values with escaped characters and attributes RFC 2253 has no name for compare alike
        Tls escaped = new Tls(null, null, "CN=Smith\\, Bob, O=Example+OU=Eng, EMAILADDRESS=bob@example.com", null);
        assertThat(matches(Selector.builder().tlsSubjects("CN=Smith\\, Bob"), terminated(escaped))).isTrue();
        assertThat(matches(Selector.builder().tlsSubjects("OU=Eng"), terminated(escaped))).as("in a multi-valued RDN").isTrue();
        assertThat(matches(Selector.builder().tlsSubjects("EMAILADDRESS=bob@example.com"), terminated(escaped))).isTrue();
        assertThat(matches(Selector.builder().tlsSubjects("EMAILADDRESS=eve@example.com"), terminated(escaped))).isFalse();
    }

    @Test
    void identityAndAlpnCompareExactly() {
        Tls t = new Tls("a.test", "h2", null, "alice");
        assertThat(matches(Selector.builder().tlsIdentities("alice", "bob"), terminated(t))).isTrue();
        assertThat(matches(Selector.builder().tlsIdentities("Alice"), terminated(t))).isFalse();
        assertThat(matches(Selector.builder().tlsIdentities("alice"), terminated(new Tls("a.test", "h2", null, null)))).isFalse();
        assertThat(matches(Selector.builder().tlsAlpn("h2"), terminated(t))).isTrue();
        assertThat(matches(Selector.builder().tlsAlpn("http/1.1"), terminated(t))).isFalse();
        assertThat(matches(Selector.builder().tlsSni("a.test").tlsAlpn("h2").tlsIdentities("alice").listeners("main"), terminated(t))).isTrue();
        assertThat(matches(Selector.builder().tlsSni("a.test").tlsAlpn("h2").tlsIdentities("bob"), terminated(t))).as("every field").isFalse();
    }

    @Test
    void badTlsPatternsAreRefusedSayingWhatIsExpectedAndTheSelectorPrintsItsTlsFields() {
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> Selector.builder().tlsSni("a..test"))
                .hasMessageContaining("'a..test' is not a server name").hasMessageContaining("*.example.com");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> Selector.builder().tlsSubjects("Example"))
                .hasMessageContaining("'Example' is not a certificate subject pattern").hasMessageContaining("O=Example");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> Selector.builder().tlsSubjects(" "))
                .hasMessageContaining("empty certificate subject pattern");
        Selector s = Selector.builder().tlsSni("A.test").tlsAlpn("h2").tlsSubjects("o=Example, cn=alice").tlsIdentities("alice").build();
        assertThat(s.toString()).isEqualTo("tls-sni=a.test tls-alpn=h2 tls-subject=[O=Example,CN=alice] tls-identity=alice");
        assertThat(s).isEqualTo(Selector.builder().tlsSni("a.test").tlsAlpn("h2").tlsSubjects("O=Example,CN=alice").tlsIdentities("alice").build());
        assertThat(s.isAny()).isFalse();
        assertThat(s.toBuilder().build()).isEqualTo(s);
    }

    @Test
    void aCgroupMatchesItselfAndTheCgroupsBelowItByWholeComponents() {
        java.util.List<String> c = java.util.List.of("/system.slice/app.service", "/user.slice");
        assertThat(SelectorMatcher.within(c, "/system.slice/app.service")).isTrue();
        assertThat(SelectorMatcher.within(c, "/system.slice/app.service/worker")).isTrue();
        assertThat(SelectorMatcher.within(c, "/user.slice/user-1000.slice")).isTrue();
        assertThat(SelectorMatcher.within(c, "/system.slice/app.service2")).isFalse();
        assertThat(SelectorMatcher.within(c, "/system.slice")).isFalse();
        assertThat(SelectorMatcher.within(c, null)).isFalse();
    }

    @Test
    void aUidOnlySelectorAsksTheSocketsOwnerNotTheProcess() {
        // a connection whose process cannot be found but whose socket's owner can: the uid alone decides
        class Owned extends FakeConnection implements LocalProcess {
            @Override public int socketUid() { return 1000; }
            @Override public String cgroup() { return "/user.slice/user-1000.slice"; }
        }
        assertThat(SelectorMatcher.matches(Selector.builder().uids(1000).build(), new Owned())).isTrue();
        assertThat(SelectorMatcher.matches(Selector.builder().uids(1001).build(), new Owned())).isFalse();
        // with another process field, the process is needed: none found, no match; found, its cgroup decides
        Selector cgroup = Selector.builder().uids(1000).cgroups("/user.slice").build();
        assertThat(SelectorMatcher.matches(cgroup, new Owned())).isFalse();
        assertThat(SelectorMatcher.matches(cgroup, new Owned().app(new dev.interlayer.api.AppInfo(7, 7, "curl", 1000, "/usr/bin/curl")))).isTrue();
        assertThat(SelectorMatcher.matches(Selector.builder().cgroups("/system.slice").build(), new Owned().app(7, 7, "curl"))).isFalse();
    }
}
