package dev.interlayer.agent.logging;

import com.google.gson.stream.JsonWriter;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.util.logging.Formatter;
import java.util.logging.LogRecord;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Formats each {@code java.util.logging} record as one JSON object on one line: {@code time} (UTC, ISO-8601), {@code level},
 * {@code logger}, {@code message}, then {@code connection} (a number) and {@code module} ({@code name@version}) when the
 * message names them (the engine's lines say {@code connection 42 (web): ...}, the runtime's {@code module tag@1.0.0 ...}),
 * and {@code thrown} (the stack trace) if there is one.
 *
 * <pre>{@code
 * {"time":"2026-12-06T05:10:00.123Z","level":"WARNING","logger":"interlayer.engine","message":"connection 42 (web): ...","connection":42}
 * }</pre>
 */
public final class JsonLogFormatter extends Formatter {

    private static final Pattern CONNECTION = Pattern.compile("\\bconnection (\\d+)\\b");
    private static final Pattern MODULE = Pattern.compile("\\bmodule ([A-Za-z0-9][A-Za-z0-9._-]*@[0-9][A-Za-z0-9.+-]*[A-Za-z0-9])");

    @Override
    public String format(LogRecord r) {
        String message = formatMessage(r);
        StringWriter out = new StringWriter(160);
        try (JsonWriter w = new JsonWriter(out)) {
            w.setHtmlSafe(false);
            w.beginObject();
            w.name("time").value(r.getInstant().toString());
            w.name("level").value(r.getLevel().getName());
            w.name("logger").value(r.getLoggerName());
            w.name("message").value(message);
            Matcher c = CONNECTION.matcher(message);
            if (c.find() && c.group(1).length() < 19) w.name("connection").value(Long.parseLong(c.group(1)));
            Matcher m = MODULE.matcher(message);
            if (m.find()) w.name("module").value(m.group(1));
            if (r.getThrown() != null) {
                StringWriter trace = new StringWriter();
                r.getThrown().printStackTrace(new PrintWriter(trace));
                w.name("thrown").value(trace.toString());
            }
            w.endObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a StringWriter does not fail
        }
        return out.append('\n').toString();
    }
}
