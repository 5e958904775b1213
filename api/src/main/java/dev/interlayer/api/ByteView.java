package dev.interlayer.api;

/**
 * A read-only, position-based view of bytes lent to a module for the length of one call.
 *
 * <p>Ownership: the engine owns the bytes; the view is invalid once the call returns and any use after
 * that throws {@link IllegalStateException} naming the module. To keep bytes, copy them
 * ({@link #readFully(byte[], int, int)}, {@link #copyRemaining()}) or keep the whole chunk with
 * {@link StreamContext#hold()}.
 *
 * <p>The bytes need not be contiguous (several transport buffers may stand behind one view). Reads
 * start at the position and move it; {@link #advance(int)} and {@link #revert(int)} move it without
 * reading. Reads never modify the data. The position at return does not matter to the engine.
 *
 * <pre>{@code
 * byte[] header = new byte[4];
 * if (!data.readFully(header, 0, 4)) return Verdict.needMore(4);   // position unchanged
 * }</pre>
 */
public interface ByteView {

    /** Total number of bytes in the view. */
    int length();

    /** Current position, from 0 to {@link #length()}. */
    int position();

    /** Bytes between the position and the end. */
    int remaining();

    /**
     * Returns the byte at the position and moves past it.
     *
     * @throws IndexOutOfBoundsException if nothing remains
     */
    byte readByte();

    /**
     * Returns the byte {@code offset} bytes after the position, without moving.
     *
     * @throws IndexOutOfBoundsException if {@code offset} is outside {@code [0, remaining())}
     */
    byte peek(int offset);

    /**
     * Copies exactly {@code len} bytes into {@code dst} and moves past them, or copies nothing.
     *
     * @return true if {@code len} bytes were copied; false (position unchanged) if fewer remain
     */
    boolean readFully(byte[] dst, int off, int len);

    /**
     * Copies up to {@code len} bytes into {@code dst} and moves past them.
     *
     * @return the number of bytes copied, 0 when nothing remains
     */
    int read(byte[] dst, int off, int len);

    /**
     * Moves the position forward by {@code n} bytes.
     *
     * @throws IndexOutOfBoundsException if fewer than {@code n} bytes remain
     */
    void advance(int n);

    /**
     * Moves the position back by {@code n} bytes.
     *
     * @throws IndexOutOfBoundsException if {@code n > position()}
     */
    void revert(int n);

    /**
     * Returns the offset from the position of the first occurrence of {@code b}, or -1.
     */
    int indexOf(byte b);

    /** Returns a new array, owned by the caller, with the bytes from the position to the end; does not move. */
    byte[] copyRemaining();
}
