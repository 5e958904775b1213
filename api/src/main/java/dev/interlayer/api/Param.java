package dev.interlayer.api;

import java.time.Duration;
import java.util.Objects;

/**
 * A typed parameter a module declares in its descriptor; configs supply values, checked against the type.
 *
 * <pre>{@code
 * Param.ofInt("every", 1000, "bytes between two tags")
 * Param.ofString("tag", "IL", "tag text inserted into the stream")
 * }</pre>
 *
 * @param name the parameter's name in configs ({@code lower-kebab-case})
 * @param type its type
 * @param defaultValue the value used when the config gives none, already of the type's Java class
 *                     (Integer, Long, Boolean, String, Long bytes, Duration); null means required
 * @param description one line for {@code check-module} and the docs
 */
public record Param(String name, ParamType type, Object defaultValue, String description) {

    /** Validates the name and the default's class. */
    public Param {
        Objects.requireNonNull(type, "type");
        if (name == null || !name.matches("[a-z][a-z0-9-]{0,62}")) {
            throw new IllegalArgumentException("parameter name '" + name + "' must be lower-kebab-case: [a-z][a-z0-9-]{0,62}");
        }
        if (defaultValue != null && !javaType(type).isInstance(defaultValue)) {
            throw new IllegalArgumentException("default of parameter '" + name + "' must be a " + javaType(type).getSimpleName()
                    + ", not " + defaultValue.getClass().getSimpleName());
        }
        description = description == null ? "" : description;
    }

    /** An int parameter. */
    public static Param ofInt(String name, int defaultValue, String description) {
        return new Param(name, ParamType.INT, defaultValue, description);
    }

    /** A long parameter. */
    public static Param ofLong(String name, long defaultValue, String description) {
        return new Param(name, ParamType.LONG, defaultValue, description);
    }

    /** A boolean parameter. */
    public static Param ofBool(String name, boolean defaultValue, String description) {
        return new Param(name, ParamType.BOOL, defaultValue, description);
    }

    /** A string parameter; a null default makes it required. */
    public static Param ofString(String name, String defaultValue, String description) {
        return new Param(name, ParamType.STRING, defaultValue, description);
    }

    /** A byte-size parameter, in bytes. */
    public static Param ofSize(String name, long defaultBytes, String description) {
        return new Param(name, ParamType.SIZE, defaultBytes, description);
    }

    /** A duration parameter. */
    public static Param ofDuration(String name, Duration defaultValue, String description) {
        return new Param(name, ParamType.DURATION, defaultValue, description);
    }

    /** True when the parameter has no default and a config must set it. */
    public boolean required() {
        return defaultValue == null;
    }

    /** The Java class of values of {@code type}. */
    public static Class<?> javaType(ParamType type) {
        return switch (type) {
            case INT -> Integer.class;
            case LONG, SIZE -> Long.class;
            case BOOL -> Boolean.class;
            case STRING -> String.class;
            case DURATION -> Duration.class;
        };
    }
}
