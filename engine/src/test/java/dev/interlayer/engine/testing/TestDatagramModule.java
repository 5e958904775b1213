package dev.interlayer.engine.testing;

import dev.interlayer.api.Attach;
import dev.interlayer.api.Attachment;
import dev.interlayer.api.ByteView;
import dev.interlayer.api.DatagramContext;
import dev.interlayer.api.DatagramModule;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.Verdict;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A datagram module whose hooks a test supplies as lambdas; records attaches, detaches and calls.
 *
 * <pre>{@code
 * TestDatagramModule drop = TestDatagramModule.named("drop").onSend((s, ctx, d) -> Verdict.DROP);
 * }</pre>
 */
public class TestDatagramModule implements DatagramModule<TestDatagramModule.State> {

    /** A datagram hook. */
    @FunctionalInterface
    public interface Hook {
        Verdict apply(State state, DatagramContext ctx, ByteView datagram);
    }

    /** Per-flow state: the attachment and a scratch field for hooks. */
    public static final class State {
        public final Attachment attachment;
        public Object scratch;

        State(Attachment a) {
            this.attachment = a;
        }
    }

    private final String name;
    private int priority = 100;
    private FaultPolicy policy = FaultPolicy.FAIL_OPEN;
    private Hook send = (s, c, v) -> Verdict.PASS;
    private Hook recv = (s, c, v) -> Verdict.PASS;
    public final AtomicInteger attaches = new AtomicInteger();
    public final List<DetachReason> detaches = new CopyOnWriteArrayList<>();
    public final List<String> calls = new CopyOnWriteArrayList<>();
    public final List<State> states = new CopyOnWriteArrayList<>();

    protected TestDatagramModule(String name) {
        this.name = name;
    }

    public static TestDatagramModule named(String name) {
        return new TestDatagramModule(name);
    }

    public TestDatagramModule priority(int p) {
        this.priority = p;
        return this;
    }

    public TestDatagramModule failClosed() {
        this.policy = FaultPolicy.FAIL_CLOSED;
        return this;
    }

    public TestDatagramModule onSend(Hook h) {
        this.send = h;
        return this;
    }

    public TestDatagramModule onRecv(Hook h) {
        this.recv = h;
        return this;
    }

    @Override
    public ModuleDescriptor descriptor() {
        return ModuleDescriptor.builder(name, "1.0.0").implement(InterfaceType.DATAGRAM, 1, 1).priority(priority).faultPolicy(policy).build();
    }

    @Override
    public Attach<State> attach(Attachment attachment) {
        attaches.incrementAndGet();
        State s = new State(attachment);
        states.add(s);
        return Attach.with(s);
    }

    @Override
    public void detach(State state, DetachReason reason) {
        detaches.add(reason);
    }

    @Override
    public Verdict onSend(State state, DatagramContext ctx, ByteView datagram) {
        calls.add(name + ":send:" + datagram.length() + (ctx.injected() ? ":injected-by-" + ctx.injectedBy() : ""));
        return send.apply(state, ctx, datagram);
    }

    @Override
    public Verdict onRecv(State state, DatagramContext ctx, ByteView datagram) {
        calls.add(name + ":recv:" + datagram.length() + (ctx.injected() ? ":injected-by-" + ctx.injectedBy() : ""));
        return recv.apply(state, ctx, datagram);
    }
}
