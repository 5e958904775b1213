package dev.interlayer.natives;

import dev.interlayer.api.Role;
import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.modules.tag.TagModule;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.NativePackage;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

/**
 * The agent side of {@link AsanTest}, run in its own JVM with AddressSanitizer preloaded: loads a C tag built with
 * {@code -fsanitize=address}, sends traffic through it to a Java untagger and back on many connections, unloads it,
 * waits until the object is unmapped, prints how many of the module's allocations are still live (the object is built with
 * a counting calloc/free) and exits 0 (or 1 with a line on what went wrong).
 */
public final class AsanDriver {

    private AsanDriver() {}

    public static void main(String[] args) throws Throwable {
        Path so = Path.of(args[0]);
        int connections = Integer.parseInt(args[1]);
        try (TestServer echo = TestServer.echo(); EngineFixture peer = new EngineFixture(); EngineFixture fx = new EngineFixture()) {
            peer.add(new TagModule());
            InetSocketAddress untag = peer.listen(Role.SERVER, echo.address());
            InetSocketAddress at = fx.listen(Role.CLIENT, untag);
            LoadedModule m = fx.registry.load(so, null).getFirst();
            NativePackage pkg = (NativePackage) m.pkg();
            // a mapping of our own, so the counter can still be read once the agent has unmapped its copy
            Arena arena = Arena.ofConfined();
            MethodHandle live = Linker.nativeLinker().downcallHandle(
                    SymbolLookup.libraryLookup(pkg.cachedCopy(), arena).findOrThrow("il_test_live_allocations"), FunctionDescriptor.of(ValueLayout.JAVA_LONG));
            Random r = new Random(1);
            for (int i = 0; i < connections; i++) {
                byte[] data = new byte[1 + r.nextInt(200_000)];
                r.nextBytes(data);
                try (Socket s = EngineFixture.connect(at)) {
                    s.getOutputStream().write(data);
                    s.shutdownOutput();
                    if (!Arrays.equals(s.getInputStream().readAllBytes(), data)) {
                        System.out.println("ASAN-DRIVER: connection " + i + " did not echo its bytes");
                        System.exit(1);
                    }
                }
            }
            m.unregister();
            for (int i = 0; i < 500 && !pkg.isClosed(); i++) Thread.sleep(10);
            if (!pkg.isClosed()) {
                System.out.println("ASAN-DRIVER: the object was not unmapped after unload");
                System.exit(1);
            }
            System.out.println("ASAN-DRIVER: live allocations of the module after unload: " + (long) live.invokeExact());
            arena.close();
        }
        System.out.println("ASAN-DRIVER: OK");
    }
}
