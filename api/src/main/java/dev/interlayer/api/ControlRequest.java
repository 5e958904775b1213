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
}
