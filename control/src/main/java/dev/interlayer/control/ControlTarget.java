package dev.interlayer.control;

import dev.interlayer.engine.Engine;
import dev.interlayer.runtime.ModuleConfig;
import dev.interlayer.runtime.ModuleRegistry;
import java.nio.file.Path;
import java.util.function.Function;

/**
 * What the control endpoints manage: the agent's module registry and data plane, the module settings
 * its config gives (applied to jars uploaded through {@code Modules.Load}), and where uploads are kept
 * while they load.
 *
 * @param registry the agent's modules
 * @param engine the agent's data plane
 * @param moduleConfigs the config of each module by name (null result: the descriptor's defaults)
 * @param uploadDir where uploaded jars are written before loading (created if missing)
 * @param version the agent's version, for {@code Health.Check}
 * @param config the agent's config file, for {@code Config.Reload} and {@code Health.Check}; null when it does not run from one
 */
public record ControlTarget(ModuleRegistry registry, Engine engine, Function<String, ModuleConfig> moduleConfigs, Path uploadDir, String version,
                            ConfigReloads config) {

    /** What an agent that does not run from a config file manages ({@code Config.Reload} is refused). */
    public ControlTarget(ModuleRegistry registry, Engine engine, Function<String, ModuleConfig> moduleConfigs, Path uploadDir, String version) {
        this(registry, engine, moduleConfigs, uploadDir, version, null);
    }
}
