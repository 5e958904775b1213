package dev.interlayer.modules.tag;

import dev.interlayer.api.Attach;
import dev.interlayer.api.Attachment;
import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.ByteView;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.ModuleEnv;
import dev.interlayer.api.Output;
import dev.interlayer.api.Param;
import dev.interlayer.api.StreamContext;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.Verdict;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Inserts a fixed tag after every {@code every} payload bytes on SEND and removes it at the same positions on
 * RECV, as the Layer 4.5 paper's sample customization does (a 32-byte tag per 1000 bytes).
 *
 * <p>Two agents running {@code tag} with the same parameters back to back deliver the original bytes: the
 * client-role agent's SEND inserts, the server-role agent's RECV removes, and the same for the reply. A RECV byte
 * where the tag should be but that does not match it resets the connection: the peer is not running {@code tag}
 * with the same parameters.
 *
 * <p>Its fault policy is fail-closed: a tag hook that faults (throws, or runs past the hook budget) resets the
 * connection. Fail-open would detach it and let the rest of the stream pass untransformed, which the peer's {@code tag}
 * would read as a mismatch only at the next tag position, and an application behind a detached RECV would read tags.
 *
 * <p>Chunk boundaries do not matter: a tag may be split across chunks, chunks may be one byte or megabytes.
 * A chunk that reaches no tag position passes without a copy; otherwise the replacement is written with bulk
 * copies. Per-connection state is four counters.
 *
 * <pre>{@code
 * modules:
 *   - name: tag
 *     params: { every: 1000, tag: "<interlayer-layer4.5-sample-tag>" }
 * }</pre>
 */
public final class TagModule implements StreamModule<TagModule.State> {

    /** The default tag: 32 bytes of text, like the paper's 32-byte tag. */
    public static final String DEFAULT_TAG = "<interlayer-layer4.5-sample-tag>";
    /** Error code of a tag mismatch on RECV. */
    public static final int TAG_MISMATCH = 1;

    /** Per-connection position in each direction's tag pattern; touched only on the connection's event loop. */
    static final class State {
        /** SEND: payload bytes still to pass before the next tag. */
        int sendLeft;
        /** RECV: payload bytes still expected before the next tag; 0 means the tag is being matched. */
        int recvLeft;
        /** RECV: how many bytes of the current tag matched so far. */
        int recvTagPos;
        /** RECV: offset of the next byte in the stream as received from the peer, for the error message. */
        long recvOffset;
    }

    /** Where a tag's bytes are read to be compared; one per event-loop thread, so nothing is allocated per chunk. */
    private static final ThreadLocal<byte[]> SCRATCH = ThreadLocal.withInitial(() -> new byte[256]);

    private int every;
    private byte[] tag;

    @Override
    public ModuleDescriptor descriptor() {
        return ModuleDescriptor.builder("tag", "1.0.0")
                .description("inserts a tag every N bytes on SEND and removes it on RECV (Layer 4.5 sample)")
                .implement(InterfaceType.STREAM, 1, 3) // 1.3: warmUp
                .priority(50)
                .faultPolicy(FaultPolicy.FAIL_CLOSED)
                .warmUp(true) // its hooks touch only the connection's four counters
                .param(Param.ofInt("every", 1000, "payload bytes between two tags"))
                .param(Param.ofString("tag", DEFAULT_TAG, "the tag text (UTF-8) inserted into the stream"))
                .build();
    }

    @Override
    public void init(ModuleEnv env) {
        every = env.params().getInt("every");
        tag = env.params().getString("tag").getBytes(StandardCharsets.UTF_8);
        if (every < 1) {
            throw new IllegalArgumentException("every must be at least 1, got " + every);
        }
        if (tag.length == 0) {
            throw new IllegalArgumentException("tag must not be empty");
        }
    }

    @Override
    public Attach<State> attach(Attachment attachment) {
        State s = new State();
        s.sendLeft = every;
        s.recvLeft = every;
        return Attach.with(s);
    }

    @Override
    public Verdict onSend(State s, StreamContext ctx, ByteView data) {
        int len = data.remaining();
        if (len < s.sendLeft) {
            s.sendLeft -= len; // no tag position in this chunk: forward it as is, no copy
            return Verdict.PASS;
        }
        Output out = ctx.replace();
        while (data.remaining() > 0) {
            int n = Math.min(s.sendLeft, data.remaining());
            out.write(data, n);
            s.sendLeft -= n;
            if (s.sendLeft == 0) {
                out.write(tag, 0, tag.length);
                s.sendLeft = every;
            }
        }
        return Verdict.PASS;
    }

    @Override
    public Verdict onRecv(State s, StreamContext ctx, ByteView data) {
        int len = data.remaining();
        if (s.recvTagPos == 0 && len < s.recvLeft) {
            s.recvLeft -= len;
            s.recvOffset += len;
            return Verdict.PASS;
        }
        Output out = ctx.replace();
        while (data.remaining() > 0) {
            if (s.recvLeft > 0) {
                int n = Math.min(s.recvLeft, data.remaining());
                out.write(data, n);
                s.recvLeft -= n;
                s.recvOffset += n;
                continue;
            }
            // Matching the tag, as many of its bytes as this chunk has at once; it may continue in the next
            // chunk, so the position is kept in the state.
            byte[] got = SCRATCH.get();
            int k = Math.min(Math.min(tag.length - s.recvTagPos, data.remaining()), got.length);
            data.readFully(got, 0, k);
            int bad = Arrays.mismatch(got, 0, k, tag, s.recvTagPos, s.recvTagPos + k);
            if (bad >= 0) {
                return Verdict.error(TAG_MISMATCH, "tag mismatch at stream offset " + (s.recvOffset + bad)
                        + ": peer is not running tag with the same every/tag");
            }
            s.recvOffset += k;
            s.recvTagPos += k;
            if (s.recvTagPos == tag.length) {
                s.recvTagPos = 0;
                s.recvLeft = every;
            }
        }
        return Verdict.PASS;
    }

    @Override
    public Verdict onEnd(State s, StreamContext ctx, ByteView rest) {
        return Verdict.PASS; // nothing is kept back: tag never asks for NEED_MORE
    }
}
