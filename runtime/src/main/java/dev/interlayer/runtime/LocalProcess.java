package dev.interlayer.runtime;

import dev.interlayer.api.ConnectionInfo;

/**
 * What a connection tells of its local process besides {@link ConnectionInfo#app()}, for the selectors: the socket owner's
 * uid alone (which the kernel gives with the socket, without the search for the process that {@code app()} needs) and
 * the process's cgroup. The engine's connections implement it; {@link SelectorMatcher} uses it where a connection does.
 */
public interface LocalProcess {

    /** The user id owning the local application's socket, found without looking for its process; -1 if unknown. */
    int socketUid();

    /** The cgroup2 path of the local process, as {@code /proc/PID/cgroup} shows it after {@code 0::}; null if unknown. */
    String cgroup();
}
