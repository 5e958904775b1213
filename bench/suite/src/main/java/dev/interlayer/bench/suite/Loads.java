package dev.interlayer.bench.suite;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The load generators: iperf3 for bulk throughput, wrk for request rate and latency, redis-benchmark, dnsperf for DNS
 * over UDP. Each call runs one client to completion under a time limit and measures, around it, the CPU of the target's
 * process tree, of the backend's, of the client (reaped by this JVM) and of the whole machine.
 */
final class Loads {

    /** The workloads the suite knows, in the order it runs them. */
    static final List<String> TESTS = List.of("bulk1", "bulk4", "ka", "close", "redis_set", "redis_get", "dns", "idle", "dns_flows",
            "cold", "redis_cold", "tls_ka", "tls_close", "tls_bulk");

    /**
     * One measured (or failed) run: a row of the CSV. Rates are per second, times in seconds unless named. {@code avgMs}
     * and {@code lostPct}: the mean latency and the share of queries without an answer, of the dns test (dnsperf prints
     * no percentiles); NaN for the others.
     */
    record Run(String target, String test, int run, double value, String unit, double amount, double wallS,
               double proxyCpuS, double clientCpuS, double backendCpuS, double busyPct, double p50ms, double p99ms,
               String errors, boolean ok, double avgMs, double lostPct) {

        static final String CSV_HEADER = "target,test,run,value,unit,amount,wall_s,proxy_cpu_s,client_cpu_s,"
                + "backend_cpu_s,box_busy_pct,p50_ms,p99_ms,ok,errors,avg_ms,lost_pct";

        /** A run of a test that measures no mean latency and no loss. */
        Run(String target, String test, int run, double value, String unit, double amount, double wallS,
            double proxyCpuS, double clientCpuS, double backendCpuS, double busyPct, double p50ms, double p99ms,
            String errors, boolean ok) {
            this(target, test, run, value, unit, amount, wallS, proxyCpuS, clientCpuS, backendCpuS, busyPct, p50ms, p99ms, errors,
                    ok, Double.NaN, Double.NaN);
        }

        String csv() {
            return String.join(",", target, test, Integer.toString(run), num(value), unit, num(amount), num(wallS),
                    num(proxyCpuS), num(clientCpuS), num(backendCpuS), num(busyPct), num(p50ms), num(p99ms),
                    Boolean.toString(ok), errors.replace(',', ';').replace('\n', ' '), num(avgMs), num(lostPct));
        }

        static Run failed(String target, String test, int run, String why) {
            return new Run(target, test, run, Double.NaN, "", Double.NaN, Double.NaN, Double.NaN, Double.NaN,
                    Double.NaN, Double.NaN, Double.NaN, Double.NaN, why, false);
        }

        /** CPU of the target per unit of work: CPU-s per GB for bulk, CPU-µs per request or connection otherwise. */
        double cpuPerUnit() {
            if (Double.isNaN(proxyCpuS) || !(amount > 0)) {
                return Double.NaN;
            }
            return test.startsWith("bulk") || test.equals("tls_bulk") ? proxyCpuS / (amount / 1e9) : proxyCpuS * 1e6 / amount;
        }

        private static String num(double v) {
            return Double.isNaN(v) ? "" : String.format(Locale.ROOT, "%.6g", v);
        }
    }

    /** CPU and wall readings around one client run. */
    static final class Meter {
        private final long proxyPid;
        private final long backendPid;
        private double proxy0;
        private double backend0;
        private double client0;
        private long[] machine0;
        private long wall0;
        double proxyCpuS;
        double backendCpuS;
        double clientCpuS;
        double busyPct;
        double wallS;

        /** {@code proxyPid} 0 for {@code direct}: no proxy CPU is recorded. */
        Meter(long proxyPid, long backendPid) {
            this.proxyPid = proxyPid;
            this.backendPid = backendPid;
        }

        void begin() {
            proxy0 = proxyPid == 0 ? 0 : ProcFs.treeCpuSeconds(proxyPid);
            backend0 = ProcFs.treeCpuSeconds(backendPid);
            client0 = ProcFs.reapedChildrenCpuSeconds();
            machine0 = ProcFs.machineTicks();
            wall0 = System.nanoTime();
        }

        void end() {
            wallS = (System.nanoTime() - wall0) / 1e9;
            proxyCpuS = proxyPid == 0 ? Double.NaN : ProcFs.treeCpuSeconds(proxyPid) - proxy0;
            backendCpuS = ProcFs.treeCpuSeconds(backendPid) - backend0;
            clientCpuS = ProcFs.reapedChildrenCpuSeconds() - client0;
            busyPct = ProcFs.busyPct(machine0, ProcFs.machineTicks());
        }
    }

    private final Path outDir;
    private final int connections;

    Loads(Path outDir, int connections) {
        this.outDir = outDir;
        this.connections = connections;
    }

    /** iperf3 with {@code streams} parallel streams for {@code seconds} through {@code port}; the receiver's bits/s. */
    Run iperf(String target, String test, int run, int port, int streams, int seconds, Meter meter) throws IOException {
        Path out = outDir.resolve("iperf-" + target + "-" + test + "-" + run + ".json");
        List<String> cmd = List.of(Installer.which("iperf3"), "-c", "127.0.0.1", "-p", Integer.toString(port),
                "-t", Integer.toString(seconds), "-P", Integer.toString(streams), "-J", "--connect-timeout", "5000");
        meter.begin();
        Procs.Ran ran = Procs.run(cmd, out, (seconds + 20) * 1000L);
        meter.end();
        String err = ran.timedOut() ? "timed out after " + (seconds + 20) + " s" : "";
        double bps = 0;
        double bytes = 0;
        try {
            Object json = Json.parse(ran.output());
            if (Json.at(json, "error") instanceof String e) {
                err = (err + " " + e).trim();
            }
            if (Json.at(json, "end.sum_received.bits_per_second") instanceof Double d) {
                bps = d;
            }
            if (Json.at(json, "end.sum_received.bytes") instanceof Double d) {
                bytes = d;
            }
        } catch (IllegalArgumentException e) {
            err = (err + " unreadable iperf3 output: " + firstLine(ran.output())).trim();
        }
        if (err.isEmpty() && ran.status() != 0) {
            err = "iperf3 exit " + ran.status();
        }
        boolean ok = bps > 0 && err.isEmpty();
        return new Run(target, test, run, bps / 1e9, "Gbit/s", bytes, meter.wallS, meter.proxyCpuS, meter.clientCpuS,
                meter.backendCpuS, meter.busyPct, Double.NaN, Double.NaN, err, ok);
    }

    /** Requests of one redis-benchmark call in a warm-up, which also measures the rate the measured runs are sized by. */
    private static final int REDIS_WARM_REQUESTS = 100_000;
    /** The last rate of each target and test, from its warm-up or its previous run. */
    private final Map<String, Double> redisRate = new java.util.HashMap<>();

    /**
     * A real client: redis-benchmark, 50 connections, 16 commands in flight on each (-P 16), 512-byte values, SET or
     * GET ({@code test} redis_set / redis_get) through {@code port} to a redis-server. redis-benchmark counts requests,
     * not seconds: a warm-up ({@code run} 0) calls it again and again for {@code seconds}, and a measured run asks for
     * as many requests as the last call's rate serves in {@code seconds}.
     */
    Run redis(String target, String test, int run, int port, int seconds, Meter meter) throws IOException {
        String key = target + "/" + test;
        if (run == 0) {
            long end = System.nanoTime() + seconds * 1_000_000_000L;
            Run last;
            do {
                last = redisOnce(target, test, run, port, REDIS_WARM_REQUESTS, seconds, new Meter(meter.proxyPid, meter.backendPid));
                if (last.ok()) {
                    redisRate.put(key, last.value());
                }
            } while (last.ok() && System.nanoTime() < end);
            return last;
        }
        long n = Math.max(REDIS_WARM_REQUESTS, (long) (redisRate.getOrDefault(key, 50_000.0) * seconds));
        Run r = redisOnce(target, test, run, port, n, seconds, meter);
        if (r.ok()) {
            redisRate.put(key, r.value());
        }
        return r;
    }

    /** redis-benchmark as {@link #redis} does, {@code requests} requests at once, with no warm-up: a fresh target's first seconds. */
    Run redisCold(String target, String test, int run, int port, long requests, Meter meter) throws IOException {
        return redisOnce(target, test, run, port, requests, 30, meter);
    }

    private static final Pattern REDIS_CSV = Pattern.compile(
            "^\"(SET|GET)\",\"([0-9.]+)\",\"([0-9.]+)\",\"([0-9.]+)\",\"([0-9.]+)\",\"([0-9.]+)\",\"([0-9.]+)\"", Pattern.MULTILINE);

    private Run redisOnce(String target, String test, int run, int port, long requests, int seconds, Meter meter) throws IOException {
        Path out = outDir.resolve("redis-" + target + "-" + test + "-" + run + ".csv");
        List<String> cmd = List.of(Installer.which("redis-benchmark"), "-h", "127.0.0.1", "-p", Integer.toString(port), "-c", "50",
                "-P", "16", "-d", "512", "-t", test.equals("redis_set") ? "set" : "get", "-n", Long.toString(requests), "--csv");
        long limit = (seconds * 4L + 30) * 1000L;
        meter.begin();
        Procs.Ran ran = Procs.run(cmd, out, limit);
        meter.end();
        Matcher m = REDIS_CSV.matcher(ran.output());
        List<String> errs = outcome("redis-benchmark", ran, limit / 1000);
        boolean found = m.find();
        if (!found && errs.isEmpty()) {
            errs.add("unreadable redis-benchmark output: " + firstLine(ran.output()));
        }
        boolean ok = found && errs.isEmpty();
        return new Run(target, test, run, ok ? Double.parseDouble(m.group(2)) : 0, "req/s", ok ? requests : 0, meter.wallS,
                meter.proxyCpuS, meter.clientCpuS, meter.backendCpuS, meter.busyPct, ok ? Double.parseDouble(m.group(5)) : Double.NaN,
                ok ? Double.parseDouble(m.group(7)) : Double.NaN, String.join("; ", errs), ok);
    }

    private static final Pattern DNS_QPS = Pattern.compile("Queries per second:\\s+([0-9.]+)");
    private static final Pattern DNS_DONE = Pattern.compile("Queries completed:\\s+(\\d+)");
    private static final Pattern DNS_LOST = Pattern.compile("Queries lost:\\s+(\\d+) \\(([0-9.]+)%\\)");
    private static final Pattern DNS_AVG = Pattern.compile("Average Latency \\(s\\):\\s+([0-9.]+)");
    private static final Pattern DNS_CODES = Pattern.compile("Response codes:\\s+(.*)");

    /**
     * dnsperf, one thread, {@code clients} sockets with at most {@code outstanding} queries in flight in all, for
     * {@code seconds}, the names of {@code queries} in a loop, through {@code port}; a query unanswered after 1 s counts
     * as lost (and frees its slot). Queries/s answered, mean latency, lost %; every answer must be NOERROR (the backend
     * knows every name).
     */
    Run dnsperf(String target, String test, int run, int port, Path queries, int clients, int outstanding, int seconds,
                Meter meter) throws IOException {
        Path out = outDir.resolve("dnsperf-" + target + "-" + test + "-" + run + ".txt");
        List<String> cmd = List.of(Installer.which("dnsperf"), "-s", "127.0.0.1", "-p", Integer.toString(port), "-d",
                queries.toString(), "-c", Integer.toString(clients), "-q", Integer.toString(outstanding), "-T", "1",
                "-l", Integer.toString(seconds), "-t", "1");
        meter.begin();
        Procs.Ran ran = Procs.run(cmd, out, (seconds + 20) * 1000L);
        meter.end();
        String o = ran.output();
        List<String> errs = outcome("dnsperf", ran, seconds + 20);
        double qps = match(DNS_QPS, o, 1);
        double done = match(DNS_DONE, o, 1);
        double lostPct = match(DNS_LOST, o, 2);
        double avgMs = match(DNS_AVG, o, 1) * 1000;
        Matcher codes = DNS_CODES.matcher(o);
        if (codes.find() && !codes.group(1).trim().matches("NOERROR \\S+ \\(100\\.00%\\)")) {
            errs.add("answers other than NOERROR: " + codes.group(1).trim());
        }
        if (!(qps > 0 && done > 0)) {
            errs.add("no query answered: " + firstLine(o));
        }
        boolean ok = qps > 0 && done > 0 && !ran.timedOut() && ran.status() == 0;
        return new Run(target, test, run, ok ? qps : 0, "q/s", ok ? done : 0, meter.wallS, meter.proxyCpuS, meter.clientCpuS,
                meter.backendCpuS, meter.busyPct, Double.NaN, Double.NaN, String.join("; ", errs), ok, avgMs, lostPct);
    }

    /** The errors a client's run ended with before its output is read: none, a timeout or its exit status. */
    private static List<String> outcome(String tool, Procs.Ran ran, long limitS) {
        List<String> errs = new ArrayList<>();
        if (ran.timedOut()) {
            errs.add("timed out after " + limitS + " s");
        } else if (ran.status() != 0) {
            errs.add(tool + " exit " + ran.status() + ": " + firstLine(ran.output()));
        }
        return errs;
    }

    private static final Pattern RPS = Pattern.compile("Requests/sec:\\s+([0-9.]+)");
    private static final Pattern TOTAL = Pattern.compile("(\\d+) requests in ");
    private static final Pattern PCT = Pattern.compile("^\\s+(50|99)(?:\\.0+)?%\\s+([0-9.]+)(us|ms|s|m)\\s*$", Pattern.MULTILINE);
    private static final Pattern SOCKET_ERRORS = Pattern.compile(
            "Socket errors: connect (\\d+), read (\\d+), write (\\d+), timeout (\\d+)");
    private static final Pattern NON_2XX = Pattern.compile("Non-2xx or 3xx responses: (\\d+)");

    /**
     * wrk, one thread, {@code connections} connections, for {@code seconds} against {@code /index.html} through
     * {@code port}; with {@code close} every request carries {@code Connection: close} (a new TCP connection
     * per request).
     */
    Run wrk(String target, String test, int run, int port, boolean close, int seconds, Meter meter) throws IOException {
        return wrk(target, test, run, "http://127.0.0.1:" + port + "/index.html", connections, close, seconds, meter, Map.of());
    }

    /**
     * The TLS workloads, through a target that terminates TLS: wrk over https with {@code opensslConf} as its
     * {@code OPENSSL_CONF} (TLS 1.3, TLS_AES_128_GCM_SHA256 only). {@code tls_ka} and {@code tls_close} as {@code ka}
     * and {@code close} (with close, every request is a new TCP connection and a full TLS handshake: wrk keeps no
     * session to resume); {@code tls_bulk}: one connection fetching {@code bigPath} (16 MiB) over and over, Gbit/s of what
     * it read.
     */
    Run wrkTls(String target, String test, int run, int port, String bigPath, int seconds, Meter meter, Path opensslConf)
            throws IOException {
        Map<String, String> env = Map.of("OPENSSL_CONF", opensslConf.toString());
        if (!test.equals("tls_bulk")) {
            return wrk(target, test, run, "https://127.0.0.1:" + port + "/index.html", connections, test.equals("tls_close"),
                    seconds, meter, env);
        }
        Run r = wrk(target, test, run, "https://127.0.0.1:" + port + bigPath, 1, false, seconds, meter, env);
        Path out = outDir.resolve("wrk-" + target + "-" + test + "-" + run + ".txt");
        String o = java.nio.file.Files.readString(out);
        Matcher m = READ.matcher(o);
        double bytes = Double.NaN;
        double secs = Double.NaN;
        if (m.find()) {
            secs = toMillis(Double.parseDouble(m.group(1)), m.group(2)) / 1000;
            bytes = Double.parseDouble(m.group(3)) * unitBytes(m.group(4));
        }
        boolean ok = r.ok() && bytes > 0 && secs > 0;
        String errors = r.errors();
        if (!(bytes > 0 && secs > 0) && r.ok()) {
            errors = "unreadable wrk output: " + firstLine(o);
        }
        return new Run(target, test, run, ok ? bytes * 8 / secs / 1e9 : 0, "Gbit/s", ok ? bytes : 0, r.wallS(), r.proxyCpuS(),
                r.clientCpuS(), r.backendCpuS(), r.busyPct(), Double.NaN, Double.NaN, errors, ok);
    }

    /** wrk's summary line: "1234 requests in 5.00s, 1.23GB read". */
    private static final Pattern READ = Pattern.compile("\\d+ requests in ([0-9.]+)(us|ms|s|m), ([0-9.]+)([KMGT]?B) read");

    private static double unitBytes(String unit) {
        return switch (unit) {
            case "KB" -> 1024.0;
            case "MB" -> 1024.0 * 1024;
            case "GB" -> 1024.0 * 1024 * 1024;
            case "TB" -> 1024.0 * 1024 * 1024 * 1024;
            default -> 1;
        };
    }

    private Run wrk(String target, String test, int run, String url, int conns, boolean close, int seconds, Meter meter,
                    Map<String, String> env) throws IOException {
        Path out = outDir.resolve("wrk-" + target + "-" + test + "-" + run + ".txt");
        List<String> cmd = new ArrayList<>(List.of(Installer.which("wrk"), "-t1", "-c" + conns, "-d" + seconds + "s",
                "--timeout", "5s", "--latency"));
        if (close) {
            cmd.addAll(List.of("-H", "Connection: close"));
        }
        cmd.add(url);
        meter.begin();
        Procs.Ran ran = Procs.run(cmd, out, (seconds + 20) * 1000L, env);
        meter.end();
        String o = ran.output();
        List<String> errs = outcome("wrk", ran, seconds + 20);
        double rps = match(RPS, o, 1);
        double total = match(TOTAL, o, 1);
        double p50 = Double.NaN;
        double p99 = Double.NaN;
        Matcher m = PCT.matcher(o);
        while (m.find()) {
            double ms = toMillis(Double.parseDouble(m.group(2)), m.group(3));
            if (m.group(1).equals("50")) {
                p50 = ms;
            } else {
                p99 = ms;
            }
        }
        Matcher se = SOCKET_ERRORS.matcher(o);
        if (se.find()) {
            errs.add("socket errors: connect " + se.group(1) + " read " + se.group(2) + " write " + se.group(3)
                    + " timeout " + se.group(4));
        }
        Matcher nx = NON_2XX.matcher(o);
        if (nx.find()) {
            errs.add("non-2xx responses " + nx.group(1));
        }
        boolean ok = rps > 0 && total > 0 && !ran.timedOut() && ran.status() == 0;
        if (!(rps > 0)) {
            errs.add("no requests completed");
        }
        return new Run(target, test, run, Double.isNaN(rps) ? 0 : rps, test.equals("tls_close") ? "handshakes/s" : close ? "conn/s" : "req/s",
                Double.isNaN(total) ? 0 : total, meter.wallS, meter.proxyCpuS, meter.clientCpuS, meter.backendCpuS,
                meter.busyPct, p50, p99, String.join("; ", errs), ok);
    }

    private static double toMillis(double v, String unit) {
        return switch (unit) {
            case "us" -> v / 1000;
            case "ms" -> v;
            case "s" -> v * 1000;
            default -> v * 60_000;
        };
    }

    private static double match(Pattern p, String s, int group) {
        Matcher m = p.matcher(s);
        return m.find() ? Double.parseDouble(m.group(group)) : Double.NaN;
    }

    private static String firstLine(String s) {
        String t = s.strip();
        int nl = t.indexOf('\n');
        return nl < 0 ? t : t.substring(0, nl);
    }
}
