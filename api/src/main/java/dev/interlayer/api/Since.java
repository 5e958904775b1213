package dev.interlayer.api;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * The interface version that introduced a hook or a method. The agent never calls a hook newer than the
 * minor version a module declares for that interface, and refuses at load a module whose code calls a
 * method newer than it: a module declaring stream 1.1 that calls {@link StreamContext#rewrite()} (stream
 * 1.2) is refused, so it cannot fail on an agent that offers only 1.1. A method without {@code @Since} is
 * in every version of its major.
 *
 * <pre>{@code
 * @Since(type = InterfaceType.STREAM, major = 1, minor = 2)
 * MemorySegment rewrite();
 * }</pre>
 */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.METHOD)
public @interface Since {
    /** The interface the hook or method belongs to. */
    InterfaceType type();

    /** Major version of that interface. */
    int major();

    /** First minor version of that major that has the hook or method. */
    int minor();
}
