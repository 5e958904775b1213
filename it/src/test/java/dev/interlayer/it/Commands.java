package dev.interlayer.it;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** For the tests of what the build ships (the archive, the container image): finds it, and runs commands to their end. */
final class Commands {

    /** A command's exit code and its standard output and error, together. */
    record Run(int code, String out) {}

    private Commands() {}

    /**
     * Runs {@code cmd} in {@code cwd} with only {@code env} as its environment; its output goes to a file in {@code cwd}.
     * Fails if it takes longer than 3 minutes (and stops it).
     */
    static Run run(Path cwd, List<String> cmd, Map<String, String> env) throws IOException, InterruptedException {
        ProcessBuilder b = new ProcessBuilder(cmd).directory(cwd.toFile());
        b.environment().clear();
        b.environment().putAll(env);
        Path out = Files.createTempFile(cwd, "out", ".txt");
        b.redirectErrorStream(true).redirectOutput(out.toFile());
        Process p = b.start();
        if (!p.waitFor(3, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            throw new AssertionError(String.join(" ", cmd) + " did not end within 3 minutes: " + Files.readString(out));
        }
        return new Run(p.exitValue(), Files.readString(out));
    }

    /**
     * The file the system property {@code property} names (it/pom.xml sets it), which the build makes: {@code what} and
     * {@code build} (how to build it) go into the error when it is missing.
     */
    static Path built(String property, String what, String build) {
        String name = System.getProperty(property);
        if (name == null) {
            throw new IllegalStateException("-D" + property + " is not set; run this test through Maven (it/pom.xml sets it)");
        }
        Path p = Path.of(name);
        if (!Files.isRegularFile(p)) {
            throw new IllegalStateException(what + " " + p.toAbsolutePath() + " is missing; build it with " + build);
        }
        return p;
    }
}
