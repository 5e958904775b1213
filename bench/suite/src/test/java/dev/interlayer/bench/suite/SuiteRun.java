package dev.interlayer.bench.suite;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

/** The real suite run in this JVM, as the tests run it: its exit status and its log (standard error). */
record SuiteRun(int status, String log) {

    /**
     * Runs the suite with {@code args}, its report at {@code report} (the CSV beside it), on a base port picked at random
     * so that two builds on one machine rarely collide.
     */
    static SuiteRun of(Path report, String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        all.addAll(List.of("--out", report.toString(), "--base-port", Integer.toString(24_000 + 500 * ThreadLocalRandom.current().nextInt(16))));
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status;
        try (PrintStream o = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
             PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            status = Suite.execute(o, e, all.toArray(String[]::new));
        }
        return new SuiteRun(status, err.toString(StandardCharsets.UTF_8));
    }
}
