package dev.interlayer.bench.suite;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * The cold-start test: a target started from nothing while wrk waits for it, and the kept-alive request rate it
 * serves in each 100 ms from the moment its process was spawned. wrk counts the responses of each 100 ms in a Lua
 * script (LuaJIT's FFI reads the monotonic clock, the clock {@link System#nanoTime} reads on Linux), so the buckets
 * share the suite's time origin: the spawn.
 *
 * <p>The warm rate is the mean of the run's last {@link #WARM_TAIL_S} seconds. Figures of one run: how long until
 * the target listened, its CPU until then, the first moment from which one second's rate reached 90 % of the warm
 * rate, and the requests served in the first 2 and 5 seconds as a share of what the warm rate serves in as long.
 */
final class Cold {

    /** Seconds at the end of a run whose mean rate is the warm rate. */
    static final int WARM_TAIL_S = 5;

    /** The wrk script: writes "BUCKET COUNT" lines, a bucket being 100 ms since {@code COLD_T0_NS}. */
    static final String LUA = """
            local ffi = require("ffi")
            ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } il_cold_ts; int clock_gettime(int, il_cold_ts *); ]]
            local ts = ffi.new("il_cold_ts")
            local t0 = tonumber(os.getenv("COLD_T0_NS")) / 1e6
            local out = io.open(os.getenv("COLD_OUT"), "w")
            local bucket, count = -1, 0
            response = function(status, headers, body)
              ffi.C.clock_gettime(1, ts)
              local b = math.floor((tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6 - t0) / 100)
              if b ~= bucket then
                if bucket >= 0 then out:write(bucket, " ", count, "\\n"); out:flush() end
                bucket = b
                count = 0
              end
              count = count + 1
            end
            """;

    /** One run of one target; times in seconds from the spawn, shares in percent. */
    record Result(String target, int run, double listenS, double cpuToListenS, double t90S, double first2Pct,
                  double first5Pct, double warmRps, String errors) {

        boolean ok() {
            return errors.isEmpty();
        }

        /**
         * Its CSV rows, in the columns of {@link Loads.Run}, amount = the warm req/s: {@code cold_listen} (seconds until
         * it listened, proxy CPU-s until then), {@code cold_t90} (seconds until 90 % of warm), {@code cold_first2} and
         * {@code cold_first5} (the first 2 / 5 s as % of warm).
         */
        String csvRows() {
            return row("cold_listen", listenS, "s", cpuToListenS) + row("cold_t90", t90S, "s", Double.NaN)
                    + row("cold_first2", first2Pct, "%", Double.NaN) + row("cold_first5", first5Pct, "%", Double.NaN);
        }

        private String row(String test, double value, String unit, double cpuS) {
            return new Loads.Run(target, test, run, value, unit, warmRps, Double.NaN, cpuS, Double.NaN, Double.NaN, Double.NaN,
                    Double.NaN, Double.NaN, errors, ok()).csv() + "\n";
        }
    }

    private Cold() {}

    /** The figures of a run from wrk's bucket file; a run with too few buckets or no warm rate is an error. */
    static Result analyze(String target, int run, double listenS, double cpuS, Path buckets, int seconds) throws IOException {
        List<String> lines = Files.exists(buckets) ? Files.readAllLines(buckets) : List.of();
        java.util.Map<Integer, Long> byBucket = new java.util.HashMap<>();
        for (String line : lines) {
            String[] f = line.trim().split(" ");
            byBucket.merge(Integer.parseInt(f[0]), Long.parseLong(f[1]), Long::sum);
        }
        int last = byBucket.keySet().stream().mapToInt(Integer::intValue).max().orElse(-1);
        long[] count = new long[last + 1];
        byBucket.forEach((b, c) -> {
            if (b >= 0) {
                count[b] = c;
            }
        });
        if (last < WARM_TAIL_S * 10 + 10) {
            return new Result(target, run, listenS, cpuS, Double.NaN, Double.NaN, Double.NaN, Double.NaN,
                    "wrk recorded " + lines.size() + " buckets of 100 ms, too few for a " + seconds + " s run");
        }
        // the bucket being filled when wrk stopped is partial: leave it out
        double warm = rate(count, last - WARM_TAIL_S * 10, last);
        if (!(warm > 0)) {
            return new Result(target, run, listenS, cpuS, Double.NaN, Double.NaN, Double.NaN, warm, "no requests in the last "
                    + WARM_TAIL_S + " s");
        }
        double t90 = Double.NaN;
        for (int b = 0; b + 10 <= last; b++) {
            if (rate(count, b, b + 10) >= 0.9 * warm) {
                t90 = b / 10.0 + 1;   // the end of the first second at 90 %
                break;
            }
        }
        return new Result(target, run, listenS, cpuS, t90, 100 * rate(count, 0, 20) / warm, 100 * rate(count, 0, 50) / warm,
                warm, Double.isNaN(t90) ? "never reached 90 % of its last " + WARM_TAIL_S + " s" : "");
    }

    /** Requests per second over buckets {@code [from, to)}. */
    private static double rate(long[] count, int from, int to) {
        long sum = 0;
        for (int b = Math.max(0, from); b < to; b++) {
            sum += count[b];
        }
        return sum / ((to - from) / 10.0);
    }

    /** The report's table: per target the medians of its runs, with the spread of the 90 % time. */
    static String table(List<Result> results) {
        StringBuilder b = new StringBuilder();
        b.append("| target | runs | listening after s | CPU-s until listening | 90 % of warm after s (min–max) "
                + "| first 2 s, % of warm | first 5 s, % of warm | warm req/s | errors |\n");
        b.append("|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
        results.stream().map(Result::target).distinct().forEach(t -> {
            List<Result> all = results.stream().filter(r -> r.target().equals(t)).toList();
            List<Result> ok = all.stream().filter(Result::ok).toList();
            String errors = String.join("; ", all.stream().filter(r -> !r.ok()).map(r -> "run " + r.run() + ": " + r.errors()).toList());
            b.append(String.format(Locale.ROOT, "| %s | %d/%d | %.2f | %.2f | %.1f (%.1f–%.1f) | %.0f | %.0f | %.0f | %s |%n", t, ok.size(),
                    all.size(), median(ok, Result::listenS), median(ok, Result::cpuToListenS), median(ok, Result::t90S),
                    min(ok, Result::t90S), max(ok, Result::t90S), median(ok, Result::first2Pct), median(ok, Result::first5Pct),
                    median(ok, Result::warmRps), errors));
        });
        return b.toString();
    }

    private static double median(List<Result> rs, Figure<Result> f) {
        double[] v = rs.stream().mapToDouble(f::of).sorted().toArray();
        return v.length == 0 ? Double.NaN : v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    }

    private static double min(List<Result> rs, Figure<Result> f) {
        return rs.stream().mapToDouble(f::of).min().orElse(Double.NaN);
    }

    private static double max(List<Result> rs, Figure<Result> f) {
        return rs.stream().mapToDouble(f::of).max().orElse(Double.NaN);
    }
}
