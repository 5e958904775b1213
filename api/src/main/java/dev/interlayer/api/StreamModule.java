package dev.interlayer.api;

/**
 * The {@code stream} interface: hooks on the bytes of a TCP connection, one call per chunk.
 *
 * <p>Modules on a connection form a chain. {@link Direction#SEND} data passes them in priority order,
 * {@link Direction#RECV} data in reverse order, so stacked transformations undo in the right order.
 * Each module sees the previous module's output. Chunk boundaries are whatever the transport
 * delivered: a module must not assume a chunk is a message.
 *
 * <pre>
 *   local app                                                     network
 *      |  SEND -->  [ prio 10 ] --> [ prio 20 ] --> [ prio 30 ] -->  |
 *      |  <-- RECV  [ prio 10 ] <-- [ prio 20 ] <-- [ prio 30 ] <--  |
 * </pre>
 *
 * <p>Version history: 1.0 {@code onSend}, {@code onRecv}; 1.1 adds {@link #onEnd}. The engine never calls
 * a hook newer than the minor version the module declares for {@link InterfaceType#STREAM}.
 *
 * @param <S> the per-connection state
 */
public interface StreamModule<S> extends Module<S> {

    /**
     * Sees a chunk travelling from the local application toward the network.
     *
     * @param state the state {@link #attach} returned
     * @param ctx the call's context: replacement output, hold, inject mark; valid only during this call
     * @param data the bytes, lent for this call only (read-only, not necessarily contiguous)
     * @return what the engine does with the chunk; see {@link Verdict}
     */
    @Since(type = InterfaceType.STREAM, major = 1, minor = 0)
    default Verdict onSend(S state, StreamContext ctx, ByteView data) {
        return Verdict.PASS;
    }

    /**
     * Sees a chunk travelling from the network toward the local application.
     *
     * @param state the state {@link #attach} returned
     * @param ctx the call's context: replacement output, hold, inject mark; valid only during this call
     * @param data the bytes, lent for this call only (read-only, not necessarily contiguous)
     * @return what the engine does with the chunk; see {@link Verdict}
     */
    @Since(type = InterfaceType.STREAM, major = 1, minor = 0)
    default Verdict onRecv(S state, StreamContext ctx, ByteView data) {
        return Verdict.PASS;
    }

    /**
     * Learns that no more data will arrive in {@code ctx.direction()} (the sender half-closed).
     *
     * <p>Last chance to emit bytes the module kept back (a partial frame, a NEED_MORE remainder the
     * engine hands in as {@code rest}): write them with {@link StreamContext#replace()} and return
     * {@link Verdict#PASS}. Then the half-close propagates. Returning {@link Verdict#ERROR} resets.
     *
     * @param state the state {@link #attach} returned
     * @param ctx the call's context; {@code ctx.direction()} is the direction that ended
     * @param rest bytes still buffered for this module by an earlier NEED_MORE (often empty)
     * @return PASS (with optional replacement) to forward {@code rest} or the replacement and end the direction
     */
    @Since(type = InterfaceType.STREAM, major = 1, minor = 1)
    default Verdict onEnd(S state, StreamContext ctx, ByteView rest) {
        return Verdict.PASS;
    }
}
