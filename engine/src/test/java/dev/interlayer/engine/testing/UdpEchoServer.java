package dev.interlayer.engine.testing;

import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketException;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A real UDP echo server on loopback: every datagram goes back to its sender unchanged; what arrived is recorded.
 */
public final class UdpEchoServer implements AutoCloseable {

    private final DatagramSocket socket;
    private final Thread thread;
    /** Every datagram received, in arrival order (payload copies). */
    public final List<byte[]> received = new CopyOnWriteArrayList<>();
    /** The sender of each datagram received, in arrival order. */
    public final List<InetSocketAddress> senders = new CopyOnWriteArrayList<>();

    public UdpEchoServer() throws SocketException {
        socket = new DatagramSocket(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        socket.setReceiveBufferSize(4 << 20);
        thread = Thread.ofPlatform().daemon().name("udp-echo").start(this::run);
    }

    public InetSocketAddress address() {
        return (InetSocketAddress) socket.getLocalSocketAddress();
    }

    private void run() {
        byte[] buf = new byte[65536];
        while (!socket.isClosed()) {
            DatagramPacket p = new DatagramPacket(buf, buf.length);
            try {
                socket.receive(p);
                received.add(Arrays.copyOfRange(p.getData(), p.getOffset(), p.getOffset() + p.getLength()));
                senders.add((InetSocketAddress) p.getSocketAddress());
                socket.send(new DatagramPacket(p.getData(), p.getOffset(), p.getLength(), p.getSocketAddress()));
            } catch (IOException e) {
                if (socket.isClosed()) return;
            }
        }
    }

    @Override
    public void close() throws InterruptedException {
        socket.close();
        thread.join(2000);
    }
}
