package dev.interlayer.agent.logging;

import java.nio.file.Path;

/**
 * The {@code agent.log} section: how the agent's log lines look and where they go.
 *
 * @param json one JSON object per line instead of the one-line text format
 * @param file the file to append to instead of standard error, or null
 * @param maxSize the size past which the file is rotated ({@code agent.log} becomes {@code agent.log.1}); 0 never rotates
 * @param keep rotated files kept ({@code .1} to {@code .keep}), at least 1
 */
public record LogSettings(boolean json, Path file, long maxSize, int keep) {

    /** Text on standard error: what the agent does without an {@code agent.log} section. */
    public static final LogSettings DEFAULT = new LogSettings(false, null, 64L << 20, 8);
}
