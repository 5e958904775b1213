package dev.interlayer.control;

import dev.interlayer.control.v1.Event;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleRegistry;
import dev.interlayer.runtime.ModuleState;
import dev.interlayer.runtime.RegistryListener;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * Turns what happens to modules into {@link Event}s for the {@code Events} endpoint: lifecycle
 * ({@code loaded}, {@code state}, {@code unloaded}) and what modules publish themselves
 * ({@code ModuleEnv.publish}, e.g. tcplog's {@code record}).
 *
 * <p>Thread-safe; subscribers are called on the thread of the change (often an engine event loop) and
 * must only queue.
 */
final class EventHub implements RegistryListener, AutoCloseable {

    private final ModuleRegistry registry;
    private final AtomicLong seq = new AtomicLong();
    private final CopyOnWriteArrayList<Consumer<Event>> subscribers = new CopyOnWriteArrayList<>();

    EventHub(ModuleRegistry registry) {
        this.registry = registry;
        registry.addListener(this);
    }

    Runnable subscribe(Consumer<Event> s) {
        subscribers.add(s);
        return () -> subscribers.remove(s);
    }

    private void emit(String module, String version, String kind, String text) {
        if (subscribers.isEmpty()) {
            return;
        }
        Event e = Event.newBuilder().setSeq(seq.incrementAndGet()).setAtMs(System.currentTimeMillis()).setModule(module)
                .setVersion(version).setKind(kind).setText(text).build();
        for (Consumer<Event> s : subscribers) {
            s.accept(e);
        }
    }

    @Override
    public void moduleAdded(LoadedModule m) {
        emit(m.name(), m.version(), "loaded", m.id() + " loaded: " + m.state() + ", priority " + m.priority());
    }

    @Override
    public void stateChanged(LoadedModule m, ModuleState from, ModuleState to) {
        emit(m.name(), m.version(), "state", m.id() + ": " + from + " -> " + to);
    }

    @Override
    public void moduleRemoved(LoadedModule m) {
        emit(m.name(), m.version(), "unloaded", m.id() + " unloaded");
    }

    @Override
    public void moduleEvent(String module, String version, String kind, String text) {
        emit(module, version, kind, text.length() > 65536 ? text.substring(0, 65536) : text);
    }

    @Override
    public void close() {
        registry.removeListener(this);
        subscribers.clear();
    }
}
