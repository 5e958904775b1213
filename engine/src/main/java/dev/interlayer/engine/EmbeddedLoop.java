package dev.interlayer.engine;

import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelPromise;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.util.concurrent.AbstractScheduledEventExecutor;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Ticker;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;

/**
 * The event loop of an {@link EmbeddedEngine}: the thread that drives it (the test's) is the loop thread, time is a
 * {@link Ticker} that moves only when told, and nothing runs by itself. Unlike Netty's embedded loop, it knows which
 * thread it belongs to: a module calling an "any thread" SDK method from a thread of its own (an inject, a close) does
 * not run engine code on that thread, it queues a task, as on a real loop; {@link #runTasks()} runs it on the owner.
 */
final class EmbeddedLoop extends AbstractScheduledEventExecutor implements EventLoop {

    private final Thread owner;
    private final Ticker ticker;
    private final Queue<Runnable> tasks = new ConcurrentLinkedQueue<>();

    EmbeddedLoop(Thread owner, Ticker ticker) {
        this.owner = owner;
        this.ticker = ticker;
    }

    @Override
    public Ticker ticker() {
        return ticker;
    }

    @Override
    protected long getCurrentTimeNanos() {
        return ticker.nanoTime();
    }

    @Override
    public void execute(Runnable task) {
        tasks.add(task);
    }

    @Override
    public boolean inEventLoop(Thread thread) {
        return thread == owner;
    }

    /** Runs the queued tasks, and what they queue, then the timers due now; true if it ran anything. On the owner. */
    boolean runTasks() {
        boolean ran = false;
        Runnable r;
        while ((r = tasks.poll()) != null) {
            r.run();
            ran = true;
        }
        long now = getCurrentTimeNanos();
        while ((r = pollScheduledTask(now)) != null) {
            r.run();
            ran = true;
            while ((r = tasks.poll()) != null) {
                r.run();
            }
        }
        return ran;
    }

    /** True if a task waits to run now. */
    boolean hasTasks() {
        return !tasks.isEmpty();
    }

    /** Nanoseconds until the next timer is due (0 if one is due now), or -1 if none is scheduled. */
    long nextTimer() {
        long deadline = nextScheduledTaskDeadlineNanos(); // hasScheduledTasks() would say only whether one is due now
        return deadline < 0 ? -1 : Math.max(0, deadline - ticker.nanoTime());
    }

    /** Drops every timer not yet run (the engine is closing). */
    void cancelTimers() {
        cancelScheduledTasks();
        tasks.clear();
    }

    @Override
    public EventLoopGroup parent() {
        return null;
    }

    @Override
    public EventLoop next() {
        return this;
    }

    @Override
    public ChannelFuture register(Channel channel) {
        throw new UnsupportedOperationException("embedded channels register themselves");
    }

    @Override
    public ChannelFuture register(ChannelPromise promise) {
        throw new UnsupportedOperationException("embedded channels register themselves");
    }

    @Override
    @Deprecated
    public ChannelFuture register(Channel channel, ChannelPromise promise) {
        throw new UnsupportedOperationException("embedded channels register themselves");
    }

    @Override
    public Future<?> shutdownGracefully(long quietPeriod, long timeout, TimeUnit unit) {
        throw new UnsupportedOperationException("close the EmbeddedEngine instead");
    }

    @Override
    public Future<?> terminationFuture() {
        throw new UnsupportedOperationException("close the EmbeddedEngine instead");
    }

    @Override
    @Deprecated
    public void shutdown() {
        throw new UnsupportedOperationException("close the EmbeddedEngine instead");
    }

    @Override
    public boolean isShuttingDown() {
        return false;
    }

    @Override
    public boolean isShutdown() {
        return false;
    }

    @Override
    public boolean isTerminated() {
        return false;
    }

    @Override
    public boolean awaitTermination(long timeout, TimeUnit unit) {
        return false;
    }
}
