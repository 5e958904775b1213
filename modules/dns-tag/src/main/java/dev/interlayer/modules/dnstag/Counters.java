package dev.interlayer.modules.dnstag;

import dev.interlayer.api.ControlRequest;
import dev.interlayer.api.ControlResponse;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/**
 * The counters of one module, shared by all its flows (event-loop threads) and read by {@code control} from any
 * thread. Per-app counts are bounded: beyond {@link #MAX_APPS} distinct ids the rest count under {@code (other)},
 * so hostile queries cannot grow memory.
 */
final class Counters {

    static final int MAX_APPS = 1024;
    static final String OTHER = "(other)";

    final LongAdder tagged = new LongAdder();
    final LongAdder untagged = new LongAdder();
    final LongAdder malformed = new LongAdder();
    final LongAdder dropped = new LongAdder();
    private final ConcurrentHashMap<String, LongAdder> perApp = new ConcurrentHashMap<>();

    void app(String id) {
        LongAdder a = perApp.get(id);
        if (a == null) {
            a = perApp.size() >= MAX_APPS ? perApp.computeIfAbsent(OTHER, k -> new LongAdder()) : perApp.computeIfAbsent(id, k -> new LongAdder());
        }
        a.increment();
    }

    /** Answers {@code status}, {@code counts} and {@code reset}. */
    ControlResponse control(ControlRequest r, String tagWord) {
        switch (r.command()) {
            case "status" -> {
                return ControlResponse.ok(tagWord + " " + tagged.sum() + "\nuntagged " + untagged.sum() + "\nmalformed " + malformed.sum()
                        + "\ndropped " + dropped.sum() + "\n");
            }
            case "counts" -> {
                StringBuilder sb = new StringBuilder();
                Map<String, LongAdder> sorted = new TreeMap<>(perApp);
                sorted.forEach((k, v) -> sb.append(k).append(' ').append(v.sum()).append('\n'));
                return ControlResponse.ok(sb.toString());
            }
            case "reset" -> {
                tagged.reset();
                untagged.reset();
                malformed.reset();
                dropped.reset();
                perApp.clear();
                return ControlResponse.ok("reset\n");
            }
            default -> {
                return ControlResponse.error("unknown command '" + r.command() + "'; known: status, counts, reset");
            }
        }
    }
}
