package dev.interlayer.api;

/**
 * A chunk a module took out of the stream with {@link StreamContext#hold()}: its ownership passes to the
 * module until it is injected or released.
 *
 * <p>Held bytes count against the connection's hold limit until they are injected with
 * {@link Attachment#inject(Direction, HeldBytes)} or {@link #release()}d. The engine releases whatever
 * an attachment still holds when the module detaches, so a forgotten hold cannot leak.
 * May be used from any thread.
 */
public interface HeldBytes {

    /** Number of bytes held. */
    int length();

    /** Returns a new array, owned by the caller, with a copy of the held bytes. */
    byte[] toByteArray();

    /** Gives the bytes back to the engine without sending them. Idempotent. */
    void release();

    /** True until the bytes were injected or released. */
    boolean isHeld();
}
