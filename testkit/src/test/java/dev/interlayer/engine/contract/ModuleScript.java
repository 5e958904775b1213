package dev.interlayer.engine.contract;

import dev.interlayer.api.ByteView;
import dev.interlayer.api.FaultPolicy;
import dev.interlayer.api.StreamContext;
import dev.interlayer.api.Verdict;

/**
 * What a module of a {@link Scenario} does, written once: name, priority, fault policy and its data hooks as lambdas.
 * Each run of a scenario makes fresh {@link RecordingModule}s from it with {@link #newModule()}, so no state leaks from
 * one driver to the next.
 *
 * <pre>{@code
 * ModuleScript.named("upper", 10).onSend((c, ctx, data) -> {
 *     ctx.replace().write(RecordingModule.bytes(RecordingModule.text(data).toUpperCase()));
 *     return Verdict.PASS;
 * })
 * }</pre>
 */
final class ModuleScript {

    /** A data hook body; {@code c} is the module's per-connection state. */
    @FunctionalInterface
    interface Hook {
        Verdict apply(RecordingModule.Conn c, StreamContext ctx, ByteView data);
    }

    private static final Hook PASS = (c, ctx, data) -> Verdict.PASS;

    final String name;
    final int priority;
    FaultPolicy policy = FaultPolicy.FAIL_OPEN;
    Hook send = PASS;
    Hook recv = PASS;
    Hook end = PASS;
    /** Which hooks the module class overrides; see {@link RecordingModule}. */
    private Kind kind = Kind.FULL;

    private enum Kind { FULL, SEND_SIDE, WITH_EVENTS }

    private ModuleScript(String name, int priority) {
        this.name = name;
        this.priority = priority;
    }

    /** A module that passes everything; give scenarios distinct priorities so the chain order is not a tie. */
    static ModuleScript named(String name, int priority) {
        return new ModuleScript(name, priority);
    }

    ModuleScript onSend(Hook h) {
        this.send = h;
        return this;
    }

    ModuleScript onRecv(Hook h) {
        this.recv = h;
        return this;
    }

    /** The same hook for SEND and RECV. */
    ModuleScript onData(Hook h) {
        return onSend(h).onRecv(h);
    }

    ModuleScript onEnd(Hook h) {
        this.end = h;
        return this;
    }

    /** The module overrides onSend and onEnd only: the engine never shows it RECV, not even RECV's end. */
    ModuleScript sendSideOnly() {
        this.kind = Kind.SEND_SIDE;
        return this;
    }

    /** The module also has the socket interface's onEvent, and records the connection events. */
    ModuleScript withEvents() {
        this.kind = Kind.WITH_EVENTS;
        return this;
    }

    ModuleScript failClosed() {
        this.policy = FaultPolicy.FAIL_CLOSED;
        return this;
    }

    RecordingModule newModule() {
        return switch (kind) {
            case FULL -> new RecordingModule.Full(this);
            case SEND_SIDE -> new RecordingModule.SendSide(this);
            case WITH_EVENTS -> new RecordingModule.WithEvents(this);
        };
    }
}
