package dev.interlayer.bench.suite;

import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.net.StandardProtocolFamily;
import java.nio.ByteBuffer;
import java.nio.channels.DatagramChannel;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The DNS side of the dns and dns_flows tests: the backend's names, dnsperf's query file, one query built by hand, and
 * the per-flow cost measurement (many client sockets, one query each).
 */
final class Dns {

    /** Names the backend (dnsmasq) answers from its hosts file: h1.test … h{NAMES}.test → 10.0.0.i. */
    static final int NAMES = 10;

    private Dns() {}

    /** Writes the backend's hosts file and dnsperf's query file (every name, type A) into {@code dir}; returns the latter. */
    static Path writeFiles(Path dir) throws IOException {
        StringBuilder hosts = new StringBuilder();
        StringBuilder queries = new StringBuilder();
        for (int i = 1; i <= NAMES; i++) {
            hosts.append("10.0.0.").append(i).append(" h").append(i).append(".test\n");
            queries.append('h').append(i).append(".test A\n");
        }
        Files.writeString(dir.resolve("hosts"), hosts);
        Path q = dir.resolve("queries.txt");
        Files.writeString(q, queries);
        return q;
    }

    /** A standard query (RD set) for {@code h{n}.test} type A, class IN, with message id {@code id}. */
    static byte[] query(int id, int n) {
        ByteBuffer b = ByteBuffer.allocate(64);
        b.putShort((short) id).putShort((short) 0x0100).putShort((short) 1).putShort((short) 0).putShort((short) 0).putShort((short) 0);
        for (String label : ("h" + n + ".test").split("\\.")) {
            byte[] l = label.getBytes(StandardCharsets.US_ASCII);
            b.put((byte) l.length).put(l);
        }
        b.put((byte) 0).putShort((short) 1).putShort((short) 1);
        return Arrays.copyOf(b.array(), b.position());
    }

    /** The answer to {@link #query} from {@code port} on 127.0.0.1, within 2 s (one retry); throws if none comes. */
    static byte[] ask(int port, byte[] query) throws IOException {
        try (DatagramSocket s = new DatagramSocket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port));
            s.setSoTimeout(1000);
            for (int attempt = 0; attempt < 2; attempt++) {
                s.send(new DatagramPacket(query, query.length));
                DatagramPacket p = new DatagramPacket(new byte[65_536], 65_536);
                try {
                    s.receive(p);
                    return Arrays.copyOf(p.getData(), p.getLength());
                } catch (SocketTimeoutException e) {
                    // lost: ask again
                }
            }
        }
        throw new IOException("no answer from 127.0.0.1:" + port + " within 2 s (two queries sent)");
    }

    /**
     * One query through {@code port} must come back byte for byte as the backend answers it directly: the path works and
     * the target changes nothing in the answer.
     */
    static void check(String who, int port, int backend) throws BenchException {
        byte[] q = query(0x4a21, 1);
        try {
            byte[] want = ask(backend, q);
            byte[] got = ask(port, q);
            if (!Arrays.equals(want, got)) {
                throw new BenchException(who + ": the answer to a DNS query through port " + port + " (" + got.length
                        + " bytes) differs from the backend's own answer (" + want.length + " bytes)");
            }
            if (got.length < 12 || (got[3] & 0x0f) != 0 || ((got[6] & 0xff) << 8 | got[7] & 0xff) < 1) {
                throw new BenchException(who + ": the backend did not answer h1.test with an address (rcode " + (got.length < 12 ? "?" : got[3] & 0x0f) + ")");
            }
        } catch (IOException e) {
            throw new BenchException(who + ": a DNS query through port " + port + " failed: " + e.getMessage(), e);
        }
    }

    /** What {@link #openFlows} left: the sockets, to close after the measurement, and how many got their answer. */
    record Flows(List<DatagramChannel> sockets, int answered) implements AutoCloseable {
        @Override
        public void close() {
            for (DatagramChannel c : sockets) {
                try {
                    c.close();
                } catch (IOException e) {
                    // closing a UDP socket does not fail in a way that matters here
                }
            }
        }
    }

    /** Queries sent before their answers are awaited: a burst of thousands would overflow a receive buffer on the way. */
    private static final int FLOWS_AT_ONCE = 100;

    /**
     * {@code n} client sockets, each sending one query to {@code port} (a new flow at the target each) and waiting for its
     * answer, {@value #FLOWS_AT_ONCE} at a time; a socket without an answer after 1 s asks again, up to three times. The
     * sockets stay open (and the flows at the target with them) until the result is closed.
     */
    static Flows openFlows(int port, int n) throws IOException {
        List<DatagramChannel> socks = new ArrayList<>(n);
        int answered = 0;
        InetSocketAddress to = new InetSocketAddress("127.0.0.1", port);
        try (Selector sel = Selector.open()) {
            ByteBuffer in = ByteBuffer.allocate(65_536);
            for (int from = 0; from < n; from += FLOWS_AT_ONCE) {
                int upTo = Math.min(n, from + FLOWS_AT_ONCE);
                boolean[] got = new boolean[upTo - from];
                int left = got.length;
                for (int i = from; i < upTo; i++) {
                    DatagramChannel c = DatagramChannel.open(StandardProtocolFamily.INET);
                    socks.add(c);
                    c.configureBlocking(false);
                    c.connect(to);
                    c.register(sel, SelectionKey.OP_READ, i - from);
                }
                for (int attempt = 0; attempt < 3 && left > 0; attempt++) {
                    for (int i = from; i < upTo; i++) {
                        if (!got[i - from]) {
                            socks.get(i).write(ByteBuffer.wrap(query(i & 0xffff, 1 + i % NAMES)));
                        }
                    }
                    long deadline = System.nanoTime() + 1_000_000_000L;
                    while (left > 0 && System.nanoTime() < deadline) {
                        sel.select(Math.max(1, (deadline - System.nanoTime()) / 1_000_000));
                        for (SelectionKey k : sel.selectedKeys()) {
                            int i = (Integer) k.attachment();
                            in.clear();
                            try {
                                if (((DatagramChannel) k.channel()).read(in) > 0 && !got[i]) {
                                    got[i] = true;
                                    left--;
                                }
                            } catch (java.net.PortUnreachableException e) {
                                // nothing listens: counted as unanswered
                            }
                        }
                        sel.selectedKeys().clear();
                    }
                }
                answered += got.length - left;
                for (SelectionKey k : List.copyOf(sel.keys())) {
                    k.cancel();   // this group is done; its sockets stay open
                }
                sel.selectNow();
            }
        } catch (IOException | RuntimeException e) {
            new Flows(socks, 0).close();
            throw e;
        }
        return new Flows(socks, answered);
    }

    /** The per-flow cost of one target: memory, heap and descriptors before and after {@code flows} flows were opened. */
    record FlowCost(String target, int flows, int answered, double heap0KiB, double heap1KiB, double rss0KiB, double rss1KiB,
                    long fds0, long fds1, String errors) {
        boolean ok() {
            return errors.isEmpty();
        }

        double heapPerFlowKiB() {
            return (heap1KiB - heap0KiB) / flows;
        }

        double rssPerFlowKiB() {
            return (rss1KiB - rss0KiB) / flows;
        }

        double fdsPerFlow() {
            return fds0 < 0 || fds1 < 0 ? Double.NaN : (double) (fds1 - fds0) / flows;
        }

        String csvRow() {
            return String.join(",", target, "dns_flows", "1", num(rssPerFlowKiB()), "RSS KiB/flow", Integer.toString(flows), "",
                    "", "", "", "", "", "", Boolean.toString(ok()), (errors + " heap KiB/flow " + num(heapPerFlowKiB()) + " fds/flow "
                            + num(fdsPerFlow()) + " answered " + answered).replace(',', ';').trim(), "", "") + "\n";
        }

        private static String num(double v) {
            return Double.isNaN(v) ? "" : String.format(Locale.ROOT, "%.4g", v);
        }
    }

    /** The dns_flows table. */
    static String table(List<FlowCost> results) {
        StringBuilder b = new StringBuilder();
        b.append("| target | flows | answered | heap KiB/flow | RSS KiB/flow | fds/flow | RSS before MiB | RSS after MiB | errors |\n");
        b.append("|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
        for (FlowCost r : results) {
            b.append("| ").append(r.target()).append(" | ").append(r.flows()).append(" | ").append(r.answered()).append(" | ")
             .append(Report.fmt("%.2f", r.heapPerFlowKiB())).append(" | ")
             .append(Report.fmt("%.2f", r.rssPerFlowKiB())).append(" | ")
             .append(Report.fmt("%.2f", r.fdsPerFlow())).append(" | ")
             .append(Report.fmt("%.1f", r.rss0KiB() / 1024)).append(" | ")
             .append(Report.fmt("%.1f", r.rss1KiB() / 1024)).append(" | ")
             .append(r.errors().replace('|', '/')).append(" |\n");
        }
        return b.toString();
    }
}
