package dev.interlayer.control;

import io.grpc.Attributes;
import io.grpc.netty.GrpcHttp2ConnectionHandler;
import io.grpc.netty.InternalProtocolNegotiationEvent;
import io.grpc.netty.InternalProtocolNegotiator;
import io.grpc.netty.InternalProtocolNegotiators;
import io.grpc.netty.ProtocolNegotiationEvent;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.unix.PeerCredentials;
import io.netty.util.AsciiString;
import io.netty.util.ReferenceCountUtil;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.util.List;

/**
 * The Unix-socket transport's identity step: when a connection to the control socket becomes active,
 * reads the peer's credentials from the kernel ({@code SO_PEERCRED}: uid, gid, pid), looks up the user
 * name and the command ({@code /proc/<pid>/comm}), and puts the {@link Caller} into the connection's
 * transport attributes, where {@link SecurityModule} finds it for every call on that connection.
 *
 * <p>Plugs into grpc-netty as a protocol negotiator: plaintext (a Unix socket needs no TLS) followed by
 * this step. A connection whose credentials cannot be read carries no caller, and the security module
 * refuses every call on it as unauthenticated. The {@link ConnectionGuard} then admits the connection
 * (or refuses a uid over its limit) and checks that it starts with the HTTP/2 preface.
 */
final class UdsIdentity implements InternalProtocolNegotiator.ProtocolNegotiator {

    private static final System.Logger LOG = System.getLogger("interlayer.control");
    private static final AsciiString SCHEME = AsciiString.of("http");

    private final ConnectionGuard guard;

    UdsIdentity(ConnectionGuard guard) {
        this.guard = guard;
    }

    @Override
    public AsciiString scheme() {
        return SCHEME;
    }

    @Override
    public ChannelHandler newHandler(GrpcHttp2ConnectionHandler grpcHandler) {
        ChannelHandler identify = new Identify(InternalProtocolNegotiators.grpcNegotiationHandler(grpcHandler), guard, guard.deadline());
        return InternalProtocolNegotiators.waitUntilActiveHandler(identify, grpcHandler.getNegotiationLogger());
    }

    @Override
    public void close() {}

    /** Adds the caller to the negotiation event's attributes, then hands over to gRPC. */
    private static final class Identify extends ChannelInboundHandlerAdapter {
        private final ChannelHandler next;
        private final ConnectionGuard guard;
        private final long deadline;

        private boolean refused;

        Identify(ChannelHandler next, ConnectionGuard guard, long deadline) {
            this.next = next;
            this.guard = guard;
            this.deadline = deadline;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (refused) {
                ReferenceCountUtil.release(msg); // what a refused connection sends is not read
            } else {
                ctx.fireChannelRead(msg);
            }
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
            if (evt instanceof ProtocolNegotiationEvent pne) {
                Attributes.Builder attrs = InternalProtocolNegotiationEvent.getAttributes(pne).toBuilder();
                Caller caller = null;
                if (ctx.channel() instanceof EpollDomainSocketChannel ch) {
                    try {
                        PeerCredentials pc = ch.peerCredentials();
                        int[] gids = pc.gids();
                        caller = Caller.uds(pc.uid() & 0xffffffffL, gids.length > 0 ? gids[0] & 0xffffffffL : -1, pc.pid());
                        attrs.set(SecurityModule.CALLER_ATTRIBUTE, caller);
                    } catch (IOException e) {
                        LOG.log(Level.WARNING, "control socket: cannot read the peer credentials of a connection ({0}); its calls are refused", e.toString());
                    }
                }
                if (!guard.admit(ctx, caller)) {
                    refused = true; // the guard answered and closes the connection
                    return;
                }
                Caller who = caller != null ? caller : new Caller(Caller.UDS, -1, -1, -1, "", "", "", List.of());
                ctx.pipeline().addBefore(ctx.name(), null, guard.preface(who, ConnectionGuard.who(who, null), deadline));
                ctx.pipeline().replace(ctx.name(), null, next);
                ctx.fireUserEventTriggered(InternalProtocolNegotiationEvent.withAttributes(pne, attrs.build()));
            } else {
                super.userEventTriggered(ctx, evt);
            }
        }
    }
}
