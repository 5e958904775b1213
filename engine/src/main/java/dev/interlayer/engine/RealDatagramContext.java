package dev.interlayer.engine;

import dev.interlayer.api.Attachment;
import dev.interlayer.api.DatagramContext;
import dev.interlayer.api.Direction;
import dev.interlayer.api.HeldBytes;
import dev.interlayer.api.Output;
import io.netty.buffer.ByteBuf;
import java.lang.foreign.MemorySegment;

/** The per-call {@link DatagramContext}: one per attachment, reset before each call and closed after it. */
final class RealDatagramContext implements DatagramContext {

    private final DatagramAttachment att;
    private final RealOutput replacement;
    private Direction direction;
    private String injectedBy;
    private long tag;
    private ByteBuf input;
    private RealHeldBytes<DatagramAttachment> held;
    private final Rewrite rewrite = new Rewrite();
    private boolean rewrote;
    private boolean live;

    RealDatagramContext(DatagramAttachment att, RealOutput replacement) {
        this.att = att;
        this.replacement = replacement;
    }

    void begin(Direction d, ByteBuf in, String injectedBy, long tag) {
        this.direction = d;
        this.input = in;
        this.injectedBy = injectedBy;
        this.tag = tag;
        this.held = null;
        this.rewrote = false;
        this.live = true;
    }

    void end() {
        live = false;
        input = null;
        if (rewrote) rewrite.close();
    }

    /** The module called {@link #rewrite()} in the call that just ended: the datagram, or its replacement, may be changed. */
    boolean rewrote() {
        return rewrote;
    }

    boolean replaced() {
        return replacement.isOpen();
    }

    /** The replacement bytes (ownership to the caller). */
    ByteBuf takeReplacement() {
        return replacement.take();
    }

    void dropReplacement() {
        rewrite.close(); // a rewrite's copy lives in the replacement: its segment goes first
        replacement.closeAndRelease();
    }

    RealHeldBytes<DatagramAttachment> takeHeld() {
        RealHeldBytes<DatagramAttachment> h = held;
        held = null;
        return h;
    }

    private void check() {
        if (!live) {
            String why = "module " + att.moduleName() + " used its DatagramContext after the call returned";
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
            throw Rewrite.replaceAfterRewrite(att.moduleName(), "datagram");
        }
        if (!replacement.isOpen()) {
            replacement.open(RealStreamContext.replacementHint(input.readableBytes()));
        }
        return replacement;
    }

    @Override
    public MemorySegment rewrite() {
        check();
        if (rewrote) {
            return rewrite.segment();
        }
        ByteBuf in = input;
        MemorySegment s = rewrite.lend(att.moduleName(), "datagram", held != null, in, in.readerIndex(), in.readableBytes(),
                replacement);
        if (rewrite.target() != in) {
            input = rewrite.target(); // a hold takes the copy the module writes
            att.view.repoint(input);
        }
        rewrote = true;
        return s;
    }

    @Override
    public HeldBytes hold() {
        check();
        if (held == null) {
            held = att.hold(input);
        }
        return held;
    }
}
