package dev.interlayer.control;

import com.google.protobuf.Message;
import dev.interlayer.control.v1.AttachProcessRequest;
import dev.interlayer.control.v1.AttachProcessResponse;
import dev.interlayer.control.v1.DetachProcessRequest;
import dev.interlayer.engine.ProcessAttachments;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.channel.unix.PeerCredentials;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.codec.LineBasedFrameDecoder;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.codec.string.StringDecoder;
import io.netty.handler.codec.string.StringEncoder;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The attach socket: programmatic attach by the application itself for callers that do not speak gRPC (the C
 * {@code LD_PRELOAD} shim, the Java client library). One request per line, one answer line per request:
 *
 * <pre>
 *   attach MODULE[@VERSION] [connections=N] [seconds=S]   →  ok ID MODULE@VERSION   |  error REASON
 *   detach ID                                              →  ok ID                  |  error REASON
 * </pre>
 *
 * <p>Each request becomes the IDL's {@code Connections.AttachProcess} or {@code DetachProcess} message and passes the
 * {@link SecurityModule} as every control call does (structure constraints, the policy, the audit log), with a caller of
 * transport {@link Caller#ATTACH} whose uid, gid and pid the kernel gives ({@code SO_PEERCRED}): a process asks only for
 * itself. The registrations a connection made end when it closes (its process exited, or the application closed it).
 * A line longer than {@value #MAX_LINE} bytes closes the connection; a uid holds at most
 * {@code agent.control.max-connections-per-uid} connections at once (root and the agent's own user: no limit).
 */
final class AttachServer implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger("interlayer.control");
    /** Longest request line, newline included. */
    static final int MAX_LINE = 1024;
    private static final String ENDPOINT = "Connections";

    private final Path socket;
    private final Channel channel;

    private AttachServer(Path socket, Channel channel) {
        this.socket = socket;
        this.channel = channel;
    }

    /**
     * Listens on {@code socket} (mode 0666: the policy decides who may ask).
     *
     * @throws ControlException if the socket cannot be bound
     */
    static AttachServer start(Path socket, SecurityModule security, ControlTarget target, EventLoopGroup boss, EventLoopGroup workers,
                              int perUid) throws ControlException {
        Map<Long, AtomicInteger> open = new ConcurrentHashMap<>();
        ControlServer.prepareSocket(socket, "attach", "attach-socket");
        ServerBootstrap b = new ServerBootstrap().group(boss, workers).channel(EpollServerDomainSocketChannel.class)
                .childHandler(new ChannelInitializer<EpollDomainSocketChannel>() {
                    @Override
                    protected void initChannel(EpollDomainSocketChannel ch) {
                        ch.pipeline().addLast(new LineBasedFrameDecoder(MAX_LINE, true, true), new StringDecoder(StandardCharsets.UTF_8),
                                new StringEncoder(StandardCharsets.UTF_8), new Session(security, target, open, perUid));
                    }
                });
        Channel ch;
        try {
            ch = b.bind(new DomainSocketAddress(socket.toString())).syncUninterruptibly().channel();
        } catch (RuntimeException e) {
            throw new ControlException("cannot listen on the attach socket " + socket + ": " + e.getMessage()
                    + "; check that its folder is writable, or set agent.control.attach-socket (off switches it off)");
        }
        try {
            Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-rw-rw-"));
        } catch (IOException e) {
            LOG.log(Level.WARNING, "cannot make the attach socket {0} reachable for every user: {1}", socket, e.toString());
        }
        LOG.log(Level.INFO, "attach socket on {0}", socket);
        return new AttachServer(socket, ch);
    }

    /** The socket it serves. */
    Path socket() {
        return socket;
    }

    @Override
    public void close() {
        channel.close().syncUninterruptibly();
        try {
            Files.deleteIfExists(socket);
        } catch (IOException e) {
            LOG.log(Level.DEBUG, "cannot remove the attach socket {0}: {1}", socket, e.toString());
        }
    }

    /** One connection: its caller, its registrations. */
    private static final class Session extends SimpleChannelInboundHandler<String> {
        private final SecurityModule security;
        private final ControlTarget target;
        private final List<Long> registrations = new ArrayList<>();
        private final Map<Long, AtomicInteger> open;
        private final int perUid;
        private Caller caller;
        private boolean counted;
        private boolean refused;

        Session(SecurityModule security, ControlTarget target, Map<Long, AtomicInteger> open, int perUid) {
            this.security = security;
            this.target = target;
            this.open = open;
            this.perUid = perUid;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            try {
                PeerCredentials pc = ((EpollDomainSocketChannel) ctx.channel()).peerCredentials();
                int[] gids = pc.gids();
                caller = Caller.attach(pc.uid() & 0xffffffffL, gids.length > 0 ? gids[0] & 0xffffffffL : -1, pc.pid());
                boolean limited = caller.uid() != 0 && caller.uid() != Policy.processUid();
                counted = true;
                if (open.computeIfAbsent(caller.uid(), u -> new AtomicInteger()).incrementAndGet() > perUid && limited) {
                    refused = true;
                    audit("AttachProcess", AuditLog.DENIED, "connection-limit", "uid " + caller.uid() + " already holds " + perUid + " attach connections");
                    ctx.writeAndFlush("error uid " + caller.uid() + " already holds " + perUid + " connections to the attach socket"
                            + " (agent.control.max-connections-per-uid); close one\n").addListener(ChannelFutureListener.CLOSE);
                }
            } catch (IOException e) {
                LOG.log(Level.WARNING, "attach socket: cannot read the peer credentials of a connection ({0}); it is closed", e.toString());
                ctx.close();
            }
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, String line) {
            if (refused || caller == null) return; // closing
            Message request;
            try {
                request = parse(line.strip());
            } catch (IllegalArgumentException e) {
                audit("AttachProcess", AuditLog.INVALID, SecurityModule.STRUCTURE_RULE, e.getMessage());
                ctx.writeAndFlush("error invalid request: " + e.getMessage() + "\n");
                return;
            }
            String method = request instanceof AttachProcessRequest ? "AttachProcess" : "DetachProcess";
            SecurityModule.Verdict v = security.enabled()
                    ? security.check(caller, security.idl().method(ENDPOINT + "." + method), Policy.Kind.REQUEST, request)
                    : new SecurityModule.Verdict(AuditLog.GRANTED, "security-off", "the security module is off");
            audit(method, v.decision(), v.rule(), v.reason());
            if (!v.granted()) {
                ctx.writeAndFlush(AuditLog.INVALID.equals(v.decision()) ? "error invalid request: " + v.shown() + "\n"
                        : "error denied by rule '" + v.rule() + "': " + v.shown() + "\n");
                return;
            }
            try {
                AttachProcessResponse r;
                if (request instanceof AttachProcessRequest a) {
                    r = ProcessAttach.attach(target, caller, a);
                    registrations.add(r.getId());
                    ctx.writeAndFlush("ok " + r.getId() + " " + r.getModule() + "\n");
                } else {
                    r = ProcessAttach.detach(target, caller, (DetachProcessRequest) request);
                    registrations.remove(r.getId());
                    ctx.writeAndFlush("ok " + r.getId() + "\n");
                }
            } catch (ProcessAttachments.Refused e) {
                LOG.log(Level.INFO, "attach socket: {0} refused: {1}", caller, e.getMessage());
                ctx.writeAndFlush("error " + e.getMessage() + "\n");
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "attach socket: a request of " + caller + " failed", e);
                ctx.writeAndFlush("error the agent failed on this request (" + e + "); its log has the details\n");
            }
        }

        private void audit(String method, String decision, String rule, String reason) {
            security.audit().record(caller, ENDPOINT, method, Policy.Kind.REQUEST.word(), decision, rule, reason);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            if (counted) open.get(caller.uid()).decrementAndGet();
            registrations.forEach(id -> target.engine().processAttachments().remove(id));
            registrations.clear();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (cause instanceof TooLongFrameException || cause instanceof DecoderException && cause.getCause() instanceof TooLongFrameException) {
                audit("AttachProcess", AuditLog.INVALID, SecurityModule.STRUCTURE_RULE, "a request line longer than " + MAX_LINE + " bytes");
                ctx.writeAndFlush("error invalid request: a line longer than " + MAX_LINE + " bytes; the connection is closed\n")
                        .addListener(ChannelFutureListener.CLOSE);
            } else {
                LOG.log(Level.DEBUG, "attach socket: {0}", cause.toString());
                ctx.close();
            }
        }
    }

    /**
     * The IDL message a request line stands for.
     *
     * @throws IllegalArgumentException saying what is wrong with the line
     */
    static Message parse(String line) {
        String[] w = line.split(" +");
        if (w[0].equals("attach") && w.length >= 2) {
            AttachProcessRequest.Builder b = AttachProcessRequest.newBuilder();
            int at = w[1].indexOf('@');
            b.setModule(at < 0 ? w[1] : w[1].substring(0, at)).setVersion(at < 0 ? "" : w[1].substring(at + 1));
            for (int i = 2; i < w.length; i++) {
                if (w[i].startsWith("connections=")) {
                    b.setConnections(number(w[i], "connections="));
                } else if (w[i].startsWith("seconds=")) {
                    b.setSeconds(number(w[i], "seconds="));
                } else {
                    throw new IllegalArgumentException("'" + w[i] + "' is not an option of attach; use connections=N or seconds=S");
                }
            }
            return b.build();
        }
        if (w[0].equals("detach") && w.length == 2) {
            return DetachProcessRequest.newBuilder().setId(number(w[1], "")).build();
        }
        throw new IllegalArgumentException("expected 'attach MODULE[@VERSION] [connections=N] [seconds=S]' or 'detach ID', got '"
                + (line.length() > 80 ? line.substring(0, 80) + "..." : line) + "'");
    }

    private static int number(String word, String prefix) {
        String n = word.substring(prefix.length());
        try {
            if (!n.matches("\\d{1,10}")) throw new NumberFormatException();
            return Integer.parseInt(n);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + word + "': " + n + " is not a number from 0 to 2147483647");
        }
    }
}
