package dev.interlayer.modules.dnstag;

import dev.interlayer.api.ByteView;
import dev.interlayer.api.ControlRequest;
import dev.interlayer.api.ControlResponse;
import dev.interlayer.api.DatagramContext;
import dev.interlayer.api.DatagramModule;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.ModuleEnv;
import dev.interlayer.api.ModuleLog;
import dev.interlayer.api.Param;
import dev.interlayer.api.Protocol;
import dev.interlayer.api.Selector;
import dev.interlayer.api.SocketModule;
import dev.interlayer.api.Verdict;

/**
 * The server side of the Layer 4.5 DNS experiment: on a {@code server}-role UDP listener in front of a DNS server,
 * removes the tag {@link DnsTagModule} inserted (RECV: queries arriving from the network) before the DNS server
 * sees the query, restoring it byte for byte, and counts the tags seen per app id. Answers pass unchanged (no SEND
 * hook).
 *
 * <p>Rules: a query without the tag passes untouched (counted as untagged). A datagram that is not a parseable DNS
 * query, or carries an invalid tag (see {@link DnsTag#remove}), is handled by {@code on-malformed}: {@code pass}
 * (default: forwarded untouched) or {@code drop}; either way it is counted.
 *
 * <p>Control requests: {@code counts} (tags seen per app id, one {@code APP COUNT} line each, sorted), {@code status}
 * (untagged = tags removed, untagged, malformed, dropped), {@code reset}.
 */
public final class DnsUntagModule implements DatagramModule<Void>, SocketModule<Void> {

    private final Counters counters = new Counters();
    private int code;
    private boolean drop;
    private ModuleLog log;

    @Override
    public ModuleDescriptor descriptor() {
        return ModuleDescriptor.builder("dns-untag", "1.0.0")
                .description("removes the dns-tag EDNS option before the DNS server sees a query and counts tags per app id")
                .implement(InterfaceType.DATAGRAM, 1, 0)
                .implement(InterfaceType.SOCKET, 1, 0)
                .priority(60)
                .selector(Selector.builder().protocol(Protocol.UDP).build())
                .param(Param.ofInt("option-code", DnsTag.DEFAULT_OPTION_CODE, "EDNS option code of the tag, 65001..65534; as on the dns-tag side"))
                .param(Param.ofString("on-malformed", "pass", "what to do with a non-DNS datagram or an invalid tag: pass or drop"))
                .build();
    }

    @Override
    public void init(ModuleEnv env) {
        log = env.log();
        code = DnsTagModule.checkCode(env.params().getInt("option-code"));
        drop = DnsTagModule.checkRule(env.params().getString("on-malformed"));
    }

    @Override
    public Verdict onRecv(Void state, DatagramContext ctx, ByteView datagram) {
        byte[] m = datagram.copyRemaining();
        DnsTag.Removed r;
        try {
            r = DnsTag.remove(m, DnsTag.parseQuery(m), code);
        } catch (DnsTag.Malformed e) {
            counters.malformed.increment();
            log.debug("flow %d: tag not removed (%s): %s", ctx.attachment().connection().id(), drop ? "dropped" : "passed", e.getMessage());
            if (drop) {
                counters.dropped.increment();
                return Verdict.DROP;
            }
            return Verdict.PASS;
        }
        if (r == null) {
            counters.untagged.increment();
            return Verdict.PASS;
        }
        counters.tagged.increment();
        counters.app(r.appId());
        ctx.replace().write(r.query());
        return Verdict.PASS;
    }

    @Override
    public ControlResponse control(ControlRequest request) {
        return counters.control(request, "removed");
    }
}
