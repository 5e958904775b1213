package dev.interlayer.natives;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Builds C modules for tests with the system gcc and the flags of the build (module.h from this repository); the
 * end-to-end tests in {@code it/} use it through this module's test jar.
 */
public final class CBuild {

    static final Path INCLUDE = Path.of(System.getProperty("interlayer.native.include", "include"));
    static final Path SAMPLES = Path.of(System.getProperty("interlayer.native.samples", "src/main/c"));
    static final Path TAG_C = Path.of(System.getProperty("interlayer.native.tagC", "target/classes/module-tag-c.so"));
    private static final String FLAGS = System.getProperty("interlayer.gcc.flags", "-shared -fPIC -O2 -Wall -Wextra -Werror");

    private CBuild() {}

    /** Compiles {@code source} (C text) into {@code dir/name.so}, with {@code extra} gcc arguments; fails with gcc's output. */
    public static Path so(Path dir, String name, String source, String... extra) throws IOException, InterruptedException {
        Path c = dir.resolve(name + ".c");
        Files.writeString(c, source);
        return compile(c, dir.resolve(name + ".so"), extra);
    }

    /** Compiles the C file {@code c} into {@code out}. */
    static Path compile(Path c, Path out, String... extra) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add("gcc");
        cmd.addAll(Arrays.asList(FLAGS.trim().split("\\s+")));
        cmd.addAll(Arrays.asList(extra));
        cmd.addAll(List.of("-I", INCLUDE.toString(), "-o", out.toString(), c.toString()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) {
            throw new IllegalStateException("gcc failed for " + c + ":\n" + output);
        }
        return out;
    }

    /** The C sample tag, built again into {@code out} with {@code extra} arguments (e.g. -fsanitize=address). */
    static Path tagC(Path out, String... extra) throws IOException, InterruptedException {
        return compile(SAMPLES.resolve("tag.c"), out, extra);
    }
}
