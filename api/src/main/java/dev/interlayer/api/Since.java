package dev.interlayer.api;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * The interface version that introduced a hook; the runtime never calls a hook newer than the minor
 * version a module declares for that interface.
 */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.METHOD)
public @interface Since {
    /** Major version of the interface the hook belongs to. */
    int major();

    /** First minor version of that major that has the hook. */
    int minor();
}
