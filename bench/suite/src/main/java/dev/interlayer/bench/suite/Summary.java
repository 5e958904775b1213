package dev.interlayer.bench.suite;

import dev.interlayer.bench.suite.Loads.Run;
import java.util.ArrayList;
import java.util.List;

/** The runs of one figure (one target, one test) reduced to medians, with the spread and the CPU split. */
record Summary(String target, String test, int okRuns, int runs, double value, double min, double max, double p50ms,
               double p99ms, double cpuPerUnit, double proxyCores, double clientCores, double backendCores,
               double busyPct, String unit, List<String> errors, double avgMs, double lostPct) {

    static Summary of(String target, String test, List<Run> all) {
        List<Run> ok = all.stream().filter(Run::ok).toList();
        List<String> errors = new ArrayList<>();
        for (Run r : all) {
            if (!r.errors().isEmpty()) {
                errors.add("run " + r.run() + ": " + r.errors());
            }
        }
        String unit = ok.isEmpty() ? "" : ok.getFirst().unit();
        return new Summary(target, test, ok.size(), all.size(),
                median(ok, Run::value), min(ok, Run::value), max(ok, Run::value),
                median(ok, Run::p50ms), median(ok, Run::p99ms), median(ok, Run::cpuPerUnit),
                median(ok, r -> r.proxyCpuS() / r.wallS()), median(ok, r -> r.clientCpuS() / r.wallS()),
                median(ok, r -> r.backendCpuS() / r.wallS()), median(ok, Run::busyPct), unit, errors,
                median(ok, Run::avgMs), median(ok, Run::lostPct));
    }

    boolean measured() {
        return okRuns > 0;
    }

    /** (max − min) / median in percent. */
    double spreadPct() {
        return value > 0 ? 100 * (max - min) / value : Double.NaN;
    }

    static double median(List<Run> runs, Figure<Run> f) {
        double[] v = measured(runs, f, true);
        if (v.length == 0) {
            return Double.NaN;
        }
        java.util.Arrays.sort(v);
        return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    }

    private static double min(List<Run> runs, Figure<Run> f) {
        double[] v = measured(runs, f, false);
        double m = Double.NaN;
        for (double d : v) {
            m = Double.isNaN(m) ? d : Math.min(m, d);
        }
        return m;
    }

    private static double max(List<Run> runs, Figure<Run> f) {
        double[] v = measured(runs, f, false);
        double m = Double.NaN;
        for (double d : v) {
            m = Double.isNaN(m) ? d : Math.max(m, d);
        }
        return m;
    }

    /** The figure of each run that measured it (not NaN; with {@code finiteOnly}, not infinite either). */
    private static double[] measured(List<Run> runs, Figure<Run> f, boolean finiteOnly) {
        double[] v = new double[runs.size()];
        int n = 0;
        for (Run r : runs) {
            double d = f.of(r);
            if (finiteOnly ? Double.isFinite(d) : !Double.isNaN(d)) {
                v[n++] = d;
            }
        }
        return java.util.Arrays.copyOf(v, n);
    }
}
