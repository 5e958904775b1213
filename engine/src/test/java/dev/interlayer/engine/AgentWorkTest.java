package dev.interlayer.engine;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The agent's own work inside a module call (the /proc scan behind {@code connection().app()}) is not charged to the
 * module: a real watchdog, a real slot for this thread, and work that is over both the allocation limit and the time
 * budget, once as the agent's work (left alone) and once as the module's own (flagged).
 */
class AgentWorkTest {

    private static final Watchdog.Caller CALLER = new Watchdog.Caller() {
        @Override public String moduleId() { return "asker@1.0.0"; }
        @Override public long connectionId() { return 1; }
    };

    private static final Watchdog.Events NONE = new Watchdog.Events() {
        @Override public void stuck(Watchdog.Slot slot, StuckCall call) {}
        @Override public void recovered(Watchdog.Slot slot, StuckCall call) {}
    };

    static volatile Object sink;

    /** Allocates {@code mib} MiB in 1 MiB arrays over at least {@code millis} ms, keeping none. */
    private static Object churn(int mib, long millis) {
        long end = System.nanoTime() + millis * 1_000_000;
        int n = 0;
        List<byte[]> last = new ArrayList<>();
        while (n < mib || System.nanoTime() < end) {
            if (n < mib) {
                last.clear();
                last.add(new byte[1 << 20]);
                sink = last;
                n++;
            } else {
                Thread.onSpinWait();
            }
        }
        return n;
    }

    @Test
    void theAgentsWorkInACallIsNotChargedToTheModule() {
        try (Watchdog w = new Watchdog(Duration.ofMillis(100), 8L << 20, NONE)) {
            Watchdog.Slot slot = w.register(Thread.currentThread());
            long s = slot.enter(CALLER, "detach");
            Object r = Watchdog.agentWork(slot, () -> churn(64, 600));
            boolean flagged = slot.exit(s);
            assertThat(r).isEqualTo(64);
            assertThat(flagged).as("64 MiB and 600 ms of the agent's work in a call with an 8 MiB limit and a 100 ms budget").isFalse();
            assertThat(slot.agentBytes).as("counted as the agent's").isGreaterThanOrEqualTo(64L << 20);
            assertThat(slot.agentNanos).isGreaterThanOrEqualTo(600_000_000L);
        }
    }

    @Test
    void theSameWorkAsTheModulesOwnIsFlagged() {
        try (Watchdog w = new Watchdog(Duration.ofMillis(100), 8L << 20, NONE)) {
            Watchdog.Slot slot = w.register(Thread.currentThread());
            long s = slot.enter(CALLER, "detach");
            try {
                churn(64, 600);
            } catch (RuntimeException stopped) {
                // a preemption request may be raised at a check: the module's code would be stopped here
            }
            assertThat(slot.exit(s)).as("the module's own 64 MiB over 600 ms is flagged").isTrue();
        }
    }
}
