package dev.interlayer.engine;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.Unpooled;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * Where {@link Rewrite} writes: the chunk's own memory when only the engine can see it, a copy in the replacement
 * otherwise, with Netty's pooled allocator as the engine uses it.
 */
class RewriteBuffersTest {

    private static final ByteBufAllocator ALLOC = PooledByteBufAllocator.DEFAULT;

    private static ByteBuf chunk(String text) {
        ByteBuf b = ALLOC.directBuffer();
        b.writeBytes(text.getBytes(StandardCharsets.US_ASCII));
        return b;
    }

    private static void upper(MemorySegment s) {
        for (long i = 0; i < s.byteSize(); i++) {
            s.set(JAVA_BYTE, i, (byte) Character.toUpperCase(s.get(JAVA_BYTE, i)));
        }
    }

    private static String text(ByteBuf b) {
        return b.toString(StandardCharsets.US_ASCII);
    }

    @Test
    void aDirectBufferOnlyTheEngineHoldsIsWrittenInPlace() {
        ByteBuf b = chunk("xxhello");
        b.skipBytes(2);
        RealOutput out = new RealOutput(ALLOC, "m", 1 << 20);
        Rewrite r = new Rewrite();
        try {
            MemorySegment s = r.open(b, b.readerIndex(), b.readableBytes(), out);
            assertThat(r.target()).isSameAs(b);
            assertThat(out.isOpen()).isFalse();
            assertThat(s.byteSize()).isEqualTo(5);
            upper(s);
            assertThat(text(b)).isEqualTo("HELLO");
            r.close();
            assertThatThrownBy(() -> s.get(JAVA_BYTE, 0)).isInstanceOf(IllegalStateException.class);
        } finally {
            b.release();
        }
    }

    @Test
    void aBufferSomebodyElseCanSeeIsCopiedAndLeftAsItWas() {
        ByteBuf shared = chunk("hello").retain();
        copied("shared (a second reference)", shared, shared);
        shared.release(2);
        ByteBuf base = chunk("hello");
        copied("read-only", base.asReadOnly(), base);
        copied("a slice of another buffer", base.slice(0, 5), base);
        base.release();
        ByteBuf heap = Unpooled.wrappedBuffer("hello".getBytes(StandardCharsets.US_ASCII));
        copied("on the heap", heap, heap);
        heap.release();
    }

    /** Rewrites {@code seen}, a chunk the engine may not write, whose bytes live in {@code original}. */
    private static void copied(String what, ByteBuf seen, ByteBuf original) {
        RealOutput out = new RealOutput(ALLOC, "m", 1 << 20);
        Rewrite r = new Rewrite();
        upper(r.open(seen, seen.readerIndex(), seen.readableBytes(), out));
        assertThat(r.target()).as(what).isNotSameAs(seen);
        assertThat(text(seen)).as(what).isEqualTo("hello");
        assertThat(text(original)).as(what).isEqualTo("hello");
        r.close();
        ByteBuf taken = out.take();
        assertThat(text(taken)).as(what).isEqualTo("HELLO");
        assertThat(taken.maxCapacity()).as(what + ": the copy cannot grow under the segment").isEqualTo(5);
        taken.release();
    }

    @Test
    void aCopyOverTheHoldLimitIsRefusedWithTheReason() {
        ByteBuf b = chunk("0123456789");
        b.retain();
        RealOutput out = new RealOutput(ALLOC, "m", 4);
        try {
            assertThatThrownBy(() -> new Rewrite().open(b, 0, 10, out))
                    .isInstanceOf(IllegalStateException.class).hasMessageContaining("module m").hasMessageContaining("hold limit (4 bytes)");
            assertThat(out.isOpen()).isFalse();
        } finally {
            b.release(2);
        }
    }

    @Test
    void anEmptyChunkLendsAnEmptySegment() {
        Rewrite r = new Rewrite();
        RealOutput out = new RealOutput(ALLOC, "m", 1 << 20);
        assertThat(r.open(Unpooled.EMPTY_BUFFER, 0, 0, out).byteSize()).isZero();
        assertThat(out.isOpen()).isFalse();
        r.close();
    }
}
