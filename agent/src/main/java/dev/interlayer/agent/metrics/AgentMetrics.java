package dev.interlayer.agent.metrics;

import dev.interlayer.api.Verdict;
import dev.interlayer.engine.Engine;
import dev.interlayer.engine.ListenerStats;
import dev.interlayer.engine.ProcessLookups;
import dev.interlayer.runtime.LoadedModule;
import dev.interlayer.runtime.ModuleRegistry;
import dev.interlayer.runtime.ModuleState;
import dev.interlayer.runtime.ModuleStats;
import dev.interlayer.runtime.HookTimes;
import io.prometheus.metrics.model.registry.MultiCollector;
import io.prometheus.metrics.model.snapshots.ClassicHistogramBuckets;
import io.prometheus.metrics.model.snapshots.CounterSnapshot;
import io.prometheus.metrics.model.snapshots.CounterSnapshot.CounterDataPointSnapshot;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot.GaugeDataPointSnapshot;
import io.prometheus.metrics.model.snapshots.HistogramSnapshot;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import io.prometheus.metrics.model.snapshots.MetricSnapshots;
import io.prometheus.metrics.model.snapshots.Unit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.ToDoubleFunction;

/**
 * The agent's metrics, read at each scrape from the counters the engine and the module registry keep anyway: one
 * snapshot of the listeners and one of each module per scrape, so the data path pays nothing for a scrape (the names,
 * types and labels are in docs/metrics.md).
 */
final class AgentMetrics implements MultiCollector {

    private static final String[] DIRECTIONS = {"send", "recv"};

    private final Engine engine;
    private final ModuleRegistry registry;
    private final LoopLagProbe lag;
    private final String version;

    AgentMetrics(Engine engine, ModuleRegistry registry, LoopLagProbe lag, String version) {
        this.engine = engine;
        this.registry = registry;
        this.lag = lag;
        this.version = version;
    }

    @Override
    public MetricSnapshots collect() {
        List<MetricSnapshot> out = new ArrayList<>();
        listeners(out);
        modules(out);
        agent(out);
        return new MetricSnapshots(out);
    }

    private void listeners(List<MetricSnapshot> out) {
        Map<String, ListenerStats.Snapshot> stats = engine.listenerStats();
        listenerCounter(out, stats, "interlayer_listener_connections_accepted", "Connections (UDP: flows) the listener took", ListenerStats.Snapshot::accepted);
        listenerCounter(out, stats, "interlayer_listener_connections_refused",
                "Connections ended without being relayed: a failed accept, a passthrough hello without a route, modules that could not be chosen",
                ListenerStats.Snapshot::refused);
        listenerCounter(out, stats, "interlayer_listener_connect_failures", "Connections whose upstream could not be reached",
                ListenerStats.Snapshot::connectFailures);
        listenerCounter(out, stats, "interlayer_listener_tls_handshakes", "TLS handshakes completed, on either socket", ListenerStats.Snapshot::tlsHandshakes);
        listenerCounter(out, stats, "interlayer_listener_tls_handshake_failures", "TLS handshakes that failed, on either socket",
                ListenerStats.Snapshot::tlsFailures);
        GaugeSnapshot.Builder active = GaugeSnapshot.builder().name("interlayer_listener_connections_active").help("Connections (UDP: flows) open now");
        CounterSnapshot.Builder bytes = CounterSnapshot.builder().name("interlayer_listener_bytes").unit(Unit.BYTES)
                .help("Bytes relayed: send = from the local application towards the network peer, recv = back");
        stats.forEach((name, s) -> {
            active.dataPoint(GaugeDataPointSnapshot.builder().labels(Labels.of("listener", name)).value(s.active()).build());
            bytes.dataPoint(CounterDataPointSnapshot.builder().labels(Labels.of("listener", name, "direction", "send")).value(s.bytesSent()).build());
            bytes.dataPoint(CounterDataPointSnapshot.builder().labels(Labels.of("listener", name, "direction", "recv")).value(s.bytesReceived()).build());
        });
        out.add(active.build());
        out.add(bytes.build());
    }

    private static void listenerCounter(List<MetricSnapshot> out, Map<String, ListenerStats.Snapshot> stats, String name, String help,
                                        ToDoubleFunction<ListenerStats.Snapshot> value) {
        CounterSnapshot.Builder b = CounterSnapshot.builder().name(name).help(help);
        stats.forEach((listener, s) -> b.dataPoint(CounterDataPointSnapshot.builder().labels(Labels.of("listener", listener))
                .value(value.applyAsDouble(s)).build()));
        out.add(b.build());
    }

    private void modules(List<MetricSnapshot> out) {
        Map<LoadedModule, ModuleStats.Snapshot> mods = new LinkedHashMap<>();
        for (LoadedModule m : registry.modules()) mods.put(m, m.stats());
        moduleCounter(out, mods, "interlayer_module_attachments", "Times the module attached to a connection or flow", ModuleStats.Snapshot::attaches);
        moduleCounter(out, mods, "interlayer_module_declines", "Attaches the module declined", ModuleStats.Snapshot::declines);
        moduleCounter(out, mods, "interlayer_module_faults", "Faults counted against the module", ModuleStats.Snapshot::faults);
        moduleCounter(out, mods, "interlayer_module_injected_bytes", "Bytes the module injected", ModuleStats.Snapshot::injected);
        GaugeSnapshot.Builder live = GaugeSnapshot.builder().name("interlayer_module_attachments_active").help("Connections and flows the module is attached to now");
        GaugeSnapshot.Builder state = GaugeSnapshot.builder().name("interlayer_module_state")
                .help("1 for the module's current state, 0 for the others");
        CounterSnapshot.Builder chunks = CounterSnapshot.builder().name("interlayer_module_chunks").help("Chunks handed to the module, per direction");
        CounterSnapshot.Builder in = CounterSnapshot.builder().name("interlayer_module_in_bytes").unit(Unit.BYTES)
                .help("Bytes handed to the module, per direction");
        CounterSnapshot.Builder outBytes = CounterSnapshot.builder().name("interlayer_module_out_bytes").unit(Unit.BYTES)
                .help("Bytes the module passed on, per direction");
        CounterSnapshot.Builder verdicts = CounterSnapshot.builder().name("interlayer_module_verdicts").help("Verdicts the module returned, per kind");
        mods.forEach((m, s) -> {
            Labels id = Labels.of("module", m.name(), "version", m.version());
            live.dataPoint(GaugeDataPointSnapshot.builder().labels(id).value(s.live()).build());
            ModuleState now = m.state();
            for (ModuleState st : ModuleState.values()) {
                state.dataPoint(GaugeDataPointSnapshot.builder().labels(id.add("state", st.name().toLowerCase(Locale.ROOT)))
                        .value(st == now ? 1 : 0).build());
            }
            for (int d = 0; d < 2; d++) {
                Labels dir = id.add("direction", DIRECTIONS[d]);
                chunks.dataPoint(CounterDataPointSnapshot.builder().labels(dir).value(s.chunks()[d]).build());
                in.dataPoint(CounterDataPointSnapshot.builder().labels(dir).value(s.bytesIn()[d]).build());
                outBytes.dataPoint(CounterDataPointSnapshot.builder().labels(dir).value(s.bytesOut()[d]).build());
            }
            for (Verdict.Kind k : Verdict.Kind.values()) {
                verdicts.dataPoint(CounterDataPointSnapshot.builder().labels(id.add("verdict", k.name().toLowerCase(Locale.ROOT)))
                        .value(s.verdicts(k)).build());
            }
        });
        out.add(live.build());
        out.add(hookTimes(mods));
        out.add(state.build());
        out.add(chunks.build());
        out.add(in.build());
        out.add(outBytes.build());
        out.add(verdicts.build());
    }

    /** The sampled data hook times of each module as a histogram (one call in {@link HookTimes#SAMPLE} is timed). */
    private static HistogramSnapshot hookTimes(Map<LoadedModule, ModuleStats.Snapshot> mods) {
        double[] bounds = new double[HookTimes.BUCKETS];
        for (int i = 0; i < HookTimes.BOUNDS_NANOS.length; i++) bounds[i] = HookTimes.BOUNDS_NANOS[i] / 1e9;
        bounds[bounds.length - 1] = Double.POSITIVE_INFINITY;
        HistogramSnapshot.Builder b = HistogramSnapshot.builder().name("interlayer_module_data_hook_duration_seconds").unit(Unit.SECONDS)
                .help("Time of the module's data hook calls (onSend, onRecv), one call in " + HookTimes.SAMPLE + " timed per attachment");
        mods.forEach((m, s) -> b.dataPoint(HistogramSnapshot.HistogramDataPointSnapshot.builder()
                .labels(Labels.of("module", m.name(), "version", m.version()))
                .classicHistogramBuckets(ClassicHistogramBuckets.of(bounds, s.hookTimes())).sum(s.hookNanos() / 1e9).build()));
        return b.build();
    }

    private static void moduleCounter(List<MetricSnapshot> out, Map<LoadedModule, ModuleStats.Snapshot> mods, String name, String help,
                                      ToDoubleFunction<ModuleStats.Snapshot> value) {
        CounterSnapshot.Builder b = CounterSnapshot.builder().name(name).help(help);
        if (name.endsWith("_bytes")) b.unit(Unit.BYTES);
        mods.forEach((m, s) -> b.dataPoint(CounterDataPointSnapshot.builder().labels(Labels.of("module", m.name(), "version", m.version()))
                .value(value.applyAsDouble(s)).build()));
        out.add(b.build());
    }

    private void agent(List<MetricSnapshot> out) {
        GaugeSnapshot.Builder lagNow = GaugeSnapshot.builder().name("interlayer_event_loop_lag_seconds").unit(Unit.SECONDS)
                .help("How late the last probe task ran on each event loop (probed every second)");
        GaugeSnapshot.Builder lagMax = GaugeSnapshot.builder().name("interlayer_event_loop_lag_max_seconds").unit(Unit.SECONDS)
                .help("The largest event-loop lag a probe saw since the metrics endpoint started");
        double[] last = lag.lastLagSeconds();
        double[] max = lag.maxLagSeconds();
        for (int i = 0; i < last.length; i++) {
            Labels loop = Labels.of("loop", Integer.toString(i));
            lagNow.dataPoint(GaugeDataPointSnapshot.builder().labels(loop).value(last[i]).build());
            lagMax.dataPoint(GaugeDataPointSnapshot.builder().labels(loop).value(max[i]).build());
        }
        out.add(lagNow.build());
        out.add(lagMax.build());
        out.add(gauge("interlayer_held_bytes", Unit.BYTES, "Bytes modules hold or buffer now (HOLD and NEED_MORE), over every connection",
                engine.heldBytes()));
        out.add(gauge("interlayer_direct_memory_bytes", Unit.BYTES, "Direct memory the connections' buffer pools hold (in use or free for reuse)",
                Engine.directMemory()));
        ProcessLookups.Snapshot lookups = ProcessLookups.snapshot();
        CounterSnapshot.Builder ways = CounterSnapshot.builder().name("interlayer_process_lookups")
                .help("How the local process behind connections was learned: mark = the uid from an intercepted connection's socket mark,"
                        + " socket = a query of the kernel's socket table, process = the socket's process (pid, command, executable),"
                        + " bpf = a uid or a process from the eBPF map of who connected each TCP socket (no socket table query)");
        out.add(ways.dataPoint(way("mark", lookups.byMark())).dataPoint(way("socket", lookups.bySocket()))
                .dataPoint(way("process", lookups.byProcess())).dataPoint(way("bpf", lookups.byBpf())).build());
        out.add(CounterSnapshot.builder().name("interlayer_process_lookup_bpf_misses")
                .help("Lookups the eBPF map of who connected each TCP socket did not have (connected before it was attached, another"
                        + " network namespace, pushed out by newer connections, a server's socket): they went on to the socket table")
                .dataPoint(CounterDataPointSnapshot.builder().value(lookups.bpfMisses()).build()).build());
        out.add(CounterSnapshot.builder().name("interlayer_process_lookup_cache_hits")
                .help("Process lookups whose process the cache named without listing /proc")
                .dataPoint(CounterDataPointSnapshot.builder().value(lookups.cacheHits()).build()).build());
        out.add(CounterSnapshot.builder().name("interlayer_direct_connections")
                .help("TCP connections started on the direct path (raw sockets below Netty's channels: no module attached when accepted)")
                .dataPoint(CounterDataPointSnapshot.builder().value(engine.directConnections()).build()).build());
        out.add(CounterSnapshot.builder().name("interlayer_direct_promotions")
                .help("Direct-path connections that became channel connections (a module attached later, or a bulk transfer went to splice)")
                .dataPoint(CounterDataPointSnapshot.builder().value(engine.promotions()).build()).build());
        out.add(gauge("interlayer_udp_flows", null, "UDP flows open now, over every udp listener", engine.udpFlows()));
        out.add(gauge("interlayer_connections_open", null, "Connections and UDP flows open now, over every listener", engine.connectionCount()));
        out.add(GaugeSnapshot.builder().name("interlayer_build_info").help("The agent's version (always 1)")
                .dataPoint(GaugeDataPointSnapshot.builder().labels(Labels.of("version", version)).value(1).build()).build());
    }

    private static CounterDataPointSnapshot way(String way, long lookups) {
        return CounterDataPointSnapshot.builder().labels(Labels.of("way", way)).value(lookups).build();
    }

    private static GaugeSnapshot gauge(String name, Unit unit, String help, double value) {
        GaugeSnapshot.Builder b = GaugeSnapshot.builder().name(name).help(help);
        if (unit != null) b.unit(unit);
        return b.dataPoint(GaugeDataPointSnapshot.builder().value(value).build()).build();
    }
}
