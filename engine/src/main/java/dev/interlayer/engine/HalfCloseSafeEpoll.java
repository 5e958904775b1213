package dev.interlayer.engine;

import io.netty.channel.IoHandle;
import io.netty.channel.IoHandler;
import io.netty.channel.IoHandlerContext;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.IoOps;
import io.netty.channel.IoRegistration;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollIoOps;
import io.netty.util.concurrent.ThreadAwareExecutor;

/**
 * The epoll I/O handler with a fix for half-closed sockets in Netty 4.2.18 (the release this build is pinned to).
 *
 * <p>When a channel's interest set becomes empty, which happens once its input is shut down and nothing waits
 * to be written, Netty's registration removes the fd from epoll ({@code EPOLL_CTL_DEL}) but still believes it
 * is added. The next write that needs {@code EPOLLOUT} then fails with {@code epoll_ctl(..) ENOENT}, and Netty
 * shuts the output down, discarding the queued bytes: a half-closed connection loses the tail of its reply.
 * This wrapper never submits an empty set; it submits {@code EPOLLET} alone instead, which keeps the fd
 * registered without any level-triggered event, so later interest changes are plain modifications.
 */
final class HalfCloseSafeEpoll implements IoHandlerFactory {

    private final IoHandlerFactory delegate = EpollIoHandler.newFactory();

    @Override
    public IoHandler newHandler(ThreadAwareExecutor ioExecutor) {
        return new Handler(delegate.newHandler(ioExecutor));
    }

    @Override
    public boolean isChangingThreadSupported() {
        return delegate.isChangingThreadSupported();
    }

    private record Handler(IoHandler delegate) implements IoHandler {
        @Override public void initialize() { delegate.initialize(); }
        @Override public int run(IoHandlerContext context) { return delegate.run(context); }
        @Override public void prepareToDestroy() { delegate.prepareToDestroy(); }
        @Override public void destroy() { delegate.destroy(); }
        @Override public void wakeup() { delegate.wakeup(); }
        @Override public boolean isCompatible(Class<? extends IoHandle> handleType) { return delegate.isCompatible(handleType); }

        @Override
        public IoRegistration register(IoHandle handle) throws Exception {
            return new Registration(delegate.register(handle));
        }
    }

    private record Registration(IoRegistration delegate) implements IoRegistration {
        @Override public <T> T attachment() { return delegate.attachment(); }
        @Override public boolean isValid() { return delegate.isValid(); }
        @Override public boolean cancel() { return delegate.cancel(); }

        @Override
        public long submit(IoOps ops) {
            if (ops instanceof EpollIoOps e && e.value() == EpollIoOps.NONE.value()) {
                return delegate.submit(EpollIoOps.EPOLLET);
            }
            return delegate.submit(ops);
        }
    }
}
