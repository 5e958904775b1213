package dev.interlayer.bench.suite;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The markdown report: the results table (one row per target), the ratios to the references, the detail of
 * every figure and the idle-connection table.
 */
final class Report {

    /** One column of the results table: a figure of one test. */
    record Column(String test, String header, Figure<Summary> value, String format) {}

    private Report() {}

    /** The columns for the tests that ran, in the order of {@link Loads#TESTS}. */
    static List<Column> columns(List<String> tests) {
        List<Column> c = new ArrayList<>();
        for (String t : tests) {
            switch (t) {
                case "bulk1", "bulk4" -> {
                    c.add(new Column(t, t + " Gbit/s", Summary::value, "%.2f"));
                    c.add(new Column(t, t + " CPU-s/GB", Summary::cpuPerUnit, "%.3f"));
                }
                case "ka" -> {
                    c.add(new Column(t, "ka req/s", Summary::value, "%.0f"));
                    c.add(new Column(t, "ka p50 ms", Summary::p50ms, "%.3f"));
                    c.add(new Column(t, "ka p99 ms", Summary::p99ms, "%.3f"));
                    c.add(new Column(t, "ka CPU-µs/req", Summary::cpuPerUnit, "%.1f"));
                }
                case "close" -> {
                    c.add(new Column(t, "close conn/s", Summary::value, "%.0f"));
                    c.add(new Column(t, "close CPU-µs/conn", Summary::cpuPerUnit, "%.1f"));
                }
                case "redis_set", "redis_get" -> {
                    c.add(new Column(t, t + " req/s", Summary::value, "%.0f"));
                    c.add(new Column(t, t + " p50 ms", Summary::p50ms, "%.3f"));
                    c.add(new Column(t, t + " p99 ms", Summary::p99ms, "%.3f"));
                    c.add(new Column(t, t + " CPU-µs/req", Summary::cpuPerUnit, "%.2f"));
                }
                case "dns" -> {
                    c.add(new Column(t, "dns q/s", Summary::value, "%.0f"));
                    c.add(new Column(t, "dns avg ms", Summary::avgMs, "%.3f"));
                    c.add(new Column(t, "dns lost %", Summary::lostPct, "%.2f"));
                    c.add(new Column(t, "dns CPU-µs/q", Summary::cpuPerUnit, "%.2f"));
                }
                case "tls_ka" -> {
                    c.add(new Column(t, "tls_ka req/s", Summary::value, "%.0f"));
                    c.add(new Column(t, "tls_ka p50 ms", Summary::p50ms, "%.3f"));
                    c.add(new Column(t, "tls_ka p99 ms", Summary::p99ms, "%.3f"));
                    c.add(new Column(t, "tls_ka CPU-µs/req", Summary::cpuPerUnit, "%.1f"));
                }
                case "tls_close" -> {
                    c.add(new Column(t, "tls_close handshakes/s", Summary::value, "%.0f"));
                    c.add(new Column(t, "tls_close CPU-µs/handshake", Summary::cpuPerUnit, "%.1f"));
                }
                case "tls_bulk" -> {
                    c.add(new Column(t, "tls_bulk Gbit/s", Summary::value, "%.2f"));
                    c.add(new Column(t, "tls_bulk CPU-s/GB", Summary::cpuPerUnit, "%.3f"));
                }
                default -> { }
            }
        }
        return c;
    }

    static String fmt(String format, double v) {
        return Double.isNaN(v) || Double.isInfinite(v) ? "–" : String.format(Locale.ROOT, format, v);
    }

    /** The results table: one row per target, the median of each figure. */
    static String results(List<Target> targets, List<String> tests, Map<String, Map<String, Summary>> sums) {
        List<Column> cols = columns(tests);
        StringBuilder b = new StringBuilder();
        b.append("| target |");
        cols.forEach(c -> b.append(' ').append(c.header()).append(" |"));
        b.append("\n|---|");
        cols.forEach(c -> b.append("---:|"));
        b.append('\n');
        for (Target t : targets) {
            b.append("| ").append(t.name).append(" |");
            for (Column c : cols) {
                Summary s = sums.getOrDefault(t.name, Map.of()).get(c.test());
                String cell = !t.runs(c.test()) ? "·" : s == null || !s.measured() ? "failed" : fmt(c.format(), c.value().of(s));
                b.append(' ').append(cell).append(" |");
            }
            b.append('\n');
        }
        return b.toString();
    }

    /**
     * The references each target is compared with: {@code direct} for every proxy; for Interlayer targets also
     * {@code haproxy}, {@code nginx}, {@code netty} (when measured), for a two-hop one the nginx pair {@code nginx2}, its
     * Interlayer baseline and, for a target with modules, the no-module figures on the direct path and with splice.
     */
    static Map<Target, List<String>> references(List<Target> targets) {
        List<String> names = targets.stream().map(t -> t.name).toList();
        Map<Target, List<String>> refs = new LinkedHashMap<>();
        for (Target t : targets) {
            List<String> r = new ArrayList<>();
            if (t.kind != Target.Kind.DIRECT && !t.tls && names.contains("direct")) {
                r.add("direct");
            }
            if (t.isInterlayer()) {
                for (String peer : t.tls ? List.of("nginx-tls", "haproxy-tls") : List.of("haproxy", "haproxy-splice", "nginx", "nginx2", "netty")) {
                    if (names.contains(peer) && (!peer.equals("nginx2") || t.name.startsWith("il2-")
                            || t.baseline != null && t.baseline.startsWith("il2-"))) {
                        r.add(peer);
                    }
                }
                if (!t.name.equals(t.baseline) && names.contains(t.baseline)) {
                    r.add(t.baseline);
                }
                // a target with modules is also compared with the no-module figures users get: the direct path
                // without splice, and with splice
                if (t.baseline != null && t.baseline.endsWith("-channels")) {
                    for (String other : List.of(t.baseline.replace("-channels", "-nosplice"), t.baseline.replace("-channels", "-none"))) {
                        if (!other.equals(t.name) && names.contains(other)) {
                            r.add(other);
                        }
                    }
                }
            }
            if (!r.isEmpty()) {
                refs.put(t, r);
            }
        }
        return refs;
    }

    /** The ratio table: each figure of a target divided by the same figure of each of its references. */
    static String ratios(List<Target> targets, List<String> tests, Map<String, Map<String, Summary>> sums) {
        List<Column> cols = columns(tests);
        StringBuilder b = new StringBuilder();
        b.append("| target | vs |");
        cols.forEach(c -> b.append(' ').append(c.header()).append(" |"));
        b.append("\n|---|---|");
        cols.forEach(c -> b.append("---:|"));
        b.append('\n');
        for (Map.Entry<Target, List<String>> e : references(targets).entrySet()) {
            for (String ref : e.getValue()) {
                b.append("| ").append(e.getKey().name).append(" | ").append(ref).append(" |");
                for (Column c : cols) {
                    Summary s = sums.getOrDefault(e.getKey().name, Map.of()).get(c.test());
                    Summary r = sums.getOrDefault(ref, Map.of()).get(c.test());
                    double ratio = Double.NaN;
                    if (s != null && r != null && s.measured() && r.measured()) {
                        double den = c.value().of(r);
                        ratio = den > 0 ? c.value().of(s) / den : Double.NaN;
                    }
                    b.append(' ').append(Double.isNaN(ratio) ? "–" : fmt("%.2f", ratio) + "×").append(" |");
                }
                b.append('\n');
            }
        }
        return b.toString();
    }

    /** Every figure: runs, median, min–max, spread, the cores used by proxy, client and backend, busy %, errors. */
    static String detail(List<Target> targets, List<String> tests, Map<String, Map<String, Summary>> sums) {
        StringBuilder b = new StringBuilder();
        b.append("| target | test | runs ok | median | min–max | spread % | proxy cores | client cores | backend cores | machine busy % | errors |\n");
        b.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
        for (Target t : targets) {
            for (String test : tests) {
                Summary s = sums.getOrDefault(t.name, Map.of()).get(test);
                if (s == null) {
                    continue;
                }
                String f = s.unit().equals("Gbit/s") ? "%.2f" : "%.0f";
                b.append("| ").append(t.name).append(" | ").append(test).append(" | ")
                 .append(s.okRuns()).append('/').append(s.runs()).append(" | ")
                 .append(fmt(f, s.value())).append(' ').append(s.unit()).append(" | ")
                 .append(fmt(f, s.min())).append('–').append(fmt(f, s.max())).append(" | ")
                 .append(fmt("%.1f", s.spreadPct())).append(" | ")
                 .append(fmt("%.2f", s.proxyCores())).append(" | ")
                 .append(fmt("%.2f", s.clientCores())).append(" | ")
                 .append(fmt("%.2f", s.backendCores())).append(" | ")
                 .append(fmt("%.0f", s.busyPct())).append(" | ")
                 .append(String.join("; ", s.errors()).replace('|', '/')).append(" |\n");
            }
        }
        return b.toString();
    }

    /** The idle-connection table. */
    static String idle(List<Idle.Result> results) {
        StringBuilder b = new StringBuilder();
        b.append("| target | pairs | listeners | open s | pairs/s | heap before MiB | heap after MiB | heap KiB/pair "
                + "| RSS before MiB | RSS after MiB | RSS KiB/pair | errors |\n");
        b.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
        for (Idle.Result r : results) {
            b.append("| ").append(r.target()).append(" | ").append(r.pairs()).append(" | ").append(r.routes()).append(" | ")
             .append(fmt("%.1f", r.openSeconds())).append(" | ")
             .append(fmt("%.0f", r.pairs() / r.openSeconds())).append(" | ")
             .append(fmt("%.1f", r.heapBeforeKiB() / 1024)).append(" | ")
             .append(fmt("%.1f", r.heapAfterKiB() / 1024)).append(" | ")
             .append(fmt("%.2f", r.heapPerPairKiB())).append(" | ")
             .append(fmt("%.1f", r.rssBeforeKiB() / 1024)).append(" | ")
             .append(fmt("%.1f", r.rssAfterKiB() / 1024)).append(" | ")
             .append(fmt("%.2f", r.rssPerPairKiB())).append(" | ")
             .append(r.errors().replace('|', '/')).append(" |\n");
        }
        return b.toString();
    }

    /**
     * The redis_cold table ({@code requests} per call): per target the median of its runs (listening after, SET and GET
     * req/s and p99, proxy CPU-µs per request), then each target's rates as a ratio to the first target's (the peer pair,
     * by default) in the same report.
     */
    static String redisCold(List<Loads.Run> runs, long requests) {
        List<String> targets = runs.stream().map(Loads.Run::target).distinct().toList();
        StringBuilder b = new StringBuilder();
        b.append("| target | runs | listening after s | SET req/s (min–max) | SET p99 ms | SET CPU-µs/req | GET req/s (min–max) "
                + "| GET p99 ms | GET CPU-µs/req | SET vs ").append(targets.getFirst()).append(" | GET vs ").append(targets.getFirst())
         .append(" | errors |\n");
        b.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
        Summary refSet = null;
        Summary refGet = null;
        for (String t : targets) {
            List<Loads.Run> setRuns = runs.stream().filter(r -> r.target().equals(t) && r.test().equals("redis_cold_set")).toList();
            List<Loads.Run> getRuns = runs.stream().filter(r -> r.target().equals(t) && r.test().equals("redis_cold_get")).toList();
            Summary set = Summary.of(t, "redis_cold_set", setRuns);
            Summary get = Summary.of(t, "redis_cold_get", getRuns);
            if (refSet == null) {
                refSet = set;
                refGet = get;
            }
            List<String> errors = new java.util.ArrayList<>(set.errors());
            errors.addAll(get.errors());
            List<Loads.Run> okSet = setRuns.stream().filter(Loads.Run::ok).toList();
            List<Loads.Run> okGet = getRuns.stream().filter(Loads.Run::ok).toList();
            b.append("| ").append(t).append(" | ").append(set.okRuns()).append(" | ")
             .append(fmt("%.2f", Summary.median(okSet, Loads.Run::amount))).append(" | ")
             .append(fmt("%.0f", set.value())).append(" (").append(fmt("%.0f", set.min())).append("–").append(fmt("%.0f", set.max())).append(") | ")
             .append(fmt("%.2f", set.p99ms())).append(" | ")
             .append(fmt("%.2f", Summary.median(okSet, r -> 1e6 * r.proxyCpuS() / requests))).append(" | ")
             .append(fmt("%.0f", get.value())).append(" (").append(fmt("%.0f", get.min())).append("–").append(fmt("%.0f", get.max())).append(") | ")
             .append(fmt("%.2f", get.p99ms())).append(" | ")
             .append(fmt("%.2f", Summary.median(okGet, r -> 1e6 * r.proxyCpuS() / requests))).append(" | ")
             .append(fmt("%.2f", set.value() / refSet.value())).append("× | ").append(fmt("%.2f", get.value() / refGet.value())).append("× | ")
             .append(String.join("; ", errors).replace('|', '/')).append(" |\n");
        }
        return b.toString();
    }
}
