package dev.interlayer.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.netty.channel.IoEvent;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoRegistration;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoEvent;
import io.netty.channel.epoll.EpollIoHandle;
import io.netty.channel.epoll.EpollIoOps;
import io.netty.channel.unix.FileDescriptor;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The engine's epoll handler on a real event loop with real pipes: a descriptor closed in the middle of a loop turn
 * whose number a new one takes in that turn must not hand the closed one's remaining events of the turn to the new one.
 */
class EngineEpollTest {

    private MultiThreadIoEventLoopGroup group;
    private IoEventLoop loop;
    private final List<FileDescriptor> open = new ArrayList<>();

    @BeforeEach
    void loop() {
        assumeTrue(Epoll.isAvailable(), "epoll is not available here");
        group = new MultiThreadIoEventLoopGroup(1, new EngineEpoll());
        loop = (IoEventLoop) group.next();
    }

    @AfterEach
    void close() throws Exception {
        if (group != null) group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        for (FileDescriptor fd : open) {
            if (fd.isOpen()) fd.close();
        }
    }

    /** A handle for one descriptor that hands its events to {@code onEvent}. */
    private record Handle(FileDescriptor fd, BiConsumer<IoRegistration, Integer> onEvent) implements EpollIoHandle {
        @Override
        public void handle(IoRegistration registration, IoEvent event) {
            onEvent.accept(registration, ((EpollIoEvent) event).ops().value());
        }

        @Override
        public void close() {
            // the test closes the descriptors
        }
    }

    private FileDescriptor[] pipe() throws Exception {
        FileDescriptor[] p = FileDescriptor.pipe();
        open.add(p[0]);
        open.add(p[1]);
        return p;
    }

    private static void writeByte(FileDescriptor fd) throws Exception {
        ByteBuffer b = ByteBuffer.allocateDirect(1).put((byte) 1).flip();
        assertThat(fd.write(b, 0, 1)).isEqualTo(1);
    }

    @Test
    void aDescriptorThatTakesTheNumberOfOneClosedInTheSameTurnGetsNoneOfItsEventsOnlyItsOwnLater() throws Exception {
        FileDescriptor[] first = pipe();
        FileDescriptor[] second = pipe();
        IoRegistration[] secondReg = new IoRegistration[1];
        List<String> seen = new CopyOnWriteArrayList<>();
        boolean[] turnOver = {false};
        CompletableFuture<int[]> reused = new CompletableFuture<>();
        CompletableFuture<Void> ownEvent = new CompletableFuture<>();

        // the second pipe's reader: reports every event (it is closed in the middle of the turn that has its event)
        Handle secondHandle = new Handle(second[0], (r, ops) -> seen.add("closed one's own handle"));
        // the first pipe's reader: its event comes first in the turn; it closes the second reader and opens
        // descriptors until one takes the closed one's number, and registers that one, all within the turn
        Handle firstHandle = new Handle(first[0], (r, ops) -> {
            if (reused.isDone()) return;
            try {
                r.cancel();
                int number = second[0].intValue();
                secondReg[0].cancel(); // as a channel's close does: out of the loop's registrations, then closed
                second[0].close();
                FileDescriptor[] taker = null; // the pipe one of whose ends took the number
                for (int i = 0; i < 64 && taker == null; i++) {
                    FileDescriptor[] p = pipe();
                    if (p[0].intValue() == number || p[1].intValue() == number) taker = p;
                }
                if (taker == null) {
                    reused.complete(null);
                    return;
                }
                boolean reader = taker[0].intValue() == number;
                IoRegistration reg = loop.register(new Handle(reader ? taker[0] : taker[1], (tr, tops) -> {
                    seen.add(turnOver[0] ? "own event" : "closed one's event, same turn");
                    if (turnOver[0]) {
                        tr.cancel();
                        ownEvent.complete(null);
                    }
                })).getNow();
                // a reader's own event: a byte written later; a writer's: writable from the next turn on
                reg.submit(reader ? EpollIoOps.EPOLLIN : EpollIoOps.EPOLLOUT);
                loop.execute(() -> turnOver[0] = true); // tasks run once the turn's events are handled
                reused.complete(reader ? new int[] {taker[1].intValue()} : new int[0]);
            } catch (Exception e) {
                reused.completeExceptionally(e);
            }
        });

        loop.submit(() -> {
            loop.register(firstHandle).getNow().submit(EpollIoOps.EPOLLIN);
            secondReg[0] = loop.register(secondHandle).getNow();
            secondReg[0].submit(EpollIoOps.EPOLLIN);
        }).sync();
        // the next turn applies both interests; then, with the loop busy in a task, both pipes become readable, in
        // order, so the turn after has both events: the first reader's, then the second's
        loop.submit(() -> { }).sync();
        loop.submit(() -> {
            writeByte(first[1]);
            writeByte(second[1]);
            return null;
        }).sync();

        int[] writer = reused.get(10, TimeUnit.SECONDS);
        assumeTrue(writer != null, "no new descriptor took the closed one's number");
        if (writer.length == 1) {
            writeByte(new FileDescriptor(writer[0])); // the reader's own event, in a later turn (not closed twice: open has it)
        }
        ownEvent.get(10, TimeUnit.SECONDS);
        assertThat(seen).containsExactly("own event");
    }
}
