package com.example.verify;

import dev.interlayer.api.ByteView;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.StreamContext;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.Verdict;

/**
 * Declares stream 1.1 and calls {@code ctx.rewrite()} of stream 1.2: what a host of exactly stream 1.1 refuses. On the class
 * path rather than in a jar, outside Interlayer's packages, as a module under test with the testkit is.
 */
public final class Rewriter11 implements StreamModule<Object> {
    @Override
    public ModuleDescriptor descriptor() {
        return ModuleDescriptor.builder("rewriter-11", "1.0.0").implement(InterfaceType.STREAM, 1, 1).build();
    }

    @Override
    public Verdict onSend(Object state, StreamContext ctx, ByteView data) {
        ctx.rewrite();
        return Verdict.PASS;
    }
}
