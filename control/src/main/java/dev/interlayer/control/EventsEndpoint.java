package dev.interlayer.control;

import dev.interlayer.control.v1.Event;
import dev.interlayer.control.v1.EventsGrpc;
import dev.interlayer.control.v1.SubscribeRequest;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.Set;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicReference;

/** The {@code Events} endpoint: live module events, filtered by module and kind. */
final class EventsEndpoint extends EventsGrpc.EventsImplBase {

    /** Events kept for one slow subscriber before new ones are dropped. */
    static final int QUEUE = 4096;

    private final EventHub hub;
    private final Executor executor;

    EventsEndpoint(EventHub hub, Executor executor) {
        this.hub = hub;
        this.executor = executor;
    }

    @Override
    public void subscribe(SubscribeRequest request, StreamObserver<Event> out) {
        Set<String> modules = Set.copyOf(request.getModulesList());
        Set<String> kinds = Set.copyOf(request.getKindsList());
        AtomicReference<Runnable> unsubscribe = new AtomicReference<>(() -> {});
        StreamSender<Event> sender = new StreamSender<>((ServerCallStreamObserver<Event>) out, QUEUE, executor, () -> unsubscribe.get().run());
        java.util.concurrent.atomic.AtomicLong reported = new java.util.concurrent.atomic.AtomicLong();
        unsubscribe.set(hub.subscribe(e -> {
            if ((modules.isEmpty() || modules.contains(e.getModule())) && (kinds.isEmpty() || kinds.contains(e.getKind()))) {
                long dropped = sender.dropped();
                long before = reported.get();
                if (dropped > before && reported.compareAndSet(before, dropped)) {
                    sender.offer(Event.newBuilder().setSeq(e.getSeq()).setAtMs(e.getAtMs()).setKind("dropped")
                            .setText((dropped - before) + " events were dropped because this client read too slowly").build());
                }
                sender.offer(e);
            }
        }));
        // The stream stays open until the client cancels. The first event says the subscription is in place,
        // so a client knows that every later event will reach it.
        sender.offer(Event.newBuilder().setAtMs(System.currentTimeMillis()).setKind("subscribed")
                .setText("following " + (modules.isEmpty() ? "all modules" : String.join(", ", modules.stream().sorted().toList()))
                        + (kinds.isEmpty() ? "" : ", kinds " + String.join(", ", kinds.stream().sorted().toList()))).build());
    }
}
