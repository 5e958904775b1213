package dev.interlayer.engine;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.ssl.NotSslRecordException;
import io.netty.handler.ssl.ReferenceCountedOpenSslEngine;
import io.netty.handler.ssl.SniCompletionEvent;
import io.netty.handler.ssl.SslCloseCompletionEvent;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.handler.ssl.SslHandshakeTimeoutException;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateExpiredException;
import java.security.cert.X509Certificate;
import java.security.cert.CertificateNotYetValidException;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLSession;

/**
 * Sits right above the SslHandler of one TLS socket of a connection, below the connection's own handler: records what the
 * handshake negotiated (for the connection listing), turns a failed handshake or a broken TLS stream into one line saying
 * what and what to do (that connection only fails), and passes the peer's close_notify on as the end of its stream.
 * Above it, the connection sees plaintext exactly as on a plain socket.
 */
final class TlsSide extends ChannelInboundHandlerAdapter {

    private final ProxyConnection conn;
    /** The direction of the bytes read from this socket. */
    private final int readDir;
    /** {@code client} (the accepted socket's peer) or {@code upstream}, for messages. */
    private final String peer;
    private volatile String sni;
    private volatile NegotiatedTls negotiated;
    /** The peer's close_notify was taken (see {@link #closeNotify}). */
    private boolean closeNotified;
    /** The SslHandler reported the close before the peer's close_notify arrived (openssl, after this side's). */
    private boolean closeEventEarly;

    TlsSide(ProxyConnection conn, int readDir, String peer) {
        this.conn = conn;
        this.readDir = readDir;
        this.peer = peer;
    }

    /** What the handshake negotiated, or null before it completed. */
    NegotiatedTls negotiated() {
        return negotiated;
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof SniCompletionEvent e) {
            sni = e.hostname();
            if (!e.isSuccess()) {
                // no usable client hello in time, or not TLS at all (or a tls module failed): the SniHandler closes the socket
                String line = describe(e.cause());
                conn.failTls(ctx.channel(), line);
                moduleFailed(line);
                return;
            }
        } else if (evt instanceof SslHandshakeCompletionEvent e) {
            if (e.isSuccess()) {
                SslHandler h = ctx.pipeline().get(SslHandler.class);
                SSLSession s = h == null ? null : h.engine().getSession();
                if (s != null) {
                    String alpn = h.applicationProtocol();
                    String name = sni != null ? sni : conn.serverNameSent(this);
                    NegotiatedTls n = NegotiatedTls.of(s, name, alpn, resumed(h));
                    TlsModuleBinding m = conn.tlsModule(this);
                    if (m != null) {
                        try {
                            m.completed(conn.id(), conn.peerAddress(this), n); // may give the peer its identity, before anything reads it
                        } catch (TlsModuleException x) {
                            conn.failTls(ctx.channel(), "TLS handshake with the " + peer + " " + conn.peerAddress(this) + " failed: " + x.getMessage());
                            return;
                        }
                    }
                    negotiated = n;
                }
                conn.tlsDone(true);
                // on the accepted side the modules are chosen and attached now, then the upstream connects: whatever must be
                // known to selectors (the identity a tls module gives the peer) must be set before this call
                conn.handshaken(this);
            } else {
                String line = describe(e.cause());
                conn.failTls(ctx.channel(), line);
                moduleFailed(line);
            }
            return;
        } else if (evt instanceof SslCloseCompletionEvent e) {
            // the peer's close_notify ends its stream, as a FIN does (a FIN usually follows; the end is taken once)
            if (e.isSuccess()) closeNotify(ctx);
            return;
        }
        ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
        // the close event fires once: when it came early (see closeNotify), the peer's close_notify is seen here
        if (!closeNotified && closeEventEarly) closeNotify(ctx);
        ctx.fireChannelReadComplete();
    }

    /**
     * The SslHandler reported its engine closed: the end of the peer's stream if the engine received its close_notify
     * (its inbound is done). Not so when the engine is openssl and this side sent its own close_notify first: Netty's
     * OpenSSL engine then answers every unwrap with CLOSED ({@code newResult} once {@code isOutboundDone()}), and the
     * SslHandler reports the close on the next record while the peer still sends; the peer's real close_notify is then
     * seen after a read ({@link #channelReadComplete}). The other case: the engine closed its outbound on receiving
     * close_notify (Netty's OpenSSL engine always does, {@code closeAll()} on SSL_ERROR_ZERO_RETURN; the JDK's on TLS
     * 1.2) while the direction toward this peer has not ended: the peer's stream ends as usual (most peers close both
     * ways), and if anything is then to be written to it, the connection is reset rather than that being lost.
     */
    /** Set when this socket can no longer be written (see {@link #closeNotify}): the line a write then resets with. */
    private String cannotWrite;

    /** Why nothing more can be written to this socket, or null while it can. */
    String cannotWrite() {
        return cannotWrite;
    }

    private void closeNotify(ChannelHandlerContext ctx) {
        SslHandler h = ctx.pipeline().get(SslHandler.class);
        if (closeNotified || h == null || conn.isClosed()) return;
        if (!h.engine().isInboundDone()) {
            closeEventEarly = true;
            return;
        }
        closeNotified = true;
        if (h.engine().isOutboundDone() && !conn.ends.outputShut(1 - readDir)) {
            // Most peers close both ways (a server's response, then close_notify and FIN): that must end cleanly. A peer
            // that only half-closed and waits for more cannot get it through this engine: the first byte that would be
            // written to it resets the connection (ProxyConnection.writeOut) rather than being lost.
            cannotWrite = "the " + peer + " " + conn.peerAddress(this) + " closed its TLS stream (close_notify) before the stream toward it"
                    + " ended, and this side's TLS engine (" + (h.engine() instanceof io.netty.handler.ssl.ReferenceCountedOpenSslEngine
                    ? "provider openssl" : "TLS 1.2") + ") cannot write after receiving close_notify: reset rather than lose what was"
                    + " still to be sent; use provider: jdk (TLS 1.3) in " + (peer.equals("client") ? "the listener's" : "the upstream's")
                    + " tls: block if its peers half-close";
        }
        conn.ends.inputShutdown(readDir, ctx.channel());
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        Throwable t = cause instanceof DecoderException && cause.getCause() != null ? cause.getCause() : cause;
        if (t instanceof SSLException) {
            conn.failTls(ctx.channel(), describe(t));
        } else {
            ctx.fireExceptionCaught(cause);
        }
    }

    /** Tells the side's {@code tls} module (if it wants to know) that the handshake failed. */
    private void moduleFailed(String line) {
        TlsModuleBinding m = conn.tlsModule(this);
        if (m != null) m.failed(conn.id(), conn.peerAddress(this), line);
    }

    /**
     * Whether the handshake resumed a session (a ticket or a cached session): BoringSSL's SSL_session_reused, through
     * netty-tcnative's public {@code SSL.isSessionReused} on the engine's public {@code sslPointer()}. The JDK's SSLEngine
     * does not say, so there it is false.
     */
    private static boolean resumed(SslHandler h) {
        if (!(h.engine() instanceof ReferenceCountedOpenSslEngine e)) return false;
        long ssl = e.sslPointer();
        return ssl != 0 && io.netty.internal.tcnative.SSL.isSessionReused(ssl);
    }

    /** One line: what went wrong with this peer's TLS, and what to do about it. */
    String describe(Throwable cause) {
        Throwable t = cause instanceof DecoderException && cause.getCause() != null ? cause.getCause() : cause;
        String what = TlsContexts.messages(t);
        String lower = what.toLowerCase();
        String who = "the " + peer + " " + conn.peerAddress(this);
        TlsModuleException module = TlsModuleException.in(t);
        if (module != null) return "TLS handshake with " + who + " failed: " + module.getMessage();
        if (t instanceof SslHandshakeTimeoutException) {
            return "TLS handshake with " + who + " not done within " + conn.handshakeTimeout(this).toMillis() + " ms; a peer that stalls"
                    + " or does not speak TLS (raise handshake-timeout if the network is that slow)";
        }
        if (t instanceof NotSslRecordException || lower.contains("not an ssl/tls record")) {
            return who + " did not send TLS (not a TLS record); it must connect with TLS, or remove this side's tls: block";
        }
        String revoked = revoked(t, lower);
        if (revoked != null && (lower.contains("certificate_revoked") || lower.contains("certificate revoked")) && !revoked.startsWith("serial ")) {
            // the peer's alert: it checked the agent's certificate against its own revocation list
            return "TLS handshake with " + who + " failed: it refused the agent's certificate as revoked (" + what + "); give this side's tls:"
                    + " block a certificate that is not revoked";
        }
        if (revoked != null) {
            return "TLS handshake with " + who + " failed: its certificate is revoked (" + revoked + "); the " + peer + " needs a new certificate"
                    + " (or, if the revocation is a mistake, remove it from the CRL in " + (peer.equals("upstream") ? "the upstream's" : "the listener's")
                    + " crl)";
        }
        if (has(t, CertificateExpiredException.class) || lower.contains("certificate_expired") || lower.contains("certificate expired")
                || lower.contains("validity check failed")) {
            return "TLS handshake with " + who + " failed: its certificate has expired (" + what + "); the " + peer + " needs a current certificate";
        }
        if (has(t, CertificateNotYetValidException.class)) {
            return "TLS handshake with " + who + " failed: its certificate is not valid yet (" + what + "); check the clocks, or its certificate";
        }
        if (lower.contains("subject alternative") || lower.contains("no name matching") || lower.contains("hostname")) {
            return "TLS handshake with " + who + " failed: its certificate does not name " + conn.serverNameSent(this) + " (" + what
                    + "); set server-name to a name in the upstream's certificate";
        }
        if (lower.contains("empty client certificate chain") || lower.contains("peer_did_not_return_a_certificate")
                || lower.contains("certificate_required") || lower.contains("certificate required")) {
            return "TLS handshake with " + who + " failed: it sent no client certificate and client-auth is required; give the client a"
                    + " certificate signed by the listener's ca";
        }
        if (lower.contains("pkix") || lower.contains("certification path") || lower.contains("unknown_ca") || lower.contains("unknown ca")
                || lower.contains("certificate_unknown") || lower.contains("bad_certificate") || lower.contains("bad certificate")) {
            return "TLS handshake with " + who + " failed: its certificate is not trusted (" + what + "); it must chain to a certificate in "
                    + (peer.equals("upstream") ? "the upstream's ca" : "the listener's ca");
        }
        return "TLS with " + who + " failed: " + what + "; check that both sides share a protocol version, a cipher and trusted certificates";
    }

    /**
     * If {@code t} says a certificate is revoked (PKIX's REVOKED on the peer's, or the peer's alert about the agent's):
     * {@code serial 1A2B, CN=alice}, or the message; else null.
     */
    private static String revoked(Throwable t, String lower) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof CertPathValidatorException e && e.getReason() == CertPathValidatorException.BasicReason.REVOKED) {
                if (e.getCertPath() != null && e.getIndex() >= 0 && e.getIndex() < e.getCertPath().getCertificates().size()
                        && e.getCertPath().getCertificates().get(e.getIndex()) instanceof X509Certificate x) {
                    return "serial " + x.getSerialNumber().toString(16).toUpperCase() + ", " + x.getSubjectX500Principal().getName();
                }
                return e.getMessage();
            }
        }
        return lower.contains("certificate has been revoked") || lower.contains("certificate_revoked") ? TlsContexts.messages(t) : null;
    }

    private static boolean has(Throwable t, Class<? extends Throwable> type) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (type.isInstance(c)) return true;
        }
        return false;
    }
}
