package dev.interlayer.engine;

import java.util.concurrent.atomic.LongAdder;

/**
 * One listener's counters since it started, for metrics: each counted once per connection (when it opens, fails or
 * ends), never per read, so the data path pays nothing for them. Bytes of open connections are not in
 * {@link #bytesSent()} and {@link #bytesReceived()}: {@link Engine#listenerStats} adds them when asked.
 *
 * <p>Threading: any thread counts and reads.
 */
public final class ListenerStats {

    final LongAdder accepted = new LongAdder();
    final LongAdder refused = new LongAdder();
    final LongAdder connectFailures = new LongAdder();
    final LongAdder tlsHandshakes = new LongAdder();
    final LongAdder tlsFailures = new LongAdder();
    final LongAdder endedSent = new LongAdder();
    final LongAdder endedReceived = new LongAdder();

    /**
     * A point-in-time copy.
     *
     * @param accepted connections (UDP: flows) the listener took
     * @param active of them open now
     * @param refused connections ended without being relayed: an accept that failed, a passthrough client hello that was
     *                not one or named no route, a connection whose modules could not be chosen
     * @param connectFailures connections whose upstream could not be reached
     * @param tlsHandshakes TLS handshakes completed on either socket
     * @param tlsFailures TLS handshakes that failed on either socket
     * @param bytesSent bytes from the local application towards the network peer (ended and open connections)
     * @param bytesReceived bytes from the network peer towards the local application
     */
    public record Snapshot(long accepted, long active, long refused, long connectFailures, long tlsHandshakes, long tlsFailures,
                           long bytesSent, long bytesReceived) {}

    /** Adds one ended connection's byte counts. */
    void ended(Connection c) {
        endedSent.add(c.bytesSent());
        endedReceived.add(c.bytesReceived());
    }

    Snapshot snapshot(long active, long openSent, long openReceived) {
        return new Snapshot(accepted.sum(), active, refused.sum(), connectFailures.sum(), tlsHandshakes.sum(), tlsFailures.sum(),
                endedSent.sum() + openSent, endedReceived.sum() + openReceived);
    }
}
