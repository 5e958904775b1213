package dev.interlayer.natives;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.api.Role;
import dev.interlayer.engine.testing.EngineFixture;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.modules.tag.TagModule;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleConfig;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.security.MessageDigest;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The C sample {@code tag-c} against the Java {@code tag}, over real loopback sockets: the same bytes on the wire, and
 * a C tagger with a Java untagger (and the reverse) delivers the original bytes, in chains that mix both.
 */
class CTagTest {

    @RegisterExtension
    final Closer closer = new Closer();

    private static ModuleConfig every(String name, int every) {
        return new ModuleConfig(name, null, null, null, null, null, null, Map.of("every", every));
    }

    /** An agent whose {@code role} listener forwards to {@code upstream}, with the Java tag and/or the C tag. */
    private InetSocketAddress agent(Role role, InetSocketAddress upstream, boolean java, boolean c, int every) throws Exception {
        EngineFixture fx = closer.later(new EngineFixture());
        if (java) fx.add(new TagModule(), every("tag", every));
        if (c) {
            List<LoadedModule> loaded = fx.registry.load(CBuild.TAG_C, name -> new ModuleConfig(name, null, 60, null, null, null, null,
                    Map.of("every", every)));
            assertThat(loaded).extracting(LoadedModule::name).containsExactly("tag-c");
        }
        return fx.listen(role, upstream);
    }

    private static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    /** Writes {@code data} in chunks of random sizes, half-closes, and returns everything read back until EOF. */
    private static byte[] exchange(InetSocketAddress at, byte[] data) throws Exception {
        try (Socket s = EngineFixture.connect(at)) {
            CompletableFuture<byte[]> read = CompletableFuture.supplyAsync(() -> {
                try {
                    return s.getInputStream().readAllBytes();
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            OutputStream out = s.getOutputStream();
            Random r = new Random(7);
            for (int i = 0; i < data.length; ) {
                int n = Math.min(data.length - i, 1 + r.nextInt(3000));
                out.write(data, i, n);
                out.flush();
                i += n;
            }
            s.shutdownOutput();
            return read.get(30, java.util.concurrent.TimeUnit.SECONDS);
        }
    }

    @Test
    void cTagPutsTheTagExactlyWhereTheJavaTagDoes() throws Exception {
        byte[] data = random(50_000, 1);
        ByteArrayOutputStream byJava = new ByteArrayOutputStream();
        ByteArrayOutputStream byC = new ByteArrayOutputStream();
        TestServer javaWire = closer.later(TestServer.echo(byJava));
        TestServer cWire = closer.later(TestServer.echo(byC));
        // client role: SEND (toward the server) is tagged; the echoed bytes come back tagged and RECV removes the tags
        byte[] backJava = exchange(agent(Role.CLIENT, javaWire.address(), true, false, 97), data);
        byte[] backC = exchange(agent(Role.CLIENT, cWire.address(), false, true, 97), data);
        assertThat(byC.toByteArray()).as("what tag-c sent on the wire").isEqualTo(byJava.toByteArray());
        assertThat(byC.size()).as("tags were inserted").isGreaterThan(data.length);
        assertThat(backC).isEqualTo(data);
        assertThat(backJava).isEqualTo(data);
    }

    @Test
    void cTaggerAndJavaUntaggerBackToBackDeliverTheOriginalBytesBothWays() throws Exception {
        byte[] data = random(300_000, 2);
        ByteArrayOutputStream atServer = new ByteArrayOutputStream();
        TestServer server = closer.later(TestServer.echo(atServer));
        // C tags the client's bytes, Java removes them; Java tags the replies, C removes them
        InetSocketAddress javaSide = agent(Role.SERVER, server.address(), true, false, 1000);
        InetSocketAddress cSide = agent(Role.CLIENT, javaSide, false, true, 1000);
        assertThat(exchange(cSide, data)).isEqualTo(data);
        assertThat(atServer.toByteArray()).isEqualTo(data);
    }

    @Test
    void javaTaggerAndCUntaggerBackToBackDeliverTheOriginalBytes() throws Exception {
        byte[] data = random(300_000, 3);
        TestServer server = closer.later(TestServer.echo());
        InetSocketAddress cSide = agent(Role.SERVER, server.address(), false, true, 33);
        InetSocketAddress javaSide = agent(Role.CLIENT, cSide, true, false, 33);
        assertThat(exchange(javaSide, data)).isEqualTo(data);
    }

    @Test
    void aChainOfJavaAndCTagsUndoesItselfOnThePeer() throws Exception {
        byte[] data = random(200_000, 4);
        ByteArrayOutputStream atServer = new ByteArrayOutputStream();
        TestServer server = closer.later(TestServer.echo(atServer));
        // each agent runs tag (priority 50) then tag-c (priority 60): SEND tags twice, the peer's RECV untags in reverse order
        InetSocketAddress serverSide = agent(Role.SERVER, server.address(), true, true, 41);
        InetSocketAddress clientSide = agent(Role.CLIENT, serverSide, true, true, 41);
        assertThat(exchange(clientSide, data)).isEqualTo(data);
        assertThat(atServer.toByteArray()).isEqualTo(data);
    }

    @Test
    void aTagMismatchFromAJavaPeerWithOtherParametersResetsTheConnection() throws Exception {
        TestServer server = closer.later(TestServer.echo());
        InetSocketAddress cSide = agent(Role.SERVER, server.address(), false, true, 100);
        InetSocketAddress javaSide = agent(Role.CLIENT, cSide, true, false, 101);
        try (Socket s = EngineFixture.connect(javaSide)) {
            s.getOutputStream().write(random(10_000, 5));
            InputStream in = s.getInputStream();
            byte[] buf = new byte[4096];
            int got = 0;
            boolean reset = false;
            try {
                for (int n; (n = in.read(buf)) >= 0; ) got += n;
            } catch (java.net.SocketException e) {
                reset = true;
            }
            assertThat(reset || got < 10_000).as("the C untagger refused the Java peer's misplaced tag").isTrue();
        }
    }

    /** 1 GiB each way at once: C tags what the client sends and Java untags it; Java tags the server's bytes and C untags them. */
    @Test
    void oneGibibyteEachWayThroughCTagAndJavaTagArrivesByteExact() throws Exception {
        long size = 1L << 30;
        String[] serverGot = new String[1];
        TestServer server = closer.later(new TestServer(s -> {
            CompletableFuture<String> sent = CompletableFuture.supplyAsync(() -> pump(s, size, 11));
            serverGot[0] = drain(s);
            sent.join();
            s.shutdownOutput();
        }));
        InetSocketAddress javaSide = agent(Role.SERVER, server.address(), true, false, 1000);
        InetSocketAddress cSide = agent(Role.CLIENT, javaSide, false, true, 1000);
        try (Socket s = new Socket(cSide.getAddress(), cSide.getPort())) {
            s.setSoTimeout(120_000);
            CompletableFuture<String> sent = CompletableFuture.supplyAsync(() -> {
                String h = pump(s, size, 12);
                try {
                    s.shutdownOutput();
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
                return h;
            });
            String received = drain(s);
            String clientSent = sent.get(5, java.util.concurrent.TimeUnit.MINUTES);
            assertThat(received).as("SHA-256 of what the client received").isEqualTo(sha(size, 11));
            assertThat(clientSent).isEqualTo(sha(size, 12));
            for (int i = 0; i < 100 && serverGot[0] == null; i++) Thread.sleep(50);
            assertThat(serverGot[0]).as("SHA-256 of what the server received").isEqualTo(clientSent);
        }
    }

    /** The SHA-256 of the {@code size} pseudo-random bytes {@link #pump} writes for {@code seed}, computed without sockets. */
    private static String sha(long size, long seed) throws Exception {
        MessageDigest d = MessageDigest.getInstance("SHA-256");
        byte[] block = block(seed);
        for (long left = size; left > 0; left -= block.length) {
            d.update(block, 0, (int) Math.min(left, block.length));
        }
        return java.util.HexFormat.of().formatHex(d.digest());
    }

    private static byte[] block(long seed) {
        return random(1 << 20, seed); // repeated: cheap to produce, and a misplaced or lost chunk still changes the digest
    }

    private static String pump(Socket s, long size, long seed) {
        try {
            MessageDigest d = MessageDigest.getInstance("SHA-256");
            byte[] block = block(seed);
            OutputStream out = s.getOutputStream();
            Random r = new Random(seed);
            long left = size;
            int at = 0;
            while (left > 0) {
                int n = (int) Math.min(left, Math.min(block.length - at, 1 + r.nextInt(256 * 1024)));
                out.write(block, at, n);
                d.update(block, at, n);
                at = (at + n) % block.length;
                left -= n;
            }
            out.flush();
            return java.util.HexFormat.of().formatHex(d.digest());
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static String drain(Socket s) {
        try {
            MessageDigest d = MessageDigest.getInstance("SHA-256");
            InputStream in = s.getInputStream();
            byte[] buf = new byte[256 * 1024];
            for (int n; (n = in.read(buf)) >= 0; ) d.update(buf, 0, n);
            return java.util.HexFormat.of().formatHex(d.digest());
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
