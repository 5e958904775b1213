package dev.interlayer.modules.dnstag;

import dev.interlayer.api.AppInfo;
import dev.interlayer.api.Attach;
import dev.interlayer.api.Attachment;
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
import java.nio.charset.StandardCharsets;

/**
 * The client side of the Layer 4.5 DNS experiment: inserts an application id into every DNS query a local
 * application sends (SEND), as an EDNS(0) option; {@link DnsUntagModule} on the server's agent removes it again.
 * Answers pass unchanged (this module has no RECV hook, so they cost nothing).
 *
 * <p>Rules: a datagram that is not a DNS query this module can parse (too short, a response, truncated records,
 * two OPT records, already tagged) is handled by {@code on-malformed}: {@code pass} (default) forwards it untouched,
 * {@code drop} discards it; either way it is counted. The app id is the {@code app-id} parameter, or when that is
 * empty the local process name the agent finds for the flow (through /proc, once per flow), or {@code unknown}.
 * See {@link DnsTag} for the wire format.
 *
 * <p>Control requests: {@code status} (tagged, untagged = passed untouched, malformed, dropped), {@code counts}
 * (tagged queries per app id), {@code reset}.
 *
 * <pre>{@code
 * modules:
 *   - name: dns-tag
 *     selector: {protocol: udp, listener: [dns]}
 *     params: {app-id: "", option-code: 65001, on-malformed: pass}
 * }</pre>
 */
public final class DnsTagModule implements DatagramModule<byte[]>, SocketModule<byte[]> {

    private final Counters counters = new Counters();
    private int code;
    private boolean drop;
    private byte[] fixedAppId;
    private ModuleLog log;

    @Override
    public ModuleDescriptor descriptor() {
        return ModuleDescriptor.builder("dns-tag", "1.0.0")
                .description("tags DNS queries with an application id (EDNS option), client side of the Layer 4.5 DNS experiment")
                .implement(InterfaceType.DATAGRAM, 1, 0)
                .implement(InterfaceType.SOCKET, 1, 0)
                .priority(60)
                .selector(Selector.builder().protocol(Protocol.UDP).build())
                .param(Param.ofString("app-id", "", "the application id to insert; empty = the local process name when known, else 'unknown'"))
                .param(Param.ofInt("option-code", DnsTag.DEFAULT_OPTION_CODE, "EDNS option code of the tag, 65001..65534 (local/experimental)"))
                .param(Param.ofString("on-malformed", "pass", "what to do with a datagram that is not a parseable DNS query: pass or drop"))
                .build();
    }

    @Override
    public void init(ModuleEnv env) {
        log = env.log();
        code = checkCode(env.params().getInt("option-code"));
        drop = checkRule(env.params().getString("on-malformed"));
        String id = env.params().getString("app-id");
        fixedAppId = id.isEmpty() ? null : checkAppId(id);
    }

    static int checkCode(int code) {
        if (code < 65001 || code > 65534) {
            throw new IllegalArgumentException("option-code " + code + " is outside the local/experimental EDNS range 65001..65534");
        }
        return code;
    }

    static boolean checkRule(String rule) {
        return switch (rule) {
            case "pass" -> false;
            case "drop" -> true;
            default -> throw new IllegalArgumentException("on-malformed '" + rule + "' must be pass or drop");
        };
    }

    static byte[] checkAppId(String id) {
        byte[] b = id.getBytes(StandardCharsets.UTF_8);
        if (b.length < 1 || b.length > 255) {
            throw new IllegalArgumentException("app-id must be 1..255 bytes of UTF-8, got " + b.length);
        }
        return b;
    }

    @Override
    public Attach<byte[]> attach(Attachment attachment) {
        if (fixedAppId != null) return Attach.with(fixedAppId);
        AppInfo app = attachment.connection().app();
        String name = app == null || app.name() == null || app.name().isEmpty() ? "unknown" : app.name();
        return Attach.with(checkAppId(name.length() > 255 ? name.substring(0, 255) : name));
    }

    @Override
    public Verdict onSend(byte[] appId, DatagramContext ctx, ByteView datagram) {
        byte[] m = datagram.copyRemaining();
        byte[] tagged;
        try {
            tagged = DnsTag.insert(m, DnsTag.parseQuery(m), code, appId);
        } catch (DnsTag.Malformed e) {
            counters.malformed.increment();
            log.debug("flow %d: not tagged (%s): %s", ctx.attachment().connection().id(), drop ? "dropped" : "passed", e.getMessage());
            if (drop) {
                counters.dropped.increment();
                return Verdict.DROP;
            }
            counters.untagged.increment();
            return Verdict.PASS;
        }
        counters.tagged.increment();
        counters.app(new String(appId, StandardCharsets.UTF_8));
        ctx.replace().write(tagged);
        return Verdict.PASS;
    }

    @Override
    public ControlResponse control(ControlRequest request) {
        return counters.control(request, "tagged");
    }
}
