package dev.interlayer.api;

/**
 * An engine-allocated, growable buffer a module writes bytes into: a chunk's replacement or injected data.
 *
 * <p>Ownership: the engine allocates and owns it. A replacement ({@link StreamContext#replace()}) is
 * valid during the hook call only; an output from {@link Attachment#allocate(int)} is owned by the
 * module until it is passed to {@link Attachment#inject(Direction, Output)} or {@link #discard()}ed.
 * Writes are bounded by the connection's hold limit; exceeding it throws {@link IllegalStateException}.
 */
public interface Output {

    /** Appends one byte. */
    Output writeByte(int b);

    /** Appends {@code len} bytes of {@code src} from {@code off}. */
    Output write(byte[] src, int off, int len);

    /** Appends all of {@code src}. */
    default Output write(byte[] src) {
        return write(src, 0, src.length);
    }

    /** Appends the bytes of {@code view} from its position to its end, and moves the view to its end. */
    Output write(ByteView view);

    /** Appends {@code len} bytes of {@code view} from its position and moves the view past them. */
    Output write(ByteView view, int len);

    /** Number of bytes written so far. */
    int size();

    /** Gives the buffer back to the engine unsent; later writes throw. Idempotent. */
    void discard();
}
