package dev.interlayer.runtime;

import dev.interlayer.api.ModuleLog;
import java.util.concurrent.ScheduledExecutorService;
import java.util.function.Function;
import java.util.function.LongSupplier;

/**
 * What a {@link ModuleRegistry} gives its modules from outside the JVM's defaults: where module-wide timers run
 * ({@code ModuleEnv.schedule}), the clock {@code ModuleEnv.nanoTime()} reads and where a module's log lines go.
 * The agent uses {@link #real()}; the testkit passes a virtual clock and loop and records the log lines, so the same
 * registry, chain and engine run in both.
 *
 * @param timers runs module-wide timers; the registry does not shut it down; null for the registry's own daemon thread
 * @param clock the modules' {@code nanoTime()}
 * @param logs the logger of a module, by its id ({@code name@version})
 */
public record ModuleHost(ScheduledExecutorService timers, LongSupplier clock, Function<String, ModuleLog> logs) {

    /** The JVM's clock, a timer thread of the registry's own, and {@link System.Logger} loggers. */
    public static ModuleHost real() {
        return new ModuleHost(null, System::nanoTime, RealModuleEnv.RealModuleLog::new);
    }

    public ModuleHost {
        if (clock == null || logs == null) {
            throw new IllegalArgumentException("a module host needs a clock and loggers");
        }
    }
}
