package dev.interlayer.runtime;

import java.time.Instant;

/**
 * A module or package that is {@link ModuleState#FAILED}: where it came from and why.
 *
 * @param source the jar path or {@code builtin:...}
 * @param module the module name if known, else null
 * @param error what went wrong and what to do
 * @param at when
 */
public record Failure(String source, String module, String error, Instant at) {}
