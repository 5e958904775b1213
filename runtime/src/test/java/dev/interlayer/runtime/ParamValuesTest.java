package dev.interlayer.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.Param;
import java.math.BigInteger;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Checking configured parameter values against a module's declared parameters. */
class ParamValuesTest {

    private static final ModuleDescriptor ALL_TYPES = ModuleDescriptor.builder("typed", "1.0.0")
            .implement(InterfaceType.STREAM, 1, 1)
            .param(Param.ofInt("every", 1000, "bytes between tags"))
            .param(Param.ofLong("budget", 10_000_000_000L, "total bytes"))
            .param(Param.ofBool("verbose", false, "log every chunk"))
            .param(Param.ofString("tag", "IL", "tag text"))
            .param(Param.ofSize("buffer", 64 * 1024, "buffer size"))
            .param(Param.ofDuration("delay", Duration.ofMillis(250), "hold time"))
            .build();

    private static ParamValues resolve(Map<String, Object> raw) {
        return ParamValues.resolve(ALL_TYPES, raw);
    }

    @Test
    void missingValuesTakeTheirDefaults() {
        ParamValues p = resolve(Map.of());

        assertThat(p.getInt("every")).isEqualTo(1000);
        assertThat(p.getLong("budget")).isEqualTo(10_000_000_000L);
        assertThat(p.getBool("verbose")).isFalse();
        assertThat(p.getString("tag")).isEqualTo("IL");
        assertThat(p.getSize("buffer")).isEqualTo(65536);
        assertThat(p.getDuration("delay")).isEqualTo(Duration.ofMillis(250));
        assertThat(p.names()).containsExactly("every", "budget", "verbose", "tag", "buffer", "delay");
    }

    @Test
    void valuesOfEachTypeAreConvertedFromNumbersBooleansAndText() {
        ParamValues p = resolve(Map.of("every", "42", "budget", 5L, "verbose", "TRUE", "tag", " spaced ", "buffer", "10MiB", "delay", "2m"));

        assertThat(p.getInt("every")).isEqualTo(42);
        assertThat(p.getLong("budget")).isEqualTo(5L);
        assertThat(p.getBool("verbose")).isTrue();
        assertThat(p.getString("tag")).as("strings are kept as written").isEqualTo(" spaced ");
        assertThat(p.getSize("buffer")).isEqualTo(10L << 20);
        assertThat(p.getDuration("delay")).isEqualTo(Duration.ofMinutes(2));
        assertThat(resolve(Map.of("every", 7, "verbose", true, "tag", 12)).getString("tag")).isEqualTo("12");
    }

    @Test
    void sizesAcceptBinaryAndDecimalUnits() {
        assertThat(ParamValues.parseSize("1500")).isEqualTo(1500);
        assertThat(ParamValues.parseSize("64KiB")).isEqualTo(65536);
        assertThat(ParamValues.parseSize("2k")).isEqualTo(2048);
        assertThat(ParamValues.parseSize("1 GiB")).isEqualTo(1L << 30);
        assertThat(ParamValues.parseSize("3kB")).isEqualTo(3000);
        assertThat(ParamValues.parseSize("2MB")).isEqualTo(2_000_000);
        assertThatThrownBy(() -> ParamValues.parseSize("-1")).isInstanceOf(NumberFormatException.class);
        assertThatThrownBy(() -> ParamValues.parseSize("9999999999TiB")).isInstanceOf(ArithmeticException.class);
    }

    @Test
    void durationsAcceptEveryUnit() {
        assertThat(ParamValues.parseDuration("100us")).isEqualTo(Duration.ofNanos(100_000));
        assertThat(ParamValues.parseDuration("5 s")).isEqualTo(Duration.ofSeconds(5));
        assertThat(ParamValues.parseDuration("1h")).isEqualTo(Duration.ofHours(1));
        assertThat(ParamValues.parseDuration("1d")).isEqualTo(Duration.ofDays(1));
        assertThatThrownBy(() -> ParamValues.parseDuration("5")).isInstanceOf(NumberFormatException.class).hasMessageContaining("250ms");
    }

    @Test
    void badValuesNameTheParameterTheValueAndWhatIsExpected() {
        assertThatThrownBy(() -> resolve(Map.of("every", "many"))).hasMessage("parameter 'every': 'many' is not an integer (e.g. 1000)");
        assertThatThrownBy(() -> resolve(Map.of("every", 2.5))).hasMessageContaining("'2.5' is not an integer");
        assertThatThrownBy(() -> resolve(Map.of("verbose", "yes"))).hasMessageContaining("'yes' is not true or false");
        assertThatThrownBy(() -> resolve(Map.of("buffer", "lots"))).hasMessageContaining("is not a size (e.g. 1500, 64KiB, 10MiB)");
        assertThatThrownBy(() -> resolve(Map.of("delay", 250))).hasMessageContaining("'250' is not a duration (e.g. 250ms, 5s, 2m)");
        assertThatThrownBy(() -> resolve(Map.of("delay", "99999999999999999d"))).hasMessageContaining("is not a duration");
    }

    @Test
    void integersOutOfRangeAreRefusedNotTruncated() {
        assertThatThrownBy(() -> resolve(Map.of("every", 3_000_000_000L))).hasMessageContaining("out of range for an integer");
        // YAML turns a huge literal into a BigInteger: longValue() would wrap it to a small number silently
        BigInteger huge = BigInteger.TWO.pow(64).add(BigInteger.valueOf(5));
        assertThatThrownBy(() -> resolve(Map.of("every", huge))).hasMessageContaining("is not an integer");
        assertThatThrownBy(() -> resolve(Map.of("budget", huge))).hasMessageContaining("is not an integer");
        assertThat(resolve(Map.of("budget", BigInteger.valueOf(12))).getLong("budget")).isEqualTo(12);
    }

    @Test
    void unknownParametersAreRefusedWithTheKnownOnes() {
        assertThatThrownBy(() -> resolve(Map.of("evry", 3)))
                .hasMessage("unknown parameter 'evry'; known: every, budget, verbose, tag, buffer, delay");
        ModuleDescriptor none = ModuleDescriptor.builder("plain", "1.0.0").implement(InterfaceType.STREAM, 1, 1).build();
        assertThatThrownBy(() -> ParamValues.resolve(none, Map.of("x", 1))).hasMessageContaining("the module declares no parameters");
    }

    @Test
    void aMissingRequiredParameterSaysToSetIt() {
        ModuleDescriptor d = ModuleDescriptor.builder("needs", "1.0.0").implement(InterfaceType.STREAM, 1, 1)
                .param(Param.ofString("secret", null, "shared key")).build();
        Map<String, Object> empty = new HashMap<>();
        empty.put("secret", null); // a YAML key with no value

        assertThatThrownBy(() -> ParamValues.resolve(d, Map.of()))
                .hasMessage("parameter 'secret' (a string) is required: set it in the module's config (shared key)");
        assertThatThrownBy(() -> ParamValues.resolve(d, new ModuleConfig("needs", null, null, null, null, null, null, empty).params()))
                .hasMessageContaining("is required");
        assertThat(ParamValues.resolve(d, Map.of("secret", "k")).getString("secret")).isEqualTo("k");
    }

    @Test
    void askingForAnUndeclaredNameOrTheWrongTypeIsAnError() {
        ParamValues p = resolve(Map.of());
        assertThatThrownBy(() -> p.getInt("nope")).hasMessageContaining("declares no parameter 'nope'");
        assertThatThrownBy(() -> p.getString("every")).hasMessageContaining("is INT, not STRING");
    }
}
