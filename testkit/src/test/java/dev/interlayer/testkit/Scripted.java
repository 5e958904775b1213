package dev.interlayer.testkit;

import dev.interlayer.api.Attach;
import dev.interlayer.api.Attachment;
import dev.interlayer.api.ByteView;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.ModuleEnv;
import dev.interlayer.api.StreamContext;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.Verdict;
import java.util.ArrayList;
import java.util.List;

/** A stream module for the testkit's own tests whose hooks are lambdas, recording what it saw. */
final class Scripted implements StreamModule<Attachment> {

    /** A data hook body. */
    interface Hook {
        Verdict call(StreamContext ctx, ByteView data);
    }

    final String name;
    final int minor;
    Hook send = (c, d) -> Verdict.PASS;
    Hook recv = (c, d) -> Verdict.PASS;
    Hook end = (c, d) -> Verdict.PASS;
    final List<String> seen = new ArrayList<>();
    final List<DetachReason> detaches = new ArrayList<>();
    Attachment attachment;
    ModuleEnv env;

    Scripted(String name, int minor) {
        this.name = name;
        this.minor = minor;
    }

    Scripted(String name) {
        this(name, 1);
    }

    Scripted onSend(Hook h) {
        this.send = h;
        return this;
    }

    Scripted onRecv(Hook h) {
        this.recv = h;
        return this;
    }

    Scripted onEnd(Hook h) {
        this.end = h;
        return this;
    }

    @Override
    public ModuleDescriptor descriptor() {
        return ModuleDescriptor.builder(name, "1.0.0").implement(InterfaceType.STREAM, 1, minor).build();
    }

    @Override
    public void init(ModuleEnv env) {
        this.env = env;
    }

    @Override
    public Attach<Attachment> attach(Attachment attachment) {
        this.attachment = attachment;
        return Attach.with(attachment);
    }

    @Override
    public void detach(Attachment state, DetachReason reason) {
        detaches.add(reason);
    }

    private String describe(String hook, StreamContext ctx, ByteView data) {
        byte[] b = new byte[data.remaining()];
        for (int i = 0; i < b.length; i++) {
            b[i] = data.peek(i);
        }
        return hook + ":" + new String(b) + (ctx.injected() ? "@" + ctx.injectedBy() + "#" + ctx.injectTag() : "");
    }

    @Override
    public Verdict onSend(Attachment state, StreamContext ctx, ByteView data) {
        seen.add(describeSafe("send", ctx, data));
        return send.call(ctx, data);
    }

    @Override
    public Verdict onRecv(Attachment state, StreamContext ctx, ByteView data) {
        seen.add(describeSafe("recv", ctx, data));
        return recv.call(ctx, data);
    }

    @Override
    public Verdict onEnd(Attachment state, StreamContext ctx, ByteView rest) {
        seen.add(describeSafe("end-" + ctx.direction(), ctx, rest));
        return end.call(ctx, rest);
    }

    private String describeSafe(String hook, StreamContext ctx, ByteView data) {
        return data.remaining() == 0 ? hook + ":" + (ctx.injected() ? "@" + ctx.injectedBy() : "") : describe(hook, ctx, data);
    }
}
