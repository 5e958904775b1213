package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.interlayer.it.Commands.Run;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The container image ({@code image/target/interlayer-VERSION-image.tar}, an OCI image layout that Jib writes in
 * {@code ./mvnw package}) runs without a container daemon: the test reads the layout (index → manifest → config and
 * layer blobs), unpacks the layers in order into a root file system (a layer's whiteouts delete what the layers below
 * it left), and runs the image's entrypoint there as the image's user, in new mount and PID namespaces with a fresh
 * {@code /proc} and the host's {@code /dev}, {@code /etc/hosts} and network (as {@code --network host} does):
 * {@code unshare --mount --pid --fork} + {@code chroot --userspec}.
 *
 * <p>Not {@code podman load} + {@code podman run}: Debian bookworm's podman (4.3, crun) cannot start a container on
 * this kind of machine (a container itself): crun fails to set the default rlimits (no {@code CAP_SYS_RESOURCE})
 * and refuses cgroups in hybrid mode. Unpacking needs root (file owners, device nodes, namespaces); the test is skipped,
 * saying so, without it.
 */
class ContainerImageTest {

    /** What the README's "Install" section says about the image. */
    private static final List<String> ENTRYPOINT = List.of("/opt/interlayer/bin/interlayer", "run", "--config", "/etc/interlayer/agent.yaml");
    private static final String USER = "10001:10001";
    private static final String WORKDIR = "/var/lib/interlayer";

    @TempDir
    static Path dir;

    private static JsonObject config;
    private static Path rootfs;

    private static Path imageTar() {
        return Commands.built("interlayer.imageTar", "the container image", "./mvnw package -pl image -am -DskipTests (as root)");
    }

    private static boolean root() throws IOException, InterruptedException {
        return run(List.of("id", "-u")).out().strip().equals("0");
    }

    /** Runs {@code cmd} with {@code PATH} as its only environment. */
    private static Run run(List<String> cmd) throws IOException, InterruptedException {
        return Commands.run(dir, cmd, Map.of("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"));
    }

    private static void ok(List<String> cmd) throws IOException, InterruptedException {
        Run r = run(cmd);
        assertThat(r.code()).as(String.join(" ", cmd) + ": " + r.out()).isZero();
    }

    private static Path blob(Path layout, JsonObject descriptor) {
        String[] digest = descriptor.get("digest").getAsString().split(":", 2);
        return layout.resolve("blobs").resolve(digest[0]).resolve(digest[1]);
    }

    private static JsonObject json(Path file) throws IOException {
        return JsonParser.parseString(Files.readString(file)).getAsJsonObject();
    }

    /** Unpacks the image's layers in order into {@link #rootfs} and reads its config, once for all tests. */
    @BeforeAll
    static void unpack() throws Exception {
        assumeTrue(root(), "unpacking the image keeps its files' owners and device nodes and runs it in new namespaces: that needs root");
        Path layout = Files.createDirectories(dir.resolve("layout"));
        ok(List.of("tar", "-xf", imageTar().toString(), "-C", layout.toString()));
        JsonObject index = json(layout.resolve("index.json"));
        JsonObject manifest = json(blob(layout, index.getAsJsonArray("manifests").get(0).getAsJsonObject()));
        config = json(blob(layout, manifest.getAsJsonObject("config")));
        rootfs = Files.createDirectories(dir.resolve("rootfs"));
        for (JsonElement layer : manifest.getAsJsonArray("layers")) {
            Path tar = blob(layout, layer.getAsJsonObject());
            for (String entry : run(List.of("tar", "-tzf", tar.toString())).out().lines().toList()) {
                whiteout(entry);
            }
            ok(List.of("tar", "-xzf", tar.toString(), "-C", rootfs.toString(), "--numeric-owner", "--same-owner", "-p", "--exclude=.wh.*"));
        }
    }

    /** Applies a whiteout entry of a layer: {@code .wh..wh..opq} empties its folder, {@code .wh.NAME} deletes NAME. */
    private static void whiteout(String entry) throws IOException, InterruptedException {
        Path p = rootfs.resolve(entry.replaceFirst("^\\./", ""));
        String name = p.getFileName() == null ? "" : p.getFileName().toString();
        if (name.equals(".wh..wh..opq")) {
            ok(List.of("find", p.getParent().toString(), "-mindepth", "1", "-delete"));
        } else if (name.startsWith(".wh.")) {
            ok(List.of("rm", "-rf", p.resolveSibling(name.substring(4)).toString()));
        }
    }

    /**
     * Runs {@code command} in the unpacked image as its config says (user, working folder, environment), with a fresh
     * {@code /proc} and the host's {@code /dev}, {@code /etc/hosts} and {@code /etc/resolv.conf} mounted, as a container
     * runtime does, on the host's network.
     */
    private static Run runInImage(List<String> command) throws IOException, InterruptedException {
        return runInImage(List.of(), "", command);
    }

    /**
     * As {@link #runInImage(List)}, with {@code namespaces} added to unshare's ({@code --net}: a network of its own) and
     * {@code setup} run by root in them before the chroot.
     */
    private static Run runInImage(List<String> namespaces, String setup, List<String> command) throws IOException, InterruptedException {
        JsonObject c = config.getAsJsonObject("config");
        List<String> env = new ArrayList<>();
        c.getAsJsonArray("Env").forEach(e -> env.add(e.getAsString()));
        String r = rootfs.toString();
        String mounts = setup + "mount -t proc proc " + r + "/proc && mount --rbind /dev " + r + "/dev"
                + " && touch " + r + "/etc/hosts " + r + "/etc/resolv.conf"
                + " && mount --bind /etc/hosts " + r + "/etc/hosts && mount --bind /etc/resolv.conf " + r + "/etc/resolv.conf"
                + " && exec \"$@\"";
        List<String> cmd = new ArrayList<>(List.of("unshare", "--mount", "--pid", "--fork"));
        cmd.addAll(namespaces);
        cmd.addAll(List.of("sh", "-c", mounts, "sh", "chroot", "--userspec=" + c.get("User").getAsString(), r, "/usr/bin/env", "-i"));
        cmd.addAll(env);
        cmd.addAll(List.of("/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", c.get("WorkingDir").getAsString()));
        cmd.addAll(command);
        return run(cmd);
    }

    private static List<String> entrypoint() {
        List<String> e = new ArrayList<>();
        config.getAsJsonObject("config").getAsJsonArray("Entrypoint").forEach(a -> e.add(a.getAsString()));
        return e;
    }

    @Test
    void theImagesConfigIsWhatTheReadmeSays() throws Exception {
        JsonObject c = config.getAsJsonObject("config");
        assertThat(entrypoint()).isEqualTo(ENTRYPOINT);
        assertThat(c.get("User").getAsString()).isEqualTo(USER);
        assertThat(c.get("WorkingDir").getAsString()).isEqualTo(WORKDIR);
        JsonArray env = c.getAsJsonArray("Env");
        assertThat(env.toString()).contains("PATH=");
        assertThat(config.get("os").getAsString()).isEqualTo("linux");
        assertThat(config.get("architecture").getAsString()).isEqualTo("amd64");

        assertThat(Files.readString(rootfs.resolve("etc/os-release"))).contains("bookworm");
        assertThat(Files.readString(rootfs.resolve("etc/passwd"))).contains("interlayer:x:10001:10001:");
        assertThat(rootfs.resolve("usr/sbin/nft")).isExecutable();
        assertThat(rootfs.resolve("opt/interlayer/runtime/bin/java")).isExecutable();
        assertThat(rootfs.resolve("opt/interlayer/runtime/bin/javac")).doesNotExist();
        assertThat(rootfs.resolve("etc/interlayer/agent.yaml")).hasSameTextualContentAs(rootfs.resolve("opt/interlayer/etc/agent.yaml"));
        // the folders the default config writes to belong to the image's user
        for (String d : List.of("run/interlayer", "var/lib/interlayer/modules", "var/log/interlayer")) {
            assertThat(Files.getAttribute(rootfs.resolve(d), "unix:uid")).as(d).isEqualTo(10001);
        }
    }

    @Test
    void theDemoPassesInsideTheImageAsItsUser() throws Exception {
        List<String> demo = List.of(entrypoint().getFirst(), "demo");
        Run r = runInImage(demo);
        assertThat(r.code()).as(r.out()).isZero();
        assertThat(r.out()).contains("OK: all checks passed");

        Run who = runInImage(List.of("id", "-un"));
        assertThat(who.out().strip()).isEqualTo("interlayer");
    }

    @Test
    void theEntrypointAcceptsTheImagesDefaultConfig() throws Exception {
        List<String> check = new ArrayList<>(entrypoint());
        check.add("--check");
        Run r = runInImage(check);
        assertThat(r.code()).as(r.out()).isZero();
    }

    /**
     * The image's entrypoint as it is (the default config) starts the agent as the image's user: its control socket in
     * {@code /run/interlayer} answers {@code interlayer status}. In a network namespace of its own (loopback only), so
     * that the default metrics port ({@code 127.0.0.1:9464}) is the test's alone.
     */
    @Test
    void theEntrypointStartsAnAgentThatServesItsControlSocket() throws Exception {
        String script = "\"$@\" & agent=$!;"
                + " for i in $(seq 90); do /opt/interlayer/bin/interlayer status --socket /run/interlayer/control.sock && s=0 && break; s=1; sleep 1; done;"
                + " kill $agent; wait $agent; exit $s";
        List<String> command = new ArrayList<>(List.of("/bin/sh", "-c", script, "sh"));
        command.addAll(entrypoint());
        Run r = runInImage(List.of("--net"), "ip link set lo up && ", command);
        assertThat(r.code()).as(r.out()).isZero();
        assertThat(r.out()).contains("serving at /run/interlayer/control.sock", "listeners: 0", "you: uds:uid=10001(interlayer)");
    }
}
