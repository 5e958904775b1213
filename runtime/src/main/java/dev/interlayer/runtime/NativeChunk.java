package dev.interlayer.runtime;

import java.nio.ByteBuffer;

/**
 * The engine's side of handing a chunk to a C module without copying it: a {@code ByteView} the engine lends also
 * says where its bytes are in native memory.
 *
 * <p>Ownership stays with the engine; an address is valid during the hook call it was read in, on that thread.
 */
public interface NativeChunk {

    /** Address of the view's first byte (position 0) when all its bytes are contiguous in native memory; else 0. */
    long address();

    /** Copies every byte of the view (from position 0) into {@code dst} from its index 0; {@code dst} has room for them. */
    void copyTo(ByteBuffer dst);
}
