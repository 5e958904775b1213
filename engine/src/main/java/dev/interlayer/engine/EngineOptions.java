package dev.interlayer.engine;

import java.time.Duration;

/**
 * Data-plane settings.
 *
 * @param ioThreads event-loop threads (0 = one per core)
 * @param nativeTransport use native epoll where available (NIO otherwise)
 * @param holdLimit per-connection cap, in bytes, on bytes held by HOLD or buffered by NEED_MORE and
 *                  injected while the peer does not read; overflow resets the connection with a clear reason
 * @param hookBudget longest a single hook call may run before it counts as a fault (the watchdog also
 *                   interrupts a hook blocked past it)
 * @param allocLimit most bytes a single hook call may allocate on the heap before it is stopped and counted as a fault
 *                   (sampled by the watchdog; 0 = no limit)
 * @param connectTimeout upstream connect timeout
 * @param splice move bulk transfers of connections without data or event hooks socket to socket in the kernel
 *               ({@code splice(2)}, epoll only); off, every byte goes through the event loop
 * @param reusePort with epoll and more than one event loop, give every loop a listening socket of its own on each
 *                  TCP listener's address ({@code SO_REUSEPORT}) that accepts the connections the loop then serves;
 *                  off, one listening socket whose loop hands each connection to the next loop
 * @param direct connections no module selects run below Netty's channels (epoll, with a listening socket per loop);
 *               off, every connection runs in channels
 */
public record EngineOptions(int ioThreads, boolean nativeTransport, long holdLimit, Duration hookBudget, long allocLimit, Duration connectTimeout,
                            boolean splice, boolean reusePort, boolean direct) {

    /** The default of {@code allocLimit}: far above what a hook that transforms a chunk needs, far below a heap. */
    public static final long DEFAULT_ALLOC_LIMIT = 64L << 20;

    public EngineOptions {
        if (ioThreads < 0) throw new IllegalArgumentException("io-threads must be >= 0");
        if (holdLimit < 1024) throw new IllegalArgumentException("hold-limit must be at least 1KiB");
        if (hookBudget == null || hookBudget.isNegative() || hookBudget.isZero()) throw new IllegalArgumentException("hook-budget must be positive");
        if (allocLimit < 0) throw new IllegalArgumentException("alloc-limit must be >= 0 (0 = no limit)");
        if (connectTimeout == null || connectTimeout.isNegative() || connectTimeout.isZero()) throw new IllegalArgumentException("connect-timeout must be positive");
    }

    /** Defaults: one thread per core, native epoll, 4 MiB hold limit, 200 ms hook budget, 64 MiB allocation per hook call, 10 s connect timeout, splice on, a listening socket per loop, the direct path on. */
    public static EngineOptions defaults() {
        return new EngineOptions(0, true, 4L << 20, Duration.ofMillis(200), DEFAULT_ALLOC_LIMIT, Duration.ofSeconds(10), true, true, true);
    }

    public EngineOptions withSplice(boolean on) {
        return new EngineOptions(ioThreads, nativeTransport, holdLimit, hookBudget, allocLimit, connectTimeout, on, reusePort, direct);
    }

    public EngineOptions withHoldLimit(long bytes) {
        return new EngineOptions(ioThreads, nativeTransport, bytes, hookBudget, allocLimit, connectTimeout, splice, reusePort, direct);
    }

    public EngineOptions withHookBudget(Duration d) {
        return new EngineOptions(ioThreads, nativeTransport, holdLimit, d, allocLimit, connectTimeout, splice, reusePort, direct);
    }

    public EngineOptions withAllocLimit(long bytes) {
        return new EngineOptions(ioThreads, nativeTransport, holdLimit, hookBudget, bytes, connectTimeout, splice, reusePort, direct);
    }

    public EngineOptions withIoThreads(int n) {
        return new EngineOptions(n, nativeTransport, holdLimit, hookBudget, allocLimit, connectTimeout, splice, reusePort, direct);
    }

    public EngineOptions withReusePort(boolean on) {
        return new EngineOptions(ioThreads, nativeTransport, holdLimit, hookBudget, allocLimit, connectTimeout, splice, on, direct);
    }

    public EngineOptions withDirect(boolean on) {
        return new EngineOptions(ioThreads, nativeTransport, holdLimit, hookBudget, allocLimit, connectTimeout, splice, reusePort, on);
    }
}
