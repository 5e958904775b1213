package dev.interlayer.natives;

import dev.interlayer.api.Role;
import dev.interlayer.engine.EngineOptions;
import dev.interlayer.engine.ListenerSpec;
import dev.interlayer.engine.TlsSettings;
import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.modules.tag.TagModule;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleConfig;
import dev.interlayer.runtime.NativePackage;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * The agent side of {@link AsanTest}, run in its own JVM with AddressSanitizer preloaded: loads a C tag built with
 * {@code -fsanitize=address}, sends traffic through it to a Java untagger and back on many connections, unloads it,
 * waits until the object is unmapped, prints how many of the module's allocations are still live (the object is built with
 * a counting calloc/malloc/free) and exits 0 (or 1 with a line on what went wrong).
 *
 * <p>With the arguments {@code tls FOLDER CERT KEY} the object is the C {@code sni-cert} instead: it serves a TLS listener
 * (its own certificate CERT/KEY) with its certificates from FOLDER, and {@code openssl s_client} makes the handshakes,
 * each checked for the certificate the name should get.
 */
public final class AsanDriver {

    private AsanDriver() {}

    public static void main(String[] args) throws Throwable {
        Path so = Path.of(args[0]);
        int connections = Integer.parseInt(args[1]);
        if (args.length > 2 && args[2].equals("tls")) {
            tls(so, connections, Path.of(args[3]), Path.of(args[4]), Path.of(args[5]));
            System.out.println("ASAN-DRIVER: OK");
            return;
        }
        try (TestServer echo = TestServer.echo(); EngineFixture peer = new EngineFixture(); EngineFixture fx = new EngineFixture()) {
            peer.add(new TagModule());
            InetSocketAddress untag = peer.listen(Role.SERVER, echo.address());
            InetSocketAddress at = fx.listen(Role.CLIENT, untag);
            LoadedModule m = fx.registry.load(so, null).getFirst();
            NativePackage pkg = (NativePackage) m.pkg();
            Arena arena = Arena.ofConfined();
            MethodHandle live = counter(pkg, arena);
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
            unloadAndCount(m, pkg, live, arena);
        }
        System.out.println("ASAN-DRIVER: OK");
    }

    /** The module's allocation counter, through a mapping of our own, so it can still be read once the agent has unmapped its copy. */
    private static MethodHandle counter(NativePackage pkg, Arena arena) {
        return Linker.nativeLinker().downcallHandle(SymbolLookup.libraryLookup(pkg.cachedCopy(), arena).findOrThrow("il_test_live_allocations"),
                FunctionDescriptor.of(ValueLayout.JAVA_LONG));
    }

    /** Unloads {@code m}, waits until its object is unmapped, and prints how many of its allocations are still live. */
    private static void unloadAndCount(LoadedModule m, NativePackage pkg, MethodHandle live, Arena arena) throws Throwable {
        m.unregister();
        for (int i = 0; i < 500 && !pkg.isClosed(); i++) Thread.sleep(10);
        if (!pkg.isClosed()) {
            System.out.println("ASAN-DRIVER: the object was not unmapped after unload");
            System.exit(1);
        }
        System.out.println("ASAN-DRIVER: live allocations of the module after unload: " + (long) live.invokeExact());
        arena.close();
    }

    private static void tls(Path so, int handshakes, Path folder, Path cert, Path key) throws Throwable {
        // ASan slows the module and the first handshakes load certificates: a generous budget, so slowness is not a fault here
        try (TestServer echo = TestServer.echo();
             EngineFixture fx = new EngineFixture(EngineOptions.defaults().withIoThreads(2).withHookBudget(Duration.ofSeconds(10)))) {
            LoadedModule m = fx.registry.load(so, name -> new ModuleConfig(name, null, null, null, null, null, null,
                    Map.of("folder", folder.toString(), "rescan", "50ms"))).getFirst();
            NativePackage pkg = (NativePackage) m.pkg();
            Arena arena = Arena.ofConfined();
            MethodHandle live = counter(pkg, arena);
            TlsSettings tls = new TlsSettings(TlsSettings.Provider.OPENSSL, List.of(new TlsSettings.Identity(cert, key, null, List.of())), null,
                    TlsSettings.ClientAuth.NONE, null, null, null, null, null, false, List.of(), true, null, m.name(), null, null);
            InetSocketAddress at = fx.engine.start(ListenerSpec.tcp("tls", Role.SERVER, new InetSocketAddress(InetAddress.getLoopbackAddress(), 0),
                    echo.address()).withTls(tls, null));
            // names with files in the folder get their own certificate; any other name, and none, the listener's
            List<String> names = new ArrayList<>();
            try (var files = Files.list(folder)) {
                files.map(f -> f.getFileName().toString()).filter(f -> f.endsWith(".crt")).map(f -> f.substring(0, f.length() - 4)).sorted()
                        .forEach(names::add);
            }
            String own = names.getFirst();
            names.add("unknown.test");
            names.add(null);
            for (int i = 0; i < handshakes; i++) {
                String name = names.get(i % names.size());
                String subject = subject(at, name);
                String want = "CN=" + (name != null && Files.exists(folder.resolve(name + ".crt")) ? name : "default");
                if (!want.equals(subject)) {
                    System.out.println("ASAN-DRIVER: handshake " + i + " for " + name + " showed " + subject + ", not " + want);
                    System.exit(1);
                }
                if (i == handshakes / 2) {
                    // a file dropped in while the module runs: rescanned, a new cache entry
                    Files.copy(folder.resolve(own + ".crt"), folder.resolve("late.test.crt"));
                    Files.copy(folder.resolve(own + ".key"), folder.resolve("late.test.key"));
                }
            }
            if (m.faults() != 0) {
                System.out.println("ASAN-DRIVER: the module faulted: " + m.lastFault());
                System.exit(1);
            }
            fx.engine.stop("tls");
            unloadAndCount(m, pkg, live, arena);
        }
    }

    /** The subject of the certificate {@code openssl s_client} was shown for {@code name} (null: no SNI), without spaces. */
    private static String subject(InetSocketAddress at, String name) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("openssl", "s_client", "-connect", "127.0.0.1:" + at.getPort()));
        if (name == null) cmd.add("-noservername");
        else cmd.addAll(List.of("-servername", name));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor(20, TimeUnit.SECONDS);
        for (String line : out.split("\n")) {
            if (line.startsWith("subject=")) return line.substring("subject=".length()).replace(" ", "");
        }
        return "(no certificate: " + out.strip().replace('\n', ' ') + ")";
    }
}
