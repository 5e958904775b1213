package dev.interlayer.engine;

import dev.interlayer.api.ListenerInfo;
import dev.interlayer.api.Protocol;
import dev.interlayer.api.Role;
import dev.interlayer.api.SocketOption;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Map;

/**
 * A listener to start: {@code listen → upstream} with a role, socket options and modules attached to
 * every connection it accepts (programmatic attach by listener).
 *
 * @param name unique name
 * @param protocol tcp (connections) or udp (flows of datagrams, one per peer address)
 * @param role which side is the local application
 * @param listen address to bind (port 0 picks a free port)
 * @param upstream where accepted connections are forwarded
 * @param options socket options applied to both sockets of every connection, through the modules' setOption hooks
 * @param attach names of programmatic modules to attach to every connection of this listener
 * @param udp flow settings of a udp listener (ignored for tcp); null for {@link UdpSettings#DEFAULTS}
 * @param tls TLS the agent terminates on the sockets it accepts (tcp only), or null
 * @param upstreamTls TLS the agent originates to the upstream (tcp only), or null
 * @param sni TLS passthrough: the upstream chosen by the client hello's server name, {@code upstream} the default route
 *            (null with routes: unknown names are refused); tcp only, neither {@code tls} nor {@code upstreamTls}; or null
 * @param interceptMark 0 for an ordinary listener; otherwise the listener takes connections an nftables redirect sent it
 *            (transparent interception): each connection's upstream is its original destination ({@code SO_ORIGINAL_DST};
 *            for a udp flow, the conntrack entry of the redirect), {@code upstream} is null, and every upstream socket
 *            carries this mark ({@code SO_MARK}) before it connects, so that the redirect rule, which skips packets with
 *            the mark, never sends the agent's own connections back to it; no TLS, no sni-routes; client role for outbound
 *            interception, server role for inbound (the upstream is the local server)
 */
public record ListenerSpec(String name, Protocol protocol, Role role, InetSocketAddress listen, InetSocketAddress upstream,
                           Map<SocketOption, Object> options, List<String> attach, UdpSettings udp, TlsSettings tls, TlsSettings upstreamTls,
                           SniRoutes sni, int interceptMark) {

    public ListenerSpec {
        if (name == null || name.isBlank()) throw new IllegalArgumentException("listener needs a name");
        if (protocol == null) throw new IllegalArgumentException("listener " + name + ": protocol is required (tcp or udp)");
        udp = udp == null ? UdpSettings.DEFAULTS : udp;
        if (role == null) throw new IllegalArgumentException("listener " + name + ": role is required (client or server)");
        if (interceptMark != 0) {
            if (upstream != null || sni != null || tls != null || upstreamTls != null) {
                throw new IllegalArgumentException("listener " + name + ": an intercepting listener is without upstream, TLS or sni-routes"
                        + " (each connection goes to its original destination)");
            }
            if (listen == null) throw new IllegalArgumentException("listener " + name + ": listen is required");
        } else if (listen == null || upstream == null && sni == null) throw new IllegalArgumentException("listener " + name + ": listen and upstream are required");
        options = options == null ? Map.of() : Map.copyOf(options);
        attach = attach == null ? List.of() : List.copyOf(attach);
        if (protocol == Protocol.UDP && (tls != null || upstreamTls != null)) {
            throw new IllegalArgumentException("listener " + name + ": TLS needs protocol tcp");
        }
        if (sni != null && (protocol != Protocol.TCP || tls != null || upstreamTls != null)) {
            throw new IllegalArgumentException("listener " + name + ": sni-routes pass TLS through untouched: tcp only, and neither"
                    + " terminating (tls:) nor originating (upstream tls:) TLS");
        }
    }

    /** A listener that does not intercept. */
    public ListenerSpec(String name, Protocol protocol, Role role, InetSocketAddress listen, InetSocketAddress upstream,
                        Map<SocketOption, Object> options, List<String> attach, UdpSettings udp, TlsSettings tls, TlsSettings upstreamTls,
                        SniRoutes sni) {
        this(name, protocol, role, listen, upstream, options, attach, udp, tls, upstreamTls, sni, 0);
    }

    /**
     * A listener of transparent interception: it accepts the {@code protocol} traffic the nftables redirect sends to
     * {@code listen} (outbound: {@code role} client; inbound: server) and connects each connection or flow to its original destination from a socket marked {@code mark} (not 0).
     */
    public static ListenerSpec intercepting(String name, Protocol protocol, Role role, InetSocketAddress listen, int mark,
                                            Map<SocketOption, Object> options, List<String> attach) {
        if (mark == 0) throw new IllegalArgumentException("listener " + name + ": the mark of an intercepting listener's upstream sockets is not 0");
        return new ListenerSpec(name, protocol, role, listen, null, options, attach, UdpSettings.DEFAULTS, null, null, null, mark);
    }

    /** True if this listener takes redirected connections and forwards each to its original destination. */
    public boolean intercepts() {
        return interceptMark != 0;
    }

    /** A listener without SNI passthrough. */
    public ListenerSpec(String name, Protocol protocol, Role role, InetSocketAddress listen, InetSocketAddress upstream,
                        Map<SocketOption, Object> options, List<String> attach, UdpSettings udp, TlsSettings tls, TlsSettings upstreamTls) {
        this(name, protocol, role, listen, upstream, options, attach, udp, tls, upstreamTls, null);
    }

    /** This listener routing by the client hello's server name ({@code routes}; null: not), its upstream the default route. */
    public ListenerSpec withSni(SniRoutes routes) {
        return new ListenerSpec(name, protocol, role, listen, upstream, options, attach, udp, tls, upstreamTls, routes, interceptMark);
    }

    /** A listener without TLS. */
    public ListenerSpec(String name, Protocol protocol, Role role, InetSocketAddress listen, InetSocketAddress upstream,
                        Map<SocketOption, Object> options, List<String> attach, UdpSettings udp) {
        this(name, protocol, role, listen, upstream, options, attach, udp, null, null);
    }

    /** A listener with the default UDP flow settings (they matter only for {@link Protocol#UDP}). */
    public ListenerSpec(String name, Protocol protocol, Role role, InetSocketAddress listen, InetSocketAddress upstream,
                        Map<SocketOption, Object> options, List<String> attach) {
        this(name, protocol, role, listen, upstream, options, attach, UdpSettings.DEFAULTS);
    }

    /** A UDP listener with default flow settings, no options and no programmatic modules. */
    public static ListenerSpec udp(String name, Role role, InetSocketAddress listen, InetSocketAddress upstream) {
        return new ListenerSpec(name, Protocol.UDP, role, listen, upstream, Map.of(), List.of(), UdpSettings.DEFAULTS);
    }

    /** This listener with other UDP flow settings. */
    public ListenerSpec withUdp(UdpSettings settings) {
        return new ListenerSpec(name, protocol, role, listen, upstream, options, attach, settings, tls, upstreamTls, sni, interceptMark);
    }

    /** This listener terminating {@code accepted} on the sockets it accepts and originating {@code toUpstream} (either null: none). */
    public ListenerSpec withTls(TlsSettings accepted, TlsSettings toUpstream) {
        return new ListenerSpec(name, protocol, role, listen, upstream, options, attach, udp, accepted, toUpstream, sni, interceptMark);
    }

    /** TLS on either side: such connections run in channels (no direct path, no splice). */
    public boolean hasTls() {
        return tls != null || upstreamTls != null;
    }

    /** A TCP listener with no options and no programmatic modules. */
    public static ListenerSpec tcp(String name, Role role, InetSocketAddress listen, InetSocketAddress upstream) {
        return new ListenerSpec(name, Protocol.TCP, role, listen, upstream, Map.of(), List.of());
    }

    /** This listener as modules see it, with the address actually bound. */
    public ListenerInfo info(InetSocketAddress bound) {
        return new ListenerInfo(name, protocol, role, bound, upstream);
    }
}
