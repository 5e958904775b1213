package dev.interlayer.api;

import java.util.ArrayList;
import java.util.List;

/**
 * An inclusive range of ports, {@code 80} or {@code 8000-8100}.
 *
 * @param from first port
 * @param to last port, at least {@code from}
 */
public record PortRange(int from, int to) {

    /** Checks 0 ≤ from ≤ to ≤ 65535. */
    public PortRange {
        if (from < 0 || to > 65535 || from > to) {
            throw new IllegalArgumentException("port range " + from + "-" + to + " must satisfy 0 <= from <= to <= 65535");
        }
    }

    /** True if {@code port} is in the range. */
    public boolean contains(int port) {
        return port >= from && port <= to;
    }

    /**
     * Parses {@code "80"} or {@code "8000-8100"}.
     *
     * @throws IllegalArgumentException saying what is wrong
     */
    public static PortRange parse(String text) {
        String t = text.trim();
        int dash = t.indexOf('-');
        try {
            if (dash < 0) {
                int p = Integer.parseInt(t);
                return new PortRange(p, p);
            }
            return new PortRange(Integer.parseInt(t.substring(0, dash).trim()), Integer.parseInt(t.substring(dash + 1).trim()));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "' is not a port or port range; expected e.g. 443 or 8000-8100");
        }
    }

    /** Parses a comma-separated list: {@code "80,443,8000-8100"}. */
    public static List<PortRange> parseList(String list) {
        List<PortRange> out = new ArrayList<>();
        for (String part : list.split(",")) {
            if (!part.isBlank()) {
                out.add(parse(part));
            }
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException("empty port list; expected e.g. 80,443,8000-8100");
        }
        return out;
    }

    @Override
    public String toString() {
        return from == to ? Integer.toString(from) : from + "-" + to;
    }
}
