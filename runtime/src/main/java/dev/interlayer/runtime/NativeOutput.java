package dev.interlayer.runtime;

/**
 * The engine's side of letting a C module write a replacement straight into the engine's buffer.
 *
 * <p>Ownership of the buffer stays with the engine; an address is valid until the next {@link #reserve} or the end of the
 * call.
 */
public interface NativeOutput {

    /**
     * Appends {@code len} bytes (their content undefined until the caller writes them) and returns their address in
     * native memory.
     *
     * @throws IllegalStateException if the output is closed or would exceed the connection's hold limit
     */
    long reserve(int len);
}
