package dev.interlayer.api;

import java.nio.charset.StandardCharsets;

/**
 * A module-specific request from the control plane.
 *
 * @param command the verb the module understands (for example {@code dump}, {@code on}, {@code off})
 * @param body request payload; a new array owned by the module
 * @param caller a description of the authenticated caller, for the module's own logging
 */
public record ControlRequest(String command, byte[] body, String caller) {

    /** The body decoded as UTF-8. */
    public String bodyText() {
        return new String(body, StandardCharsets.UTF_8);
    }

    /** Equal when the command, the body's bytes and the caller are equal (a record compares arrays by identity). */
    @Override
    public final boolean equals(Object o) {
        return o instanceof ControlRequest r && java.util.Objects.equals(command, r.command) && java.util.Arrays.equals(body, r.body)
                && java.util.Objects.equals(caller, r.caller);
    }

    @Override
    public final int hashCode() {
        return java.util.Objects.hash(command, java.util.Arrays.hashCode(body), caller);
    }

    /** {@code ControlRequest[command=dump, body="" (0 bytes), caller=uid 0 (root)]}. */
    @Override
    public final String toString() {
        return "ControlRequest[command=" + command + ", body=" + describe(body) + ", caller=" + caller + "]";
    }

    /** A body for a log line: quoted text (first 200 characters) when it is printable UTF-8, else its first 32 bytes in hex. */
    static String describe(byte[] body) {
        if (body == null) {
            return "null";
        }
        String size = " (" + body.length + (body.length == 1 ? " byte)" : " bytes)");
        java.nio.charset.CharsetDecoder d = StandardCharsets.UTF_8.newDecoder();
        try {
            String text = d.decode(java.nio.ByteBuffer.wrap(body)).toString();
            if (text.codePoints().allMatch(c -> c >= 0x20 && c != 0x7f || c == '\n' || c == '\r' || c == '\t')) {
                String shown = text.length() > 200 ? text.substring(0, 200) + "…" : text;
                return "\"" + shown.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
                        + "\"" + size;
            }
        } catch (java.nio.charset.CharacterCodingException e) {
            // not text: hex below
        }
        return java.util.HexFormat.of().formatHex(body, 0, Math.min(body.length, 32)) + (body.length > 32 ? "…" : "") + size;
    }
}
