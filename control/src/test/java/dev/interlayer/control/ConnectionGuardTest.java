package dev.interlayer.control;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.interlayer.control.testing.ControlFixture;
import dev.interlayer.control.testing.HoldConnections;
import dev.interlayer.control.testing.LogLines;
import dev.interlayer.control.testing.OtherUser;
import dev.interlayer.control.v1.AuditEntry;
import dev.interlayer.control.v1.AuditQuery;
import dev.interlayer.control.v1.HealthRequest;
import dev.interlayer.control.v1.ModuleControlRequest;
import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * What the control endpoint does with connections that are not well-behaved gRPC clients, over real sockets:
 * junk and silence are refused, reported in one rate-limited log line each and audited; idle connections
 * are closed; one user cannot hold more than its share of connections.
 */
class ConnectionGuardTest {

    private static final Pattern MORE = Pattern.compile("^(\\d+) more refused like this");

    /** Connects to the socket, sends {@code bytes}, and reads until the agent closes the connection; returns what it read. */
    private static byte[] sendAndReadToEnd(ControlFixture f, byte[] bytes) throws IOException {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(f.server.socket()));
            ch.write(ByteBuffer.wrap(bytes));
            ByteBuffer b = ByteBuffer.allocate(4096);
            while (ch.read(b) >= 0 && b.hasRemaining()) {
                // until end of stream
            }
            return java.util.Arrays.copyOf(b.array(), b.position());
        }
    }

    private static List<AuditEntry> transportEntries(ControlFixture f, String rule) {
        try (ControlClient c = f.client()) {
            return c.audit().query(AuditQuery.newBuilder().setEndpoint(Rejections.ENDPOINT).setLimit(10_000).build()).getEntriesList().stream()
                    .filter(e -> e.getRule().equals(rule)).toList();
        }
    }

    /** Individual entries count 1, a summary entry counts its N ("N more refused like this ..."). */
    private static long refusals(List<AuditEntry> entries) {
        long n = 0;
        for (AuditEntry e : entries) {
            Matcher m = MORE.matcher(e.getReason());
            n += m.find() ? Long.parseLong(m.group(1)) : 1;
        }
        return n;
    }

    @Test
    void aFloodOfHttp1RequestsLeavesAFewOneLineLogRecordsAndEveryRefusalCountedInTheAudit() throws Exception {
        int flood = 200;
        try (LogLines log = new LogLines(); ControlFixture f = new ControlFixture()) {
            long before = log.lines().size();
            for (int i = 0; i < flood; i++) {
                sendAndReadToEnd(f, "GET / HTTP/1.1\r\nHost: agent\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            }
            // the held-back refusals are summed up when the window ends
            long deadline = System.nanoTime() + Rejections.WINDOW.multipliedBy(2).toNanos();
            while (refusals(transportEntries(f, Rejections.NOT_HTTP2)) < flood && System.nanoTime() < deadline) {
                Thread.sleep(200);
            }
            List<AuditEntry> audited = transportEntries(f, Rejections.NOT_HTTP2);
            assertThat(refusals(audited)).as("every refusal is counted in the audit").isEqualTo(flood);
            assertThat(audited.size()).as("but not one entry each").isLessThanOrEqualTo(3 * (Rejections.PER_WINDOW + 1));
            assertThat(audited).allSatisfy(e -> {
                assertThat(e.getDecision()).isEqualTo(AuditLog.INVALID);
                assertThat(e.getKind()).isEqualTo(Rejections.KIND);
                assertThat(e.getCaller().getUid()).isEqualTo(Policy.processUid());
                assertThat(e.getReason()).contains("sent \"GET / HTTP/1.1\\r\\nHost: agent\\r\\n\\r\\n\", not the HTTP/2 preface");
            });

            List<LogLines.Line> lines = log.lines().subList((int) before, log.lines().size());
            assertThat(lines).as("one line per record, no stack trace").allSatisfy(l -> assertThat(l.printedLines()).as(l.toString()).isEqualTo(1));
            assertThat(lines).as("a few lines for " + flood + " connections: " + lines).hasSizeLessThanOrEqualTo(3 * (Rejections.PER_WINDOW + 1));
            assertThat(lines).anySatisfy(l -> assertThat(l.message()).startsWith("control: refused a connection of uds:uid=" + Policy.processUid()));
            assertThat(lines).anySatisfy(l -> assertThat(l.message()).containsPattern("control: refused \\d+ more like a connection of uds:uid="));
        }
    }

    @Test
    void aMessageAboveTheSizeLimitIsOneLogLineAndAnAuditedRefusal() throws Exception {
        try (LogLines log = new LogLines(); ControlFixture f = new ControlFixture(); ControlClient c = f.client()) {
            long before = log.lines().size();
            int size = 50 << 20;
            StatusRuntimeException e = org.assertj.core.api.Assertions.catchThrowableOfType(StatusRuntimeException.class,
                    () -> c.modules().control(ModuleControlRequest.newBuilder().setName("x").setCommand("dump")
                            .setBody(ByteString.copyFrom(new byte[size])).build()));
            assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
            long deadline = System.nanoTime() + 5_000_000_000L;
            List<AuditEntry> refused;
            do {
                refused = c.audit().query(AuditQuery.newBuilder().setEndpoint("Modules").setDecision(AuditLog.INVALID).build()).getEntriesList();
            } while (refused.isEmpty() && System.nanoTime() < deadline);
            assertThat(refused).singleElement().satisfies(a -> {
                assertThat(a.getMethod()).isEqualTo("Control");
                assertThat(a.getRule()).isEqualTo(SecurityModule.STRUCTURE_RULE);
                assertThat(a.getReason()).contains("a request message of " + (size + 14) + " bytes", "at most " + ControlServer.MAX_MESSAGE);
            });
            List<LogLines.Line> lines = log.lines().subList((int) before, log.lines().size());
            assertThat(lines).allSatisfy(l -> assertThat(l.printedLines()).as(l.toString()).isEqualTo(1));
            assertThat(lines).anySatisfy(l -> assertThat(l.message()).startsWith("control: refused a Modules.Control call of uds:uid="));
        }
    }

    @Test
    void aConnectionThatSendsNothingIsClosedAfterTheHandshakeTimeoutAndAudited() throws Exception {
        Duration timeout = Duration.ofMillis(500);
        try (ControlFixture f = new ControlFixture(s -> s.withLimits(new ControlSettings.Limits(32, timeout, Duration.ofMinutes(5))))) {
            long start = System.nanoTime();
            sendAndReadToEnd(f, new byte[0]); // the agent speaks first (its HTTP/2 settings), then closes
            Duration took = Duration.ofNanos(System.nanoTime() - start);
            assertThat(took).isGreaterThanOrEqualTo(timeout.minusMillis(50)).isLessThan(Duration.ofSeconds(5));
            assertThat(transportEntries(f, Rejections.HANDSHAKE_TIMEOUT)).singleElement().satisfies(e -> {
                assertThat(e.getCaller().getPid()).isEqualTo(ProcessHandle.current().pid());
                assertThat(e.getReason()).isEqualTo("sent nothing within 500 ms (agent.control.handshake-timeout)");
            });
            // half a preface is no better
            sendAndReadToEnd(f, java.util.Arrays.copyOf(ConnectionGuard.PREFACE, 10));
            assertThat(transportEntries(f, Rejections.HANDSHAKE_TIMEOUT)).last()
                    .satisfies(e -> assertThat(e.getReason()).startsWith("sent only 10 bytes of the HTTP/2 preface within 500 ms"));
        }
    }

    @Test
    void aConnectionWithoutCallsIsClosedAfterTheIdleTimeout() throws Exception {
        Duration idle = Duration.ofSeconds(1);
        try (ControlFixture f = new ControlFixture(s -> s.withLimits(new ControlSettings.Limits(32, Duration.ofSeconds(10), idle)));
             SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            // a minimal HTTP/2 client that starts correctly, answers the agent's settings and pings, and makes no call
            ch.connect(UnixDomainSocketAddress.of(f.server.socket()));
            long start = System.nanoTime();
            ch.write(ByteBuffer.wrap(ConnectionGuard.PREFACE));
            ch.write(ByteBuffer.wrap(new byte[] {0, 0, 0, 4, 0, 0, 0, 0, 0})); // SETTINGS
            boolean goAway = false;
            ByteBuffer header = ByteBuffer.allocate(9);
            while (readFully(ch, header)) {
                int length = (header.get(0) & 0xff) << 16 | (header.get(1) & 0xff) << 8 | header.get(2) & 0xff;
                int type = header.get(3);
                int flags = header.get(4);
                ByteBuffer payload = ByteBuffer.allocate(length);
                if (!readFully(ch, payload)) {
                    break;
                }
                if (type == 4 && (flags & 1) == 0) {
                    ch.write(ByteBuffer.wrap(new byte[] {0, 0, 0, 4, 1, 0, 0, 0, 0})); // SETTINGS ACK
                } else if (type == 6 && (flags & 1) == 0) {
                    ByteBuffer ack = ByteBuffer.allocate(9 + 8).put(new byte[] {0, 0, 8, 6, 1, 0, 0, 0, 0}).put(payload.flip());
                    ch.write(ack.flip()); // PING ACK
                } else if (type == 7) {
                    goAway = true;
                }
                header.clear();
            }
            Duration open = Duration.ofNanos(System.nanoTime() - start);
            assertThat(goAway).as("the agent said goodbye (GOAWAY)").isTrue();
            assertThat(open).as("closed after the idle timeout").isGreaterThanOrEqualTo(idle.minusMillis(100)).isLessThan(idle.plusSeconds(8));
        }
    }

    private static boolean readFully(SocketChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                return false;
            }
        }
        return true;
    }

    @Test
    void oneUserCannotHoldMoreConnectionsThanItsLimitAndTheRefusalSaysWhyAndIsAudited() throws Exception {
        assumeTrue(OtherUser.available(), "needs root and runuser to connect as a second real user (root is not limited)");
        long other = OtherUser.ensure();
        int limit = 3;
        try (ControlFixture f = new ControlFixture(s -> s.withLimits(new ControlSettings.Limits(limit, Duration.ofSeconds(10), Duration.ofMinutes(5))))) {
            OtherUser.Result r = OtherUser.run(Duration.ofSeconds(60), HoldConnections.class.getName(), f.server.socket().toString(), "" + (limit + 1));
            assertThat(r.code()).as(r.err()).isZero();
            List<String> outcomes = r.out().lines().toList();
            assertThat(outcomes).hasSize(limit + 1);
            assertThat(outcomes.subList(0, limit)).containsOnly("open");
            assertThat(outcomes.getLast()).startsWith("refused RESOURCE_EXHAUSTED").contains("the agent refused this connection: uid " + other
                    + " already holds " + limit + " control connections");
            assertThat(transportEntries(f, Rejections.CONNECTION_LIMIT)).singleElement().satisfies(e -> {
                assertThat(e.getDecision()).isEqualTo(AuditLog.DENIED);
                assertThat(e.getCaller().getUid()).isEqualTo(other);
                assertThat(e.getCaller().getUser()).isEqualTo(OtherUser.NAME);
            });
            // closed connections no longer count: the same user may connect again
            r = OtherUser.run(Duration.ofSeconds(60), HoldConnections.class.getName(), f.server.socket().toString(), "" + limit);
            assertThat(r.out().lines().toList()).containsOnly("open");
        }
    }
}
