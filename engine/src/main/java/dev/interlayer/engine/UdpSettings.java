package dev.interlayer.engine;

import java.time.Duration;

/**
 * Settings of a UDP listener's flows.
 *
 * @param idleTimeout a flow with no datagram in either direction and nothing held for this long ends (its
 *                    modules are detached with {@code CLOSED}); the next datagram from that peer starts a new flow
 * @param maxFlows flows a listener keeps at once; datagrams from new peers beyond it are dropped and logged
 */
public record UdpSettings(Duration idleTimeout, int maxFlows) {

    /** 60 s idle timeout, 10,000 flows per listener. */
    public static final UdpSettings DEFAULTS = new UdpSettings(Duration.ofSeconds(60), 10_000);

    public UdpSettings {
        if (idleTimeout == null || idleTimeout.isNegative() || idleTimeout.isZero()) {
            throw new IllegalArgumentException("udp-idle-timeout must be positive, e.g. 60s");
        }
        if (maxFlows < 1) {
            throw new IllegalArgumentException("udp-max-flows must be at least 1, got " + maxFlows);
        }
    }
}
