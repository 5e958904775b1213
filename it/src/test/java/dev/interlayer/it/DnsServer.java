package dev.interlayer.it;

import java.io.IOException;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real dnsmasq on a loopback port answering from a hosts file the test writes, and dig to query it; both are
 * installed with apt-get when missing (tests run as root in CI).
 */
final class DnsServer implements AutoCloseable {

    private final Process process;
    private final int port;

    private DnsServer(Process process, int port) {
        this.process = process;
        this.port = port;
    }

    /** Installs dnsmasq and dig (package dnsutils) if they are missing. */
    static synchronized void ensureInstalled() throws IOException, InterruptedException {
        if (Files.isExecutable(Path.of("/usr/sbin/dnsmasq")) && Files.isExecutable(Path.of("/usr/bin/dig"))) {
            return;
        }
        run(List.of("apt-get", "update", "-qq"));
        run(List.of("apt-get", "install", "-y", "-qq", "dnsmasq-base", "dnsutils"));
        if (!Files.isExecutable(Path.of("/usr/sbin/dnsmasq")) || !Files.isExecutable(Path.of("/usr/bin/dig"))) {
            throw new IllegalStateException("dnsmasq and dig are needed: install them with 'apt-get install -y dnsmasq-base dnsutils' (as root)");
        }
    }

    private static void run(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        if (!p.waitFor(10, TimeUnit.MINUTES) || p.exitValue() != 0) {
            throw new IllegalStateException(String.join(" ", cmd) + " failed (exit " + (p.isAlive() ? "timeout" : p.exitValue())
                    + "); install dnsmasq-base and dnsutils by hand (as root)");
        }
    }

    /** Starts dnsmasq on 127.0.0.1 with {@code hosts} as its only data; waits until it answers. */
    static DnsServer start(Path dir, String hosts) throws Exception {
        ensureInstalled();
        Path hostsFile = dir.resolve("hosts");
        Files.createDirectories(dir);
        Files.writeString(hostsFile, hosts);
        int port;
        try (DatagramSocket s = new DatagramSocket(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0))) {
            port = s.getLocalPort();
        }
        Process p = new ProcessBuilder("/usr/sbin/dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=" + port,
                "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts", "--addn-hosts=" + hostsFile,
                "--pid-file=", "--user=root", "--cache-size=0")
                .redirectErrorStream(true).redirectOutput(dir.resolve("dnsmasq.log").toFile()).start();
        DnsServer d = new DnsServer(p, port);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        String first = hosts.lines().filter(l -> !l.isBlank()).findFirst().orElseThrow().trim().split("\\s+")[1];
        while (dig(d.address(), first, "+noedns").isEmpty()) {
            if (!p.isAlive() || System.nanoTime() > deadline) {
                d.close();
                throw new IllegalStateException("dnsmasq did not answer on port " + port + ": " + Files.readString(dir.resolve("dnsmasq.log")));
            }
            Thread.sleep(50);
        }
        return d;
    }

    InetSocketAddress address() {
        return new InetSocketAddress(InetAddress.getLoopbackAddress(), port);
    }

    /** The answer section dig prints for {@code name} (type A unless the options say otherwise), one line per record. */
    static List<String> dig(InetSocketAddress server, String name, String... options) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("/usr/bin/dig", "@" + server.getAddress().getHostAddress(), "-p", String.valueOf(server.getPort()),
                name, "+noall", "+answer", "+tries=1", "+time=3"));
        cmd.addAll(List.of(options));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        p.waitFor(10, TimeUnit.SECONDS);
        if (out.contains("timed out") || out.contains("no servers could be reached")) {
            return List.of();
        }
        return out.lines().filter(l -> !l.isBlank() && !l.startsWith(";")).map(String::strip).sorted().toList();
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(5, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
        }
    }
}
