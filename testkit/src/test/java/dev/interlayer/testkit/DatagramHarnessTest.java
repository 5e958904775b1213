package dev.interlayer.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.api.Attach;
import dev.interlayer.api.Attachment;
import dev.interlayer.api.ByteView;
import dev.interlayer.api.DatagramContext;
import dev.interlayer.api.DatagramModule;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.HeldBytes;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.Protocol;
import dev.interlayer.api.Verdict;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiFunction;
import org.junit.jupiter.api.Test;

/** The harness runs datagram modules on UDP flows with the agent's datagram rules. */
class DatagramHarnessTest {

    /** A datagram module whose onSend is a lambda; onRecv passes. */
    static final class Dgram implements DatagramModule<List<HeldBytes>> {
        private final String name;
        private final BiFunction<DatagramContext, ByteView, Verdict> send;

        Dgram(String name, BiFunction<DatagramContext, ByteView, Verdict> send) {
            this.name = name;
            this.send = send;
        }

        @Override
        public ModuleDescriptor descriptor() {
            return ModuleDescriptor.builder(name, "1.0.0").implement(InterfaceType.DATAGRAM, 1, 1).build();
        }

        @Override
        public Attach<List<HeldBytes>> attach(Attachment attachment) {
            return Attach.with(new ArrayList<>());
        }

        @Override
        public Verdict onSend(List<HeldBytes> s, DatagramContext ctx, ByteView d) {
            return send.apply(ctx, d);
        }
    }

    private static FakeConnection udp() {
        return new FakeConnection().protocol(Protocol.UDP);
    }

    private static String text(ByteView v) {
        return new String(v.copyRemaining(), StandardCharsets.UTF_8);
    }

    @Test
    void eachSendIsOneDatagramAndReplacementsKeepTheirBoundaries() {
        try (ModuleHarness h = ModuleHarness.of(new Dgram("wrap", (ctx, d) -> {
            ctx.replace().write(("[" + text(d) + "]").getBytes(StandardCharsets.UTF_8));
            return Verdict.PASS;
        }))) {
            HarnessConnection flow = h.attach(udp());
            flow.send("a").send("bc").recv("reply");
            assertThat(flow.sentDatagrams()).extracting(b -> new String(b, StandardCharsets.UTF_8)).containsExactly("[a]", "[bc]");
            assertThat(flow.receivedDatagrams()).extracting(b -> new String(b, StandardCharsets.UTF_8)).containsExactly("reply");
            assertThatThrownBy(() -> flow.end(Direction.SEND)).isInstanceOf(IllegalStateException.class).hasMessageContaining("no end of stream");
        }
    }

    @Test
    void needMoreIsAFaultAndTheDatagramPassesUnderFailOpen() {
        try (ModuleHarness h = ModuleHarness.of(new Dgram("more", (ctx, d) -> Verdict.needMore(10))).tolerateFaults()) {
            HarnessConnection flow = h.attach(udp());
            flow.send("x");
            assertThat(flow.sentDatagrams()).hasSize(1);
            assertThat(h.faults()).hasSize(1);
            assertThat(h.faults().get(0).error().getMessage()).contains("NEED_MORE(10)").contains("no meaning for a datagram");
            assertThat(flow.detachReason("more")).isEqualTo(DetachReason.FAULT);
        }
    }

    @Test
    void anOversizeReplacementIsAFaultNeverTruncated() {
        try (ModuleHarness h = ModuleHarness.of(new Dgram("big", (ctx, d) -> {
            ctx.replace().write(new byte[65_508]);
            return Verdict.PASS;
        })).tolerateFaults()) {
            HarnessConnection flow = h.attach(udp());
            flow.send("x");
            assertThat(flow.sentDatagrams()).containsExactly("x".getBytes(StandardCharsets.UTF_8));
            assertThat(h.faults().get(0).error().getMessage()).contains("65508-byte datagram");
        }
    }

    @Test
    void aHeldDatagramIsInjectedLaterAsOneDatagram() {
        List<HeldBytes> held = new ArrayList<>();
        Attachment[] att = new Attachment[1];
        try (ModuleHarness h = ModuleHarness.of(new Dgram("hold", (ctx, d) -> {
            att[0] = ctx.attachment();
            held.add(ctx.hold());
            return Verdict.HOLD;
        }))) {
            HarnessConnection flow = h.attach(udp());
            flow.send("one").send("two");
            assertThat(flow.sentDatagrams()).isEmpty();
            assertThat(flow.heldBytes()).isEqualTo(6);
            att[0].inject(Direction.SEND, held.get(1));
            att[0].inject(Direction.SEND, held.get(0));
            flow.drain();
            assertThat(flow.sentDatagrams()).extracting(b -> new String(b, StandardCharsets.UTF_8)).containsExactly("two", "one");
        }
    }

    @Test
    void errorEndsTheFlow() {
        try (ModuleHarness h = ModuleHarness.of(new Dgram("err", (ctx, d) -> Verdict.error(3, "no")))) {
            HarnessConnection flow = h.attach(udp());
            flow.send("x");
            assertThat(flow.isReset()).isTrue();
            assertThat(flow.closeReason()).contains("ERROR(3, no)");
        }
    }

    /** The module guide's datagram example (docs/module-guide.md section 13), kept compiling and true here. */
    static final class Version implements DatagramModule<Void> {
        private static final byte[] PREFIX = "v1:".getBytes(StandardCharsets.US_ASCII);

        @Override
        public ModuleDescriptor descriptor() {
            return ModuleDescriptor.builder("version", "1.0.0").implement(InterfaceType.DATAGRAM, 1, 1).build();
        }

        @Override
        public Verdict onSend(Void s, DatagramContext ctx, ByteView datagram) {
            ctx.replace().write(PREFIX).write(datagram);
            return Verdict.PASS;
        }

        @Override
        public Verdict onRecv(Void s, DatagramContext ctx, ByteView datagram) {
            for (int i = 0; i < PREFIX.length; i++) {
                if (datagram.remaining() <= i || datagram.peek(i) != PREFIX[i]) return Verdict.DROP;
            }
            datagram.advance(PREFIX.length);
            ctx.replace().write(datagram);
            return Verdict.PASS;
        }
    }

    @Test
    void theModuleGuidesDatagramExampleDoesWhatTheGuideSays() {
        try (ModuleHarness h = ModuleHarness.of(new Version())) {
            HarnessConnection flow = h.attach(new FakeConnection().protocol(Protocol.UDP));
            flow.send("hello").recv("v1:world").recv("junk");
            assertThat(new String(flow.sentDatagrams().get(0), StandardCharsets.UTF_8)).isEqualTo("v1:hello");
            assertThat(flow.receivedDatagrams().stream().map(b -> new String(b, StandardCharsets.UTF_8)).toList()).containsExactly("world");
        }
    }
}
