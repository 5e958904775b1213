import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.SplittableRandom;

/**
 * A checksummed bulk TCP transfer for the l45 bulk experiment:
 *
 * <pre>
 *   java Bulk recv PORT            accepts one connection, reads to EOF, prints bytes, SHA-256 and seconds (accept to EOF)
 *   java Bulk send HOST PORT BYTES sends BYTES of a fixed pseudo-random pattern, then closes
 *   java Bulk expect BYTES         prints the SHA-256 the receiver must see
 * </pre>
 */
public class Bulk {

    static final int BLOCK = 1 << 20;

    /** The pattern: a 1 MiB pseudo-random block (fixed seed); block i has its first 8 bytes replaced by i. */
    static byte[] block(byte[] base, long i) {
        byte[] b = base.clone();
        for (int k = 0; k < 8; k++) b[k] = (byte) (i >>> (8 * k));
        return b;
    }

    static byte[] base() {
        byte[] b = new byte[BLOCK];
        SplittableRandom r = new SplittableRandom(45);
        for (int i = 0; i < b.length; i++) b[i] = (byte) r.nextInt();
        return b;
    }

    public static void main(String[] a) throws Exception {
        switch (a[0]) {
            case "recv" -> {
                try (ServerSocket ss = new ServerSocket()) {
                    ss.setReceiveBufferSize(4 << 20);
                    ss.bind(new InetSocketAddress("127.0.0.1", Integer.parseInt(a[1])));
                    System.out.println("listening");
                    System.out.flush();
                    try (Socket s = ss.accept(); InputStream in = s.getInputStream()) {
                        long t0 = System.nanoTime();
                        MessageDigest md = MessageDigest.getInstance("SHA-256");
                        byte[] buf = new byte[1 << 18];
                        long n = 0;
                        int r;
                        while ((r = in.read(buf)) > 0) {
                            md.update(buf, 0, r);
                            n += r;
                        }
                        long t1 = System.nanoTime();
                        System.out.printf("bytes=%d sha256=%s seconds=%.6f%n", n, HexFormat.of().formatHex(md.digest()), (t1 - t0) / 1e9);
                    }
                }
            }
            case "send" -> {
                long bytes = Long.parseLong(a[3]);
                byte[] base = base();
                try (Socket s = new Socket()) {
                    s.setSendBufferSize(4 << 20);
                    s.connect(new InetSocketAddress(a[1], Integer.parseInt(a[2])));
                    OutputStream out = s.getOutputStream();
                    for (long i = 0; i * BLOCK < bytes; i++) {
                        out.write(block(base, i), 0, (int) Math.min(BLOCK, bytes - i * BLOCK));
                    }
                    s.shutdownOutput();
                    s.getInputStream().read(); // wait for the peer's close
                }
            }
            case "expect" -> {
                long bytes = Long.parseLong(a[1]);
                byte[] base = base();
                MessageDigest md = MessageDigest.getInstance("SHA-256");
                for (long i = 0; i * BLOCK < bytes; i++) md.update(block(base, i), 0, (int) Math.min(BLOCK, bytes - i * BLOCK));
                System.out.println(HexFormat.of().formatHex(md.digest()));
            }
            default -> throw new IllegalArgumentException("recv PORT | send HOST PORT BYTES | expect BYTES");
        }
    }
}
