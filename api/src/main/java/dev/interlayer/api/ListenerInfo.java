package dev.interlayer.api;

import java.net.InetSocketAddress;

/**
 * A listener as configured: name, protocol, role and addresses.
 *
 * @param name the listener's unique name
 * @param protocol tcp or udp
 * @param role which side is the local application
 * @param listen the address the agent listens on
 * @param upstream where accepted connections are forwarded; null for an intercepting listener (each connection goes to its
 *                 original destination)
 */
public record ListenerInfo(String name, Protocol protocol, Role role, InetSocketAddress listen, InetSocketAddress upstream) {}
