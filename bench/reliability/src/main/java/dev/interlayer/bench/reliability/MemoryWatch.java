package dev.interlayer.bench.reliability;

import dev.interlayer.bench.reliability.AgentProcess.Memory;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Samples the agents' memory every few seconds and keeps each one's first, last and largest figures. */
final class MemoryWatch implements AutoCloseable {

    /** First, last and largest of one agent's samples. */
    static final class Range {
        Memory first;
        volatile Memory last;
        long maxRss;
        long maxHeap;
        long maxDirect;
        int samples;

        synchronized void add(Memory m) {
            if (first == null) {
                first = m;
            }
            last = m;
            maxRss = Math.max(maxRss, m.rss());
            maxHeap = Math.max(maxHeap, m.heap());
            maxDirect = Math.max(maxDirect, m.direct());
            samples++;
        }

        @Override
        public synchronized String toString() {
            if (first == null) {
                return "no sample";
            }
            return "RSS first %s last %s max %s; heap first %s last %s max %s; direct first %s last %s max %s (%d samples)"
                    .formatted(mib(first.rss()), mib(last.rss()), mib(maxRss), mib(first.heap()), mib(last.heap()),
                            mib(maxHeap), mib(first.direct()), mib(last.direct()), mib(maxDirect), samples);
        }
    }

    private final Map<AgentProcess, Range> ranges = new LinkedHashMap<>();
    private final Thread thread;
    private final List<String> errors = new ArrayList<>();

    MemoryWatch(List<AgentProcess> agents, long periodMillis) {
        for (AgentProcess a : agents) {
            ranges.put(a, new Range());
        }
        thread = Thread.ofPlatform().daemon().name("memory-watch").start(() -> {
            try {
                while (true) {
                    sample();
                    Thread.sleep(periodMillis);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
    }

    /** Takes one sample of every agent now. */
    void sample() throws InterruptedException {
        for (Map.Entry<AgentProcess, Range> e : ranges.entrySet()) {
            try {
                e.getValue().add(e.getKey().memory());
            } catch (java.io.IOException | RuntimeException ex) {
                synchronized (errors) {
                    errors.add(e.getKey().name + ": " + ex);
                }
            }
        }
    }

    Range range(AgentProcess a) {
        return ranges.get(a);
    }

    /** Lines "agent NAME: RSS first … " for the report, and any sample that failed. */
    List<String> report() {
        List<String> out = new ArrayList<>();
        ranges.forEach((a, r) -> out.add("agent " + a.name + " (pid " + a.pid() + "): " + r));
        synchronized (errors) {
            errors.stream().limit(5).forEach(e -> out.add("memory sample failed: " + e));
        }
        return out;
    }

    static String mib(long bytes) {
        return "%.1f MiB".formatted(bytes / 1048576.0);
    }

    @Override
    public void close() throws InterruptedException {
        thread.interrupt();
        thread.join();
        sample();
    }
}
