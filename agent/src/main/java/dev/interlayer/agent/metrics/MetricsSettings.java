package dev.interlayer.agent.metrics;

import java.net.InetSocketAddress;

/**
 * The {@code agent.metrics} section: where the Prometheus endpoint listens.
 *
 * @param listen the address to bind; a loopback address serves plain HTTP to anyone on the host, any other address
 *               serves HTTPS with the control endpoint's certificate to callers whose client certificate the policy grants
 *               {@code Modules.Stats}
 */
public record MetricsSettings(InetSocketAddress listen) {

    /** The path the metrics are served on. */
    public static final String PATH = "/metrics";

    /** True if only this host can reach the endpoint. */
    public boolean loopback() {
        return listen.getAddress() != null && listen.getAddress().isLoopbackAddress();
    }
}
