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
}
