package dev.interlayer.control;

import dev.interlayer.control.v1.TakeoverRequest;
import dev.interlayer.control.v1.TakeoverResponse;

/**
 * What a running agent does when a new agent process asks to take over its listening sockets ({@code Upgrade.Takeover},
 * granted by the security module before this is called): get ready to pass them, and say how to fetch them.
 */
@FunctionalInterface
public interface Handover {

    /**
     * Opens the one-time handover socket and returns where it is, its token and the listeners it passes.
     *
     * @throws ControlException if this agent cannot hand over now (a handover already runs, no listener can be passed),
     *         saying why and what to do
     */
    TakeoverResponse offer(TakeoverRequest request, Caller caller) throws ControlException;
}
