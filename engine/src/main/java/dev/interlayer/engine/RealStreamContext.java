package dev.interlayer.engine;

import dev.interlayer.api.Attachment;
import dev.interlayer.api.Direction;
import dev.interlayer.api.HeldBytes;
import dev.interlayer.api.Output;
import dev.interlayer.api.StreamContext;
import io.netty.buffer.ByteBuf;
import java.lang.foreign.MemorySegment;

/** The per-call {@link StreamContext}: one per attachment, reset before each call and closed after it. */
final class RealStreamContext implements StreamContext {

    private final RealAttachment att;
    private final RealOutput replacement;
    private Direction direction;
    private String injectedBy;
    private long tag;
    private RealHeldBytes<RealAttachment> held;
    private final Rewrite rewrite = new Rewrite();
    private boolean rewrote;
    private boolean live;

    RealStreamContext(RealAttachment att, RealOutput replacement) {
        this.att = att;
        this.replacement = replacement;
    }

    /**
     * Starts a call on {@code in}, which the attachment's view is lent at the same time (the chunk {@link #hold}
     * keeps is the view's buffer). Reference fields are written only when they change: each write into this
     * long-lived object costs a GC write barrier, and this runs for every module on every chunk.
     */
    void begin(Direction d, String injectedBy, long tag) {
        if (direction != d) this.direction = d;
        if (this.injectedBy != injectedBy) this.injectedBy = injectedBy;
        this.tag = tag;
        this.rewrote = false;
        this.live = true;
    }

    /**
     * Ends the call (a rewrite's segment can no longer be used); the replacement and held bytes are collected by the
     * caller with the accessors below.
     */
    void end() {
        live = false;
        if (rewrote) rewrite.close();
    }

    /** The module called {@link #rewrite()} in the call that just ended: the chunk, or its replacement, may be changed. */
    boolean rewrote() {
        return rewrote;
    }

    /** Room for a replacement of a {@code len}-byte chunk: its size plus an eighth, for modules that add a little. */
    static int replacementHint(int len) {
        return len + (len >> 3) + 64;
    }

    boolean replaced() {
        return replacement.isOpen();
    }

    /** The module neither held the chunk nor wrote a replacement in the call that just ended. */
    boolean untouched() {
        return held == null && !replacement.isOpen();
    }

    /** The replacement bytes (ownership to the caller). */
    ByteBuf takeReplacement() {
        return replacement.take();
    }

    void dropReplacement() {
        rewrite.close(); // a rewrite's copy lives in the replacement: its segment goes first
        replacement.closeAndRelease();
    }

    RealHeldBytes<RealAttachment> takeHeld() {
        RealHeldBytes<RealAttachment> h = held;
        held = null;
        return h;
    }

    private void check() {
        if (!live) {
            String why = "module " + att.moduleName() + " used its StreamContext after the call returned";
            att.breach(ChainTrace.Breach.CONTEXT_AFTER_CALL, why);
            throw new IllegalStateException(why);
        }
    }

    @Override
    public Direction direction() {
        check();
        return direction;
    }

    @Override
    public Attachment attachment() {
        return att;
    }

    @Override
    public boolean injected() {
        check();
        return injectedBy != null;
    }

    @Override
    public String injectedBy() {
        check();
        return injectedBy;
    }

    @Override
    public long injectTag() {
        check();
        return tag;
    }

    @Override
    public Output replace() {
        check();
        if (rewrote) {
            throw Rewrite.replaceAfterRewrite(att.moduleName(), "chunk");
        }
        if (!replacement.isOpen()) {
            replacement.open(replacementHint(att.view.length()));
        }
        return replacement;
    }

    @Override
    public MemorySegment rewrite() {
        check();
        if (rewrote) {
            return rewrite.segment();
        }
        ChunkView v = att.view;
        ByteBuf chunk = v.buffer();
        MemorySegment s = rewrite.lend(att.moduleName(), "chunk", held != null, chunk, v.base(), v.length(), replacement);
        if (rewrite.target() != chunk) {
            v.repoint(rewrite.target()); // the view, and a hold, see the copy the module writes
        }
        rewrote = true;
        return s;
    }

    @Override
    public HeldBytes hold() {
        check();
        if (held == null) {
            held = att.hold(att.view.buffer(), direction);
        }
        return held;
    }
}
