package dev.interlayer.bench.suite;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** {@code bench/run --help} and {@code --list} name every target the suite can run, with what it is. */
class HelpTest {

    @Test
    void helpAndListNameEveryTargetOfTheCatalogue() {
        String help = run("--help");
        String list = run("--list");
        for (Target t : Target.catalogue().values()) {
            // help wraps a long description onto indented lines, so compare without white space
            assertThat(help).as("--help").containsPattern("(?m)^  " + t.name + " ");
            assertThat(help.replaceAll("\\s+", "")).as("--help").contains((t.name + t.what).replaceAll("\\s+", ""));
            assertThat(list).as("--list").containsPattern("(?m)^" + t.name + " +\\Q" + t.what + "\\E$");
        }
        assertThat(help).contains("Targets (--only;").contains("Tests (--tests;");
    }

    private static String run(String option) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int status;
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
             PrintStream e = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8)) {
            status = Suite.execute(o, e, option);
        }
        assertThat(status).isZero();
        return out.toString(StandardCharsets.UTF_8);
    }
}
