package dev.interlayer.control.testing;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Runs a Java main of the test class path as another, real user (created with {@code useradd} if it does
 * not exist), through {@code runuser}. The tests run as root in CI; the class path is copied to a folder
 * every user can read, since a build's local repository usually is not.
 */
public final class OtherUser {

    /** The user the control tests call as when they need a second uid. */
    public static final String NAME = "ilctltest";

    private static Path classpath;

    private OtherUser() {}

    /** True if this test JVM can switch users (root with runuser). */
    public static boolean available() {
        return "0".equals(uid()) && (Files.isExecutable(Path.of("/usr/sbin/runuser")) || Files.isExecutable(Path.of("/sbin/runuser")));
    }

    private static String uid() {
        try {
            return String.valueOf(Files.getAttribute(Path.of("/proc/self"), "unix:uid"));
        } catch (IOException e) {
            return "?";
        }
    }

    /** Creates the user if needed and returns its uid. */
    public static synchronized long ensure() throws IOException, InterruptedException {
        Process id = new ProcessBuilder("id", "-u", NAME).redirectErrorStream(true).start();
        String out = new String(id.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        if (id.waitFor() == 0) {
            return Long.parseLong(out);
        }
        Process add = new ProcessBuilder("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", NAME).redirectErrorStream(true).start();
        String addOut = new String(add.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (add.waitFor() != 0) {
            throw new IOException("useradd " + NAME + " failed: " + addOut);
        }
        return ensure();
    }

    /** Runs {@code mainClass args} as the other user; returns its exit code and output. */
    public static Result run(Duration timeout, String mainClass, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("runuser", "-u", NAME, "--", javaBin(), "--sun-misc-unsafe-memory-access=allow",
                "--enable-native-access=ALL-UNNAMED", "-cp", readableClasspath(), mainClass));
        cmd.addAll(List.of(args));
        return run(cmd, timeout);
    }

    /** Runs {@code mainClass args} in a process of its own as the user running the tests; returns its exit code and output. */
    public static Result runAsThisUser(Duration timeout, String mainClass, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(javaBin(), "--sun-misc-unsafe-memory-access=allow", "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")), mainClass));
        cmd.addAll(List.of(args));
        return run(cmd, timeout);
    }

    private static Result run(List<String> cmd, Duration timeout) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).start();
        byte[][] streams = new byte[2][];
        Thread errReader = Thread.ofVirtual().start(() -> {
            try {
                streams[1] = p.getErrorStream().readAllBytes();
            } catch (IOException e) {
                streams[1] = new byte[0];
            }
        });
        streams[0] = p.getInputStream().readAllBytes();
        if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            p.destroyForcibly();
            throw new IOException("the client as " + NAME + " did not finish within " + timeout);
        }
        errReader.join();
        return new Result(p.exitValue(), new String(streams[0], StandardCharsets.UTF_8), new String(streams[1], StandardCharsets.UTF_8));
    }

    /** What a process printed and returned. */
    public record Result(int code, String out, String err) {}

    static String javaBin() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    /** The test class path, copied once into a folder that every user can read. */
    static synchronized String readableClasspath() throws IOException {
        if (classpath == null) {
            String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
            Path dir = Files.createTempDirectory("interlayer-cp-");
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
            List<String> entries = new ArrayList<>();
            int i = 0;
            for (String e : cp.split(File.pathSeparator)) {
                Path src = Path.of(e);
                if (!Files.exists(src)) {
                    continue;
                }
                Path dst = dir.resolve((i++) + "-" + src.getFileName());
                copy(src, dst);
                entries.add(dst.toString());
            }
            Runtime.getRuntime().addShutdownHook(new Thread(() -> TempDirs.delete(dir)));
            classpath = dir;
            classpathEntries = String.join(File.pathSeparator, entries);
        }
        return classpathEntries;
    }

    private static String classpathEntries;

    private static void copy(Path src, Path dst) throws IOException {
        if (Files.isDirectory(src)) {
            try (Stream<Path> s = Files.walk(src)) {
                for (Path p : (Iterable<Path>) s::iterator) {
                    Path t = dst.resolve(src.relativize(p).toString());
                    if (Files.isDirectory(p)) {
                        Files.createDirectories(t);
                        Files.setPosixFilePermissions(t, PosixFilePermissions.fromString("rwxr-xr-x"));
                    } else {
                        Files.copy(p, t, StandardCopyOption.REPLACE_EXISTING);
                        Files.setPosixFilePermissions(t, PosixFilePermissions.fromString("rw-r--r--"));
                    }
                }
            }
        } else {
            Files.copy(src, dst, StandardCopyOption.REPLACE_EXISTING);
            Files.setPosixFilePermissions(dst, PosixFilePermissions.fromString("rw-r--r--"));
        }
    }
}
