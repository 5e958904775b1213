package dev.interlayer.api;

/**
 * The {@code datagram} interface: hooks on the datagrams of a UDP flow, one call per datagram.
 *
 * <p>A flow is the agent's session for one peer address on a UDP listener (the 5-tuple): it has its own
 * upstream socket, per-flow module state from {@link #attach}, and ends after an idle timeout (detach
 * reason {@link DetachReason#CLOSED}). Modules on a flow form a chain: {@link Direction#SEND} datagrams
 * pass them in priority order, {@link Direction#RECV} datagrams in reverse order, and each module sees the
 * previous module's output.
 *
 * <pre>
 *   local app                                                         network
 *      |  SEND -->  [ prio 10 ] --> [ prio 20 ] --> [ prio 30 ] -->  |   one call per datagram
 *      |  <-- RECV  [ prio 10 ] <-- [ prio 20 ] <-- [ prio 30 ] <--  |
 * </pre>
 *
 * <p>Unlike a stream chunk, the view always holds exactly one whole datagram, and boundaries are kept: what
 * a module forwards leaves the agent as exactly one datagram (a replacement included), never merged, split
 * or truncated. The verdicts that make sense for messages apply:
 * <ul>
 *   <li>{@link Verdict#PASS}: forward the datagram, or the replacement written with
 *       {@link DatagramContext#replace()} (an empty replacement sends nothing, like {@link Verdict#DROP};
 *       zero-length datagrams are not forwarded). A replacement larger than 65,507 bytes (the UDP payload limit
 *       over IPv4) is a fault: never truncated.
 *   <li>{@link Verdict#DROP}: discard the datagram; the sender is not told.
 *   <li>{@link Verdict#HOLD}: the module took the datagram with {@link DatagramContext#hold()}; it may
 *       inject it (as one datagram) later or release it.
 *   <li>{@link Verdict#DETACH}: as PASS, then never call this module on this flow again.
 *   <li>{@link Verdict#error(int, String)}: end the flow at once (its module state is detached) and record the
 *       reason; later datagrams from the same peer start a new flow.
 *   <li>{@link Verdict#needMore(int)} and {@link Verdict#CLOSE} have no meaning for messages: returning
 *       them is a fault, handled by the module's fault policy.
 * </ul>
 *
 * <p>{@link Attachment#inject(Direction, byte[])} sends one whole datagram per call. Version history: 1.0
 * {@code onSend}, {@code onRecv}.
 *
 * <pre>{@code
 * public final class Upper implements DatagramModule<Void> {
 *   public ModuleDescriptor descriptor() {
 *     return ModuleDescriptor.builder("upper-udp", "1.0.0").implement(InterfaceType.DATAGRAM, 1, 0).build();
 *   }
 *   public Verdict onSend(Void s, DatagramContext ctx, ByteView datagram) {
 *     Output out = ctx.replace();
 *     while (datagram.remaining() > 0) out.writeByte(Character.toUpperCase(datagram.readByte()));
 *     return Verdict.PASS;
 *   }
 * }
 * }</pre>
 *
 * @param <S> the per-flow state
 */
public interface DatagramModule<S> extends Module<S> {

    /**
     * Sees one datagram travelling from the local application toward the network.
     *
     * @param state the state {@link #attach} returned for this flow
     * @param ctx the call's context: replacement output, hold, inject mark; valid only during this call
     * @param datagram the whole datagram, lent for this call only (read-only)
     * @return what the engine does with the datagram; see the interface's list of verdicts
     */
    @Since(type = InterfaceType.DATAGRAM, major = 1, minor = 0)
    default Verdict onSend(S state, DatagramContext ctx, ByteView datagram) {
        return Verdict.PASS;
    }

    /**
     * Sees one datagram travelling from the network toward the local application.
     *
     * @param state the state {@link #attach} returned for this flow
     * @param ctx the call's context: replacement output, hold, inject mark; valid only during this call
     * @param datagram the whole datagram, lent for this call only (read-only)
     * @return what the engine does with the datagram; see the interface's list of verdicts
     */
    @Since(type = InterfaceType.DATAGRAM, major = 1, minor = 0)
    default Verdict onRecv(S state, DatagramContext ctx, ByteView datagram) {
        return Verdict.PASS;
    }
}
