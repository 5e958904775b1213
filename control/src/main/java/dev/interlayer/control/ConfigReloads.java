package dev.interlayer.control;

import java.time.Instant;
import java.util.List;

/** The agent's config file, as the {@code Config} endpoint and {@code Health.Check} see it: reload it, and what is in force. */
public interface ConfigReloads {

    /**
     * What one reload did.
     *
     * @param applied true: the new config is in force; false: refused or undone, the running config is unchanged
     * @param changes what changed, one line each
     * @param problems why it was refused or undone, one line each
     * @param warnings what was applied but deserves a look
     */
    record Outcome(boolean applied, List<String> changes, List<String> problems, List<String> warnings) {

        public Outcome {
            changes = List.copyOf(changes);
            problems = List.copyOf(problems);
            warnings = List.copyOf(warnings);
        }
    }

    /**
     * The config in force.
     *
     * @param source the config file as the agent was started with it
     * @param loadedAt when it was loaded (at start, or by the last applied reload)
     * @param refused the problems of the last reload that was refused or undone, one per line, or null if the last one was applied
     * @param refusedAt when that was, or null
     */
    record State(String source, Instant loadedAt, String refused, Instant refusedAt) {}

    /** Reads the config file again and applies it, or refuses it; {@code trigger} says who asked (for the log). */
    Outcome reload(String trigger);

    /** The config in force, and the last refused reload. */
    State state();
}
