package dev.interlayer.engine;

import io.netty.channel.epoll.EpollIoOps;

/**
 * Moves one connection's bytes socket to socket inside the kernel ({@code splice(2)} through a pipe per
 * direction), for a connection whose modules have no data or event hooks: the bytes never enter the JVM.
 *
 * <p>The relay takes both sockets' epoll registrations over from their Netty channels ({@link EngineEpoll});
 * each wake-up moves, per direction, socket → pipe → socket until a socket would block, with level-triggered
 * interest: {@code EPOLLIN} on a source while its pipe is empty, {@code EPOLLOUT} on a target while its pipe
 * holds bytes. Only an empty pipe is filled, so "would block" on the way in always means the socket has
 * nothing to read, and a read of 0 always means the end of the stream.
 *
 * <p>Anything that is not plain forwarding ends the relay: an end of stream, a module that attaches, bytes
 * a module injects, a read the channel made on its own. The relay then stops reading, writes out what its
 * pipes still hold, and gives both sockets back to their channels ({@link SpliceHandoff#spliceDone}),
 * which run the ordinary path from there on: the end of stream is read again by the channel (a socket at
 * its end reads 0 again) and half-closes exactly as without splicing. Errors reset the connection as a read
 * or write error would. Runs on the connection's event loop only.
 */
final class SpliceRelay implements EngineEpoll.Owner {

    private static final int IN = EpollIoOps.EPOLLIN.value();
    private static final int OUT = EpollIoOps.EPOLLOUT.value();
    private static final int ERR = EpollIoOps.EPOLLERR.value();
    /** Socket → pipe → socket rounds per direction per wake-up: bounds one connection's turn on the event loop. */
    private static final int ROUNDS = 8;

    private final SpliceHandoff c;
    private final LinuxSplice sys;
    /** Per direction: the socket read and the socket written (SEND reads the local socket, writes the remote). */
    private final int[] src = new int[2];
    private final int[] dst = new int[2];
    private final int[] pipeRead = new int[2];
    private final int[] pipeWrite = new int[2];
    private final int pipeSize;
    private final long[] inPipe = new long[2];
    private final EngineEpoll.Registration local;
    private final EngineEpoll.Registration remote;
    private boolean draining;
    private boolean done;

    private SpliceRelay(SpliceHandoff c, LinuxSplice sys, int localFd, int remoteFd, EngineEpoll.Registration local,
                        EngineEpoll.Registration remote, int[] sendPipe, int[] recvPipe, int pipeSize) {
        this.c = c;
        this.sys = sys;
        this.local = local;
        this.remote = remote;
        src[ProxyConnection.SEND] = localFd;
        dst[ProxyConnection.SEND] = remoteFd;
        src[ProxyConnection.RECV] = remoteFd;
        dst[ProxyConnection.RECV] = localFd;
        pipeRead[ProxyConnection.SEND] = sendPipe[0];
        pipeWrite[ProxyConnection.SEND] = sendPipe[1];
        pipeRead[ProxyConnection.RECV] = recvPipe[0];
        pipeWrite[ProxyConnection.RECV] = recvPipe[1];
        this.pipeSize = pipeSize;
    }

    /**
     * Makes the pipes and takes both registrations; the caller has stopped the channels reading and nothing waits
     * to be written on either. Returns null (nothing taken) if a pipe cannot be made, with the reason logged by the caller.
     */
    static SpliceRelay start(SpliceHandoff c, int localFd, int remoteFd, EngineEpoll.Registration local,
                             EngineEpoll.Registration remote, int pipeSize) throws java.io.IOException {
        LinuxSplice sys = new LinuxSplice();
        int[] send = null;
        try {
            send = sys.pipe(pipeSize);
            int[] recv = sys.pipe(pipeSize);
            SpliceRelay r = new SpliceRelay(c, sys, localFd, remoteFd, local, remote, send, recv, pipeSize > 0 ? pipeSize : 64 * 1024);
            local.take(r, IN);
            remote.take(r, IN);
            return r;
        } catch (java.io.IOException e) {
            if (send != null) {
                sys.close(send[0]);
                sys.close(send[1]);
            }
            sys.free();
            throw e;
        }
    }

    /** Moves what is ready now in both directions (the sockets may hold bytes already). */
    void kick() {
        ready(null, IN | OUT);
    }

    @Override
    public void ready(EngineEpoll.Registration r, int ops) {
        if (done) return;
        if (!pump(ProxyConnection.SEND) || done || !pump(ProxyConnection.RECV) || done) return;
        if (draining && inPipe[0] == 0 && inPipe[1] == 0) {
            finish();
            return;
        }
        if ((ops & ERR) != 0 && !draining) {
            // an error with nothing to read or write in the way: the reads below would report it, so reset now
            c.spliceFailed(r == local ? ProxyConnection.SEND : ProxyConnection.RECV, true, 104);
            return;
        }
        local.interest(interest(ProxyConnection.SEND, ProxyConnection.RECV));
        remote.interest(interest(ProxyConnection.RECV, ProxyConnection.SEND));
    }

    /** The interest of the socket that is the source of {@code readDir} and the target of {@code writeDir}. */
    private int interest(int readDir, int writeDir) {
        int ops = 0;
        if (!draining && inPipe[readDir] == 0) ops |= IN;
        if (inPipe[writeDir] > 0) ops |= OUT;
        return ops;
    }

    /** Moves bytes of direction {@code d} until a socket would block; false if the connection was reset. */
    private boolean pump(int d) {
        for (int round = 0; round < ROUNDS; round++) {
            if (inPipe[d] > 0) {
                long n = sys.splice(pipeRead[d], dst[d], inPipe[d]);
                if (n < 0) {
                    if (n == -LinuxSplice.EAGAIN) return true;
                    c.spliceFailed(d, false, (int) -n);
                    return false;
                }
                inPipe[d] -= n;
                if (inPipe[d] > 0) continue; // the socket took part: try again, it says EAGAIN if it is full
            }
            if (draining) return true;
            long n = sys.splice(src[d], pipeWrite[d], pipeSize);
            if (n < 0) {
                if (n == -LinuxSplice.EAGAIN) return true;
                c.spliceFailed(d, true, (int) -n);
                return false;
            }
            if (n == 0) {
                drain(); // end of stream: the channel reads it again once it has its socket back
                return true;
            }
            inPipe[d] = n;
            c.spliced(d, n);
        }
        return true;
    }

    /** Stops reading; once the pipes are written out, both sockets go back to their channels. */
    void drain() {
        if (done) return;
        draining = true;
        if (inPipe[0] == 0 && inPipe[1] == 0) {
            finish();
        } else {
            local.interest(interest(ProxyConnection.SEND, ProxyConnection.RECV));
            remote.interest(interest(ProxyConnection.RECV, ProxyConnection.SEND));
        }
    }

    private void finish() {
        release();
        c.spliceDone();
    }

    /** Gives the sockets back and closes the pipes, dropping what they hold (the connection is being reset or closed). */
    void release() {
        if (done) return;
        done = true;
        local.giveBack();
        remote.giveBack();
        for (int d = 0; d < 2; d++) {
            sys.close(pipeRead[d]);
            sys.close(pipeWrite[d]);
        }
        sys.free();
    }

    /** Bytes read but not yet written, in both directions. */
    long pending() {
        return inPipe[0] + inPipe[1];
    }
}
