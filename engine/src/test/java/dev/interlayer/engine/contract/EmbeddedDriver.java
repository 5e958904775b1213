package dev.interlayer.engine.contract;

import dev.interlayer.api.Direction;
import dev.interlayer.engine.EmbeddedConnection;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The engine without sockets: a real {@code ProxyConnection} between two embedded channels ({@link EmbeddedConnection}),
 * the loop run until idle after every step and its clock moved by hand, so every result is exact and instant.
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
        try (EmbeddedConnection c = new EmbeddedConnection(modules)) {
            out.add(snapshot(c, modules));
            for (Scenario.Step step : s.steps) {
                switch (step) {
                    case Scenario.Write w -> c.read(w.direction(), RecordingModule.bytes(w.text()));
                    case Scenario.End e -> c.endInput(e.direction());
                    case Scenario.Advance a -> c.advance(a.by());
                    case Scenario.Detach d -> c.detach(d.module());
                }
                c.runUntilIdle();
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
