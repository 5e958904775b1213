package dev.interlayer.engine.contract;

import dev.interlayer.api.Direction;
import dev.interlayer.testkit.HarnessConnection;
import dev.interlayer.testkit.ModuleHarness;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The testkit: the same modules in a {@link ModuleHarness} (faults tolerated, so the fault policy is what is compared),
 * virtual time moved by the steps. A contract violation or other exception the harness throws ends the run; it shows
 * as the snapshot's failure from that step on.
 */
final class TestkitDriver implements Driver {

    @Override
    public String name() {
        return "testkit";
    }

    @Override
    public List<Snapshot> run(Scenario s, List<Snapshot> guide) {
        List<RecordingModule> modules = s.modules.stream().map(ModuleScript::newModule).toList();
        List<Snapshot> out = new ArrayList<>();
        ModuleHarness h = ModuleHarness.of(modules.toArray(new RecordingModule[0])).tolerateFaults();
        try {
            HarnessConnection c = h.attach();
            out.add(snapshot(c, modules, null));
            String failure = null;
            for (Scenario.Step step : s.steps) {
                if (failure == null) {
                    try {
                        switch (step) {
                            case Scenario.Write w -> {
                                if (w.direction() == Direction.SEND) c.send(RecordingModule.bytes(w.text()));
                                else c.recv(RecordingModule.bytes(w.text()));
                            }
                            case Scenario.End e -> c.end(e.direction());
                            case Scenario.Advance a -> h.advance(a.by());
                            case Scenario.Detach d -> c.detach(d.module());
                        }
                    } catch (RuntimeException | AssertionError e) {
                        failure = "the testkit threw " + e;
                    }
                }
                out.add(snapshot(c, modules, failure));
            }
        } finally {
            try {
                h.close();
            } catch (RuntimeException | AssertionError ignored) {
                // what went wrong is in the snapshots already; closing only tears down
            }
        }
        return out;
    }

    private static Snapshot snapshot(HarnessConnection c, List<RecordingModule> modules, String failure) {
        Map<String, List<String>> records = new LinkedHashMap<>();
        for (RecordingModule m : modules) records.put(m.name(), m.entries());
        return new Snapshot(text(c.sent()), end(c, Direction.SEND), text(c.received()), end(c, Direction.RECV), records, failure);
    }

    private static Snapshot.End end(HarnessConnection c, Direction d) {
        if (c.ended(d)) return Snapshot.End.FIN;
        return switch (c.state()) {
            case OPEN -> Snapshot.End.OPEN;
            case CLOSED -> Snapshot.End.FIN;
            case RESET -> Snapshot.End.RESET;
        };
    }

    private static String text(byte[] b) {
        return new String(b, StandardCharsets.ISO_8859_1);
    }
}
