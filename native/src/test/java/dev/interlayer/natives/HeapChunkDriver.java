package dev.interlayer.natives;

import dev.interlayer.api.Role;
import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.modules.tag.TagModule;
import dev.interlayer.runtime.ModuleConfig;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import java.io.ByteArrayOutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;

/**
 * The agent side of {@code CHostServicesTest}'s heap-chunk case, in a JVM started with {@code -Dio.netty.noPreferDirect=true}:
 * there the engine's allocator hands out heap buffers, so the Java tag's replacement, which the C tag after it gets as
 * its chunk, is on the Java heap and reaches C through the adapter's copy. Two agents, each running the Java tag then the
 * C tag (the C object at args[0]), between a client and an echo server; prints one line and exits 0 when every byte came
 * back and the server got the original bytes, 1 otherwise.
 */
public final class HeapChunkDriver {

    private HeapChunkDriver() {}

    public static void main(String[] args) throws Exception {
        ByteBuf probe = PooledByteBufAllocator.DEFAULT.buffer(16);
        boolean nativeMemory = probe.hasMemoryAddress();
        probe.release();
        if (nativeMemory) {
            System.out.println("HEAP-DRIVER: the allocator still gives native memory; run with -Dio.netty.noPreferDirect=true");
            System.exit(1);
        }
        Path tagC = Path.of(args[0]);
        ByteArrayOutputStream atServer = new ByteArrayOutputStream();
        try (TestServer server = TestServer.echo(atServer); EngineFixture serverSide = agent(tagC); EngineFixture clientSide = agent(tagC)) {
            InetSocketAddress s = serverSide.listen(Role.SERVER, server.address());
            InetSocketAddress c = clientSide.listen(Role.CLIENT, s);
            byte[] data = new byte[300_000];
            new Random(18).nextBytes(data);
            byte[] back;
            try (Socket socket = EngineFixture.connect(c)) {
                socket.getOutputStream().write(data);
                socket.shutdownOutput();
                back = socket.getInputStream().readAllBytes();
            }
            if (!Arrays.equals(back, data) || !Arrays.equals(atServer.toByteArray(), data)) {
                System.out.println("HEAP-DRIVER: bytes differ: " + back.length + " back, " + atServer.size() + " at the server, of " + data.length);
                System.exit(1);
            }
            long faults = clientSide.registry.modules().stream().mapToLong(m -> m.faults()).sum()
                    + serverSide.registry.modules().stream().mapToLong(m -> m.faults()).sum();
            System.out.println("HEAP-DRIVER: OK, " + data.length + " bytes each way through Java tag then C tag, faults " + faults);
        }
    }

    private static EngineFixture agent(Path tagC) throws Exception {
        EngineFixture fx = new EngineFixture();
        fx.add(new TagModule(), new ModuleConfig("tag", null, 50, null, null, null, null, Map.of("every", 41)));
        fx.registry.load(tagC, name -> new ModuleConfig(name, null, 60, null, null, null, null, Map.of("every", 41)));
        return fx;
    }
}
