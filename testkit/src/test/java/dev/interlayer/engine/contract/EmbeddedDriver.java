package dev.interlayer.engine.contract;

import dev.interlayer.api.Direction;
import dev.interlayer.engine.EmbeddedConnection;
import dev.interlayer.engine.EmbeddedEngine;
import dev.interlayer.runtime.ModuleConfig;
import dev.interlayer.testkit.FakeConnection;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The engine without sockets, used directly: a real {@code ProxyConnection} between two embedded channels
 * ({@link EmbeddedConnection} of an {@link EmbeddedEngine}), the loop run until idle after every step and its clock moved
 * by hand, so every result is exact and instant. The testkit runs on the same engine; this driver checks the engine
 * without the testkit's layer on top.
 */
final class EmbeddedDriver implements Driver {

    @Override
    public String name() {
        return "embedded";
    }

    @Override
    public List<Snapshot> run(Scenario s, List<Snapshot> guide) throws Exception {
        List<RecordingModule> modules = s.modules.stream().map(ModuleScript::newModule).toList();
        List<Snapshot> out = new ArrayList<>();
        EmbeddedEngine.Builder b = EmbeddedEngine.builder();
        for (RecordingModule m : modules) b.module(m, ModuleConfig.defaults(m.name()));
        try (EmbeddedEngine e = b.build()) {
            FakeConnection info = new FakeConnection();
            EmbeddedConnection c = e.connect(info, e.registry().candidates(info));
            out.add(snapshot(c, modules));
            for (Scenario.Step step : s.steps) {
                switch (step) {
                    case Scenario.Write w -> c.read(w.direction(), RecordingModule.bytes(w.text()));
                    case Scenario.End end -> c.endInput(end.direction());
                    case Scenario.Advance a -> e.advance(a.by());
                    case Scenario.Detach d -> c.detach(d.module());
                }
                e.runUntilIdle();
                out.add(snapshot(c, modules));
            }
        }
        return out;
    }

    private static Snapshot snapshot(EmbeddedConnection c, List<RecordingModule> modules) {
        Map<String, List<String>> records = new LinkedHashMap<>();
        for (RecordingModule m : modules) records.put(m.name(), m.entries());
        String failure = null;
        for (Direction d : Direction.values()) {
            if (c.bytesAfterFin(d) > 0) {
                failure = "the engine wrote " + c.bytesAfterFin(d) + " bytes " + d + " after the FIN";
            }
        }
        return new Snapshot(text(c.delivered(Direction.SEND)), end(c, Direction.SEND), text(c.delivered(Direction.RECV)),
                end(c, Direction.RECV), records, failure);
    }

    private static Snapshot.End end(EmbeddedConnection c, Direction d) {
        if (c.finSent(d)) return Snapshot.End.FIN;
        if (c.isOpen()) return Snapshot.End.OPEN;
        return c.wasReset() ? Snapshot.End.RESET : Snapshot.End.FIN;
    }

    private static String text(byte[] b) {
        return new String(b, StandardCharsets.ISO_8859_1);
    }
}
