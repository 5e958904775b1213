package dev.interlayer.bench.suite;

import dev.interlayer.bench.suite.Loads.Meter;
import dev.interlayer.bench.suite.Loads.Run;
import dev.interlayer.bench.suite.Procs.Proc;
import dev.interlayer.bench.suite.Target.Launch;
import dev.interlayer.bench.suite.Target.Route;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The Interlayer benchmark suite: starts each peer proxy and Interlayer variant as its own process on loopback
 * with configs it writes itself, drives the same workloads against each, and writes one markdown report plus a
 * CSV of every run.
 *
 * <pre>
 *   iperf3 -c / wrk ──▶ target (127.0.0.1:P) ──▶ iperf3 -s / nginx (1 worker, 1 KiB file)
 *                       direct | haproxy | nginx | netty | il-none | il-pass | il-rewrite | il2-none | il-tag | il-chain3 | il-chain8
 * </pre>
 *
 * <p>Exit status: 0 when every figure was measured, 1 when some figure has no successful run (the report says
 * which), 2 for a usage or setup problem (nothing measured).
 */
@Command(name = "bench/run", mixinStandardHelpOptions = true, sortOptions = false, usageHelpAutoWidth = true,
        version = "Interlayer benchmark suite 0.1.0",
        description = {
            "Measures Interlayer beside HAProxy, nginx (stream) and a bare Netty forwarder on 127.0.0.1: bulk throughput "
                    + "(iperf3), kept-alive request rate and latency and new-connection rate (wrk against an nginx "
                    + "backend), DNS over UDP (dnsperf against dnsmasq), and idle-connection and UDP-flow memory. Installs what it lacks (apt-get, as root), writes every "
                    + "config into a temp dir, runs each program in the foreground as its own process, stops it by PID "
                    + "and leaves nothing running. Prints a markdown report and writes it with a CSV of every run.",
            ""},
        footer = {
            "",
            "Tests (--tests; default bulk1,bulk4,ka,close):",
            "  bulk1 bulk4 iperf3 -P1 / -P4 to iperf3 -s: Gbit/s, proxy CPU-s per GB",
            "  ka          wrk -t1 -c32 --latency, kept-alive, 1 KiB file:",
            "              req/s, p50, p99, proxy CPU-us per request",
            "  close       the same with 'Connection: close': new connections/s,",
            "              proxy CPU-us per connection",
            "  redis_set   redis-benchmark -c 50 -P 16 -d 512 -t set to redis-server:",
            "  redis_get   req/s, p50, p99, proxy CPU-us per request (-t get)",
            "  dns         dnsperf (--dns-clients sockets, --dns-outstanding queries in",
            "              flight) through the UDP targets to dnsmasq: queries/s,",
            "              mean latency, lost %, proxy CPU-us per query",
            "  idle        --idle-conns idle connections through each --idle-targets:",
            "              heap and RSS per connection pair",
            "  dns_flows   --dns-flows client sockets, one DNS query each, through each",
            "              --dns-flows-targets: heap, RSS and descriptors per flow",
            "  cold        each --cold-targets started fresh under ka's load: time until",
            "              it listens and until it serves 90 % of its warm rate",
            "  redis_cold  each --redis-cold-targets started fresh, then at once",
            "              redis-benchmark as redis_set and redis_get, --redis-cold-requests",
            "              each: req/s and p99 of a target's first seconds",
            "  tls_ka      ka over TLS 1.3 (TLS_AES_128_GCM_SHA256) through the targets",
            "              that terminate TLS (*-tls*), upstream plain",
            "  tls_close   the same with 'Connection: close': a full handshake per",
            "              request, handshakes/s, proxy CPU-us per handshake",
            "  tls_bulk    one TLS connection fetching a 16 MiB file over and over:",
            "              Gbit/s, proxy CPU-s per GB",
            "",
            "Each figure is the median of --runs runs after an unrecorded --warmup; the",
            "runs go round by round over the targets (--order). Compare targets within",
            "one report only (bench/README.md: what the figures mean).",
            "Exit status: 0 every figure measured, 1 some figure failed (the report says",
            "which), 2 usage or setup problem."})
public final class Suite implements Callable<Integer> {

    static final String DEFAULT_JVM_OPTS =
            "-Xms256m -Xmx256m -XX:+AlwaysPreTouch -XX:MaxDirectMemorySize=512m -Dio.netty.leakDetection.level=disabled";
    static final String DEFAULT_IDLE_JVM_OPTS =
            "-Xms1g -Xmx1g -XX:MaxDirectMemorySize=512m -Dio.netty.leakDetection.level=disabled";
    static final List<String> DEFAULT_TESTS = List.of("bulk1", "bulk4", "ka", "close");
    static final List<String> SMOKE_TARGETS = List.of("direct", "il-none", "il-pass");
    /** Targets a run has only when --only names them. */
    static final Set<String> ONLY_WHEN_NAMED = Set.of("socat", "il-rewrite-copy");

    @Option(names = "--only", split = ",", paramLabel = "TARGETS",
            description = "Comma-separated targets, in any order (they run in the catalogue's order); '*' globs allowed, "
                    + "e.g. 'direct,haproxy,il-*'. Default: all but socat and il-rewrite-copy (smoke: direct,il-none,il-pass).")
    List<String> only;

    @Option(names = "--tests", split = ",", paramLabel = "TESTS",
            description = "Comma-separated: bulk1, bulk4, ka, close, redis_set, redis_get, dns, idle, dns_flows, cold, redis_cold, tls_ka, tls_close, "
                    + "tls_bulk, or all. "
                    + "Default: bulk1,bulk4,ka,close.")
    List<String> tests;

    @Option(names = "--runs", paramLabel = "N", description = "Measured runs per figure; the median is reported. Default 3 (smoke: 1).")
    Integer runs;

    @Option(names = "--duration", paramLabel = "S", description = "Seconds per measured run. Default 5 (smoke: 1).")
    Integer duration;

    @Option(names = "--warmup", paramLabel = "S",
            description = "Seconds of unrecorded load before each test of each target (JIT warm-up); 0 = none. Default 3 (smoke: 0).")
    Integer warmup;

    @Option(names = "--jit-warmup", paramLabel = "S",
            description = "Seconds of unrecorded load before each test of a JVM target (Interlayer, netty) instead of --warmup when"
                    + " longer: on two shared cores the JIT keeps compiling the connection path for ~10 s. Default 12 (smoke: 0).")
    Integer jitWarmup;

    @Option(names = "--order", paramLabel = "ORDER", defaultValue = "interleaved",
            description = "interleaved: every target is started at once and the runs go round by round (each target's run 1, "
                    + "then each one's run 2, ...), so a drift in the shared machine's load touches every target alike; grouped: "
                    + "one target at a time, all its runs back to back. Default ${DEFAULT-VALUE}.")
    Order order;

    @Option(names = "--connections", paramLabel = "N", defaultValue = "32", description = "wrk connections (one wrk thread). Default ${DEFAULT-VALUE}.")
    int connections;

    @Option(names = "--out", paramLabel = "FILE",
            description = "Markdown report FILE (.md); the CSV of every run goes next to it (.csv). "
                    + "Default: bench/suite/target/results/suite-DATE-TIME.md.")
    Path out;

    @Option(names = "--smoke", description = "Checks the harness, not the speed: 1 run of 1 s, no warm-up, targets direct,il-none,il-pass "
            + "unless --only/--runs/--duration/--warmup say otherwise.")
    boolean smoke;

    @Option(names = "--idle-conns", paramLabel = "N", defaultValue = "50000",
            description = "Idle connections (pairs through the target) for the idle test. Default ${DEFAULT-VALUE}. Needs about "
                    + "2N+1000 open files in the suite and in the target (bench/run raises ulimit -n to the hard limit).")
    int idleConns;

    @Option(names = "--idle-per-listener", paramLabel = "N", defaultValue = "10000",
            description = "Idle connections per target listener and per client source address (127.0.x.2, .3, ...); "
                    + "keep it well under the ephemeral port range (net.ipv4.ip_local_port_range). Default ${DEFAULT-VALUE}.")
    int idlePerListener;

    @Option(names = "--idle-targets", split = ",", paramLabel = "TARGETS", defaultValue = "il-none,haproxy",
            description = "Targets of the idle test (one-hop targets except netty and socat). Default ${DEFAULT-VALUE}.")
    List<String> idleTargets;

    @Option(names = "--dns-clients", paramLabel = "N", defaultValue = "8",
            description = "dns: dnsperf's client sockets (-c), each a flow through the target. Default ${DEFAULT-VALUE}.")
    int dnsClients;

    @Option(names = "--dns-outstanding", paramLabel = "N", defaultValue = "100",
            description = "dns: queries dnsperf keeps in flight over all its sockets (-q). Default ${DEFAULT-VALUE}.")
    int dnsOutstanding;

    @Option(names = "--dns-flows", paramLabel = "N", defaultValue = "2000",
            description = "dns_flows: client sockets, each sending one query (a flow at the target). Default ${DEFAULT-VALUE}.")
    int dnsFlows;

    @Option(names = "--dns-flows-targets", split = ",", paramLabel = "TARGETS", defaultValue = "il-none,nginx",
            description = "Targets of the dns_flows test (UDP targets, not direct). Default ${DEFAULT-VALUE}.")
    List<String> dnsFlowsTargets;

    @Option(names = "--cold-targets", split = ",", paramLabel = "TARGETS", defaultValue = "il-none,il-tag,haproxy",
            description = "Targets of the cold test (not TLS, not direct). An Interlayer target runs twice per round when the "
                    + "build made the agent's ahead-of-time cache: from it (as ./interlayer run starts) and without it (NAME no-aot). "
                    + "Default ${DEFAULT-VALUE}.")
    List<String> coldTargets;

    @Option(names = "--redis-cold-targets", split = ",", paramLabel = "TARGETS",
            defaultValue = "haproxy2,il2p-none,il2p-none-warm,il2p-tag,il2p-tag-warm",
            description = "Targets of the redis_cold test (not TLS, not direct; a pair of processes is what users deploy for tag: "
                    + "haproxy2, il2p-none, il2p-tag; the -warm ones warm up before their listeners open, as an agent does before "
                    + "a takeover). Default ${DEFAULT-VALUE}.")
    List<String> redisColdTargets;

    @Option(names = "--redis-cold-requests", paramLabel = "N", defaultValue = "500000",
            description = "Requests of each redis-benchmark call of redis_cold (SET, then GET), started as soon as the target "
                    + "listens. Default ${DEFAULT-VALUE}.")
    long redisColdRequests;

    @Option(names = "--cold-seconds", paramLabel = "S", defaultValue = "20",
            description = "Seconds of load per cold start, from the moment the target listens; the last " + Cold.WARM_TAIL_S + " give the warm rate. "
                    + "Default ${DEFAULT-VALUE}.")
    int coldSeconds;

    @Option(names = "--no-aot", description = "Start the Interlayer agents without the ahead-of-time cache cli/target/interlayer.aot "
            + "(by default they start from it when it is as new as the jar, as ./interlayer run does).")
    boolean noAot;

    @Option(names = "--base-port", paramLabel = "P", defaultValue = "22000",
            description = "Ports used: P (nginx backend), P+2 (iperf3 -s), P+3 (redis-server), P+4 (dnsmasq, udp), P+10..P+99 (targets), "
                    + "P+100..P+499 (idle). "
                    + "Default ${DEFAULT-VALUE}.")
    int basePort;

    @Option(names = "--jvm-opts", paramLabel = "OPTS", defaultValue = DEFAULT_JVM_OPTS,
            description = "JVM options of the Interlayer agents and the Netty forwarder. Default: ${DEFAULT-VALUE}.")
    String jvmOpts;

    @Option(names = "--idle-jvm-opts", paramLabel = "OPTS", defaultValue = DEFAULT_IDLE_JVM_OPTS,
            description = "JVM options of Java targets in the idle test (no pre-touch, so RSS grows with the heap used). "
                    + "Default: ${DEFAULT-VALUE}.")
    String idleJvmOpts;

    @Option(names = "--netty-dir", paramLabel = "DIR",
            description = "The bare Netty forwarder's Maven project; its target/nettyproxy.jar is used, or built when "
                    + "missing or stale. Default: bench/nettyproxy in the repository.")
    Path nettyDir;

    @Option(names = "--repo", paramLabel = "DIR", description = "The Interlayer checkout (default: found from the working directory).")
    Path repo;

    @Option(names = "--no-install", description = "Do not apt-get install missing programs; fail instead.")
    boolean noInstall;

    @Option(names = "--keep-tmp", description = "Keep the temp dir (configs, logs, raw client output) and print where it is.")
    boolean keepTmp;

    @Option(names = "--list", description = "Print the targets and exit.")
    boolean list;

    private final PrintStream stdout;
    private final PrintStream stderr;

    // run state
    private Path tmp;
    private Procs procs;
    private Loads loads;
    private Target.Env env;
    private int starts;
    private final List<Run> runsDone = new ArrayList<>();
    private final List<Idle.Result> idleDone = new ArrayList<>();
    private final List<Cold.Result> coldDone = new ArrayList<>();
    private final List<Run> redisColdDone = new ArrayList<>();
    private final List<Dns.FlowCost> flowsDone = new ArrayList<>();
    private Path csv;

    public Suite() {
        this(System.out, System.err);
    }

    Suite(PrintStream stdout, PrintStream stderr) {
        this.stdout = stdout;
        this.stderr = stderr;
    }

    public static void main(String[] args) {
        System.exit(execute(System.out, System.err, args));
    }

    /** Runs the suite in this JVM (the smoke test does) and returns the exit status. */
    static int execute(PrintStream out, PrintStream err, String... args) {
        CommandLine cl = new CommandLine(new Suite(out, err));
        // The target list comes from the catalogue, so help cannot fall behind it.
        CommandLine.Help.TextTable targets = CommandLine.Help.TextTable.forColumns(
                CommandLine.Help.defaultColorScheme(CommandLine.Help.Ansi.OFF),
                new CommandLine.Help.Column(18, 2, CommandLine.Help.Column.Overflow.SPAN),
                new CommandLine.Help.Column(62, 0, CommandLine.Help.Column.Overflow.WRAP));
        Target.catalogue().values().forEach(t -> targets.addRowValues(t.name, t.what));
        List<String> footer = new ArrayList<>(List.of("", "Targets (--only; default: all but those only when named;",
                "netty when its jar exists or builds):"));
        targets.toString().lines().map(String::stripTrailing).forEach(footer::add);
        footer.addAll(List.of(cl.getCommandSpec().usageMessage().footer()));
        cl.getCommandSpec().usageMessage().footer(footer.toArray(String[]::new));
        cl.setOut(new java.io.PrintWriter(out, true));
        cl.setErr(new java.io.PrintWriter(err, true));
        return cl.execute(args);
    }

    private void log(String msg) {
        stderr.printf("[%s] %s%n", java.time.LocalTime.now().withNano(0), msg);
    }

    @Override
    public Integer call() {
        Map<String, Target> catalogue = Target.catalogue();
        if (list) {
            catalogue.values().forEach(t -> stdout.printf("%-15s %s%n", t.name, t.what));
            return 0;
        }
        try {
            return run(catalogue);
        } catch (BenchException e) {
            stderr.println("bench: " + e.getMessage());
            return 2;
        } catch (IOException | UncheckedIOException e) {
            stderr.println("bench: I/O error: " + e.getMessage());
            return 2;
        }
    }

    private int run(Map<String, Target> catalogue) throws BenchException, IOException {
        int nRuns = runs != null ? runs : smoke ? 1 : 3;
        int dur = duration != null ? duration : smoke ? 1 : 5;
        int warm = warmup != null ? warmup : smoke ? 0 : 3;
        jitWarm = Math.max(warm, jitWarmup != null ? jitWarmup : smoke ? 0 : 12);
        if (nRuns < 1 || dur < 1 || warm < 0 || connections < 1 || idleConns < 1 || idlePerListener < 1 || dnsClients < 1
                || dnsOutstanding < 1 || dnsFlows < 1) {
            throw new BenchException("--runs, --duration, --connections, --idle-conns, --idle-per-listener, --dns-clients, "
                    + "--dns-outstanding and --dns-flows must be at least 1, --warmup at least 0");
        }
        if (coldSeconds < 2 * Cold.WARM_TAIL_S) {
            throw new BenchException("--cold-seconds must be at least " + 2 * Cold.WARM_TAIL_S);
        }
        if (Idle.routesFor(idleConns, idlePerListener) > 20) {
            throw new BenchException("--idle-conns / --idle-per-listener gives more than 20 listeners; raise --idle-per-listener");
        }
        if (basePort < 1024 || basePort + 500 > 65535) {
            throw new BenchException("--base-port must be between 1024 and 65035 (the suite uses P..P+499)");
        }
        if (Runtime.version().feature() < 25) {
            throw new BenchException("the suite runs on JDK 25 (it starts the agents with this JVM); run it with bench/run");
        }
        Path root = findRepo();
        List<String> testList = resolveTests();
        Path nettyHome = (nettyDir != null ? nettyDir : root.resolve("bench/nettyproxy")).toAbsolutePath().normalize();
        boolean nettyAvailable = Files.isRegularFile(nettyHome.resolve("target/nettyproxy.jar"))
                || Files.isRegularFile(nettyHome.resolve("pom.xml"));

        List<String> workloadTests = testList.stream().filter(t -> !t.equals("idle") && !t.equals("cold") && !t.equals("redis_cold")
                && !t.equals("dns_flows")).toList();
        List<Target> targets = workloadTests.isEmpty() ? List.of() : resolveTargets(catalogue, nettyAvailable);
        if (only == null || only.isEmpty()) {
            // by default, only the targets a chosen test measures (the TLS targets run the tls_* tests only)
            targets = targets.stream().filter(t -> workloadTests.stream().anyMatch(t::runs)).toList();
        }
        List<Target> idleList = testList.contains("idle") ? resolveIdleTargets(catalogue) : List.of();
        List<Target> coldList = testList.contains("cold") ? resolveColdTargets(catalogue, coldTargets) : List.of();
        List<Target> redisColdList = testList.contains("redis_cold") ? resolveColdTargets(catalogue, redisColdTargets) : List.of();
        List<Target> flowsList = testList.contains("dns_flows") ? resolveFlowsTargets(catalogue) : List.of();
        if (targets.stream().anyMatch(t -> t.name.equals("netty")) && !nettyAvailable) {
            throw new BenchException("netty: no " + nettyHome.resolve("target/nettyproxy.jar") + " and no project to build it "
                    + "from; give --netty-dir, or leave netty out of --only");
        }

        Set<String> packages = new LinkedHashSet<>();
        if (workloadTests.contains("bulk1") || workloadTests.contains("bulk4")) {
            packages.add("iperf3");
        }
        if (workloadTests.contains("ka") || workloadTests.contains("close") || !coldList.isEmpty()) {
            packages.addAll(List.of("nginx", "wrk"));
        }
        if (workloadTests.stream().anyMatch(t -> t.startsWith("redis_")) || !redisColdList.isEmpty()) {
            packages.addAll(List.of("redis-server", "redis-tools"));
        }
        if (workloadTests.stream().anyMatch(t -> t.startsWith("tls_"))) {
            packages.addAll(List.of("nginx", "wrk", "openssl"));
        }
        if (workloadTests.contains("dns")) {
            packages.add("dnsperf");
        }
        if (workloadTests.contains("dns") || !flowsList.isEmpty()) {
            packages.add("dnsmasq-base");
        }
        Stream.of(targets, idleList, coldList, redisColdList, flowsList).flatMap(List::stream).forEach(t -> packages.addAll(t.packages));

        Path outMd = out != null ? out.toAbsolutePath() : root.resolve("bench/suite/target/results/suite-"
                + ZonedDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")) + ".md");
        if (!outMd.getFileName().toString().endsWith(".md")) {
            outMd = outMd.resolveSibling(outMd.getFileName() + ".md");
        }
        csv = outMd.resolveSibling(outMd.getFileName().toString().replaceAll("\\.md$", ".csv"));
        Files.createDirectories(outMd.getParent());

        Path shm = Path.of("/dev/shm");
        tmp = Files.createTempDirectory(Files.isDirectory(shm) && Files.isWritable(shm) ? shm : Path.of("/tmp"), "interlayer-bench-");
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxr-xr-x"));   // nginx workers run as nobody
        Files.createDirectories(tmp.resolve("logs"));
        Files.createDirectories(tmp.resolve("out"));
        long t0 = System.nanoTime();
        Path tmpDir = tmp;
        try (Procs p = new Procs(tmp.resolve("logs"), () -> {
            if (!keepTmp) {
                deleteTree(tmpDir);
            }
        })) {
            procs = p;
            log("temp dir " + tmp + "; report " + outMd);
            Installer.ensure(packages, !noInstall, tmp, this::log);
            Path nettyJar = targets.stream().anyMatch(t -> t.name.equals("netty")) ? nettyJar(root, nettyHome) : null;
            String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            env = new Target.Env(root, java, split(jvmOpts), Runtime.getRuntime().availableProcessors(), nettyJar, 8000, tmp.resolve("tls"),
                    noAot ? null : aotCache(root));
            log(env.aotCache() != null ? "Interlayer agents start from the ahead-of-time cache " + env.aotCache()
                    : "Interlayer agents start without an ahead-of-time cache" + (noAot ? " (--no-aot)" : " (none as new as the jar)"));
            loads = new Loads(tmp.resolve("out"), connections);
            checkPortsFree(idleList.size());

            long[] m0 = ProcFs.machineTicks();
            Procs.sleep(1000);
            double busyBefore = ProcFs.busyPct(m0, ProcFs.machineTicks());
            log(String.format(Locale.ROOT, "machine busy before start: %.1f %% (should be near 0 for clean figures)", busyBefore));
            List<String> machine = Machine.describe(root, java, packages, busyBefore, jvmOpts, nettyJar);

            Files.writeString(csv, Run.CSV_HEADER + "\n");
            if (!targets.isEmpty()) {
                runWorkloads(targets, workloadTests, nRuns, dur, warm);
            }
            for (int i = 0; i < idleList.size(); i++) {
                Idle.Result r = runIdle(idleList.get(i), i);
                idleDone.add(r);
                Files.writeString(csv, String.join("", r.csvRows()), StandardOpenOption.APPEND);
            }
            if (!flowsList.isEmpty()) {
                runFlows(flowsList);
            }
            if (!coldList.isEmpty()) {
                runCold(coldList, nRuns);
            }
            if (!redisColdList.isEmpty()) {
                runRedisCold(redisColdList, nRuns);
            }
            Map<String, Map<String, Summary>> sums = summarize(targets, workloadTests);
            String md = markdown(machine, targets, workloadTests, sums, nRuns, dur, warm, idleList, csv,
                    (System.nanoTime() - t0) / 1e9);
            Files.writeString(outMd, md);
            stdout.print(md);
            stdout.flush();
            log("wrote " + outMd + " and " + csv);
            List<String> failed = new ArrayList<>();
            for (Target t : targets) {
                for (String test : workloadTests) {
                    if (!t.runs(test)) {
                        continue;
                    }
                    Summary s = sums.getOrDefault(t.name, Map.of()).get(test);
                    if (s == null || !s.measured()) {
                        failed.add(t.name + "/" + test);
                    }
                }
            }
            idleDone.stream().filter(r -> !r.ok()).forEach(r -> failed.add(r.target() + "/idle"));
            coldDone.stream().filter(r -> !r.ok()).map(r -> r.target() + "/cold").distinct().forEach(failed::add);
            redisColdDone.stream().filter(r -> !r.ok()).map(r -> r.target() + "/" + r.test()).distinct().forEach(failed::add);
            flowsDone.stream().filter(r -> !r.ok()).forEach(r -> failed.add(r.target() + "/dns_flows"));
            if (!failed.isEmpty()) {
                log("not measured: " + String.join(", ", failed) + " (see the errors column and " + tmp.resolve("logs")
                        + (keepTmp ? "" : "; rerun with --keep-tmp to keep the logs") + ")");
                return 1;
            }
            return 0;
        } finally {
            if (keepTmp) {
                log("temp dir kept: " + tmp);
            } else {
                deleteTree(tmp);
            }
        }
    }

    // ------------------------------------------------------------------ options

    private Path findRepo() throws BenchException {
        if (repo != null) {
            return checkRepo(repo.toAbsolutePath().normalize());
        }
        String prop = System.getProperty("interlayer.repo");
        if (prop != null && !prop.isBlank()) {
            return checkRepo(Path.of(prop).toAbsolutePath().normalize());
        }
        for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
            if (Files.isRegularFile(d.resolve("interlayer")) && Files.isDirectory(d.resolve("bench/suite"))) {
                return d;
            }
        }
        throw new BenchException("cannot find the Interlayer checkout from " + Path.of("").toAbsolutePath() + "; give --repo DIR");
    }

    private static Path checkRepo(Path p) throws BenchException {
        if (!Files.isRegularFile(p.resolve("interlayer")) || !Files.isDirectory(p.resolve("bench"))) {
            throw new BenchException(p + " is not an Interlayer checkout (no ./interlayer launcher or bench/); give --repo DIR");
        }
        return p;
    }

    private List<String> resolveTests() throws BenchException {
        if (tests == null || tests.isEmpty()) {
            return DEFAULT_TESTS;
        }
        Set<String> want = new HashSet<>();
        for (String t : tests) {
            String n = t.trim();
            if (n.equals("all")) {
                want.addAll(Loads.TESTS);
            } else if (Loads.TESTS.contains(n)) {
                want.add(n);
            } else if (!n.isEmpty()) {
                throw new BenchException("unknown test '" + n + "'; known: " + String.join(", ", Loads.TESTS) + ", all");
            }
        }
        return Loads.TESTS.stream().filter(want::contains).toList();
    }

    private List<Target> resolveTargets(Map<String, Target> catalogue, boolean nettyAvailable) throws BenchException {
        List<String> names;
        if (only != null && !only.isEmpty()) {
            names = only;
        } else if (smoke) {
            names = SMOKE_TARGETS;
        } else {
            names = catalogue.keySet().stream().filter(n -> !ONLY_WHEN_NAMED.contains(n) && (nettyAvailable || !n.equals("netty"))).toList();
        }
        Set<String> chosen = new HashSet<>();
        for (String raw : names) {
            String n = raw.trim();
            if (n.isEmpty()) {
                continue;
            }
            String regex = n.replace(".", "\\.").replace("*", ".*").replace("?", ".");
            List<String> hit = catalogue.keySet().stream().filter(k -> k.matches(regex)).toList();
            if (hit.isEmpty()) {
                throw new BenchException("unknown target '" + n + "'; known: " + String.join(", ", catalogue.keySet()));
            }
            chosen.addAll(hit);
        }
        return catalogue.values().stream().filter(t -> chosen.contains(t.name)).toList();
    }

    private List<Target> resolveIdleTargets(Map<String, Target> catalogue) throws BenchException {
        List<Target> list = new ArrayList<>();
        for (String raw : idleTargets) {
            String n = raw.trim();
            Target t = catalogue.get(n);
            if (t == null) {
                throw new BenchException("unknown idle target '" + n + "'; known: " + String.join(", ", catalogue.keySet()));
            }
            if (t.kind == Target.Kind.DIRECT || !t.multiRoute) {
                throw new BenchException("idle target '" + n + "' cannot run the idle test (it needs a one-hop proxy that "
                        + "forwards several ports in one process: haproxy, nginx or a one-hop il-* target)");
            }
            list.add(t);
        }
        if (list.size() > 10) {
            throw new BenchException("at most 10 idle targets (each gets its own 20 ports)");
        }
        return list;
    }

    private List<Target> resolveColdTargets(Map<String, Target> catalogue, List<String> names) throws BenchException {
        List<Target> list = new ArrayList<>();
        for (String raw : names) {
            Target t = catalogue.get(raw.trim());
            if (t == null) {
                throw new BenchException("unknown cold target '" + raw.trim() + "'; known: " + String.join(", ", catalogue.keySet()));
            }
            if (t.kind == Target.Kind.DIRECT || t.tls) {
                throw new BenchException("cold target '" + t.name + "' cannot run the cold test (it needs a plain proxy to start)");
            }
            list.add(t);
        }
        return list;
    }

    private List<Target> resolveFlowsTargets(Map<String, Target> catalogue) throws BenchException {
        List<Target> list = new ArrayList<>();
        for (String raw : dnsFlowsTargets) {
            Target t = catalogue.get(raw.trim());
            if (t == null) {
                throw new BenchException("unknown dns_flows target '" + raw.trim() + "'; known: " + String.join(", ", catalogue.keySet()));
            }
            if (t.kind == Target.Kind.DIRECT || !t.runs("dns_flows")) {
                throw new BenchException("dns_flows target '" + t.name + "' does not forward UDP (UDP targets: " + String.join(", ",
                        catalogue.values().stream().filter(c -> c.kind != Target.Kind.DIRECT && c.runs("dns_flows")).map(c -> c.name).toList()) + ")");
            }
            list.add(t);
        }
        return list;
    }

    /** The build's ahead-of-time cache of the agent, when it is at least as new as the jar it was made for. */
    private static Path aotCache(Path root) throws IOException {
        Path aot = root.resolve("cli/target/interlayer.aot");
        Path jar = root.resolve("cli/target/interlayer.jar");
        return Files.isRegularFile(aot) && Files.isRegularFile(jar)
                && Files.getLastModifiedTime(aot).compareTo(Files.getLastModifiedTime(jar)) >= 0 ? aot : null;
    }

    private static List<String> split(String opts) {
        return Arrays.stream(opts.trim().split("\\s+")).filter(s -> !s.isEmpty()).toList();
    }

    private int proxyPort(int k) {
        return basePort + 10 + 2 * (k % 45);
    }

    private void checkPortsFree(int idleTargetCount) throws BenchException {
        Set<Integer> listening = ProcFs.listeningPorts();
        List<Integer> busy = new ArrayList<>();
        for (int p : List.of(basePort, basePort + 2)) {
            if (listening.contains(p)) {
                busy.add(p);
            }
        }
        for (int p = basePort + 10; p < basePort + 100 + 400; p++) {
            if (listening.contains(p)) {
                busy.add(p);
            }
        }
        if (!busy.isEmpty()) {
            throw new BenchException("ports " + busy + " are in use (another benchmark running?); pick other ports with --base-port");
        }
    }

    // ------------------------------------------------------------------ netty forwarder

    /** The Netty forwarder's jar: the one in {@code DIR/target} if up to date, else built from a copy in our tree. */
    private Path nettyJar(Path root, Path home) throws BenchException, IOException {
        Path jar = home.resolve("target/nettyproxy.jar");
        if (Files.isRegularFile(jar) && !newerThan(home, jar)) {
            return jar;
        }
        Path build = root.resolve("bench/suite/target/nettyproxy");
        Path built = build.resolve("target/nettyproxy.jar");
        if (Files.isRegularFile(built) && !newerThan(home, built)) {
            return built;
        }
        log("building the Netty forwarder from " + home + " (a copy in " + build + ")");
        deleteTree(build);
        Files.createDirectories(build);
        Files.copy(home.resolve("pom.xml"), build.resolve("pom.xml"));
        try (Stream<Path> files = Files.walk(home.resolve("src"))) {
            for (Path f : files.toList()) {
                Path dst = build.resolve(home.relativize(f).toString());
                if (Files.isDirectory(f)) {
                    Files.createDirectories(dst);
                } else {
                    Files.copy(f, dst, StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
        Path logFile = tmp.resolve("logs/nettyproxy-build.log");
        Procs.Ran ran = Procs.run(List.of(root.resolve("mvnw").toString(), "-q", "-B", "-f", build.resolve("pom.xml").toString(),
                "package", "-DskipTests"), logFile, 600_000);
        if (ran.status() != 0 || !Files.isRegularFile(built)) {
            throw new BenchException("building the Netty forwarder failed (exit " + ran.status() + "); see " + logFile
                    + " or leave netty out of --only:\n" + tail(ran.output(), 15));
        }
        return built;
    }

    private static boolean newerThan(Path home, Path jar) throws IOException {
        long t = Files.getLastModifiedTime(jar).toMillis();
        if (!Files.isDirectory(home.resolve("src"))) {
            return false;
        }
        try (Stream<Path> files = Stream.concat(Stream.of(home.resolve("pom.xml")), Files.walk(home.resolve("src")))) {
            return files.filter(Files::isRegularFile).anyMatch(f -> {
                try {
                    return Files.getLastModifiedTime(f).toMillis() > t;
                } catch (IOException e) {
                    return false;
                }
            });
        }
    }

    private static String tail(String s, int n) {
        String[] lines = s.split("\n");
        return String.join("\n", Arrays.asList(lines).subList(Math.max(0, lines.length - n), lines.length));
    }

    // ------------------------------------------------------------------ workloads

    /** A running target: its process (null for direct) and the port the clients use. */
    private record Started(Proc proc, int port) {
        long pid() {
            return proc == null ? 0 : proc.pid();
        }
    }

    private Started startTarget(Target t, int upstream, Target.Env e, List<Route> routes) throws BenchException, IOException {
        if (t.kind == Target.Kind.DIRECT) {
            return new Started(null, upstream);
        }
        int k = ++starts;
        Path dir = tmp.resolve("targets").resolve(t.name + "-" + k);
        Launch launch = t.prepare(e, dir, routes);
        Set<Integer> listening = launch.udp() ? ProcFs.udpBoundPorts() : ProcFs.listeningPorts();
        for (int port : launch.ports()) {
            if (listening.contains(port)) {
                throw new BenchException("port " + port + (launch.udp() ? " (udp)" : "") + " is in use; pick other ports with --base-port");
            }
        }
        Proc p = procs.start(t.name + "-" + k, launch.cmd(), Map.of());
        try {
            Procs.awaitListening(p, launch.ports(), launch.udp());
        } catch (BenchException ex) {
            procs.stop(p);
            throw ex;
        }
        return new Started(p, routes.getFirst().listen());
    }

    private void stopTarget(Started s) {
        if (s != null && s.proc() != null) {
            procs.stop(s.proc());
            if (s.proc().process().exitValue() != 0 && s.proc().process().exitValue() != 143) {
                log("  " + s.proc().name() + " exited with " + s.proc().process().exitValue() + " on SIGTERM; log ends:\n"
                        + s.proc().tail(5));
            }
        }
    }

    private void record(Run r) throws IOException {
        runsDone.add(r);
        Files.writeString(csv, r.csv() + "\n", StandardOpenOption.APPEND);
        if (r.ok()) {
            String extra = r.test().equals("ka") || r.test().startsWith("redis_") ? String.format(Locale.ROOT, " p50 %.3f ms p99 %.3f ms", r.p50ms(), r.p99ms()) : "";
            log(String.format(Locale.ROOT, "  %s %s run %d: %.3f %s%s  proxy %s CPU-s, machine busy %.0f %%%s", r.target(),
                    r.test(), r.run(), r.value(), r.unit(), extra,
                    Double.isNaN(r.proxyCpuS()) ? "-" : String.format(Locale.ROOT, "%.2f", r.proxyCpuS()), r.busyPct(),
                    r.errors().isEmpty() ? "" : " (" + r.errors() + ")"));
        } else {
            log("  " + r.target() + " " + r.test() + " run " + r.run() + " FAILED: " + r.errors());
        }
    }

    private int jitWarm;

    /** How the runs of several targets are ordered; see {@code --order}. */
    enum Order { interleaved, grouped }

    /** One kind of workload: the upstream its targets forward to, a check of a started target, one run of one test. */
    private interface Phase {
        int upstream();

        long backendPid();

        void check(Target t, Started s) throws BenchException;

        Run run(Target t, String test, int run, Started s, int seconds, Meter m) throws IOException;

        /** After a failed run: make sure the upstream serves the next one. */
        default void afterFailure() throws BenchException, IOException {}

        /** Whether the targets forward UDP to the upstream (the dns test) instead of TCP. */
        default boolean udp() {
            return false;
        }
    }

    private void runWorkloads(List<Target> targets, List<String> tests, int nRuns, int dur, int warmAll) throws BenchException, IOException {
        int pHttp = basePort;
        int pIperf = basePort + 2;
        List<String> bulk = tests.stream().filter(t -> t.startsWith("bulk")).toList();
        List<String> http = tests.stream().filter(t -> t.equals("ka") || t.equals("close")).toList();
        List<String> tls = tests.stream().filter(t -> t.startsWith("tls_")).toList();
        List<String> redis = tests.stream().filter(t -> t.startsWith("redis_")).toList();
        List<Target> tlsTargets = targets.stream().filter(t -> t.tls).toList();
        List<Target> dnsTargets = targets.stream().filter(t -> t.runs("dns")).toList();
        targets = targets.stream().filter(t -> !t.tls && t.proto != Target.Proto.UDP).toList();
        if (targets.isEmpty()) {
            bulk = List.of();
            http = List.of();
            redis = List.of();
        }
        if (!bulk.isEmpty()) {
            Proc[] iperfServer = {startIperfServer(pIperf)};
            try {
                runPhase("bulk", targets, bulk, nRuns, dur, warmAll, new Phase() {
                    public int upstream() { return pIperf; }

                    public long backendPid() { return iperfServer[0].pid(); }

                    public void check(Target t, Started s) {}

                    public Run run(Target t, String test, int run, Started s, int seconds, Meter m) throws IOException {
                        return loads.iperf(t.name, test, run, s.port(), test.equals("bulk1") ? 1 : 4, seconds, m);
                    }

                    public void afterFailure() throws BenchException, IOException {
                        // an iperf3 server whose client went away mid-test can stay busy: start a fresh one
                        procs.stop(iperfServer[0]);
                        iperfServer[0] = startIperfServer(pIperf);
                    }
                });
            } finally {
                procs.stop(iperfServer[0]);
            }
        }
        if (!http.isEmpty()) {
            Proc backend = startBackend(pHttp);
            try {
                runPhase("http", targets, http, nRuns, dur, warmAll, new Phase() {
                    public int upstream() { return pHttp; }

                    public long backendPid() { return backend.pid(); }

                    public void check(Target t, Started s) throws BenchException {
                        sanityGet(t.name, s.port());
                    }

                    public Run run(Target t, String test, int run, Started s, int seconds, Meter m) throws IOException {
                        return loads.wrk(t.name, test, run, s.port(), test.equals("close"), seconds, m);
                    }
                });
            } finally {
                procs.stop(backend);
            }
        }
        if (!redis.isEmpty()) {
            int pRedis = basePort + 3;
            Proc backend = startRedis(pRedis);
            try {
                runPhase("redis", targets, redis, nRuns, dur, warmAll, new Phase() {
                    public int upstream() { return pRedis; }

                    public long backendPid() { return backend.pid(); }

                    public void check(Target t, Started s) throws BenchException {
                        sanityPing(t.name, s.port());
                    }

                    public Run run(Target t, String test, int run, Started s, int seconds, Meter m) throws IOException {
                        return loads.redis(t.name, test, run, s.port(), seconds, m);
                    }
                });
            } finally {
                procs.stop(backend);
            }
        }
        if (tests.contains("dns") && !dnsTargets.isEmpty()) {
            int pDns = basePort + 4;
            Path queries = Dns.writeFiles(Files.createDirectories(tmp.resolve("dns")));
            Proc backend = startDnsmasq(pDns);
            try {
                runPhase("dns", dnsTargets, List.of("dns"), nRuns, dur, warmAll, new Phase() {
                    public int upstream() { return pDns; }

                    public long backendPid() { return backend.pid(); }

                    public boolean udp() { return true; }

                    public void check(Target t, Started s) throws BenchException {
                        Dns.check(t.name, s.port(), pDns);
                    }

                    public Run run(Target t, String test, int run, Started s, int seconds, Meter m) throws IOException {
                        return loads.dnsperf(t.name, test, run, s.port(), queries, dnsClients, dnsOutstanding, seconds, m);
                    }
                });
            } finally {
                procs.stop(backend);
            }
        }
        if (!tls.isEmpty() && !tlsTargets.isEmpty()) {
            Path opensslConf = writeTlsFiles();
            Path big = tmp.resolve("backend/www/big.bin");
            Files.createDirectories(big.getParent());
            byte[] chunk = new byte[1 << 20];
            new java.util.SplittableRandom(42).nextBytes(chunk);
            try (OutputStream o = Files.newOutputStream(big)) {
                for (int i = 0; i < 16; i++) {
                    o.write(chunk);
                }
            }
            Files.setPosixFilePermissions(big, PosixFilePermissions.fromString("rw-r--r--"));
            Proc backend = startBackend(pHttp);
            try {
                runPhase("tls", tlsTargets, tls, nRuns, dur, warmAll, new Phase() {
                    public int upstream() { return pHttp; }

                    public long backendPid() { return backend.pid(); }

                    public void check(Target t, Started s) throws BenchException {
                        sanityGetTls(t.name, s.port());
                    }

                    public Run run(Target t, String test, int run, Started s, int seconds, Meter m) throws IOException {
                        return loads.wrkTls(t.name, test, run, s.port(), "/big.bin", seconds, m, opensslConf);
                    }
                });
            } finally {
                procs.stop(backend);
            }
        }
    }

    /**
     * The TLS targets' certificate (ECDSA P-256, self-signed for localhost and 127.0.0.1, PKCS#8 key), made with
     * openssl into the temp dir, the same file for every target; and the clients' {@code OPENSSL_CONF}: TLS 1.3 only,
     * TLS_AES_128_GCM_SHA256 only. Returns the latter.
     */
    private Path writeTlsFiles() throws IOException, BenchException {
        Path dir = env.tlsDir();
        Files.createDirectories(dir);
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));   // nginx workers run as nobody
        Path logFile = tmp.resolve("logs/openssl-req.log");
        Procs.Ran ran = Procs.run(List.of(Installer.which("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", env.tlsKey().toString(), "-out", env.tlsCert().toString(),
                "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"), logFile, 30_000);
        if (ran.status() != 0 || !Files.isRegularFile(env.tlsKey())) {
            throw new BenchException("openssl req could not make the TLS targets' certificate: " + oneLine(ran.output()));
        }
        if (!Files.readString(env.tlsKey()).startsWith("-----BEGIN PRIVATE KEY-----")) {
            throw new BenchException("openssl req wrote a key that is not PKCS#8: " + env.tlsKey());
        }
        for (Path f : List.of(env.tlsCert(), env.tlsKey())) {
            Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-r--r--"));   // a throwaway key in a private temp dir
        }
        Files.writeString(env.tlsCombined(), Files.readString(env.tlsCert()) + Files.readString(env.tlsKey()));
        Path conf = dir.resolve("client-openssl.cnf");
        Files.writeString(conf, """
                # the TLS clients (wrk): TLS 1.3, AES-128-GCM only
                openssl_conf = default_conf
                [default_conf]
                ssl_conf = ssl_sect
                [ssl_sect]
                system_default = system_default_sect
                [system_default_sect]
                MinProtocol = TLSv1.3
                Ciphersuites = TLS_AES_128_GCM_SHA256
                """);
        return conf;
    }

    /** {@link #sanityGet} over TLS, trusting the suite's certificate; the session must be TLS 1.3. */
    private void sanityGetTls(String who, int port) throws BenchException {
        try {
            java.security.KeyStore ks = java.security.KeyStore.getInstance("PKCS12");
            ks.load(null, null);
            try (InputStream in = Files.newInputStream(env.tlsCert())) {
                ks.setCertificateEntry("suite", java.security.cert.CertificateFactory.getInstance("X.509").generateCertificate(in));
            }
            javax.net.ssl.TrustManagerFactory tmf = javax.net.ssl.TrustManagerFactory.getInstance(
                    javax.net.ssl.TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(ks);
            javax.net.ssl.SSLContext ctx = javax.net.ssl.SSLContext.getInstance("TLSv1.3");
            ctx.init(null, tmf.getTrustManagers(), null);
            try (javax.net.ssl.SSLSocket s = (javax.net.ssl.SSLSocket) ctx.getSocketFactory().createSocket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 5000);
                s.setSoTimeout(5000);
                s.startHandshake();
                String proto = s.getSession().getProtocol();
                OutputStream o = s.getOutputStream();
                o.write(("GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                o.flush();
                String resp = new String(readUntilClosed(s.getInputStream()), StandardCharsets.ISO_8859_1);
                int body = resp.indexOf("\r\n\r\n");
                if (!proto.equals("TLSv1.3") || !resp.startsWith("HTTP/1.1 200") || body < 0 || resp.length() - body - 4 != 1024) {
                    throw new BenchException(who + ": a GET of /index.html over TLS through port " + port + " did not return the 1 KiB "
                            + "file over TLS 1.3 (" + proto + "): " + firstLine(resp.isEmpty() ? "(empty response)" : resp));
                }
            }
        } catch (IOException | java.security.GeneralSecurityException e) {
            throw new BenchException(who + ": a GET of /index.html over TLS through port " + port + " failed: " + e, e);
        }
    }

    /** Reads to the end; a TLS peer that closes without close_notify after the response counts as the end. */
    private static byte[] readUntilClosed(InputStream in) throws IOException {
        java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
        byte[] buf = new byte[4096];
        try {
            for (int n; (n = in.read(buf)) >= 0; ) {
                b.write(buf, 0, n);
            }
        } catch (javax.net.ssl.SSLException e) {
            if (b.size() == 0) {
                throw e;
            }
        }
        return b.toByteArray();
    }

    private Proc startIperfServer(int port) throws BenchException, IOException {
        Proc p = procs.start("iperf3-server", List.of(Installer.which("iperf3"), "-s", "-B", "127.0.0.1", "-p",
                Integer.toString(port)), Map.of());
        Procs.awaitListening(p, Set.of(port));
        return p;
    }

    /** Runs {@code tests} on every target in the order {@code --order} says. */
    private void runPhase(String what, List<Target> targets, List<String> tests, int nRuns, int dur, int warmAll, Phase ph)
            throws BenchException, IOException {
        if (order == Order.grouped) {
            for (Target t : targets) {
                runTogether(what, List.of(t), tests, nRuns, dur, warmAll, ph);
            }
        } else {
            runTogether(what, targets, tests, nRuns, dur, warmAll, ph);
        }
    }

    /**
     * Starts {@code targets} side by side (each on its own port, idle while another is measured), then for each test
     * runs them round by round: every target's warm-up, then every target's run 1, run 2, ... A drift in the
     * machine's load (it is shared) then touches every target alike instead of whichever ran during it.
     */
    private void runTogether(String what, List<Target> targets, List<String> tests, int nRuns, int dur, int warmAll, Phase ph)
            throws BenchException, IOException {
        Map<Target, Started> up = new LinkedHashMap<>();
        try {
            for (Target t : targets) {
                log("=== " + t.name + " (" + what + "): " + t.what);
                try {
                    up.put(t, null);
                    Started s = startTarget(t, ph.upstream(), env, List.of(new Route(proxyPort(starts + 1), ph.upstream(), ph.udp())));
                    up.put(t, s);
                    ph.check(t, s);
                } catch (BenchException e) {
                    log("  " + t.name + " (" + what + ") failed to start: " + e.getMessage());
                    stopTarget(up.remove(t));
                    for (String test : tests) {
                        record(Run.failed(t.name, test, 0, oneLine(e.getMessage())));
                    }
                }
            }
            for (String test : tests) {
                for (int r = 0; r <= nRuns; r++) {
                    for (Map.Entry<Target, Started> e : up.entrySet()) {
                        Target t = e.getKey();
                        Started s = e.getValue();
                        int seconds = r > 0 ? dur : t.kind == Target.Kind.INTERLAYER || t.name.startsWith("netty") ? jitWarm : warmAll;
                        if (seconds == 0) {
                            continue; // no warm-up
                        }
                        if (s.proc() != null && !s.proc().alive()) {
                            if (r > 0) {
                                record(Run.failed(t.name, test, r, t.name + " is no longer running; its log ends: "
                                        + oneLine(s.proc().tail(5))));
                            }
                            continue;
                        }
                        Run run = ph.run(t, test, r, s, seconds, new Meter(s.pid(), ph.backendPid()));
                        if (r > 0) {
                            record(run);
                        }
                        if (!run.ok()) {
                            ph.afterFailure();
                        }
                    }
                }
            }
        } finally {
            up.values().forEach(this::stopTarget);
        }
    }

    /** A multi-line message (a log tail) as one line for a table cell. */
    private static String oneLine(String s) {
        return s.strip().replaceAll("\\s*\n\\s*", " / ");
    }

    private static String firstLine(String s) {
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    /** The HTTP backend: nginx, one worker, a 1 KiB static file, keep-alive unlimited, access log off. */
    private Proc startBackend(int port) throws IOException, BenchException {
        Path dir = tmp.resolve("backend");
        Path www = dir.resolve("www");
        Files.createDirectories(www);
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.setPosixFilePermissions(www, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.writeString(www.resolve("index.html"), "x".repeat(1024));
        Files.setPosixFilePermissions(www.resolve("index.html"), PosixFilePermissions.fromString("rw-r--r--"));
        String cfg = "daemon off;\nmaster_process on;\nworker_processes 1;\n"
                + "pid " + dir.resolve("nginx.pid") + ";\n"
                + "error_log " + dir.resolve("error.log") + " warn;\n"
                + "events { worker_connections 16384; }\n"
                + "http {\n"
                + "    access_log off;\n"
                + "    default_type application/octet-stream;\n"
                + "    sendfile on; tcp_nopush on; tcp_nodelay on;\n"
                + "    keepalive_timeout 65s; keepalive_requests 100000000;\n"
                + "    client_body_temp_path " + dir.resolve("cb") + "; proxy_temp_path " + dir.resolve("pt") + ";\n"
                + "    fastcgi_temp_path " + dir.resolve("ft") + "; uwsgi_temp_path " + dir.resolve("ut")
                + "; scgi_temp_path " + dir.resolve("st") + ";\n"
                + "    server {\n        listen 127.0.0.1:" + port + " backlog=4096;\n        root " + www + ";\n    }\n"
                + "}\n";
        Files.writeString(dir.resolve("nginx.conf"), cfg);
        Proc p = procs.start("backend-nginx", List.of(Installer.which("nginx"), "-p", dir + "/", "-e",
                dir.resolve("error.log").toString(), "-c", dir.resolve("nginx.conf").toString()), Map.of());
        Procs.awaitListening(p, Set.of(port));
        sanityGet("backend", port);
        return p;
    }

    /**
     * The DNS backend: dnsmasq on 127.0.0.1 (udp), answering the names of {@link Dns#writeFiles} from its hosts file with no
     * upstream server and no cache (each answer is built from the hosts table).
     */
    private Proc startDnsmasq(int port) throws IOException, BenchException {
        Path dir = tmp.resolve("dns");
        if (ProcFs.udpBoundPorts().contains(port)) {
            throw new BenchException("udp port " + port + " (dnsmasq) is in use (another benchmark or DNS server running?); pick other "
                    + "ports with --base-port");
        }
        List<String> cmd = new ArrayList<>(List.of(Installer.which("dnsmasq"), "--no-daemon", "--conf-file=/dev/null", "--port=" + port,
                "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts", "--addn-hosts=" + dir.resolve("hosts"),
                "--pid-file=", "--cache-size=0"));
        if (Procs.capture(5, "id", "-u").trim().equals("0")) {
            cmd.add("--user=root");   // no "nobody" switch: it keeps reading the hosts file in the temp dir
        }
        Proc p = procs.start("backend-dnsmasq", cmd, Map.of());
        Procs.awaitListening(p, Set.of(port), true);
        Dns.check("backend", port, port);
        return p;
    }

    /** The redis backend: redis-server on 127.0.0.1, no persistence, its files in the temp dir. */
    private Proc startRedis(int port) throws IOException, BenchException {
        Path dir = Files.createDirectories(tmp.resolve("redis"));
        Proc p = procs.start("backend-redis", List.of(Installer.which("redis-server"), "--port", Integer.toString(port), "--bind",
                "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir.toString(), "--protected-mode", "no",
                "--maxclients", "10000"), Map.of());
        Procs.awaitListening(p, Set.of(port));
        sanityPing("backend", port);
        return p;
    }

    /** A PING through the target must come back as +PONG. */
    private static void sanityPing(String who, int port) throws BenchException {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 5000);
            s.setSoTimeout(5000);
            s.getOutputStream().write("PING\r\n".getBytes(StandardCharsets.US_ASCII));
            byte[] b = new byte[7];
            int n = s.getInputStream().readNBytes(b, 0, 7);
            String got = new String(b, 0, n, StandardCharsets.US_ASCII);
            if (!got.equals("+PONG\r\n")) {
                throw new BenchException(who + ": a redis PING through port " + port + " returned " + (got.isEmpty() ? "nothing" : got.strip()));
            }
        } catch (IOException e) {
            throw new BenchException(who + ": a redis PING through port " + port + " failed: " + e.getMessage(), e);
        }
    }

    /** One GET through the target must return the 1 KiB file: the path works before anything is measured. */
    private static void sanityGet(String who, int port) throws BenchException {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 5000);
            s.setSoTimeout(5000);
            OutputStream o = s.getOutputStream();
            o.write(("GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            o.flush();
            InputStream in = s.getInputStream();
            String resp = new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
            int body = resp.indexOf("\r\n\r\n");
            if (!resp.startsWith("HTTP/1.1 200") || body < 0 || resp.length() - body - 4 != 1024) {
                throw new BenchException(who + ": a GET of /index.html through port " + port + " did not return the 1 KiB file: "
                        + firstLine(resp.isEmpty() ? "(empty response)" : resp));
            }
        } catch (IOException e) {
            throw new BenchException(who + ": a GET of /index.html through port " + port + " failed: " + e.getMessage(), e);
        }
    }

    // ------------------------------------------------------------------ idle connections

    private Idle.Result runIdle(Target t, int index) throws IOException {
        int n = idleConns;
        int routes = Idle.routesFor(n, idlePerListener);
        long[] lim = ProcFs.openFilesLimit(ProcessHandle.current().pid());
        long need = 2L * n + 1000;
        log("=== idle: " + n + " connections through " + t.name + " (" + routes + " listener(s))");
        if (lim[0] >= 0 && lim[0] < need) {
            long fit = Math.max(0, (lim[0] - 1000) / 2);
            String msg = n + " idle pairs need about " + need + " open files in the suite and in the target; the limit is "
                    + lim[0] + " (hard " + (lim[1] == Long.MAX_VALUE ? "unlimited" : lim[1]) + "). bench/run raises "
                    + "ulimit -n to the hard limit; raise the hard limit (as root: prlimit, limits.conf, or the "
                    + "container's nofile) or use --idle-conns " + fit;
            log("  " + msg);
            return new Idle.Result(t.name, n, routes, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN, msg);
        }
        List<Integer> listen = new ArrayList<>();
        List<Integer> upstream = new ArrayList<>();
        List<Route> rs = new ArrayList<>();
        for (int i = 0; i < routes; i++) {
            int l = basePort + 100 + index * 20 + i;
            int u = basePort + 300 + index * 20 + i;
            listen.add(l);
            upstream.add(u);
            rs.add(new Route(l, u));
        }
        List<String> sources = new ArrayList<>();
        for (int i = 0; i < routes; i++) {
            sources.add("127.0." + (index + 1) + "." + (2 + i));
        }
        Target.Env idleEnv = new Target.Env(env.repo(), env.java(), split(idleJvmOpts), env.cores(), env.nettyJar(), n + 100,
                env.tlsDir(), env.aotCache());
        String jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd").toString();
        boolean jvm = t.isInterlayer() || t.name.equals("netty");
        Started s = null;
        List<SocketChannel> warmConns = List.of();
        List<SocketChannel> conns = List.of();
        try (Idle.Upstream up = new Idle.Upstream(upstream)) {
            s = startTarget(t, 0, idleEnv, rs);
            // warm-up: classes loaded, pools created, the JIT has seen the accept path once
            warmConns = Idle.open(Math.min(200, n), listen, sources, 64, 60_000);
            Idle.closeAll(warmConns);
            Procs.sleep(1500);
            double heap0 = jvm ? Idle.heapAfterGcKiB(jcmd, s.pid()) : Double.NaN;
            Procs.sleep(500);
            double rss0 = ProcFs.treeRssKiB(s.pid());
            long t0 = System.nanoTime();
            conns = Idle.open(n, listen, sources, 256, 120_000L + n * 5L);
            double openS = (System.nanoTime() - t0) / 1e9;
            Procs.sleep(2000);
            int atUpstream = up.open();
            double heap1 = jvm ? Idle.heapAfterGcKiB(jcmd, s.pid()) : Double.NaN;
            Procs.sleep(500);
            double rss1 = ProcFs.treeRssKiB(s.pid());
            String err = atUpstream < n ? "only " + atUpstream + " of " + n + " connections open at the upstream" : "";
            if (!s.proc().alive()) {
                err = t.name + " exited during the test; log ends: " + s.proc().tail(5);
            }
            Idle.Result r = new Idle.Result(t.name, n, routes, openS, heap0, heap1, rss0, rss1, err);
            String heap = jvm ? String.format(Locale.ROOT, "heap %.1f -> %.1f MiB (%.2f KiB/pair); ", heap0 / 1024,
                    heap1 / 1024, r.heapPerPairKiB()) : "";
            log(String.format(Locale.ROOT, "  %s: %d pairs open in %.1f s; %sRSS %.1f -> %.1f MiB (%.2f KiB/pair)%s", t.name,
                    n, openS, heap, rss0 / 1024, rss1 / 1024, r.rssPerPairKiB(), err.isEmpty() ? "" : " (" + err + ")"));
            return r;
        } catch (BenchException e) {
            log("  " + t.name + " idle failed: " + e.getMessage());
            return new Idle.Result(t.name, n, routes, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN,
                    oneLine(e.getMessage()));
        } finally {
            Idle.closeAll(conns);
            stopTarget(s);
        }
    }

    // ------------------------------------------------------------------ per-flow cost of UDP

    /** Every dns_flows target, one after the other, against one dnsmasq. */
    private void runFlows(List<Target> list) throws IOException, BenchException {
        int pDns = basePort + 4;
        Dns.writeFiles(Files.createDirectories(tmp.resolve("dns")));
        Proc backend = startDnsmasq(pDns);
        try {
            for (Target t : list) {
                Dns.FlowCost r = flowCost(t, pDns);
                flowsDone.add(r);
                Files.writeString(csv, r.csvRow(), StandardOpenOption.APPEND);
            }
        } finally {
            procs.stop(backend);
        }
    }

    /**
     * Heap, RSS and descriptors of {@code t} before and after {@code --dns-flows} client sockets each sent it one query
     * (a flow each, kept open while it is measured).
     */
    private Dns.FlowCost flowCost(Target t, int upstream) throws IOException {
        int n = dnsFlows;
        log("=== dns_flows: " + n + " flows (one query each) through " + t.name);
        long[] lim = ProcFs.openFilesLimit(ProcessHandle.current().pid());
        if (lim[0] >= 0 && lim[0] < n + 1000L) {
            String msg = n + " flows need about " + (n + 1000) + " open files in the suite and in the target; the limit is " + lim[0]
                    + ". bench/run raises ulimit -n to the hard limit; use --dns-flows " + Math.max(1, lim[0] - 1000);
            log("  " + msg);
            return new Dns.FlowCost(t.name, n, 0, Double.NaN, Double.NaN, Double.NaN, Double.NaN, -1, -1, msg);
        }
        // no pre-touch: RSS grows with the heap the flows use
        Target.Env flowsEnv = new Target.Env(env.repo(), env.java(), split(idleJvmOpts), env.cores(), env.nettyJar(), env.maxConns(),
                env.tlsDir(), env.aotCache());
        String jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd").toString();
        boolean jvm = t.isInterlayer();
        Started s = null;
        try {
            s = startTarget(t, upstream, flowsEnv, List.of(new Route(proxyPort(starts + 1), upstream, true)));
            Dns.check(t.name, s.port(), upstream);
            // warm-up: classes loaded, pools created, the JIT has seen the new-flow path
            try (Dns.Flows warmFlows = Dns.openFlows(s.port(), Math.min(200, n))) {
                Procs.sleep(200);
            }
            Procs.sleep(1500);
            double heap0 = jvm ? Idle.heapAfterGcKiB(jcmd, s.pid()) : Double.NaN;
            Procs.sleep(500);
            double rss0 = ProcFs.treeRssKiB(s.pid());
            long fds0 = ProcFs.treeFds(s.pid());
            try (Dns.Flows f = Dns.openFlows(s.port(), n)) {
                Procs.sleep(1000);
                double heap1 = jvm ? Idle.heapAfterGcKiB(jcmd, s.pid()) : Double.NaN;
                Procs.sleep(500);
                double rss1 = ProcFs.treeRssKiB(s.pid());
                long fds1 = ProcFs.treeFds(s.pid());
                String err = f.answered() < n ? "only " + f.answered() + " of " + n + " flows got their answer" : "";
                if (!s.proc().alive()) {
                    err = t.name + " exited during the test; log ends: " + oneLine(s.proc().tail(5));
                }
                Dns.FlowCost r = new Dns.FlowCost(t.name, n, f.answered(), heap0, heap1, rss0, rss1, fds0, fds1, err);
                log(String.format(Locale.ROOT, "  %s: %d of %d answered; heap %.2f KiB/flow, RSS %.2f KiB/flow, %.2f fds/flow%s", t.name,
                        f.answered(), n, r.heapPerFlowKiB(), r.rssPerFlowKiB(), r.fdsPerFlow(), err.isEmpty() ? "" : " (" + err + ")"));
                return r;
            }
        } catch (BenchException e) {
            log("  " + t.name + " dns_flows failed: " + e.getMessage());
            return new Dns.FlowCost(t.name, n, 0, Double.NaN, Double.NaN, Double.NaN, Double.NaN, -1, -1, oneLine(e.getMessage()));
        } finally {
            stopTarget(s);
        }
    }

    // ------------------------------------------------------------------ cold start

    /** Every cold target (and, from the cache and without it, every Interlayer one) started {@code nRuns} times, round by round. */
    private void runCold(List<Target> coldTargets, int nRuns) throws IOException, BenchException {
        int pHttp = basePort;
        Path script = tmp.resolve("cold.lua");
        Files.writeString(script, Cold.LUA);
        Proc backend = startBackend(pHttp);
        try {
            for (int r = 1; r <= nRuns; r++) {
                for (Target t : coldTargets) {
                    Cold.Result res = coldRun(t, t.name, env, r, pHttp, script);
                    coldDone.add(res);
                    Files.writeString(csv, res.csvRows(), StandardOpenOption.APPEND);
                    if (t.isInterlayer() && env.aotCache() != null) {
                        res = coldRun(t, t.name + " no-aot", env.withoutAot(), r, pHttp, script);
                        coldDone.add(res);
                        Files.writeString(csv, res.csvRows(), StandardOpenOption.APPEND);
                    }
                }
            }
        } finally {
            procs.stop(backend);
        }
    }

    private Cold.Result coldRun(Target t, String label, Target.Env e, int run, int upstream, Path script) throws IOException {
        Path buckets = tmp.resolve("out").resolve("cold-" + label.replace(' ', '-') + "-" + run + ".txt");
        Started s = null;
        try {
            long t0 = System.nanoTime();
            s = startTarget(t, upstream, e, List.of(new Route(proxyPort(starts + 1), upstream)));
            double listenS = (System.nanoTime() - t0) / 1e9;
            double cpuS = ProcFs.treeCpuSeconds(s.pid());
            Procs.Ran ran = Procs.run(List.of(Installer.which("wrk"), "-t1", "-c" + connections, "-d" + coldSeconds + "s",
                    "--timeout", "5s", "-s", script.toString(), "http://127.0.0.1:" + s.port() + "/index.html"),
                    buckets.resolveSibling(buckets.getFileName() + ".wrk"), (coldSeconds + 20) * 1000L,
                    Map.of("COLD_T0_NS", Long.toString(t0), "COLD_OUT", buckets.toString()));
            Cold.Result res = ran.status() != 0 || ran.timedOut()
                    ? new Cold.Result(label, run, listenS, cpuS, Double.NaN, Double.NaN, Double.NaN, Double.NaN,
                            "wrk " + (ran.timedOut() ? "timed out" : "exit " + ran.status()) + ": " + firstLine(ran.output()))
                    : Cold.analyze(label, run, listenS, cpuS, buckets, coldSeconds);
            log(String.format(Locale.ROOT, "  cold %s run %d: listening after %.2f s (%.2f CPU-s), 90 %% of warm after %.1f s, "
                    + "first 2 s %.0f %%, first 5 s %.0f %% of warm (%.0f req/s)%s", label, run, res.listenS(), res.cpuToListenS(),
                    res.t90S(), res.first2Pct(), res.first5Pct(), res.warmRps(), res.ok() ? "" : " (" + res.errors() + ")"));
            return res;
        } catch (BenchException ex) {
            log("  cold " + label + " run " + run + " failed: " + ex.getMessage());
            return new Cold.Result(label, run, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN, oneLine(ex.getMessage()));
        } finally {
            stopTarget(s);
        }
    }

    /**
     * Every redis_cold target started {@code nRuns} times, round by round, each time followed at once by redis-benchmark SET
     * then GET ({@link #redisColdRequests} each) through it to redis-server: the rate of its first seconds. A run's
     * {@code amount} column holds the seconds from the spawn until the target listened.
     */
    private void runRedisCold(List<Target> targets, int nRuns) throws IOException, BenchException {
        int pRedis = basePort + 3;
        Proc backend = startRedis(pRedis);
        try {
            for (int r = 1; r <= nRuns; r++) {
                for (Target t : targets) {
                    Started s = null;
                    try {
                        long t0 = System.nanoTime();
                        s = startTarget(t, pRedis, env, List.of(new Route(proxyPort(starts + 1), pRedis)));
                        double listenS = (System.nanoTime() - t0) / 1e9;
                        for (String test : List.of("redis_set", "redis_get")) {
                            Run run = loads.redisCold(t.name, test, r, s.port(), redisColdRequests, new Loads.Meter(s.pid(), backend.pid()));
                            run = new Run(run.target(), run.test().replace("redis_", "redis_cold_"), run.run(), run.value(), run.unit(),
                                    listenS, run.wallS(), run.proxyCpuS(), run.clientCpuS(), run.backendCpuS(), run.busyPct(), run.p50ms(),
                                    run.p99ms(), run.errors(), run.ok());
                            redisColdDone.add(run);
                            Files.writeString(csv, run.csv() + "\n", StandardOpenOption.APPEND);
                            log(String.format(Locale.ROOT, "  %s %s run %d: listening after %.2f s, then %.0f req/s, p99 %.2f ms%s",
                                    run.test(), t.name, r, listenS, run.value(), run.p99ms(), run.ok() ? "" : " (" + run.errors() + ")"));
                        }
                    } catch (BenchException ex) {
                        log("  redis_cold " + t.name + " run " + r + " failed: " + ex.getMessage());
                        redisColdDone.add(new Run(t.name, "redis_cold_set", r, 0, "req/s", Double.NaN, Double.NaN, Double.NaN, Double.NaN,
                                Double.NaN, Double.NaN, Double.NaN, Double.NaN, oneLine(ex.getMessage()), false));
                    } finally {
                        stopTarget(s);
                    }
                }
            }
        } finally {
            procs.stop(backend);
        }
    }

    // ------------------------------------------------------------------ report

    private Map<String, Map<String, Summary>> summarize(List<Target> targets, List<String> tests) {
        Map<String, Map<String, Summary>> sums = new LinkedHashMap<>();
        for (Target t : targets) {
            Map<String, Summary> m = new LinkedHashMap<>();
            for (String test : tests) {
                List<Run> rs = runsDone.stream().filter(r -> r.target().equals(t.name) && r.test().equals(test)).toList();
                if (!rs.isEmpty()) {
                    m.put(test, Summary.of(t.name, test, rs));
                }
            }
            sums.put(t.name, m);
        }
        return sums;
    }

    private String markdown(List<String> machine, List<Target> targets, List<String> tests,
                            Map<String, Map<String, Summary>> sums, int nRuns, int dur, int warm, List<Target> idleList,
                            Path csvFile, double wallS) {
        StringBuilder b = new StringBuilder();
        b.append("# Interlayer benchmark suite, loopback, ")
         .append(ZonedDateTime.now().format(DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm z"))).append(smoke ? " (smoke)" : "")
         .append("\n\n## Machine\n\n");
        machine.forEach(l -> b.append("- ").append(l).append('\n'));
        b.append("\n## Method\n\n");
        int cores = Runtime.getRuntime().availableProcessors();
        b.append("- Everything on 127.0.0.1; load generator, backend and target share the ").append(cores)
         .append(" cores. Each target runs as its own process from a config the suite wrote.\n");
        if (!tests.isEmpty()) {
            b.append("- Each target is started once for the bulk tests (upstream iperf3 -s) and once for the HTTP tests ")
             .append("(upstream nginx).\n");
            b.append(order == Order.interleaved
                    ? "- Order: interleaved. All targets of a phase run side by side (each on its own port, idle while another "
                      + "is measured); each test goes round by round: every target's warm-up, then every target's run 1, then "
                      + "run 2, ..., so a drift in the machine's load touches every target alike.\n"
                    : "- Order: grouped. One target at a time, all its runs of a test back to back.\n");
            b.append("- bulk1 / bulk4: iperf3 -c through the target, -P 1 / -P 4, ").append(dur)
             .append(" s, receiver Gbit/s (iperf3 -J end.sum_received).\n");
            b.append("- ka: wrk -t1 -c").append(connections).append(" -d").append(dur)
             .append("s --latency, kept-alive, to nginx (1 worker, 1 KiB static file, access log off): req/s, p50, p99. ")
             .append("close: the same with 'Connection: close', one new TCP connection through the target per request: conn/s.\n");
            if (tests.stream().anyMatch(t -> t.startsWith("redis_"))) {
                b.append("- redis_set / redis_get: a real client, redis-benchmark -c 50 -P 16 -d 512 -t set / get, through the target to ")
                 .append("redis-server (no persistence): req/s, p50, p99 from its --csv; each measured run asks for as many requests ")
                 .append("as the last call's rate serves in ").append(dur).append(" s.\n");
            }
            if (tests.contains("dns")) {
                b.append("- dns: dnsperf -T 1 -c ").append(dnsClients).append(" -q ").append(dnsOutstanding).append(" -t 1 -l ").append(dur)
                 .append(" over h1..h").append(Dns.NAMES).append(".test (type A), UDP through the target to dnsmasq (hosts file, no cache, ")
                 .append("no upstream): queries/s answered, mean latency (dnsperf prints no percentiles), lost % (no answer within 1 s), ")
                 .append("proxy CPU-µs per answered query. Before the runs one answer through each target is compared byte for byte ")
                 .append("with dnsmasq's own. nginx: listen udp reuseport, proxy_responses 1 (an upstream socket per query); nginx2, ")
                 .append("il2-none and il-dns-tag: two hops in one process.\n");
            }
            if (tests.stream().anyMatch(t -> t.startsWith("tls_"))) {
                b.append("- tls_ka / tls_close / tls_bulk: the TLS targets terminate TLS with one self-signed ECDSA P-256 certificate ")
                 .append("(made by the suite with openssl), upstream plain to the same nginx. wrk speaks TLS 1.3 with ")
                 .append("TLS_AES_128_GCM_SHA256 only (OPENSSL_CONF). tls_ka: as ka; tls_close: as close, every request a new TCP ")
                 .append("connection and a full handshake (wrk resumes no session): handshakes/s, proxy CPU-µs per handshake; ")
                 .append("tls_bulk: wrk -c1, one kept-alive TLS connection fetching a 16 MiB file over and over: Gbit/s read, ")
                 .append("proxy CPU-s per GB. TLS targets are compared with nginx-tls and haproxy-tls.\n");
            }
            b.append("- Each figure: median of ").append(nRuns).append(" run(s)")
             .append(warm > 0 || jitWarm > 0 ? ", after an unrecorded warm-up of the same load per test and target (" + warm
                     + " s; " + jitWarm + " s for JVM targets, whose JIT compiles the connection path for that long)" : ", no warm-up")
             .append(". Every client runs under a time limit (duration + 20 s).\n");
            b.append("- CPU: utime+stime (+ reaped children) of the target's process tree from /proc/PID/stat, read before and ")
             .append("after each run: CPU-s per GB received (bulk), CPU-µs per request (ka) or per connection (close). ")
             .append("Cores = CPU-s / wall-s, for the target, the client (reaped by the suite) and the backend. ")
             .append("Machine busy % from /proc/stat over the run.\n");
            b.append("- Ratios: figure ÷ the same figure of the reference (for latency and CPU, lower is better: a ratio ")
             .append("below 1 is better; for rates, above 1 is better). Interlayer targets are also compared with haproxy, ")
             .append("nginx, netty (when measured; the two-hop ones with the nginx pair nginx2 too) and il-none (il-tag with il2-none, ")
             .append("the same two-hop topology without modules).\n");
        }
        if (!coldDone.isEmpty()) {
            b.append("- cold: each target started anew per run, with nginx as its upstream, while wrk -t1 -c").append(connections)
             .append(" keeps requesting the 1 KiB file through it for ").append(coldSeconds).append(" s from the moment it listens ")
             .append("(a Lua script counts responses per 100 ms, timed from the spawn). Warm rate: the ")
             .append("mean of the last ").append(Cold.WARM_TAIL_S).append(" s. \"90 % of warm after\": the end of the first second, from ")
             .append("the spawn, whose rate reached 90 % of the warm rate. \"first 2 s / 5 s\": requests served in the first 2 / 5 s ")
             .append("as a share of what the warm rate serves in as long. Targets run round by round. Interlayer targets: ")
             .append(env.aotCache() != null ? "from the ahead-of-time cache the build made (" + env.repo().relativize(env.aotCache())
                     + "), as ./interlayer run starts, and without it (no-aot).\n" : "without an ahead-of-time cache.\n");
        }
        if (!redisColdDone.isEmpty()) {
            b.append("- redis_cold: each target started anew per run with redis-server as its upstream; as soon as it listens, ")
             .append("redis-benchmark -c 50 -P 16 -d 512 -t set, then -t get, ").append(redisColdRequests).append(" requests each: ")
             .append("the rate of its first seconds (a warm rate is redis_set / redis_get). Targets run round by round; Interlayer ")
             .append("agents start as ./interlayer run does").append(env.aotCache() != null ? " (from the ahead-of-time cache)" : "")
             .append(".\n");
        }
        if (!idleList.isEmpty()) {
            b.append("- idle: ").append(idleConns).append(" connections opened through the target (spread over ")
             .append(Idle.routesFor(idleConns, idlePerListener)).append(" listener/upstream port pair(s) and as many client source addresses), ")
             .append("each sends a 16-byte ping and waits for its echo from the suite's NIO upstream, then stays idle. ")
             .append("Heap: jcmd GC.run then GC.heap_info (used) before and after; RSS: VmRSS of the process tree. ")
             .append("Per pair = (after − before) / pairs; before is measured after 200 warm-up connections were opened and closed. ")
             .append("Java targets run with: ").append(idleJvmOpts).append(".\n");
        }
        if (!flowsDone.isEmpty()) {
            b.append("- dns_flows: ").append(dnsFlows).append(" client sockets each send one query through the target to dnsmasq and ")
             .append("stay open (the agent keeps a flow, with its own upstream socket, per client address until udp-idle-timeout; ")
             .append("nginx with proxy_responses 1 ends its session at the answer). Heap (jcmd GC.run, GC.heap_info used), RSS and ")
             .append("open descriptors of the process tree before and after, per flow; before is after 200 warm-up flows. Java targets ")
             .append("run with: ").append(idleJvmOpts).append(".\n");
        }
        b.append("- Compare targets within one report only: the machine is shared and absolute figures drift between runs.\n");
        if (!tests.isEmpty()) {
            b.append("\n## Results\n\n");
            b.append("Median per figure. Higher is better for Gbit/s, req/s and conn/s; lower for latency and CPU.\n\n");
            b.append(Report.results(targets, tests, sums));
            String ratios = Report.ratios(targets, tests, sums);
            if (ratios.lines().count() > 2) {
                b.append("\n## Ratios\n\n").append(ratios);
            }
            b.append("\n## Detail\n\n").append(Report.detail(targets, tests, sums));
        }
        if (!redisColdDone.isEmpty()) {
            b.append("\n## Started fresh: redis-benchmark\n\n").append(Report.redisCold(redisColdDone, redisColdRequests));
        }
        if (!idleDone.isEmpty()) {
            b.append("\n## Idle connections\n\n").append(Report.idle(idleDone));
        }
        if (!flowsDone.isEmpty()) {
            b.append("\n## UDP flows (per-flow cost)\n\n").append(Dns.table(flowsDone));
        }
        if (!coldDone.isEmpty()) {
            b.append("\n## Cold start\n\n").append(Cold.table(coldDone));
        }
        b.append(String.format(Locale.ROOT, "%nRaw per-run data: %s. Wall time of the whole run: %d min %d s.%n",
                csvFile.getFileName(), (long) wallS / 60, (long) wallS % 60));
        return b.toString();
    }

    private static void deleteTree(Path p) {
        if (p == null || !Files.exists(p)) {
            return;
        }
        try (Stream<Path> s = Files.walk(p)) {
            s.sorted(Comparator.reverseOrder()).forEach(f -> {
                try {
                    Files.deleteIfExists(f);
                } catch (IOException e) {
                    // a file a still-exiting process holds: the temp dir is on tmpfs and goes at reboot anyway
                }
            });
        } catch (IOException e) {
            // as above
        }
    }
}
