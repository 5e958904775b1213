package dev.interlayer.api;

/**
 * The local process behind a connection: pid, thread-group id, command name, user id and executable.
 *
 * <p>The thread-group id's command is usually the application's name ({@code dig}, {@code curl}); a
 * thread of it may carry a different name.
 *
 * @param pid the process (thread) id that owns the socket
 * @param tgid the thread-group id (the application's main pid)
 * @param name the command name of the thread group, as in {@code /proc/TGID/comm}
 * @param uid the user id owning the socket, -1 if unknown
 * @param exe the executable's absolute path, as {@code /proc/TGID/exe} links to it, or null if unknown (another
 *            user's process the agent may not inspect)
 */
public record AppInfo(int pid, int tgid, String name, int uid, String exe) {

    /** A process whose user and executable are unknown. */
    public AppInfo(int pid, int tgid, String name) {
        this(pid, tgid, name, -1, null);
    }
}
