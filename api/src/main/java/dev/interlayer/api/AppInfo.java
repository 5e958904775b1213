package dev.interlayer.api;

/**
 * The local process behind a connection: pid, thread-group id and command name.
 *
 * <p>The thread-group id's command is usually the application's name ({@code dig}, {@code curl}); a
 * thread of it may carry a different name.
 *
 * @param pid the process (thread) id that owns the socket
 * @param tgid the thread-group id (the application's main pid)
 * @param name the command name of the thread group, as in {@code /proc/TGID/comm}
 */
public record AppInfo(int pid, int tgid, String name) {}
