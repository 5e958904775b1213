package dev.interlayer.engine.testing;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A real TCP server on loopback that runs {@code handler} for each accepted socket on its own virtual
 * thread; closes every socket still open when closed. A socket whose handler has returned is closed then and forgotten, so
 * a test that opens connections by the thousand does not hold them (nor their descriptors) until the end.
 */
public final class TestServer implements AutoCloseable {

    /** What the server does with one accepted socket. */
    @FunctionalInterface
    public interface Handler {
        void handle(Socket s) throws IOException;
    }

    private final ServerSocket server;
    private final Set<Socket> sockets = ConcurrentHashMap.newKeySet();
    private final List<Throwable> errors = new CopyOnWriteArrayList<>();
    private final Thread acceptor;

    public TestServer(Handler handler) throws IOException {
        server = new ServerSocket(0, 512, InetAddress.getLoopbackAddress());
        acceptor = Thread.ofVirtual().start(() -> {
            while (!server.isClosed()) {
                Socket s;
                try {
                    s = server.accept();
                } catch (IOException e) {
                    return;
                }
                sockets.add(s);
                Thread.ofVirtual().start(() -> {
                    try (s) {
                        handler.handle(s);
                    } catch (IOException e) {
                        errors.add(e);
                    } catch (RuntimeException e) {
                        errors.add(e);
                    } finally {
                        sockets.remove(s);
                    }
                });
            }
        });
    }

    /** Echoes every byte; on EOF half-closes its side after the last byte. */
    public static TestServer echo() throws IOException {
        return echo(null);
    }

    /**
     * Echoes every byte, first appending it to {@code received} (when not null; read it under its own lock); on EOF
     * half-closes its side after the last byte.
     */
    public static TestServer echo(ByteArrayOutputStream received) throws IOException {
        return new TestServer(s -> {
            InputStream in = s.getInputStream();
            OutputStream out = s.getOutputStream();
            byte[] buf = new byte[64 * 1024];
            int n;
            while ((n = in.read(buf)) > 0) {
                if (received != null) {
                    synchronized (received) {
                        received.write(buf, 0, n);
                    }
                }
                out.write(buf, 0, n);
            }
            s.shutdownOutput();
        });
    }

    public InetSocketAddress address() {
        return (InetSocketAddress) server.getLocalSocketAddress();
    }

    /** Exceptions the handlers threw (a reset seen by the server shows up here). */
    public List<Throwable> errors() {
        return errors;
    }

    @Override
    public void close() throws IOException {
        server.close();
        for (Socket s : sockets) {
            try {
                s.close();
            } catch (IOException ignored) {
                // already gone
            }
        }
        acceptor.interrupt();
    }
}
