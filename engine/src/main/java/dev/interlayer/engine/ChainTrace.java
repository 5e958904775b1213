package dev.interlayer.engine;

import dev.interlayer.api.ConnectionInfo;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.Verdict;

/**
 * Sees every step of the module chains of an {@link EmbeddedEngine}: each data-hook call and its verdict, each accepted
 * inject, each detach, and each breach of the SDK's contract. The testkit's harness is one; the agent has none (the
 * engine checks for one with a single null test per hook call).
 *
 * <p>Threading: called on the connection's event loop, except {@link #breach} and {@link #injected}, which a module
 * may cause from any thread.
 */
public interface ChainTrace {

    /** The contract rules the engine checks; a breach is reported here and then handled as the agent handles it. */
    enum Breach {
        /** A {@code ByteView} was used after the call it was lent to returned (the module gets an IllegalStateException). */
        VIEW_AFTER_CALL,
        /** The output of {@code ctx.replace()}, or an allocated output already injected, was written after it stopped being valid. */
        REPLACE_AFTER_CALL,
        /** A {@code StreamContext} or {@code DatagramContext} was used after its call returned. */
        CONTEXT_AFTER_CALL,
        /** The hook returned HOLD without calling {@code ctx.hold()} (a fault). */
        HOLD_WITHOUT_HOLD_CALL,
        /** The hook called {@code ctx.hold()} but returned something else (a fault). */
        HOLD_CALL_WITHOUT_HOLD,
        /** A hook, attach or a socket decision returned null (a fault). */
        NULL_VERDICT,
        /** The module reset or closed the connection during a call, then returned a verdict that forwards or keeps bytes. */
        VERDICT_AFTER_CLOSE,
        /** An inject would take what waits on the connection past its hold limit (refused, and a fault). */
        INJECT_BEYOND_HOLD_LIMIT,
        /** {@code needMore(n)} with no more bytes than the call had (the engine waits for one more byte). */
        NEED_MORE_TOO_SMALL,
        /** {@code onEnd} returned NEED_MORE (a fault: nothing comes after the end). */
        END_VERDICT
    }

    /**
     * A data hook ({@code onSend}, {@code onRecv}, {@code onEnd}, {@code onDatagram}) returned.
     *
     * @param conn the connection or flow
     * @param module the module's name
     * @param hook the hook
     * @param direction the direction of the chunk
     * @param length bytes the module was shown
     * @param injectedBy the module that injected the chunk, or null
     * @param tag the injector's tag (0 if none)
     * @param verdict what the hook returned; null if it threw or returned null
     */
    void called(ConnectionInfo conn, String module, String hook, Direction direction, int length, String injectedBy, long tag,
                Verdict verdict);

    /** {@code module} injected {@code length} bytes into {@code direction} (HeldBytes injected: tag 0). */
    void injected(ConnectionInfo conn, String module, Direction direction, int length, long tag);

    /** {@code module}'s detach hook ran (or would have: every successful attach is detached once). */
    void detached(ConnectionInfo conn, String module, DetachReason reason);

    /** {@code module} broke a rule of the contract; the engine then does what the agent does. */
    void breach(ConnectionInfo conn, String module, Breach rule, String detail);
}
