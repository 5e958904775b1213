import java.io.ByteArrayOutputStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.util.Arrays;
import java.util.concurrent.atomic.LongAdder;

/**
 * Measures a UDP request/response path with DNS queries (run with the JDK's source launcher, no build needed):
 *
 * <pre>
 *   java UdpProbe.java latency HOST PORT COUNT     sequential queries from one socket: p50, p99, mean RTT in µs
 *   java UdpProbe.java rate HOST PORT SECONDS SOCKETS WINDOW   answers per second with WINDOW queries in flight per socket
 * </pre>
 *
 * The query asks for h1.test type A (the hosts file of the l45 scripts has it). Output is one line of key=value pairs.
 */
public class UdpProbe {

    static byte[] query(int id) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        o.write(id >> 8); o.write(id); o.write(1); o.write(0);
        o.writeBytes(new byte[] {0, 1, 0, 0, 0, 0, 0, 0});
        for (String l : "h1.test".split("\\.")) { o.write(l.length()); o.writeBytes(l.getBytes()); }
        o.write(0);
        o.writeBytes(new byte[] {0, 1, 0, 1});
        return o.toByteArray();
    }

    public static void main(String[] a) throws Exception {
        InetSocketAddress to = new InetSocketAddress(a[1], Integer.parseInt(a[2]));
        if (a[0].equals("latency")) latency(to, Integer.parseInt(a[3]));
        else rate(to, Integer.parseInt(a[3]), Integer.parseInt(a[4]), Integer.parseInt(a[5]));
    }

    static void latency(InetSocketAddress to, int count) throws Exception {
        try (DatagramSocket s = new DatagramSocket()) {
            s.setSoTimeout(1000);
            byte[] buf = new byte[4096];
            int warm = Math.max(1000, count / 10);
            long[] rtt = new long[count];
            int lost = 0;
            for (int i = -warm; i < count; i++) {
                byte[] q = query(i & 0xFFFF);
                long t0 = System.nanoTime();
                s.send(new DatagramPacket(q, q.length, to));
                try {
                    while (true) {
                        DatagramPacket p = new DatagramPacket(buf, buf.length);
                        s.receive(p);
                        if (((buf[0] & 0xFF) << 8 | (buf[1] & 0xFF)) == (i & 0xFFFF)) break;
                    }
                } catch (SocketTimeoutException e) {
                    lost++;
                    if (i >= 0) rtt[i] = -1;
                    continue;
                }
                if (i >= 0) rtt[i] = System.nanoTime() - t0;
            }
            long[] ok = Arrays.stream(rtt).filter(x -> x >= 0).sorted().toArray();
            double mean = Arrays.stream(ok).average().orElse(0) / 1000.0;
            System.out.printf("p50_us=%.1f p99_us=%.1f mean_us=%.1f lost=%d n=%d%n", ok[ok.length / 2] / 1000.0,
                    ok[(int) (ok.length * 0.99)] / 1000.0, mean, lost, ok.length);
        }
    }

    static void rate(InetSocketAddress to, int seconds, int sockets, int window) throws Exception {
        LongAdder answers = new LongAdder();
        long end = System.nanoTime() + seconds * 1_000_000_000L;
        Thread[] ts = new Thread[sockets];
        for (int k = 0; k < sockets; k++) {
            ts[k] = Thread.ofPlatform().start(() -> {
                try (DatagramSocket s = new DatagramSocket()) {
                    s.setSoTimeout(100);
                    s.setReceiveBufferSize(1 << 20);
                    byte[] buf = new byte[4096];
                    int id = 0;
                    for (int i = 0; i < window; i++) { byte[] q = query(id++ & 0xFFFF); s.send(new DatagramPacket(q, q.length, to)); }
                    while (System.nanoTime() < end) {
                        try {
                            s.receive(new DatagramPacket(buf, buf.length));
                            answers.increment();
                            byte[] q = query(id++ & 0xFFFF);
                            s.send(new DatagramPacket(q, q.length, to));
                        } catch (SocketTimeoutException e) { // lost in flight: refill the window
                            for (int i = 0; i < window; i++) { byte[] q = query(id++ & 0xFFFF); s.send(new DatagramPacket(q, q.length, to)); }
                        }
                    }
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
        }
        for (Thread t : ts) t.join();
        System.out.printf("answers_per_s=%.0f%n", answers.sum() / (double) seconds);
    }
}
