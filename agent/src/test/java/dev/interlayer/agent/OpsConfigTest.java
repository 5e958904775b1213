package dev.interlayer.agent;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.interlayer.agent.ConfigException.Problem;
import dev.interlayer.agent.logging.LogSettings;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The operations parts of the {@code agent:} section ({@code metrics}, {@code log}): what they give the agent, and every mistake named. */
class OpsConfigTest {

    private static AgentConfig parse(String yaml) throws ConfigException {
        return AgentConfig.parse(yaml, Path.of("/nonexistent/agent.yaml"));
    }

    private static List<Problem> problems(String yaml) {
        ConfigException e = catchThrowableOfType(ConfigException.class, () -> parse(yaml));
        assertThat(e).as("problems in:\n" + yaml).isNotNull();
        return e.problems();
    }

    @Test
    void metricsAreOffUnlessConfiguredAndLoopbackNeedsNothingElse() throws Exception {
        assertThat(parse("listeners: []\n").metrics()).isEmpty();
        AgentConfig c = parse("""
                agent:
                  control: {enabled: false}
                  metrics: {listen: 127.0.0.1:9464}
                """);
        assertThat(c.metrics().orElseThrow().listen()).isEqualTo(new InetSocketAddress("127.0.0.1", 9464));
        assertThat(c.metrics().orElseThrow().loopback()).isTrue();
    }

    @Test
    void metricsOffTheHostNeedTheControlEndpointsMutualTls() {
        List<Problem> p = problems("""
                agent:
                  metrics: {listen: 0.0.0.0:9464}
                """);
        assertThat(p).singleElement().satisfies(x -> {
            assertThat(x.line()).isEqualTo(2);
            assertThat(x.path()).isEqualTo("agent.metrics.listen");
            assertThat(x.message()).contains("0.0.0.0 is not a loopback address", "agent.control.tls", "Modules.Stats", "127.0.0.1");
        });
    }

    @Test
    void metricsMistakesAreNamed() {
        assertThat(problems("agent: {metrics: {}}\n")).singleElement().satisfies(x ->
                assertThat(x.path() + ": " + x.message()).contains("agent.metrics", "listen", "127.0.0.1:9464"));
        assertThat(problems("agent: {metrics: {listen: 127.0.0.1:9464, port: 1}}\n")).singleElement().satisfies(x ->
                assertThat(x.message()).contains("port"));
        assertThat(problems("agent: {metrics: 9464}\n")).singleElement().satisfies(x ->
                assertThat(x.message()).contains("expected a mapping with keys listen"));
        assertThat(problems("agent: {metrics: {listen: localhost}}\n")).singleElement().satisfies(x ->
                assertThat(x.message()).contains("is not HOST:PORT"));
    }

    @Test
    void warmUpRunsBeforeATakeoverByDefaultAndBeforeAPlainStartWhenAsked() throws Exception {
        AgentConfig.WarmUp d = parse("listeners: []\n").agent().warmUp();
        assertThat(d).isEqualTo(AgentConfig.WarmUp.DEFAULT);
        assertThat(d.before(true)).isEqualTo(Duration.ofSeconds(2));
        assertThat(d.before(false)).isZero();
        AgentConfig.WarmUp w = parse("agent: {warm-up: {before-takeover: 0, before-start: 1500ms}}\n").agent().warmUp();
        assertThat(w.before(true)).isZero();
        assertThat(w.before(false)).isEqualTo(Duration.ofMillis(1500));
    }

    @Test
    void warmUpMistakesAreNamed() {
        assertThat(problems("agent: {warm-up: 2s}\n")).singleElement().satisfies(x -> {
            assertThat(x.path()).isEqualTo("agent.warm-up");
            assertThat(x.message()).contains("expected a mapping with keys before-takeover, before-start", "before-start: 0s");
        });
        assertThat(problems("agent: {warm-up: {before-start: 5m}}\n")).singleElement().satisfies(x -> {
            assertThat(x.path()).isEqualTo("agent.warm-up.before-start");
            assertThat(x.message()).contains("too long", "at most 1m");
        });
        assertThat(problems("agent: {warm-up: {before-takeover: soon}}\n")).singleElement().satisfies(x ->
                assertThat(x.message()).contains("'soon' is not a duration"));
        assertThat(problems("agent: {warm-up: {before: 1s}}\n")).singleElement().satisfies(x ->
                assertThat(x.message()).contains("before"));
    }

    @Test
    void logDefaultsToTextOnStandardErrorAndTakesFormatFileAndRotation() throws Exception {
        assertThat(parse("listeners: []\n").log()).isEqualTo(LogSettings.DEFAULT);
        LogSettings s = parse("""
                agent:
                  log: {format: json, file: logs/agent.log, max-size: 16MiB, keep: 3}
                """).log();
        assertThat(s).isEqualTo(new LogSettings(true, Path.of("/nonexistent/logs/agent.log"), 16L << 20, 3));
    }

    @Test
    void logMistakesAreNamed() {
        assertThat(problems("agent: {log: {format: xml}}\n")).singleElement().satisfies(x -> {
            assertThat(x.path()).isEqualTo("agent.log.format");
            assertThat(x.message()).contains("'xml' is not a log format", "text", "json");
        });
        assertThat(problems("agent: {log: {keep: 0}}\n")).singleElement().satisfies(x -> assertThat(x.path()).isEqualTo("agent.log.keep"));
        assertThat(problems("agent: {log: {max-size: lots}}\n")).singleElement().satisfies(x -> assertThat(x.path()).isEqualTo("agent.log.max-size"));
        assertThat(problems("agent: {log: {file: /tmp}}\n")).singleElement().satisfies(x -> assertThat(x.message()).contains("/tmp is a folder"));
        assertThat(problems("agent: {log: {level: debug}}\n")).singleElement().satisfies(x ->
                assertThat(x.message()).contains("format", "file", "max-size", "keep"));
    }
}
