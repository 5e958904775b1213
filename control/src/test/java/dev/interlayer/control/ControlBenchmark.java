package dev.interlayer.control;

import dev.interlayer.control.testing.ControlFixture;
import dev.interlayer.control.testing.CountingControlModule;
import dev.interlayer.control.v1.ListModulesRequest;
import dev.interlayer.control.v1.SetStateRequest;
import dev.interlayer.control.v1.StateChange;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.IntConsumer;

/**
 * Calls per second and latency of a read call ({@code Modules.List}) and a state change
 * ({@code Modules.SetState}) over the Unix socket, with the security module on (structure check, policy,
 * audit) and off, in one run. Not a test: run it with {@code bench/control-bench.sh} and read the table.
 *
 * <p>Method: for each mode a fresh agent (registry, engine, control endpoint, 5 loaded modules); each
 * measurement warms up first, then runs {@code CALLS} calls: latency from one client calling in a loop
 * (p50, p99), throughput from {@code CLIENTS} clients on their own connections calling concurrently.
 */
public final class ControlBenchmark {

    static final int WARMUP = 20_000;
    static final int CALLS = 30_000;
    static final int CLIENTS = 8;

    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 3;
        System.out.println("control-plane benchmark: " + Runtime.getRuntime().availableProcessors() + " cores, java " + Runtime.version()
                + ", " + CALLS + " calls per figure, median of " + rounds + " rounds");
        List<String[]> rows = new ArrayList<>();
        for (String call : List.of("Modules.List", "Modules.SetState")) {
            double[][] on = new double[rounds][];
            double[][] off = new double[rounds][];
            for (int r = 0; r < rounds; r++) {
                // alternate the modes so drift on a shared machine hits both
                on[r] = measure(true, call);
                off[r] = measure(false, call);
            }
            double[] mOn = median(on);
            double[] mOff = median(off);
            rows.add(new String[] {call, "on", f(mOn[0]), f(mOn[1]), f(mOn[2]), f(mOn[3])});
            rows.add(new String[] {call, "off", f(mOff[0]), f(mOff[1]), f(mOff[2]), f(mOff[3])});
            rows.add(new String[] {call, "cost", pct(mOff[0], mOn[0]), pct(mOn[1], mOff[1]), pct(mOn[2], mOff[2]), pct(mOff[3], mOn[3])});
        }
        System.out.println();
        System.out.println("security module work per call, in process (structure check and policy of request and response, two audit"
                + " records): Modules.List " + f(inProcessNanos(true) / 1000.0) + " µs, Modules.SetState " + f(inProcessNanos(false) / 1000.0) + " µs");
        System.out.println();
        System.out.println("| call | security module | 1 client calls/s | p50 µs | p99 µs | " + CLIENTS + " clients calls/s |");
        System.out.println("|---|---|---|---|---|---|");
        for (String[] r : rows) {
            System.out.println("| " + String.join(" | ", r) + " |");
        }
        System.exit(0);
    }

    /** Nanoseconds the security module spends on one call's request and response, measured without a transport. */
    static double inProcessNanos(boolean list) throws Exception {
        dev.interlayer.control.v1.ListModulesResponse.Builder b = dev.interlayer.control.v1.ListModulesResponse.newBuilder();
        for (int i = 0; i < 5; i++) {
            b.addModules(dev.interlayer.control.v1.ModuleInfo.newBuilder().setName("m" + i).setVersion("1.0.0")
                    .setState(dev.interlayer.control.v1.ModuleState.ACTIVE).setPriority(100).setAttachMode("global").setSelector("any")
                    .setSource("builtin:CountingControlModule").addInterfaces("socket 1.0").addHooks("control").setLoadedAtMs(1));
        }
        com.google.protobuf.Message request = list ? ListModulesRequest.getDefaultInstance()
                : SetStateRequest.newBuilder().setName("m0").setState(StateChange.DEACTIVATE).build();
        com.google.protobuf.Message response = list ? b.build()
                : dev.interlayer.control.v1.ModuleResponse.newBuilder().setModule(b.getModules(0)).setMessage("m0@1.0.0: ACTIVE -> INACTIVE").build();
        Idl.Method m = Idl.control().method(list ? "Modules.List" : "Modules.SetState");
        try (AuditLog audit = new AuditLog(10_000, null)) {
            SecurityModule sm = new SecurityModule(Constraints.builtin(), PolicyHolder.builtin(0), audit, true);
            Caller root = new Caller("uds", 0, 0, 1, "root", "java", "", List.of());
            double best = Double.MAX_VALUE;
            for (int round = 0; round < 5; round++) {
                int n = 200_000;
                long t0 = System.nanoTime();
                for (int i = 0; i < n; i++) {
                    // a fresh response each time, as a handler builds one (its size is not memoized yet)
                    com.google.protobuf.Message resp = response.toBuilder().build();
                    SecurityModule.Verdict q = sm.check(root, m, Policy.Kind.REQUEST, request);
                    audit.record(root, m.endpoint(), m.name(), "request", q.decision(), q.rule(), q.reason());
                    SecurityModule.Verdict r = sm.check(root, m, Policy.Kind.RESPONSE, resp);
                    audit.record(root, m.endpoint(), m.name(), "response", r.decision(), r.rule(), r.reason());
                }
                best = Math.min(best, (System.nanoTime() - t0) / (double) n);
            }
            return best;
        }
    }

    private static String f(double v) {
        return String.format(Locale.ROOT, v >= 100 ? "%.0f" : "%.1f", v);
    }

    /** How much worse {@code worse} is than {@code better}, in percent (positive = the security module costs). */
    private static String pct(double better, double worse) {
        return String.format(Locale.ROOT, "%+.1f%%", (better - worse) / better * 100.0).replace("+-", "-");
    }

    private static double[] median(double[][] runs) {
        double[] out = new double[runs[0].length];
        for (int i = 0; i < out.length; i++) {
            double[] col = new double[runs.length];
            for (int r = 0; r < runs.length; r++) {
                col[r] = runs[r][i];
            }
            Arrays.sort(col);
            out[i] = col[col.length / 2];
        }
        return out;
    }

    /** Returns {single-client calls/s, p50 µs, p99 µs, concurrent calls/s}. */
    static double[] measure(boolean security, String call) throws Exception {
        try (ControlFixture f = new ControlFixture(s -> s.withSecurity(security))) {
            for (int i = 0; i < 5; i++) {
                f.engine.add(new CountingControlModule("m" + i));
            }
            EventLoopGroup loops = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
            try (ControlClient c = ControlClient.unix(f.server.socket(), loops)) {
                IntConsumer op = op(c, call);
                for (int i = 0; i < WARMUP; i++) {
                    op.accept(i);
                }
                long[] lat = new long[CALLS];
                long t0 = System.nanoTime();
                for (int i = 0; i < CALLS; i++) {
                    long s = System.nanoTime();
                    op.accept(i);
                    lat[i] = System.nanoTime() - s;
                }
                double single = CALLS / ((System.nanoTime() - t0) / 1e9);
                Arrays.sort(lat);
                double p50 = lat[CALLS / 2] / 1e3;
                double p99 = lat[(int) (CALLS * 0.99)] / 1e3;
                double concurrent = concurrent(f, call, loops);
                return new double[] {single, p50, p99, concurrent};
            } finally {
                loops.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
            }
        }
    }

    private static double concurrent(ControlFixture f, String call, EventLoopGroup loops) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(CLIENTS);
        List<ControlClient> clients = new ArrayList<>();
        try {
            for (int i = 0; i < CLIENTS; i++) {
                ControlClient c = ControlClient.unix(f.server.socket(), loops);
                clients.add(c);
                IntConsumer op = op(c, call);
                for (int k = 0; k < 500; k++) {
                    op.accept(k);
                }
            }
            int each = CALLS / CLIENTS;
            long t0 = System.nanoTime();
            List<Future<?>> done = new ArrayList<>();
            for (int i = 0; i < CLIENTS; i++) {
                IntConsumer op = op(clients.get(i), call);
                done.add(pool.submit(() -> {
                    for (int k = 0; k < each; k++) {
                        op.accept(k);
                    }
                }));
            }
            for (Future<?> d : done) {
                d.get();
            }
            return (double) each * CLIENTS / ((System.nanoTime() - t0) / 1e9);
        } finally {
            clients.forEach(ControlClient::close);
            pool.shutdownNow();
        }
    }

    private static IntConsumer op(ControlClient c, String call) {
        ListModulesRequest list = ListModulesRequest.getDefaultInstance();
        SetStateRequest deactivate = SetStateRequest.newBuilder().setName("m0").setState(StateChange.DEACTIVATE).build();
        SetStateRequest activate = SetStateRequest.newBuilder().setName("m0").setState(StateChange.ACTIVATE).build();
        return switch (call) {
            case "Modules.List" -> i -> c.modules().list(list);
            case "Modules.SetState" -> i -> c.modules().setState((i & 1) == 0 ? deactivate : activate);
            default -> throw new IllegalArgumentException(call);
        };
    }
}
