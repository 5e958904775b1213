package dev.interlayer.runtime;

import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.Param;
import dev.interlayer.api.ParamType;
import dev.interlayer.api.Params;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Checks raw parameter values (from YAML or a control request) against a module's declared {@link Param}s. */
public final class ParamValues implements Params {

    private static final Pattern SIZE = Pattern.compile("(\\d+)\\s*(B|KiB|MiB|GiB|TiB|kB|KB|MB|GB|TB|k|K|M|G)?");
    private static final Pattern DURATION = Pattern.compile("(\\d+)\\s*(ns|us|µs|ms|s|m|h|d)");

    private final String module;
    private final Map<String, Param> declared;
    private final Map<String, Object> values;

    private ParamValues(String module, Map<String, Param> declared, Map<String, Object> values) {
        this.module = module;
        this.declared = declared;
        this.values = values;
    }

    /**
     * Checks {@code raw} against {@code d}'s parameters and fills in defaults.
     *
     * @throws IllegalArgumentException naming the parameter, what was given and what is expected
     */
    public static ParamValues resolve(ModuleDescriptor d, Map<String, Object> raw) {
        Map<String, Param> declared = new LinkedHashMap<>();
        for (Param p : d.params()) {
            declared.put(p.name(), p);
        }
        if (raw == null) {
            raw = Map.of();
        }
        for (String k : raw.keySet()) {
            if (!declared.containsKey(k)) {
                throw new IllegalArgumentException("unknown parameter '" + k + "'; "
                        + (declared.isEmpty() ? "the module declares no parameters: remove it" : "known: " + String.join(", ", declared.keySet())));
            }
        }
        Map<String, Object> values = new LinkedHashMap<>();
        for (Param p : declared.values()) {
            Object v = raw.get(p.name());
            if (v == null) {
                if (p.required()) {
                    throw new IllegalArgumentException("parameter '" + p.name() + "' (" + describe(p.type()) + ") is required: set it in the"
                            + " module's config" + (p.description().isEmpty() ? "" : " (" + p.description() + ")"));
                }
                values.put(p.name(), p.defaultValue());
            } else {
                values.put(p.name(), convert(p, v));
            }
        }
        return new ParamValues(d.name(), declared, values);
    }

    /** A duration given as a {@link Duration} (the testkit, a programmatic config), as its text would be. */
    private static Duration checkedDuration(Param p, Duration d) {
        if (d.isNegative()) {
            throw new IllegalArgumentException("parameter '" + p.name() + "': " + d + " is negative; give a duration such as 250ms");
        }
        return d;
    }

    /** Converts one raw value to {@code p}'s type: config text, a number, a boolean, or (for durations) a Duration. */
    static Object convert(Param p, Object v) {
        String text = String.valueOf(v).trim();
        try {
            return switch (p.type()) {
                case INT -> {
                    long l = integer(v, text);
                    if (l < Integer.MIN_VALUE || l > Integer.MAX_VALUE) {
                        throw new IllegalArgumentException("parameter '" + p.name() + "': " + v + " is out of range for an integer;"
                                + " use a value from " + Integer.MIN_VALUE + " to " + Integer.MAX_VALUE);
                    }
                    yield (int) l;
                }
                case LONG -> integer(v, text);
                case BOOL -> {
                    if (v instanceof Boolean b) yield b;
                    if (text.equalsIgnoreCase("true") || text.equalsIgnoreCase("false")) yield Boolean.parseBoolean(text);
                    throw new NumberFormatException("not true/false");
                }
                case STRING -> text.equals(String.valueOf(v)) ? text : String.valueOf(v);
                case SIZE -> parseSize(text);
                case DURATION -> v instanceof Duration d ? checkedDuration(p, d) : parseDuration(text);
            };
        } catch (NumberFormatException | ArithmeticException e) {
            throw new IllegalArgumentException("parameter '" + p.name() + "': '" + v + "' is not " + describe(p.type()));
        }
    }

    /**
     * A whole number from a config value. Only the exact integer types are taken as numbers: a
     * BigInteger (YAML's type for huge literals) or a double would be silently truncated by
     * {@code longValue()}, so everything else goes through its text and is refused if not an exact long.
     */
    private static long integer(Object v, String text) {
        if (v instanceof Integer || v instanceof Long || v instanceof Short || v instanceof Byte) {
            return ((Number) v).longValue();
        }
        return Long.parseLong(text);
    }

    /** What a value of {@code t} looks like, for error messages. */
    public static String describe(ParamType t) {
        return switch (t) {
            case INT -> "an integer (e.g. 1000)";
            case LONG -> "an integer (e.g. 10000000000)";
            case BOOL -> "true or false";
            case STRING -> "a string";
            case SIZE -> "a size (e.g. 1500, 64KiB, 10MiB)";
            case DURATION -> "a duration (e.g. 250ms, 5s, 2m)";
        };
    }

    /**
     * Parses a byte size: {@code 1500}, {@code 64KiB}, {@code 10MiB}, {@code 1GiB}; kB/MB/GB are powers of 1000,
     * k/K/M/G powers of 1024.
     *
     * @throws NumberFormatException if malformed or negative
     */
    public static long parseSize(String text) {
        Matcher m = SIZE.matcher(text.trim());
        if (!m.matches()) {
            throw new NumberFormatException("'" + text + "' is not a size; expected e.g. 1500, 64KiB, 10MiB");
        }
        long n = Long.parseLong(m.group(1));
        String unit = m.group(2) == null ? "B" : m.group(2);
        long mult = switch (unit) {
            case "B" -> 1L;
            case "KiB", "k", "K" -> 1L << 10;
            case "MiB", "M" -> 1L << 20;
            case "GiB", "G" -> 1L << 30;
            case "TiB" -> 1L << 40;
            case "kB", "KB" -> 1000L;
            case "MB" -> 1000_000L;
            case "GB" -> 1000_000_000L;
            case "TB" -> 1000_000_000_000L;
            default -> throw new NumberFormatException(unit);
        };
        return Math.multiplyExact(n, mult);
    }

    /** Writes {@code bytes} for a message, in the largest binary unit that divides it: "64MiB", else "1500 bytes". */
    public static String formatSize(long bytes) {
        String[] units = {"TiB", "GiB", "MiB", "KiB"};
        for (int i = 0; i < units.length; i++) {
            long unit = 1L << (10 * (units.length - i));
            if (bytes != 0 && bytes % unit == 0) {
                return bytes / unit + units[i];
            }
        }
        return bytes + (bytes == 1 ? " byte" : " bytes");
    }

    /**
     * Parses a duration: {@code 100us}, {@code 250ms}, {@code 5s}, {@code 2m}, {@code 1h}, {@code 1d}.
     *
     * @throws NumberFormatException if malformed
     */
    public static Duration parseDuration(String text) {
        Matcher m = DURATION.matcher(text.trim());
        if (!m.matches()) {
            throw new NumberFormatException("'" + text + "' is not a duration; expected e.g. 250ms, 5s, 2m");
        }
        long n = Long.parseLong(m.group(1));
        return switch (m.group(2)) {
            case "ns" -> Duration.ofNanos(n);
            case "us", "µs" -> Duration.ofNanos(Math.multiplyExact(n, 1000L));
            case "ms" -> Duration.ofMillis(n);
            case "s" -> Duration.ofSeconds(n);
            case "m" -> Duration.ofMinutes(n);
            case "h" -> Duration.ofHours(n);
            case "d" -> Duration.ofDays(n);
            default -> throw new NumberFormatException(m.group(2));
        };
    }

    private Object get(String name, ParamType type) {
        Param p = declared.get(name);
        if (p == null) {
            throw new IllegalArgumentException("module " + module + " declares no parameter '" + name + "'");
        }
        if (p.type() != type) {
            throw new IllegalArgumentException("parameter '" + name + "' of module " + module + " is " + p.type() + ", not " + type);
        }
        return values.get(name);
    }

    @Override public int getInt(String name) { return (Integer) get(name, ParamType.INT); }
    @Override public long getLong(String name) { return (Long) get(name, ParamType.LONG); }
    @Override public boolean getBool(String name) { return (Boolean) get(name, ParamType.BOOL); }
    @Override public String getString(String name) { return (String) get(name, ParamType.STRING); }
    @Override public long getSize(String name) { return (Long) get(name, ParamType.SIZE); }
    @Override public Duration getDuration(String name) { return (Duration) get(name, ParamType.DURATION); }
    @Override public Set<String> names() { return declared.keySet(); }

    /** The resolved values by name (for reports). */
    public Map<String, Object> values() {
        return Map.copyOf(values);
    }
}
