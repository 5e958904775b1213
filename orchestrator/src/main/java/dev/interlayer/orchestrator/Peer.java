package dev.interlayer.orchestrator;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * What the agents' handlers need of the transport beyond the caller the security module proved: the peer's address
 * (for the fleet's history) and the serial of its client certificate (an agent that enrolled again holds a new one;
 * the old one is refused). Set in the call's context by {@link #INTERCEPTOR}, which runs after the security module.
 *
 * @param address the peer's address ({@code host:port}), or empty
 * @param serial the client certificate's serial number in hex, or empty without one
 * @param key the client certificate's public key, or null without one (an agent signs its integrity proofs with it)
 */
record Peer(String address, String serial, java.security.PublicKey key) {

    static final Context.Key<Peer> KEY = Context.key("interlayer.orchestrator.peer");

    static final ServerInterceptor INTERCEPTOR = new ServerInterceptor() {
        @Override
        public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
            SocketAddress a = call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
            String address = a instanceof InetSocketAddress i ? i.getAddress().getHostAddress() + ":" + i.getPort() : a == null ? "" : a.toString();
            String serial = "";
            java.security.PublicKey key = null;
            SSLSession s = call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION);
            if (s != null) {
                try {
                    Certificate[] chain = s.getPeerCertificates();
                    if (chain.length > 0 && chain[0] instanceof X509Certificate x) {
                        serial = x.getSerialNumber().toString(16);
                        key = x.getPublicKey();
                    }
                } catch (SSLPeerUnverifiedException e) {
                    // no certificate: enrollment
                }
            }
            return Contexts.interceptCall(Context.current().withValue(KEY, new Peer(address, serial, key)), call, headers, next);
        }
    };

    /** The peer of the current call. */
    static Peer current() {
        Peer p = KEY.get();
        return p == null ? new Peer("", "", null) : p;
    }
}
