package dev.interlayer.api;

/** The type of a module parameter, with how a value is written in a config. */
public enum ParamType {
    /** A 32-bit integer: {@code 1000}. */
    INT,
    /** A 64-bit integer: {@code 10000000000}. */
    LONG,
    /** {@code true} or {@code false}. */
    BOOL,
    /** Any text. */
    STRING,
    /** A byte size: {@code 1500}, {@code 64KiB}, {@code 10MiB}, {@code 1GiB} (also kB, MB, GB as powers of 1000). */
    SIZE,
    /** A duration: {@code 250ms}, {@code 5s}, {@code 2m}, {@code 1h}, {@code 100us}. */
    DURATION
}
