package dev.interlayer.api;

import java.time.Duration;
import java.util.Set;

/**
 * A module's parameter values, checked against its declared {@link Param}s before {@link Module#init}.
 *
 * <p>Every declared parameter has a value (the config's or the default), so getters never return null
 * for a declared name; asking for an undeclared name or the wrong type throws
 * {@link IllegalArgumentException}.
 */
public interface Params {

    /** The value of an INT parameter. */
    int getInt(String name);

    /** The value of a LONG parameter. */
    long getLong(String name);

    /** The value of a BOOL parameter. */
    boolean getBool(String name);

    /** The value of a STRING parameter. */
    String getString(String name);

    /** The value of a SIZE parameter, in bytes. */
    long getSize(String name);

    /** The value of a DURATION parameter. */
    Duration getDuration(String name);

    /** Names of all declared parameters. */
    Set<String> names();
}
