package dev.interlayer.bench.pass;

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
 */
public final class PassModule implements StreamModule<Void> {

    @Override
    public ModuleDescriptor descriptor() {
        return ModuleDescriptor.builder("pass", "1.0.0")
                .description("passes every chunk unchanged (benchmark baseline)")
                .implement(InterfaceType.STREAM, 1, 1)
                .build();
    }

    @Override
    public Verdict onSend(Void state, StreamContext ctx, ByteView data) {
        return Verdict.PASS;
    }

    @Override
    public Verdict onRecv(Void state, StreamContext ctx, ByteView data) {
        return Verdict.PASS;
    }
}
