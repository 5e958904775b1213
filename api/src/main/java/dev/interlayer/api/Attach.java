package dev.interlayer.api;

/**
 * The answer of {@link Module#attach}: attach with per-connection state, or decline the connection.
 *
 * @param <S> the state type
 */
public final class Attach<S> {

    private static final Attach<Object> DECLINE = new Attach<>(null, false);
    private static final Attach<Object> STATELESS = new Attach<>(null, true);

    private final S state;
    private final boolean attached;

    private Attach(S state, boolean attached) {
        this.state = state;
        this.attached = attached;
    }

    /** Attach, keeping {@code state} for this connection (may be null). */
    public static <S> Attach<S> with(S state) {
        return state == null ? stateless() : new Attach<>(state, true);
    }

    /** Attach without per-connection state. */
    @SuppressWarnings("unchecked")
    public static <S> Attach<S> stateless() {
        return (Attach<S>) STATELESS;
    }

    /** Stay off this connection; no detach will follow. */
    @SuppressWarnings("unchecked")
    public static <S> Attach<S> decline() {
        return (Attach<S>) DECLINE;
    }

    /** True unless declined. */
    public boolean attached() {
        return attached;
    }

    /** The per-connection state (null for stateless or declined). */
    public S state() {
        return state;
    }
}
