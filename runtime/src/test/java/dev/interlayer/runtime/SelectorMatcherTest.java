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
}
