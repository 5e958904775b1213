package dev.interlayer.api;

/**
 * A unit of customization code: the one type every module implements.
 *
 * <p>A jar lists its modules in {@code META-INF/services/dev.interlayer.api.Module} (several per jar
 * are allowed); each needs a public no-argument constructor. A module implements this interface
 * together with at least one interface type declared in its descriptor: {@link StreamModule},
 * {@link DatagramModule}, {@link SocketModule}, {@link TlsModule}. Every hook has a default, and a hook the module does not override costs
 * nothing at run time: the runtime detects overridden hooks once, at load.
 *
 * <p>Lifecycle: {@link #descriptor()} is read once at load; {@link #init(ModuleEnv)} runs once before
 * any attach; then {@link #attach(Attachment)} and {@link #detach(Object, DetachReason)} run once per
 * connection (every successful attach gets exactly one detach); {@link #fini()} runs once after the
 * last call into the module has returned.
 *
 * <p>Threading: attach, detach and the per-connection hooks run on the connection's event-loop
 * thread and must not block. State shared between connections must be thread-safe.
 *
 * <pre>{@code
 * public final class Upper implements StreamModule<Void> {
 *   public ModuleDescriptor descriptor() {
 *     return ModuleDescriptor.builder("upper", "1.0.0").implement(InterfaceType.STREAM, 1, 0).build();
 *   }
 *   public Verdict onSend(Void s, StreamContext ctx, ByteView data) {
 *     Output out = ctx.replace();
 *     while (data.remaining() > 0) out.writeByte(Character.toUpperCase(data.readByte()));
 *     return Verdict.PASS;
 *   }
 * }
 * }</pre>
 *
 * @param <S> the per-connection state this module keeps (the attachment's cookie)
 */
public interface Module<S> {

    /** Describes this module: name, version, interfaces and the API versions it was built against, parameters. */
    ModuleDescriptor descriptor();

    /**
     * Prepares the module before its first attach; runs once.
     *
     * @param env the module's parameters (already type-checked), logger and identity; valid until fini
     * @throws Exception to refuse loading: the module goes to {@code FAILED} with this message
     */
    default void init(ModuleEnv env) throws Exception {}

    /** Releases module-wide resources; runs once, after the last call into the module has returned. */
    default void fini() {}

    /**
     * Binds this module to a new connection and returns its per-connection state, or declines.
     *
     * <p>Runs on the connection's event loop before any data flows. The attachment handle stays valid
     * until {@link #detach}; keep it in the state to inject data or set timers later.
     *
     * @param attachment this module's handle on the connection: its info, inject, timers
     * @return {@link Attach#with(Object)} to attach with state, {@link Attach#decline()} to stay off
     */
    @SuppressWarnings("unchecked")
    default Attach<S> attach(Attachment attachment) {
        return (Attach<S>) Attach.stateless();
    }

    /**
     * Unbinds this module from a connection; called exactly once for every successful attach.
     *
     * <p>After it returns the engine releases everything the attachment still holds (held bytes,
     * timers). It must not fail; an exception is logged and counted.
     *
     * @param state the state {@link #attach} returned
     * @param reason why the module is leaving the connection
     */
    default void detach(S state, DetachReason reason) {}
}
