package dev.interlayer.testkit;

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

/**
 * Parameter values checked against a module's declared {@link Param}s, as the agent checks a config's.
 *
 * <p>Accepts what YAML would give (text such as {@code "64KiB"}, {@code "250ms"}, {@code "true"}) and typed Java
 * values ({@link Integer}, {@link Long}, {@link Boolean}, {@link String}, {@link Duration}); the notation is
 * the agent's: sizes {@code 1500, 64KiB, 10MiB, 1GiB} (kB/MB/GB are powers of 1000, k/K/M/G of 1024),
 * durations {@code 100us, 250ms, 5s, 2m, 1h, 1d}. Immutable once built.
 */
final class CheckedParams implements Params {

    private static final Pattern SIZE = Pattern.compile("(\\d+)\\s*(B|KiB|MiB|GiB|TiB|kB|KB|MB|GB|TB|k|K|M|G)?");
    private static final Pattern DURATION = Pattern.compile("(\\d+)\\s*(ns|us|µs|ms|s|m|h|d)");

    private final String module;
    private final Map<String, Param> declared;
    private final Map<String, Object> values;

    private CheckedParams(String module, Map<String, Param> declared, Map<String, Object> values) {
        this.module = module;
        this.declared = declared;
        this.values = values;
    }

    /**
     * Checks {@code raw} against {@code d}'s declared parameters and fills in defaults.
     *
     * @throws IllegalArgumentException naming the module, the parameter, the value and what is expected
     */
    static CheckedParams resolve(ModuleDescriptor d, Map<String, Object> raw) {
        Map<String, Param> declared = new LinkedHashMap<>();
        for (Param p : d.params()) {
            declared.put(p.name(), p);
        }
        for (String k : raw.keySet()) {
            if (!declared.containsKey(k)) {
                throw new IllegalArgumentException("module " + d.name() + ": unknown parameter '" + k + "'; "
                        + (declared.isEmpty() ? "the module declares no parameters" : "known: " + String.join(", ", declared.keySet())));
            }
        }
        Map<String, Object> values = new LinkedHashMap<>();
        for (Param p : declared.values()) {
            Object v = raw.get(p.name());
            if (v == null) {
                if (p.required()) {
                    throw new IllegalArgumentException("module " + d.name() + ": parameter '" + p.name() + "' (" + describe(p.type())
                            + ") is required: " + p.description());
                }
                values.put(p.name(), p.defaultValue());
            } else {
                values.put(p.name(), convert(d.name(), p, v));
            }
        }
        return new CheckedParams(d.name(), declared, values);
    }

    private static Object convert(String module, Param p, Object v) {
        String text = String.valueOf(v).trim();
        try {
            return switch (p.type()) {
                case INT -> {
                    long l = integral(v) ? ((Number) v).longValue() : Long.parseLong(text);
                    if (l < Integer.MIN_VALUE || l > Integer.MAX_VALUE) {
                        throw new NumberFormatException("out of int range");
                    }
                    yield (int) l;
                }
                case LONG -> integral(v) ? ((Number) v).longValue() : Long.parseLong(text);
                case BOOL -> {
                    if (v instanceof Boolean b) {
                        yield b;
                    }
                    if (text.equals("true") || text.equals("false")) {
                        yield Boolean.parseBoolean(text);
                    }
                    throw new NumberFormatException("not true/false");
                }
                case STRING -> {
                    if (!(v instanceof String || v instanceof Number || v instanceof Boolean)) {
                        throw new NumberFormatException("not text");
                    }
                    yield String.valueOf(v);
                }
                case SIZE -> {
                    long n = integral(v) ? ((Number) v).longValue() : parseSize(text);
                    if (n < 0) {
                        throw new NumberFormatException("negative");
                    }
                    yield n;
                }
                case DURATION -> v instanceof Duration dur ? dur : parseDuration(text);
            };
        } catch (NumberFormatException | ArithmeticException e) {
            throw new IllegalArgumentException("module " + module + ": parameter '" + p.name() + "': '" + v + "' is not " + describe(p.type()));
        }
    }

    private static boolean integral(Object v) {
        return v instanceof Integer || v instanceof Long || v instanceof Short || v instanceof Byte;
    }

    static String describe(ParamType t) {
        return switch (t) {
            case INT -> "an integer (e.g. 1000)";
            case LONG -> "an integer (e.g. 10000000000)";
            case BOOL -> "true or false";
            case STRING -> "a string";
            case SIZE -> "a size (e.g. 1500, 64KiB, 10MiB)";
            case DURATION -> "a duration (e.g. 250ms, 5s, 2m)";
        };
    }

    static long parseSize(String text) {
        Matcher m = SIZE.matcher(text.trim());
        if (!m.matches()) {
            throw new NumberFormatException(text);
        }
        long n = Long.parseLong(m.group(1));
        long mult = switch (m.group(2) == null ? "B" : m.group(2)) {
            case "KiB", "k", "K" -> 1L << 10;
            case "MiB", "M" -> 1L << 20;
            case "GiB", "G" -> 1L << 30;
            case "TiB" -> 1L << 40;
            case "kB", "KB" -> 1000L;
            case "MB" -> 1000_000L;
            case "GB" -> 1000_000_000L;
            case "TB" -> 1000_000_000_000L;
            default -> 1L;
        };
        return Math.multiplyExact(n, mult);
    }

    static Duration parseDuration(String text) {
        Matcher m = DURATION.matcher(text.trim());
        if (!m.matches()) {
            throw new NumberFormatException(text);
        }
        long n = Long.parseLong(m.group(1));
        return switch (m.group(2)) {
            case "ns" -> Duration.ofNanos(n);
            case "us", "µs" -> Duration.ofNanos(Math.multiplyExact(n, 1000L));
            case "ms" -> Duration.ofMillis(n);
            case "s" -> Duration.ofSeconds(n);
            case "m" -> Duration.ofMinutes(n);
            case "h" -> Duration.ofHours(n);
            default -> Duration.ofDays(n);
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
}
