package dev.interlayer.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The build's training run of the agent's ahead-of-time cache, in this process: it must start a real agent with the
 * sample {@code tag} module and drive every kind of exchange through it, each checked, and stop it.
 */
class AotTrainingTest {

    @Test
    void theTrainingRunDrivesCheckedTrafficThroughEveryPathOfARealAgent() {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.execute(new PrintWriter(out, true), new PrintWriter(err, true), "aot-training", "--seconds", "2");
        assertThat(code).as("stderr: %s", err).isZero();
        Matcher m = Pattern.compile("aot-training: (\\d+) exchanges and (\\d+) datagrams through the agent").matcher(out.toString());
        assertThat(m.find()).as(out.toString()).isTrue();
        assertThat(Long.parseLong(m.group(1))).isPositive();
        assertThat(Long.parseLong(m.group(2))).isPositive();
    }
}
