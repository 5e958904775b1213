package dev.interlayer.engine;

import dev.interlayer.api.TlsHandshake;
import io.netty.handler.ssl.ReferenceCountedOpenSslEngine;
import io.netty.handler.ssl.SslHandler;
import io.netty.internal.tcnative.KeyLogCallback;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The secrets of one side's handshakes (BoringSSL only), one NSS key log line each: to the {@code tls} module's
 * {@code keyLog} step where it overrides it, else appended to the side's {@code key-log} file. Installed on a context only
 * where one of the two wants lines, so a listener without either pays nothing.
 *
 * <p>BoringSSL calls back with its {@code SSL*}; the handshake it belongs to (connection id, peer) is found in a table
 * filled when the side's SslHandler is made and emptied when its handshake ends, either way.
 */
final class TlsKeyLog implements KeyLogCallback {

    private static final System.Logger LOG = System.getLogger("interlayer.engine");

    /** The connection a handshake in progress belongs to, by its {@code SSL*}. */
    private record Site(long connectionId, InetSocketAddress peer) {}

    private static final ConcurrentHashMap<Long, Site> SITES = new ConcurrentHashMap<>();

    private final String listener;
    private final boolean terminating;
    private final Path file;
    /** Set once the contexts' owner knows its module binding; null where no tls module is named on this side. */
    private volatile TlsModuleBinding binding;
    private FileChannel out;
    private boolean failed;

    TlsKeyLog(String listener, boolean terminating, Path file) {
        this.listener = listener;
        this.terminating = terminating;
        this.file = file;
    }

    /**
     * tcnative's own context structure behind a Netty context: the handle its {@code SSLContext} calls take. Netty keeps
     * it in a protected field and hands out only the {@code SSL_CTX*} inside it ({@code sslCtxPointer()}, which
     * {@code context()} also returns), which {@code setKeyLogCallback} must not be given: it reads the structure at that
     * address and the process dies. Read once, pinned to the Netty version the build pins.
     */
    private static final java.lang.invoke.VarHandle TCN_CTX;
    private static final String NO_HANDLE;

    static {
        java.lang.invoke.VarHandle h = null;
        String why = null;
        try {
            h = java.lang.invoke.MethodHandles.privateLookupIn(io.netty.handler.ssl.ReferenceCountedOpenSslContext.class,
                    java.lang.invoke.MethodHandles.lookup()).findVarHandle(io.netty.handler.ssl.ReferenceCountedOpenSslContext.class, "ctx", long.class);
        } catch (ReflectiveOperationException | RuntimeException e) {
            why = e.toString();
        }
        TCN_CTX = h;
        NO_HANDLE = why;
    }

    /**
     * Makes {@code keys} the key log callback of {@code c}.
     *
     * @throws TlsException if this Netty does not let the callback be set
     */
    static void install(io.netty.handler.ssl.ReferenceCountedOpenSslContext c, TlsKeyLog keys) throws TlsException {
        if (TCN_CTX == null) {
            throw new TlsException("key logging is not available with this Netty (" + NO_HANDLE + "); remove key-log, or the tls module's"
                    + " keyLog, from this listener");
        }
        long ctx = (long) TCN_CTX.get(c);
        if (ctx == 0 || !io.netty.internal.tcnative.SSLContext.setKeyLogCallback(ctx, keys)) {
            throw new TlsException("BoringSSL refused the key log callback; remove key-log, or the tls module's keyLog, from this listener");
        }
    }

    void bind(TlsModuleBinding b) {
        binding = b;
    }

    /** Remembers whose handshake {@code h}'s engine runs, until that handshake ends. */
    static void register(SslHandler h, long connectionId, InetSocketAddress peer) {
        if (!(h.engine() instanceof ReferenceCountedOpenSslEngine e)) return;
        long ssl = e.sslPointer();
        if (ssl == 0) return;
        SITES.put(ssl, new Site(connectionId, peer));
        h.handshakeFuture().addListener(f -> SITES.remove(ssl)); // done, failed or closed: the SSL* may be freed after
    }

    @Override
    public void handle(long ssl, byte[] line) {
        Site s = SITES.get(ssl);
        String text = new String(line, StandardCharsets.US_ASCII);
        TlsModuleBinding b = binding;
        if (b != null && b.logsKeys()) {
            b.keyLog(new TlsHandshake(listener, terminating, s == null ? -1 : s.connectionId(), s == null ? null : s.peer(), null), text);
        } else {
            append(text);
        }
    }

    /** Appends one line to the file (the default step); nothing where no file is set. */
    void append(String line) {
        if (file == null) return;
        byte[] b = (line + "\n").getBytes(StandardCharsets.US_ASCII);
        synchronized (this) {
            if (failed) return;
            try {
                if (out == null) out = open(file);
                ByteBuffer buf = ByteBuffer.wrap(b);
                while (buf.hasRemaining()) out.write(buf);
            } catch (IOException e) {
                failed = true; // one line, not one per secret
                LOG.log(Level.WARNING, "listener {0}: cannot write the key log {1} ({2}); no more secrets are written until the listener"
                        + " restarts; make the file writable by the agent''s user", listener, file, e.toString());
            }
        }
    }

    /** Opens {@code f} for appending, created readable by the agent's user only: it holds what decrypts the traffic. */
    private static FileChannel open(Path f) throws IOException {
        if (!Files.exists(f)) {
            try {
                Files.createFile(f, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            } catch (UnsupportedOperationException | java.nio.file.FileAlreadyExistsException e) {
                // not a POSIX file system, or made meanwhile: open it as it is
            }
        }
        return FileChannel.open(f, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
    }

    synchronized void close() {
        if (out != null) {
            try {
                out.close();
            } catch (IOException e) {
                // closing a file only appended to: nothing is lost
            }
            out = null;
        }
    }
}
