package dev.interlayer.bench.pass;

import dev.interlayer.api.AttachMode;
import dev.interlayer.api.ByteView;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.StreamContext;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.Verdict;

/**
 * Sees every chunk in both directions and passes it unchanged: what a module costs when it does nothing.
 *
 * <p>Overriding both data hooks keeps the engine off its no-module fast path, so the difference to an agent
 * without modules is the dispatch itself.
 *
 * <p>The jar holds eight of them, {@code pass} and {@code pass-2} … {@code pass-8}, so that a chain of up to
 * eight modules can be measured from one jar. {@code pass} attaches globally by default; the others are
 * programmatic by default, so dropping the jar into a modules folder still adds exactly one module. A benchmark
 * that wants a chain of N sets {@code mode: global} on {@code pass-2} … {@code pass-N}:
 *
 * <pre>{@code
 * modules:
 *   - {name: pass-2, mode: global}
 *   - {name: pass-3, mode: global}
 * }</pre>
 */
public class PassModule implements StreamModule<Void> {

    private final String name;
    private final AttachMode mode;
    private final int priority;

    /** The module {@code pass}: global by default. */
    public PassModule() {
        this(1);
    }

    /** Chain member {@code index} (2..8): named {@code pass-index}, programmatic by default. */
    protected PassModule(int index) {
        this.name = index == 1 ? "pass" : "pass-" + index;
        this.mode = index == 1 ? AttachMode.GLOBAL : AttachMode.PROGRAMMATIC;
        this.priority = 100 + index;
    }

    @Override
    public final ModuleDescriptor descriptor() {
        return ModuleDescriptor.builder(name, "1.0.0")
                .description("passes every chunk unchanged (benchmark baseline)")
                .implement(InterfaceType.STREAM, 1, 1)
                .priority(priority)
                .attachMode(mode)
                .build();
    }

    @Override
    public final Verdict onSend(Void state, StreamContext ctx, ByteView data) {
        return Verdict.PASS;
    }

    @Override
    public final Verdict onRecv(Void state, StreamContext ctx, ByteView data) {
        return Verdict.PASS;
    }

    /** {@code pass-2}. */
    public static final class Pass2 extends PassModule { public Pass2() { super(2); } }
    /** {@code pass-3}. */
    public static final class Pass3 extends PassModule { public Pass3() { super(3); } }
    /** {@code pass-4}. */
    public static final class Pass4 extends PassModule { public Pass4() { super(4); } }
    /** {@code pass-5}. */
    public static final class Pass5 extends PassModule { public Pass5() { super(5); } }
    /** {@code pass-6}. */
    public static final class Pass6 extends PassModule { public Pass6() { super(6); } }
    /** {@code pass-7}. */
    public static final class Pass7 extends PassModule { public Pass7() { super(7); } }
    /** {@code pass-8}. */
    public static final class Pass8 extends PassModule { public Pass8() { super(8); } }
}
