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
 * @param protocol tcp (udp arrives with the datagram interface)
 * @param role which side is the local application
 * @param listen address to bind (port 0 picks a free port)
 * @param upstream where accepted connections are forwarded
 * @param options socket options applied to both sockets of every connection, through the modules' setOption hooks
 * @param attach names of programmatic modules to attach to every connection of this listener
 */
public record ListenerSpec(String name, Protocol protocol, Role role, InetSocketAddress listen, InetSocketAddress upstream,
                           Map<SocketOption, Object> options, List<String> attach) {

    public ListenerSpec {
        if (name == null || name.isBlank()) throw new IllegalArgumentException("listener needs a name");
        if (protocol != Protocol.TCP) throw new IllegalArgumentException("listener " + name + ": only tcp listeners are supported");
        if (role == null) throw new IllegalArgumentException("listener " + name + ": role is required (client or server)");
        if (listen == null || upstream == null) throw new IllegalArgumentException("listener " + name + ": listen and upstream are required");
        options = options == null ? Map.of() : Map.copyOf(options);
        attach = attach == null ? List.of() : List.copyOf(attach);
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
