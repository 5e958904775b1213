package dev.interlayer.bench.suite;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The idle-connection memory benchmark: N connections opened through a target and left idle, the target's
 * heap (Java targets, after a full GC) and resident memory read before and after.
 *
 * <p>Both ends live in this JVM and use NIO, one thread each, no thread per connection: an {@link Upstream}
 * that accepts, echoes whatever arrives and holds the connection, and {@link #open} that connects, sends a
 * 16-byte ping and waits for its echo, so every counted pair has carried bytes both ways end to end.
 *
 * <p>Port limits: one (source IP, destination IP:port) pair has only the ephemeral range (~28k ports). The
 * connections are spread over several target listeners (one upstream port each, so the target's own upstream
 * connections fit too) and over several client source addresses (127.0.x.2, 127.0.x.3, …).
 */
final class Idle {

    static final int PING = 16;

    /** One target's result. Sizes in KiB; heap NaN for a target that is not a JVM. */
    record Result(String target, int pairs, int routes, double openSeconds, double heapBeforeKiB, double heapAfterKiB,
                  double rssBeforeKiB, double rssAfterKiB, String errors) {

        boolean ok() {
            return errors.isEmpty();
        }

        double heapPerPairKiB() {
            return (heapAfterKiB - heapBeforeKiB) / pairs;
        }

        double rssPerPairKiB() {
            return (rssAfterKiB - rssBeforeKiB) / pairs;
        }

        /**
         * Its CSV rows, in the columns of {@link Loads.Run}: {@code idle_heap} and {@code idle_rss} (KiB per pair,
         * amount = pairs) and {@code idle_open} (pairs/s, wall = seconds to open them all).
         */
        List<String> csvRows() {
            return List.of(
                    row("idle_heap", heapPerPairKiB(), "KiB/pair"),
                    row("idle_rss", rssPerPairKiB(), "KiB/pair"),
                    row("idle_open", pairs / openSeconds, "pairs/s"));
        }

        private String row(String test, double value, String unit) {
            // heap is empty for a target that is not a JVM
            return new Loads.Run(target, test, 1, value, unit, pairs, openSeconds, Double.NaN, Double.NaN, Double.NaN,
                    Double.NaN, Double.NaN, Double.NaN, errors, errors.isEmpty()).csv() + "\n";
        }
    }

    private Idle() {}

    /** Routes for {@code pairs} connections at most {@code perRoute} per route: how many listeners the target gets. */
    static int routesFor(int pairs, int perRoute) {
        return Math.max(1, (pairs + perRoute - 1) / perRoute);
    }

    /** The upstream: accepts on every port, echoes what it reads, keeps every connection open until closed. */
    static final class Upstream implements AutoCloseable {
        private final Selector selector;
        private final List<ServerSocketChannel> servers = new ArrayList<>();
        private final AtomicInteger open = new AtomicInteger();
        private final Thread thread;
        private volatile boolean running = true;
        private volatile IOException failure;

        Upstream(List<Integer> ports) throws IOException {
            selector = Selector.open();
            for (int port : ports) {
                ServerSocketChannel s = ServerSocketChannel.open();
                s.setOption(StandardSocketOptions.SO_REUSEADDR, true);
                s.bind(new InetSocketAddress("127.0.0.1", port), 4096);
                s.configureBlocking(false);
                s.register(selector, SelectionKey.OP_ACCEPT);
                servers.add(s);
            }
            thread = new Thread(this::loop, "idle-upstream");
            thread.setDaemon(true);
            thread.start();
        }

        /** Connections accepted and not yet closed. */
        int open() {
            return open.get();
        }

        private void loop() {
            ByteBuffer buf = ByteBuffer.allocateDirect(4096);
            try {
                while (running) {
                    selector.select(100);
                    for (SelectionKey k : selector.selectedKeys()) {
                        if (!k.isValid()) {
                            continue;
                        }
                        if (k.isAcceptable()) {
                            SocketChannel c;
                            while ((c = ((ServerSocketChannel) k.channel()).accept()) != null) {
                                c.configureBlocking(false);
                                c.register(selector, SelectionKey.OP_READ);
                                open.incrementAndGet();
                            }
                        } else if (k.isReadable()) {
                            SocketChannel c = (SocketChannel) k.channel();
                            buf.clear();
                            int n;
                            try {
                                n = c.read(buf);
                            } catch (IOException e) {
                                n = -1;
                            }
                            if (n < 0) {
                                k.cancel();
                                c.close();
                                open.decrementAndGet();
                            } else if (n > 0) {
                                buf.flip();
                                c.write(buf);   // a few bytes into an empty socket buffer: never short
                            }
                        }
                    }
                    selector.selectedKeys().clear();
                }
            } catch (IOException e) {
                failure = e;
            }
        }

        IOException failure() {
            return failure;
        }

        @Override
        public void close() throws IOException {
            running = false;
            selector.wakeup();
            try {
                thread.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            for (SelectionKey k : selector.keys()) {
                k.channel().close();
            }
            selector.close();
            for (ServerSocketChannel s : servers) {
                s.close();
            }
        }
    }

    /**
     * Opens {@code n} connections: connection i goes to {@code ports[i % ports.size()]} from source address
     * {@code sources[i % sources.size()]}, at most {@code inFlight} being set up at a time (so the listen backlog
     * never overflows), each sending a ping and waiting for its echo. Returns the open channels; the caller
     * closes them.
     */
    static List<SocketChannel> open(int n, List<Integer> ports, List<String> sources, int inFlight, long timeoutMillis)
            throws IOException, BenchException {
        List<SocketChannel> channels = new ArrayList<>(n);
        ByteBuffer ping = ByteBuffer.allocate(PING);
        ByteBuffer sink = ByteBuffer.allocate(256);
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        int started = 0;
        int done = 0;
        int pending = 0;
        try (Selector sel = Selector.open()) {
            while (done < n) {
                while (started < n && pending < inFlight) {
                    SocketChannel c = SocketChannel.open();
                    channels.add(c);
                    c.configureBlocking(false);
                    c.setOption(StandardSocketOptions.SO_REUSEADDR, true);
                    boolean connected;
                    try {
                        c.bind(new InetSocketAddress(sources.get(started % sources.size()), 0));
                        connected = c.connect(new InetSocketAddress("127.0.0.1", ports.get(started % ports.size())));
                        if (connected) {
                            ping.clear();
                            c.write(ping);
                        }
                    } catch (IOException e) {
                        throw new BenchException("connection " + started + " from " + sources.get(started % sources.size())
                                + " could not be opened: " + e.getMessage()
                                + " (open files? ephemeral ports? see ulimit -n and net.ipv4.ip_local_port_range)", e);
                    }
                    c.register(sel, connected ? SelectionKey.OP_READ : SelectionKey.OP_CONNECT, new int[] {started, 0});
                    started++;
                    pending++;
                }
                sel.select(50);
                for (SelectionKey k : sel.selectedKeys()) {
                    SocketChannel c = (SocketChannel) k.channel();
                    int[] st = (int[]) k.attachment();
                    try {
                        if (k.isConnectable()) {
                            c.finishConnect();
                            ping.clear();
                            c.write(ping);
                            k.interestOps(SelectionKey.OP_READ);
                        } else if (k.isReadable()) {
                            sink.clear();
                            int r = c.read(sink);
                            if (r < 0) {
                                throw new IOException("closed by the target before the echo");
                            }
                            st[1] += r;
                            if (st[1] >= PING) {
                                k.cancel();
                                pending--;
                                done++;
                            }
                        }
                    } catch (IOException e) {
                        throw new BenchException("connection " + st[0] + " failed after " + done + " pairs were open: "
                                + e.getMessage(), e);
                    }
                }
                sel.selectedKeys().clear();
                if (System.nanoTime() > deadline) {
                    throw new BenchException("only " + done + " of " + n + " connections were open and echoed after "
                            + timeoutMillis / 1000 + " s");
                }
            }
            return channels;
        } catch (IOException | BenchException | RuntimeException e) {
            closeAll(channels);
            throw e;
        }
    }

    static void closeAll(List<SocketChannel> channels) {
        for (SocketChannel c : channels) {
            try {
                c.close();
            } catch (IOException e) {
                // closing a socket we own: nothing to do about a failure
            }
        }
    }

    private static final Pattern HEAP_USED = Pattern.compile("heap.*?used (\\d+)K");

    /** Heap used after a full GC, from {@code jcmd PID GC.run} and {@code GC.heap_info}, in KiB; NaN if unreadable. */
    static double heapAfterGcKiB(String jcmd, long pid) {
        Procs.capture(60, jcmd, Long.toString(pid), "GC.run");
        String info = Procs.capture(30, jcmd, Long.toString(pid), "GC.heap_info");
        Matcher m = HEAP_USED.matcher(info);
        return m.find() ? Double.parseDouble(m.group(1)) : Double.NaN;
    }
}
