package dev.interlayer.control;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.lang.System.Logger.Level;
import java.util.List;
import java.util.logging.Filter;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * Keeps what grpc-netty logs about a control connection or call that failed in the transport to one line
 * without a stack trace, and rate-limited: a local user can make it fail at will (a connection that breaks
 * HTTP/2, a message above the size limit), and grpc-netty logs each such failure with its stack trace.
 * Failures the endpoint recognises itself before grpc-netty sees them (see {@link ConnectionGuard}) are
 * reported, with the caller, by {@link Rejections}; this catches the rest. Every other record of those
 * loggers passes unchanged.
 */
final class TransportNoise {

    private static final System.Logger LOG = System.getLogger("interlayer.control");

    // Strong references: java.util.logging keeps loggers weakly, and a collected logger loses its filter.
    private static final List<Logger> LOGGERS = List.of(Logger.getLogger("io.grpc.netty.NettyServerTransport.connections"),
            Logger.getLogger("io.grpc.netty.NettyServerStream"));

    /** Per kind of failure: {@link Rejections#PER_WINDOW} lines per window, then a count. */
    private static final WindowCounter<String, String> COUNTER = new WindowCounter<>(Rejections.PER_WINDOW, 64, "other");

    private TransportNoise() {}

    static void install() {
        for (Logger l : LOGGERS) {
            Filter previous = l.getFilter();
            if (previous instanceof OneLine) {
                continue;
            }
            l.setFilter(new OneLine(previous));
        }
    }

    /** Ends the window: one line per kind of failure held back. Called by every running endpoint's {@link Rejections}. */
    static void flush() {
        for (WindowCounter.Held<String, String> h : COUNTER.drain()) {
            LOG.log(Level.INFO, "control: {0} more like this in the last {1} s: {2}", h.count(), Rejections.WINDOW.toSeconds(), h.last());
        }
    }

    /** The failure in one line, e.g. {@code a control call failed in the transport: RESOURCE_EXHAUSTED: gRPC message exceeds ...}. */
    static String line(LogRecord r) {
        Throwable t = r.getThrown();
        String what = t instanceof StatusRuntimeException s ? s.getStatus().getCode() + ": " + s.getStatus().getDescription()
                : t.getClass().getSimpleName() + ": " + t.getMessage();
        String where = r.getLoggerName().endsWith("connections") ? "a control connection failed" : "a control call failed";
        return where + " in the transport: " + String.valueOf(what).strip().replace('\n', ' ');
    }

    /** Whether the failure is an oversized message, which {@link OversizeAudit} reports with the caller. */
    static boolean oversized(Throwable t) {
        return t instanceof StatusRuntimeException s && s.getStatus().getCode() == Status.Code.RESOURCE_EXHAUSTED;
    }

    private record OneLine(Filter previous) implements Filter {
        @Override
        public boolean isLoggable(LogRecord r) {
            if (previous != null && !previous.isLoggable(r)) {
                return false;
            }
            if (r.getThrown() == null) {
                return true;
            }
            if (!oversized(r.getThrown())) {
                String line = line(r);
                String kind = r.getLoggerName() + " " + r.getThrown().getClass().getName();
                if (COUNTER.pass(kind, line)) {
                    LOG.log(r.getLevel().intValue() < java.util.logging.Level.INFO.intValue() ? Level.DEBUG : Level.INFO, line);
                }
            }
            return false;
        }
    }
}
