package dev.interlayer.engine.contract;

import java.util.List;

/** Runs a {@link Scenario} through one implementation of the chain rules and reports what it observed. */
interface Driver {

    /** The driver's name in a difference report. */
    String name();

    /**
     * Runs {@code s} on fresh modules and returns a snapshot after the modules attached and one after each step.
     *
     * @param guide what another driver observed at each point, which a driver that cannot tell when the connection has
     *     settled (sockets) waits for, up to a timeout; null for none. It is never the expected result: the caller
     *     compares the snapshots afterwards.
     */
    List<Snapshot> run(Scenario s, List<Snapshot> guide) throws Exception;
}
