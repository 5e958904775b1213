package dev.interlayer.engine.contract;

import dev.interlayer.api.Attach;
import dev.interlayer.api.Attachment;
import dev.interlayer.api.ByteView;
import dev.interlayer.api.ConnectionEvent;
import dev.interlayer.api.DetachReason;
import dev.interlayer.api.Direction;
import dev.interlayer.api.HeldBytes;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.SocketModule;
import dev.interlayer.api.StreamContext;
import dev.interlayer.api.StreamModule;
import dev.interlayer.api.Verdict;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * A stream module made from a {@link ModuleScript} that writes down, in order, everything that happens to it on its
 * connection: each hook call with the bytes it saw, their inject mark and the verdict; each timer; each inject with
 * its result; the detach with its reason. That list is what the contract suite compares between the engine and the
 * testkit.
 *
 * <p>Entries look like {@code onSend "abc" (injected by a #7) -> PASS}, {@code onEnd SEND "" -> PASS},
 * {@code inject SEND held "abc" -> true}, {@code timer}, {@code event CONNECTED}, {@code detach VERDICT}. An inject made
 * during a hook call is listed after that call's entry, which gets its verdict when the call returns.
 *
 * <p>Which hooks a module overrides matters to the engine (it never calls a hook a module does not override, and
 * {@code onEnd} only for a direction whose data hook the module has), so the script picks one of three classes:
 * {@link Full} (onSend, onRecv, onEnd), {@link SendSide} (onSend and onEnd only) and {@link WithEvents} (every data
 * hook, and the socket interface's {@code onEvent}).
 *
 * <p>Threading: on sockets the hooks run on the engine's event loop while the test reads the list, so the list is
 * guarded by itself. One connection per instance (the suite opens one).
 */
abstract sealed class RecordingModule implements StreamModule<RecordingModule.Conn>
        permits RecordingModule.Full, RecordingModule.SendSide {

    /** Every data hook. */
    static sealed class Full extends RecordingModule permits WithEvents {
        Full(ModuleScript script) {
            super(script);
        }

        @Override
        public Verdict onRecv(Conn state, StreamContext ctx, ByteView data) {
            return call("onRecv " + describe(ctx, data), script.recv, state, ctx, data);
        }
    }

    /** onSend and onEnd only: a module that never sees RECV. */
    static final class SendSide extends RecordingModule {
        SendSide(ModuleScript script) {
            super(script);
        }
    }

    /** Every data hook, and the connection events of the socket interface. */
    static final class WithEvents extends Full implements SocketModule<Conn> {
        WithEvents(ModuleScript script) {
            super(script);
        }

        @Override
        public ModuleDescriptor descriptor() {
            return builder().implement(InterfaceType.SOCKET, 1, 0).build();
        }

        @Override
        public void onEvent(Conn state, Attachment attachment, ConnectionEvent event) {
            record("event " + event);
        }
    }

    /** The module's state on its connection, handed to the script's hooks, with helpers that record what they do. */
    static final class Conn {
        final Attachment attachment;
        private final RecordingModule module;
        /** Free for the script (a counter of calls, say). */
        int count;

        Conn(Attachment attachment, RecordingModule module) {
            this.attachment = attachment;
            this.module = module;
        }

        boolean inject(Direction d, String text) {
            boolean ok = attachment.inject(d, bytes(text));
            module.record("inject " + d + " " + quote(text) + " -> " + ok);
            return ok;
        }

        boolean inject(Direction d, String text, long tag) {
            boolean ok = attachment.inject(d, bytes(text), tag);
            module.record("inject " + d + " " + quote(text) + " #" + tag + " -> " + ok);
            return ok;
        }

        boolean inject(Direction d, HeldBytes h) {
            String text = new String(h.toByteArray(), StandardCharsets.ISO_8859_1);
            boolean ok = attachment.inject(d, h);
            module.record("inject " + d + " held " + quote(text) + " -> " + ok);
            return ok;
        }

        /** Runs {@code task} on the connection's loop after {@code delay}; the firing is recorded as {@code timer}. */
        void later(Duration delay, Runnable task) {
            attachment.schedule(delay, () -> {
                module.record("timer");
                task.run();
            });
        }
    }

    final ModuleScript script;
    private final List<String> entries = new ArrayList<>();

    private RecordingModule(ModuleScript script) {
        this.script = script;
    }

    String name() {
        return script.name;
    }

    /** What happened to this module so far, oldest first (a copy). */
    List<String> entries() {
        synchronized (entries) {
            return List.copyOf(entries);
        }
    }

    int record(String entry) {
        synchronized (entries) {
            entries.add(entry);
            return entries.size() - 1;
        }
    }

    private void complete(int index, String verdict) {
        synchronized (entries) {
            entries.set(index, entries.get(index) + " -> " + verdict);
        }
    }

    @Override
    public ModuleDescriptor descriptor() {
        return builder().build();
    }

    ModuleDescriptor.Builder builder() {
        return ModuleDescriptor.builder(script.name, "1.0.0").implement(InterfaceType.STREAM, 1, 2)
                .priority(script.priority).faultPolicy(script.policy);
    }

    @Override
    public Attach<Conn> attach(Attachment attachment) {
        return Attach.with(new Conn(attachment, this));
    }

    @Override
    public void detach(Conn state, DetachReason reason) {
        record("detach " + reason);
    }

    @Override
    public Verdict onSend(Conn state, StreamContext ctx, ByteView data) {
        return call("onSend " + describe(ctx, data), script.send, state, ctx, data);
    }

    @Override
    public Verdict onEnd(Conn state, StreamContext ctx, ByteView rest) {
        return call("onEnd " + ctx.direction() + " " + describe(ctx, rest), script.end, state, ctx, rest);
    }

    Verdict call(String what, ModuleScript.Hook hook, Conn state, StreamContext ctx, ByteView data) {
        int i = record(what);
        Verdict v;
        try {
            v = hook.apply(state, ctx, data);
        } catch (RuntimeException e) {
            complete(i, "threw " + e.getClass().getSimpleName());
            throw e;
        }
        complete(i, String.valueOf(v));
        return v;
    }

    static String describe(StreamContext ctx, ByteView data) {
        String s = quote(text(data));
        return ctx.injected() ? s + " (injected by " + ctx.injectedBy() + " #" + ctx.injectTag() + ")" : s;
    }

    /** The bytes of {@code data} from its position, as text (scenarios use ASCII); does not move the view. */
    static String text(ByteView data) {
        return new String(data.copyRemaining(), StandardCharsets.ISO_8859_1);
    }

    static byte[] bytes(String text) {
        return text.getBytes(StandardCharsets.ISO_8859_1);
    }

    private static String quote(String s) {
        return '"' + s + '"';
    }

    @Override
    public String toString() {
        return "module " + script.name;
    }
}
