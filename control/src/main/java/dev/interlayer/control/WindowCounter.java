package dev.interlayer.control;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Rate limit for reports of repeated events: per key, the first {@code perWindow} events of a window are
 * reported one by one, the rest only counted; {@link #drain} ends the window and returns, per key, how many
 * were held back and the last of them, for one summary line. At most {@code maxKeys} keys are tracked in a
 * window; events of further keys share the key {@code overflow}. Thread-safe.
 *
 * @param <K> what events are grouped by (who, and what kind of event)
 * @param <V> what an event says
 */
final class WindowCounter<K, V> {

    /**
     * Events held back in a window.
     *
     * @param key their key
     * @param count how many
     * @param last the last of them
     */
    record Held<K, V>(K key, long count, V last) {}

    private static final class Slot<V> {
        long seen;
        long held;
        V last;
    }

    private final int perWindow;
    private final int maxKeys;
    private final K overflow;
    private final Map<K, Slot<V>> slots = new LinkedHashMap<>();

    WindowCounter(int perWindow, int maxKeys, K overflow) {
        this.perWindow = perWindow;
        this.maxKeys = maxKeys;
        this.overflow = overflow;
    }

    /** Counts an event; true if it is to be reported on its own, false if it is held back for the summary. */
    synchronized boolean pass(K key, V event) {
        Slot<V> s = slots.get(key);
        if (s == null) {
            if (slots.size() >= maxKeys) {
                key = overflow;
                s = slots.get(key);
            }
            if (s == null) {
                s = new Slot<>();
                slots.put(key, s);
            }
        }
        if (++s.seen <= perWindow) {
            return true;
        }
        s.held++;
        s.last = event;
        return false;
    }

    /** Ends the window: the keys that had events held back, and starts counting afresh. */
    synchronized List<Held<K, V>> drain() {
        List<Held<K, V>> out = new ArrayList<>();
        for (Map.Entry<K, Slot<V>> e : slots.entrySet()) {
            if (e.getValue().held > 0) {
                out.add(new Held<>(e.getKey(), e.getValue().held, e.getValue().last));
            }
        }
        slots.clear();
        return out;
    }
}
