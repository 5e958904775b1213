package dev.interlayer.control;

import java.util.List;
import java.util.logging.Filter;
import java.util.logging.Logger;

/**
 * Drops one warning that is noise here: grpc-netty always asks for SO_KEEPALIVE, which a Unix domain
 * socket does not have, and Netty warns about it on every control connection. Every other record of
 * those loggers passes.
 */
final class QuietKeepAlive {

    // Strong references: java.util.logging keeps loggers weakly, and a collected logger loses its filter.
    private static final List<Logger> LOGGERS = List.of(Logger.getLogger("io.netty.bootstrap.ServerBootstrap"),
            Logger.getLogger("io.netty.bootstrap.Bootstrap"));

    private QuietKeepAlive() {}

    static void install() {
        for (Logger l : LOGGERS) {
            Filter previous = l.getFilter();
            if (previous instanceof KeepAliveFilter) {
                continue;
            }
            l.setFilter(new KeepAliveFilter(previous));
        }
    }

    private record KeepAliveFilter(Filter previous) implements Filter {
        @Override
        public boolean isLoggable(java.util.logging.LogRecord r) {
            String m = r.getMessage();
            Object[] p = r.getParameters();
            boolean noise = m != null && m.startsWith("Unknown channel option") && p != null && p.length >= 2
                    && String.valueOf(p[0]).contains("SO_KEEPALIVE") && String.valueOf(p[p.length - 1]).contains("DomainSocket");
            if (!noise && m != null && m.contains("SO_KEEPALIVE") && m.contains("DomainSocket")) {
                noise = true;
            }
            return !noise && (previous == null || previous.isLoggable(r));
        }
    }
}
