package dev.interlayer.api;

/**
 * What the engine does with the chunk a data hook was given; one verdict per call.
 *
 * <table>
 *   <caption>Verdicts</caption>
 *   <tr><th>verdict</th><th>effect</th></tr>
 *   <tr><td>{@link #PASS}</td><td>forward the chunk to the next module, or the replacement written with
 *       {@link StreamContext#replace()} (an empty replacement forwards nothing)</td></tr>
 *   <tr><td>{@link #DROP}</td><td>discard the chunk; the sender is not told</td></tr>
 *   <tr><td>{@link #HOLD}</td><td>the module keeps the chunk (it called {@link StreamContext#hold()}) and may
 *       inject it, or other bytes, later</td></tr>
 *   <tr><td>{@link #needMore(int)}</td><td>deliver nothing yet; call again with this chunk and the following
 *       ones once at least n bytes are buffered (bounded by the connection's hold limit)</td></tr>
 *   <tr><td>{@link #DETACH}</td><td>act as PASS for this chunk, then never call this module on this
 *       connection again, in either direction</td></tr>
 *   <tr><td>{@link #error(int, String)}</td><td>abort the connection (reset both sides) and record the reason</td></tr>
 *   <tr><td>{@link #CLOSE}</td><td>discard this chunk, flush what is already forwarded, then close both sides
 *       gracefully</td></tr>
 * </table>
 *
 * <p>For {@link DatagramModule} hooks the verdicts apply to one whole datagram; {@code needMore} and {@code CLOSE}
 * have no meaning there and returning them is a fault (see {@link DatagramModule}).
 *
 * <p>The constants are shared instances; returning them allocates nothing.
 */
public final class Verdict {

    /** The kind of a verdict, for code that switches over it. */
    public enum Kind { PASS, DROP, HOLD, NEED_MORE, DETACH, ERROR, CLOSE }

    /** Forward the chunk (or the replacement written during the call). */
    public static final Verdict PASS = new Verdict(Kind.PASS, 0, null);
    /** Discard the chunk silently. */
    public static final Verdict DROP = new Verdict(Kind.DROP, 0, null);
    /** The module keeps the chunk; see {@link StreamContext#hold()}. */
    public static final Verdict HOLD = new Verdict(Kind.HOLD, 0, null);
    /** Forward this chunk, then stop calling this module on this connection. */
    public static final Verdict DETACH = new Verdict(Kind.DETACH, 0, null);
    /** Discard this chunk and close the connection gracefully after flushing forwarded data. */
    public static final Verdict CLOSE = new Verdict(Kind.CLOSE, 0, null);

    private static final Verdict[] NEED_MORE_SMALL = new Verdict[257];

    static {
        for (int i = 1; i < NEED_MORE_SMALL.length; i++) {
            NEED_MORE_SMALL[i] = new Verdict(Kind.NEED_MORE, i, null);
        }
    }

    private final Kind kind;
    private final int value;
    private final String reason;

    private Verdict(Kind kind, int value, String reason) {
        this.kind = kind;
        this.value = value;
        this.reason = reason;
    }

    /**
     * Deliver nothing yet: call the module again once at least {@code bytes} bytes are buffered for it.
     *
     * <p>The next call sees everything buffered so far as one view. Values up to 256 are cached.
     *
     * @param bytes the total number of bytes the module needs to see, at least 1
     * @throws IllegalArgumentException if {@code bytes < 1}
     */
    public static Verdict needMore(int bytes) {
        if (bytes < 1) {
            throw new IllegalArgumentException("needMore(" + bytes + "): must ask for at least 1 byte");
        }
        return bytes < NEED_MORE_SMALL.length ? NEED_MORE_SMALL[bytes] : new Verdict(Kind.NEED_MORE, bytes, null);
    }

    /**
     * Abort the connection: both sides are reset and {@code reason} is recorded against this module.
     *
     * @param code a module-defined error code (not 0), logged and counted
     * @param reason a human-readable reason, logged with the module's name
     */
    public static Verdict error(int code, String reason) {
        if (code == 0) {
            throw new IllegalArgumentException("error code 0 means success; use a non-zero code");
        }
        return new Verdict(Kind.ERROR, code, reason == null ? "" : reason);
    }

    /** The kind of this verdict. */
    public Kind kind() {
        return kind;
    }

    /** For {@link Kind#NEED_MORE}, the number of bytes wanted; for {@link Kind#ERROR}, the code; else 0. */
    public int value() {
        return value;
    }

    /** For {@link Kind#ERROR}, the reason; else null. */
    public String reason() {
        return reason;
    }

    @Override
    public String toString() {
        return switch (kind) {
            case NEED_MORE -> "NEED_MORE(" + value + ")";
            case ERROR -> "ERROR(" + value + ", " + reason + ")";
            default -> kind.name();
        };
    }
}
