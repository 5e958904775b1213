package dev.interlayer.engine.testing;

import dev.interlayer.api.Attach;
import dev.interlayer.api.Attachment;
import dev.interlayer.api.ByteView;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.StreamContext;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.Verdict;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An in-process stream module whose data hooks are given as lambdas, recording attaches, detaches and calls.
 *
 * <pre>{@code
 * TestModule upper = TestModule.named("upper").onSend((s, ctx, v) -> { ... return Verdict.PASS; });
 * }</pre>
 */
public class TestModule implements StreamModule<TestModule.State> {

    /** A data hook. */
    @FunctionalInterface
    public interface Hook {
        Verdict apply(State state, StreamContext ctx, ByteView data);
    }

    /** Per-connection state: the attachment and a scratch field for hooks. */
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
    private Hook end = (s, c, v) -> Verdict.PASS;
    public final AtomicInteger attaches = new AtomicInteger();
    public final List<DetachReason> detaches = new CopyOnWriteArrayList<>();
    public final ConcurrentHashMap<Long, AtomicInteger> detachesByConnection = new ConcurrentHashMap<>();
    public final List<String> calls = new CopyOnWriteArrayList<>();
    public final List<State> states = new CopyOnWriteArrayList<>();

    protected TestModule(String name) {
        this.name = name;
    }

    public static TestModule named(String name) {
        return new TestModule(name);
    }

    public TestModule priority(int p) {
        this.priority = p;
        return this;
    }

    public TestModule failClosed() {
        this.policy = FaultPolicy.FAIL_CLOSED;
        return this;
    }

    public TestModule onSend(Hook h) {
        this.send = h;
        return this;
    }

    public TestModule onRecv(Hook h) {
        this.recv = h;
        return this;
    }

    public TestModule onEnd(Hook h) {
        this.end = h;
        return this;
    }

    @Override
    public ModuleDescriptor descriptor() {
        return ModuleDescriptor.builder(name, "1.0.0").implement(InterfaceType.STREAM, 1, 2).priority(priority).faultPolicy(policy).build();
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
        detachesByConnection.computeIfAbsent(state.attachment.connection().id(), k -> new AtomicInteger()).incrementAndGet();
    }

    @Override
    public Verdict onSend(State state, StreamContext ctx, ByteView data) {
        calls.add(name + ":send:" + data.length() + (ctx.injected() ? ":injected-by-" + ctx.injectedBy() : ""));
        return send.apply(state, ctx, data);
    }

    @Override
    public Verdict onRecv(State state, StreamContext ctx, ByteView data) {
        calls.add(name + ":recv:" + data.length() + (ctx.injected() ? ":injected-by-" + ctx.injectedBy() : ""));
        return recv.apply(state, ctx, data);
    }

    @Override
    public Verdict onEnd(State state, StreamContext ctx, ByteView rest) {
        calls.add(name + ":end:" + ctx.direction() + ":" + rest.length());
        return end.apply(state, ctx, rest);
    }
}
