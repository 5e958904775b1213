package dev.interlayer.agent;

import java.util.List;

/**
 * A config file has problems; {@link #problems()} lists every one found, each with the file and line.
 *
 * <p>The message is the problems, one per line, in the form {@code FILE:LINE: path.to.field: what is wrong; expected …}.
 */
public final class ConfigException extends Exception {

    /**
     * One problem in a config file.
     *
     * @param file the config file as the user named it
     * @param line 1-based line, or 0 when the problem concerns the whole file
     * @param path the field, e.g. {@code listeners[0].listen}, or empty for the whole file
     * @param message what is wrong and what is expected
     */
    public record Problem(String file, int line, String path, String message) {

        @Override
        public String toString() {
            return file + (line > 0 ? ":" + line : "") + ": " + (path.isEmpty() ? "" : path + ": ") + message;
        }
    }

    private final List<Problem> problems;

    /** Wraps the problems found; there is at least one. */
    public ConfigException(List<Problem> problems) {
        super(render(problems));
        if (problems.isEmpty()) {
            throw new IllegalArgumentException("a ConfigException needs at least one problem");
        }
        this.problems = List.copyOf(problems);
    }

    /** Every problem found, in file order. */
    public List<Problem> problems() {
        return problems;
    }

    private static String render(List<Problem> problems) {
        StringBuilder sb = new StringBuilder();
        for (Problem p : problems) {
            sb.append(sb.isEmpty() ? "" : "\n").append(p);
        }
        return sb.toString();
    }
}
