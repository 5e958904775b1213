package dev.interlayer.api;

import java.nio.charset.StandardCharsets;

/**
 * A module's answer to a {@link ControlRequest}.
 *
 * @param ok whether the request succeeded
 * @param body the answer's bytes (text or binary; UTF-8 text by convention); ownership passes to the engine
 */
public record ControlResponse(boolean ok, byte[] body) {

    /** A successful answer with a UTF-8 text body. */
    public static ControlResponse ok(String text) {
        return new ControlResponse(true, text.getBytes(StandardCharsets.UTF_8));
    }

    /** A successful answer with a binary body; ownership of {@code body} passes to the engine. */
    public static ControlResponse ok(byte[] body) {
        return new ControlResponse(true, body);
    }

    /** A failed answer with a UTF-8 message saying what was wrong and what to do. */
    public static ControlResponse error(String message) {
        return new ControlResponse(false, message.getBytes(StandardCharsets.UTF_8));
    }

    /** The body decoded as UTF-8. */
    public String bodyText() {
        return new String(body, StandardCharsets.UTF_8);
    }

    /** Equal when {@code ok} and the body's bytes are equal (a record compares arrays by identity). */
    @Override
    public final boolean equals(Object o) {
        return o instanceof ControlResponse r && ok == r.ok && java.util.Arrays.equals(body, r.body);
    }

    @Override
    public final int hashCode() {
        return 31 * Boolean.hashCode(ok) + java.util.Arrays.hashCode(body);
    }

    /** {@code ControlResponse[ok=true, body="3 records" (9 bytes)]}: the body as text when it is, else its first bytes in hex. */
    @Override
    public final String toString() {
        return "ControlResponse[ok=" + ok + ", body=" + ControlRequest.describe(body) + "]";
    }
}
