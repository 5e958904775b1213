package dev.interlayer.engine;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.util.Arrays;

/**
 * The libc calls of the engine's Linux-only paths ({@link LinuxSplice}, {@link LinuxSockets}), bound through the JDK's
 * foreign function API with errno capture: each bound handle takes a {@link #STATE} segment as its first argument,
 * and {@link #errno} reads what the call left there.
 */
final class Libc {

    /** The layout of the captured call state (errno). */
    static final StructLayout STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    /** Why these calls are not used on this platform (only Linux x86_64 and aarch64), or null. */
    static final String UNSUPPORTED;

    static {
        String os = System.getProperty("os.name", "");
        String arch = System.getProperty("os.arch", "");
        UNSUPPORTED = os.equals("Linux") && (arch.equals("amd64") || arch.equals("x86_64") || arch.equals("aarch64")) ? null
                : "only used on Linux x86_64 and aarch64 (this is " + os + " " + arch + ")";
    }

    private Libc() {
    }

    /**
     * A downcall to libc's {@code name} that captures errno.
     *
     * @throws RuntimeException if the symbol is missing or native access is not enabled
     */
    static MethodHandle bind(String name, FunctionDescriptor fd, Linker.Option... more) {
        Linker linker = Linker.nativeLinker();
        Linker.Option[] options = Arrays.copyOf(more, more.length + 1);
        options[more.length] = CAPTURE_ERRNO;
        return linker.downcallHandle(linker.defaultLookup().find(name).orElseThrow(), fd, options);
    }

    /** The errno the last call through {@code state} captured. */
    static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }
}
