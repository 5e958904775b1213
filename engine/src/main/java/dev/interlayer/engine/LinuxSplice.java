package dev.interlayer.engine;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * The Linux system calls of the splice path, through the JDK's foreign function API: {@code pipe2},
 * {@code splice}, {@code fcntl(F_SETPIPE_SZ)} and {@code close}, each returning {@code -errno} on failure.
 *
 * <p>Netty has a {@code splice} binding too, but it reports "would block" and "end of stream" both as 0;
 * the splice path must tell them apart to end a stream exactly, so it calls the kernel itself.
 */
final class LinuxSplice {

    static final int EAGAIN = 11;
    static final int EINTR = 4;
    private static final int O_NONBLOCK = 0x800;
    private static final int O_CLOEXEC = 0x80000;
    private static final int F_SETPIPE_SZ = 1031;
    private static final int SPLICE_F_MOVE = 1;
    private static final int SPLICE_F_NONBLOCK = 2;

    private static final MethodHandle PIPE2;
    private static final MethodHandle SPLICE;
    private static final MethodHandle FCNTL;
    private static final MethodHandle CLOSE;
    /** Why splicing is unavailable on this platform, or null. */
    static final String UNAVAILABLE;

    static {
        MethodHandle pipe2 = null;
        MethodHandle splice = null;
        MethodHandle fcntl = null;
        MethodHandle close = null;
        String why = Libc.UNSUPPORTED == null ? null : "splice is " + Libc.UNSUPPORTED;
        if (why == null) {
            try {
                pipe2 = Libc.bind("pipe2", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
                splice = Libc.bind("splice", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                        ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
                fcntl = Libc.bind("fcntl", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_INT), Linker.Option.firstVariadicArg(2));
                close = Libc.bind("close", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
            } catch (RuntimeException | Error e) {
                why = "the foreign function API cannot bind splice (" + e + "); start the JVM with --enable-native-access=ALL-UNNAMED";
            }
        }
        PIPE2 = pipe2;
        SPLICE = splice;
        FCNTL = fcntl;
        CLOSE = close;
        UNAVAILABLE = why;
    }

    /** Per-user scratch memory for one thread: the captured errno and the pipe's two fds. */
    private final Arena arena = Arena.ofConfined();
    private final MemorySegment state = arena.allocate(Libc.STATE);
    private final MemorySegment fds = arena.allocate(ValueLayout.JAVA_INT, 2);

    private int errno() {
        return Libc.errno(state);
    }

    /**
     * A non-blocking pipe, {@code {read end, write end}}, resized to {@code size} bytes where the system allows
     * (the kernel keeps its default, 64 KiB, otherwise).
     *
     * @throws java.io.IOException with the errno if the pipe cannot be made (out of file descriptors)
     */
    int[] pipe(int size) throws java.io.IOException {
        int r;
        try {
            r = (int) PIPE2.invokeExact(state, fds, O_NONBLOCK | O_CLOEXEC);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
        if (r < 0) throw new java.io.IOException("pipe2 failed: errno " + errno());
        int[] p = {fds.getAtIndex(ValueLayout.JAVA_INT, 0), fds.getAtIndex(ValueLayout.JAVA_INT, 1)};
        if (size > 0) {
            try {
                int ignored = (int) FCNTL.invokeExact(state, p[1], F_SETPIPE_SZ, size);
            } catch (Throwable t) {
                throw new AssertionError(t);
            }
        }
        return p;
    }

    /** Moves up to {@code len} bytes from {@code in} to {@code out} without blocking: the count, 0 at end of input, or {@code -errno}. */
    long splice(int in, int out, long len) {
        for (;;) {
            long r;
            try {
                r = (long) SPLICE.invokeExact(state, in, MemorySegment.NULL, out, MemorySegment.NULL, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            } catch (Throwable t) {
                throw new AssertionError(t);
            }
            if (r >= 0) return r;
            int e = errno();
            if (e != EINTR) return -e;
        }
    }

    void close(int fd) {
        try {
            int ignored = (int) CLOSE.invokeExact(state, fd);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** Frees the scratch memory; on the thread that made this. */
    void free() {
        arena.close();
    }

    /** A human name for the errno values a splice can fail with. */
    static String describe(int errno) {
        return switch (errno) {
            case 104 -> "connection reset by peer";
            case 32 -> "broken pipe";
            case 110 -> "connection timed out";
            case 113 -> "no route to host";
            case 9 -> "bad file descriptor";
            default -> "errno " + errno;
        };
    }
}
