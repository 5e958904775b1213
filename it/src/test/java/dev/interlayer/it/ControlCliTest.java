package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.control.testing.OtherUser;
import dev.interlayer.control.testing.TempDirs;
import dev.interlayer.control.v1.Connection;
import dev.interlayer.control.v1.AttachResponse;
import dev.interlayer.control.v1.AuditEntry;
import dev.interlayer.control.v1.Event;
import dev.interlayer.control.v1.HealthResponse;
import dev.interlayer.control.v1.ListListenersResponse;
import dev.interlayer.control.v1.LoadModuleResponse;
import dev.interlayer.control.v1.ModuleControlResponse;
import dev.interlayer.control.v1.ModuleResponse;
import dev.interlayer.control.v1.ModuleStatsResponse;
import dev.interlayer.control.v1.ListConnectionsResponse;
import dev.interlayer.control.v1.ListModulesResponse;
import dev.interlayer.control.v1.ModuleInfo;
import dev.interlayer.engine.testing.TestServer;
import dev.interlayer.runtime.testing.TestJars;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The CLI as a real process against a real agent process ({@code interlayer run}) with live connections:
 * lifecycle changes through the control plane have the effect docs/architecture.md gives them, checked byte for byte
 * on the wire (the upstream records what it receives; {@code tag} inserts a 32-byte tag after every 100
 * bytes on SEND and takes it out again on RECV).
 */
class ControlCliTest {

    static final int EVERY = 100;
    static final byte[] TAG = "<interlayer-layer4.5-sample-tag>".getBytes(StandardCharsets.US_ASCII);

    Path dir;
    Path jar;
    Path socket;
    Process agent;
    TestServer upstream;
    /** What the upstream received on each connection, by accept order. */
    final Map<Integer, ByteArrayOutputStream> received = new ConcurrentHashMap<>();

    @BeforeEach
    void start() throws Exception {
        dir = Files.createTempDirectory("interlayer-cli-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        jar = Files.copy(Path.of(System.getProperty("interlayer.distJar", "../cli/target/interlayer.jar")), dir.resolve("interlayer.jar"));
        Files.setPosixFilePermissions(jar, PosixFilePermissions.fromString("rw-r--r--"));
        Agents.deploySample("tcplog", dir.resolve("modules"));
        Files.copy(Agents.sampleModules().resolve("module-tag.jar"), dir.resolve("tag.jar"), StandardCopyOption.REPLACE_EXISTING);
        Files.copy(dir.resolve("tag.jar"), dir.resolve("modules").resolve("tag.jar"));
        int[] next = {0};
        upstream = new TestServer(s -> {
            int id;
            synchronized (next) {
                id = next[0]++;
            }
            ByteArrayOutputStream got = new ByteArrayOutputStream();
            received.put(id, got);
            InputStream in = s.getInputStream();
            OutputStream out = s.getOutputStream();
            byte[] buf = new byte[8192];
            int n;
            while ((n = in.read(buf)) > 0) {
                synchronized (got) {
                    got.write(buf, 0, n);
                }
                out.write(buf, 0, n);
            }
            s.shutdownOutput();
        });
        socket = dir.resolve("control.sock");
        Files.writeString(dir.resolve("agent.yaml"), """
                agent:
                  control: {socket: control.sock}
                listeners:
                  - name: app
                    listen: 127.0.0.1:0
                    upstream: %s
                    role: client
                modules:
                  - name: tag
                    params: {every: %d}
                """.formatted(hostPort(upstream.address()), EVERY));
        agent = Agents.runProcess(jar, dir);
        Agents.awaitAnswer(agent, dir, () -> cli("status").code() == 0);
    }

    @AfterEach
    void stop() throws Exception {
        if (agent != null) {
            Agents.stopProcess(agent, dir);
        }
        if (upstream != null) {
            upstream.close();
        }
        TempDirs.delete(dir);
    }

    static String java() {
        return System.getProperty("interlayer.java", Path.of(System.getProperty("java.home"), "bin", "java").toString());
    }

    static String hostPort(InetSocketAddress a) {
        return a.getAddress().getHostAddress() + ":" + a.getPort();
    }

    record Run(int code, String out, String err) {}

    Run cli(String... args) throws Exception {
        // a short-lived CLI JVM starts faster without the optimizing compiler
        List<String> cmd = new ArrayList<>(List.of(java(), "--sun-misc-unsafe-memory-access=allow", "--enable-native-access=ALL-UNNAMED",
                "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-jar", jar.toString()));
        cmd.addAll(List.of(args));
        if (!List.of(args).contains("--socket") && !args[0].equals("policy") && !args[0].equals("completion")) {
            cmd.add("--socket");
            cmd.add(socket.toString());
        }
        return run(cmd);
    }

    static Run run(List<String> cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).start();
        byte[][] err = new byte[1][];
        Thread t = Thread.ofVirtual().start(() -> {
            try {
                err[0] = p.getErrorStream().readAllBytes();
            } catch (IOException e) {
                err[0] = new byte[0];
            }
        });
        byte[] out = p.getInputStream().readAllBytes();
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).as("CLI finished: " + cmd).isTrue();
        t.join();
        return new Run(p.exitValue(), new String(out, StandardCharsets.UTF_8), new String(err[0], StandardCharsets.UTF_8));
    }

    Run ok(String... args) throws Exception {
        Run r = cli(args);
        assertThat(r.code()).as(String.join(" ", args) + "\nstdout: " + r.out() + "\nstderr: " + r.err()).isZero();
        return r;
    }

    /** A client connection through the agent, and what the upstream saw of it. */
    final class Conn implements AutoCloseable {
        final Socket s;
        final Random random;
        int sendLeft = EVERY; // where the next tag goes, if tag is attached

        Conn(int seed) throws Exception {
            InetSocketAddress entry = listenerAddress();
            int index = received.size(); // connections open one at a time, so the upstream accepts this one next
            s = new Socket(entry.getAddress(), entry.getPort());
            s.setSoTimeout(20_000);
            random = new Random(seed);
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (!received.containsKey(index)) {
                assertThat(System.nanoTime()).as("the agent connected upstream").isLessThan(deadline);
                Thread.sleep(10);
            }
            mine = received.get(index);
        }

        /**
         * Sends {@code n} random bytes, reads the echo, and returns what the upstream received for them;
         * the echo must equal what was sent (tags, if any, are taken out again on RECV).
         */
        byte[] exchange(int n) throws Exception {
            byte[] data = new byte[n];
            random.nextBytes(data);
            int before = upstreamBytes();
            s.getOutputStream().write(data);
            byte[] back = s.getInputStream().readNBytes(n);
            assertThat(back).as("the application gets back exactly what it sent").isEqualTo(data);
            lastSent = data;
            return upstreamSince(before);
        }

        byte[] lastSent;

        /** What the upstream would receive for {@code data} with tag attached, continuing this connection's tag positions. */
        byte[] tagged(byte[] data) {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            for (byte x : data) {
                b.write(x);
                if (--sendLeft == 0) {
                    b.writeBytes(TAG);
                    sendLeft = EVERY;
                }
            }
            return b.toByteArray();
        }

        ByteArrayOutputStream mine;

        int upstreamBytes() throws Exception {
            ByteArrayOutputStream m = record();
            synchronized (m) {
                return m.size();
            }
        }

        byte[] upstreamSince(int before) throws Exception {
            ByteArrayOutputStream m = record();
            synchronized (m) {
                byte[] all = m.toByteArray();
                return java.util.Arrays.copyOfRange(all, before, all.length);
            }
        }

        ByteArrayOutputStream record() {
            return mine;
        }

        long id() throws Exception {
            return connections().getConnectionsList().stream().filter(x -> x.getLocal().endsWith(":" + s.getLocalPort())).findFirst()
                    .orElseThrow().getId();
        }

        List<String> modules() throws Exception {
            return connections().getConnectionsList().stream().filter(x -> x.getLocal().endsWith(":" + s.getLocalPort())).findFirst()
                    .orElseThrow().getModulesList();
        }

        @Override
        public void close() throws IOException {
            s.close();
        }
    }

    InetSocketAddress listenAt;

    InetSocketAddress listenerAddress() throws Exception {
        if (listenAt != null) {
            return listenAt;
        }
        Run r = ok("listeners", "list", "--json");
        String listen = r.out().replaceAll("(?s).*\"listen\":\"([^\"]+)\".*", "$1").strip();
        int colon = listen.lastIndexOf(':');
        listenAt = new InetSocketAddress(listen.substring(0, colon), Integer.parseInt(listen.substring(colon + 1)));
        return listenAt;
    }

    ListConnectionsResponse connections() throws Exception {
        ListConnectionsResponse.Builder b = ListConnectionsResponse.newBuilder();
        JsonFormat.parser().merge(ok("conns", "list", "--json").out(), b);
        return b.build();
    }

    ListModulesResponse modules() throws Exception {
        ListModulesResponse.Builder b = ListModulesResponse.newBuilder();
        JsonFormat.parser().merge(ok("modules", "list", "--json").out(), b);
        return b.build();
    }

    Optional<ModuleInfo> module(String name) throws Exception {
        return modules().getModulesList().stream().filter(m -> m.getName().equals(name)).findFirst();
    }

    @Test
    void lifecycleChangesThroughTheCliHaveTheirDesignEffectOnLiveConnectionsByteForByte() throws Exception {
        try (Conn a = new Conn(1)) {
            // ACTIVE: a new connection gets tag; the upstream sees the tags, the application does not
            assertThat(a.exchange(250)).isEqualTo(a.tagged(a.lastSent));
            assertThat(a.modules()).contains("tag@1.0.0");

            // DEPRECATED: the open connection keeps customizing; a new one is not customized
            assertThat(ok("modules", "state", "tag", "deprecated").out()).contains("tag@1.0.0: ACTIVE -> DEPRECATED");
            assertThat(a.exchange(333)).isEqualTo(a.tagged(a.lastSent));
            try (Conn b = new Conn(2)) {
                assertThat(b.exchange(333)).isEqualTo(b.lastSent);
                assertThat(b.modules()).doesNotContain("tag@1.0.0");

                // ACTIVE again: new connections get it; programmatic attach puts it on b from its next data
                ok("modules", "state", "tag", "active");
                try (Conn c = new Conn(3)) {
                    assertThat(c.exchange(120)).isEqualTo(c.tagged(c.lastSent));
                    assertThat(ok("conns", "attach", Long.toString(b.id()), "tag").out()).contains("attached to connection " + b.id());
                    assertThat(b.exchange(210)).isEqualTo(b.tagged(b.lastSent));
                    // detach from one connection: that one only
                    assertThat(ok("conns", "detach", Long.toString(c.id()), "tag").out()).contains("detached from connection " + c.id());
                    assertThat(c.exchange(150)).isEqualTo(c.lastSent);
                    assertThat(a.exchange(90)).isEqualTo(a.tagged(a.lastSent));

                    // REVOKE: detached everywhere at once, then unloaded; nothing is customized any more
                    assertThat(ok("modules", "state", "tag", "revoke").out()).contains("-> REVOKED");
                    assertThat(a.exchange(400)).isEqualTo(a.lastSent);
                    assertThat(b.exchange(400)).isEqualTo(b.lastSent);
                    try (Conn d = new Conn(4)) {
                        assertThat(d.exchange(400)).isEqualTo(d.lastSent);
                    }
                    Agents.waitFor("tag unloaded", () -> {
                        try {
                            return module("tag").isEmpty();
                        } catch (Exception e) {
                            throw new IllegalStateException(e);
                        }
                    });
                }

                // LOAD (upload with progress) puts it back for new connections; UNLOAD (unregister) takes it off the open ones
                Run load = ok("modules", "load", dir.resolve("tag.jar").toString(), "--progress");
                assertThat(load.out()).contains("loaded tag@1.0.0: ACTIVE");
                assertThat(load.err()).contains("uploading tag.jar: 100%");
                try (Conn e = new Conn(5)) {
                    assertThat(e.exchange(260)).isEqualTo(e.tagged(e.lastSent));
                    assertThat(b.exchange(50)).isEqualTo(b.lastSent);
                    assertThat(ok("modules", "unload", "tag").out()).contains("unregistering: detached from 1 connection");
                    assertThat(e.exchange(260)).isEqualTo(e.lastSent);
                }
            }
        }
    }

    /**
     * Parses one line of {@code --json} output as {@code type}: every field of the message and of every message in it is
     * there (defaults too; null for a message field that is not set), every 64-bit integer is a JSON number, and the
     * protobuf JSON parser reads the line back.
     */
    static <M extends Message> M parseJson(String line, Message.Builder builder, Descriptor type) throws Exception {
        JsonObject o = JsonParser.parseString(line).getAsJsonObject();
        assertEveryField(type, o, type.getName());
        JsonFormat.parser().merge(line, builder);
        @SuppressWarnings("unchecked")
        M m = (M) builder.build();
        return m;
    }

    static void assertEveryField(Descriptor type, JsonObject o, String path) {
        for (FieldDescriptor f : type.getFields()) {
            if (f.getRealContainingOneof() != null) {
                continue; // a oneof member is there only when it is the one set
            }
            String at = path + "." + f.getName();
            assertThat(o.has(f.getName())).as(at + " is in " + o).isTrue();
            JsonElement v = o.get(f.getName());
            if (f.isMapField()) {
                FieldDescriptor value = f.getMessageType().findFieldByName("value");
                v.getAsJsonObject().entrySet().forEach(e -> assertValue(value, e.getValue(), at + "[" + e.getKey() + "]"));
            } else if (f.isRepeated()) {
                v.getAsJsonArray().forEach(e -> assertValue(f, e, at + "[]"));
            } else {
                assertValue(f, v, at);
            }
        }
    }

    private static void assertValue(FieldDescriptor f, JsonElement v, String at) {
        switch (f.getType()) {
            case MESSAGE -> {
                if (!v.isJsonNull()) {
                    assertEveryField(f.getMessageType(), v.getAsJsonObject(), at);
                }
            }
            case INT64, UINT64, SINT64, FIXED64, SFIXED64, INT32, UINT32 ->
                    assertThat(v.isJsonPrimitive() && v.getAsJsonPrimitive().isNumber()).as(at + " is a JSON number: " + v).isTrue();
            default -> assertThat(v.isJsonNull()).as(at + " has a value").isFalse();
        }
    }

    /** The uid of this test process, as the agent sees the CLI it starts. */
    static long myUid() throws IOException {
        return ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).longValue();
    }

    @Test
    void jsonOfEveryCommandHasEveryFieldWithZerosAnd64BitNumbersAsNumbers() throws Exception {
        HealthResponse h = parseJson(ok("status", "--json").out(), HealthResponse.newBuilder(), HealthResponse.getDescriptor());
        JsonObject raw = JsonParser.parseString(ok("status", "--json").out()).getAsJsonObject();
        assertThat(raw.get("connections").getAsInt()).as("no connection is open yet").isZero();
        assertThat(raw.get("failures").getAsInt()).isZero();
        assertThat(raw.getAsJsonObject("caller").get("uid").getAsLong()).as("the caller's uid, 0 for root").isEqualTo(myUid());
        assertThat(raw.getAsJsonObject("caller").get("gid").getAsJsonPrimitive().isNumber()).isTrue();
        assertThat(raw.get("stuck").getAsJsonArray()).isEmpty();
        assertThat(h.getPid()).isEqualTo(agent.pid());
        assertThat(raw.get("pid").getAsJsonPrimitive().isNumber()).isTrue();

        ListConnectionsResponse none = parseJson(ok("conns", "list", "--json").out(), ListConnectionsResponse.newBuilder(),
                ListConnectionsResponse.getDescriptor());
        assertThat(none.getConnectionsList()).isEmpty();
        ListListenersResponse listeners = parseJson(ok("listeners", "list", "--json").out(), ListListenersResponse.newBuilder(),
                ListListenersResponse.getDescriptor());
        assertThat(listeners.getListenersList()).extracting(l -> l.getName()).containsExactly("app");
        ListModulesResponse modules = parseJson(ok("modules", "list", "--json").out(), ListModulesResponse.newBuilder(),
                ListModulesResponse.getDescriptor());
        assertThat(modules.getModulesList()).extracting(ModuleInfo::getName).containsExactlyInAnyOrder("tag", "tcplog");

        try (Conn a = new Conn(11)) {
            a.exchange(500);
            long id = a.id();
            JsonObject conns = JsonParser.parseString(ok("conns", "list", "--json").out()).getAsJsonObject();
            ListConnectionsResponse one = parseJson(conns.toString(), ListConnectionsResponse.newBuilder(), ListConnectionsResponse.getDescriptor());
            assertThat(one.getConnectionsList()).extracting(Connection::getId).containsExactly(id);
            JsonObject c = conns.getAsJsonArray("connections").get(0).getAsJsonObject();
            assertThat(c.get("id").getAsLong()).isEqualTo(id);
            assertThat(c.get("bytes_sent").getAsLong()).as("what the application sent").isEqualTo(500);
            assertThat(c.get("bytes_received").getAsLong()).as("the echo of what the upstream received (with the tags)").isEqualTo(a.upstreamBytes());
            assertThat(JsonParser.parseString(ok("status", "--json").out()).getAsJsonObject().get("connections").getAsInt()).isEqualTo(1);

            AttachResponse detached = parseJson(ok("conns", "detach", Long.toString(id), "tag", "--json").out(), AttachResponse.newBuilder(),
                    AttachResponse.getDescriptor());
            assertThat(detached.getDone()).isTrue();
            Run again = cli("conns", "detach", Long.toString(id), "tag", "--json");
            assertThat(again.code()).as("nothing to detach: exit 1").isEqualTo(1);
            JsonObject notDone = JsonParser.parseString(again.out()).getAsJsonObject();
            assertThat(notDone.get("done").getAsBoolean()).as("false is printed, not left out").isFalse();
            parseJson(again.out(), AttachResponse.newBuilder(), AttachResponse.getDescriptor());

            ModuleStatsResponse stats = parseJson(ok("modules", "stats", "--json").out(), ModuleStatsResponse.newBuilder(),
                    ModuleStatsResponse.getDescriptor());
            assertThat(stats.getModulesList()).filteredOn(s -> s.getName().equals("tag")).singleElement()
                    .satisfies(s -> assertThat(s.getBytesInSend()).isEqualTo(500));
        }

        ModuleControlResponse control = parseJson(ok("module", "control", "tcplog", "status", "--json").out(), ModuleControlResponse.newBuilder(),
                ModuleControlResponse.getDescriptor());
        assertThat(control.getOk()).isTrue();
        ModuleResponse priority = parseJson(ok("modules", "priority", "tag", "0", "--json").out(), ModuleResponse.newBuilder(),
                ModuleResponse.getDescriptor());
        assertThat(priority.getModule().getPriority()).isZero();
        JsonObject tag = null;
        for (JsonElement m : JsonParser.parseString(ok("modules", "list", "--json").out()).getAsJsonObject().getAsJsonArray("modules")) {
            if (m.getAsJsonObject().get("name").getAsString().equals("tag")) {
                tag = m.getAsJsonObject();
            }
        }
        assertThat(tag).isNotNull();
        assertThat(tag.get("priority").getAsInt()).as("priority 0 is printed").isZero();
        parseJson(ok("modules", "state", "tag", "inactive", "--json").out(), ModuleResponse.newBuilder(), ModuleResponse.getDescriptor());
        LoadModuleResponse load = parseJson(ok("modules", "load", dir.resolve("tag.jar").toString(), "--json").out(), LoadModuleResponse.newBuilder(),
                LoadModuleResponse.getDescriptor());
        assertThat(load.getModulesList()).extracting(ModuleInfo::getName).containsExactly("tag");
        parseJson(ok("modules", "unload", "tag", "--json").out(), ModuleResponse.newBuilder(), ModuleResponse.getDescriptor());
        for (String line : ok("audit", "tail", "--no-follow", "-n", "5", "--json").out().strip().split("\n")) {
            AuditEntry e = parseJson(line, AuditEntry.newBuilder(), AuditEntry.getDescriptor());
            assertThat(e.getCaller().getUid()).isEqualTo(myUid());
        }
    }

    @Test
    void aRevokedModuleSaysHowToBringItBackAndTheCommandItNamesDoes() throws Exception {
        try (Conn a = new Conn(21)) {
            assertThat(a.exchange(150)).isEqualTo(a.tagged(a.lastSent));
            String revoked = ok("modules", "state", "tag", "revoke").out();
            Path folderJar = dir.resolve("modules").resolve("tag.jar").toAbsolutePath().normalize();
            assertThat(revoked).contains("tag@1.0.0: ACTIVE -> REVOKED: it was detached from the 1 connection it was on at once",
                    "does not come back by itself", "interlayer modules load " + folderJar);
            Agents.waitFor("tag unloaded", () -> {
                try {
                    return module("tag").isEmpty();
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });

            // the jar is still in the modules folder, yet the name is gone: the refusal says what happened and what to run
            Run active = cli("modules", "state", "tag", "active");
            assertThat(active.code()).isEqualTo(1);
            assertThat(active.err()).contains("no module named 'tag' is loaded: tag@1.0.0 was revoked at ",
                    "a module that left does not come back by itself", "to run it again, load its jar again: interlayer modules load " + folderJar);
            String suggested = active.err().substring(active.err().indexOf("interlayer modules load ") + "interlayer ".length()).strip();
            Run load = ok(suggested.split(" "));
            assertThat(load.out()).contains("loaded tag@1.0.0: ACTIVE");
            assertThat(ok("modules", "state", "tag", "active").out()).contains("tag@1.0.0: ACTIVE -> ACTIVE: it was ACTIVE already; nothing changed");
            try (Conn b = new Conn(22)) {
                assertThat(b.exchange(150)).isEqualTo(b.tagged(b.lastSent));
            }
        }
    }

    @Test
    void everyStateChangeSaysWhatItDoesToTheConnectionsTheModuleIsOn() throws Exception {
        try (Conn a = new Conn(23)) {
            assertThat(a.exchange(120)).isEqualTo(a.tagged(a.lastSent));
            assertThat(ok("modules", "state", "tag", "deprecated").out()).contains("tag@1.0.0: ACTIVE -> DEPRECATED: it attaches to no new"
                    + " connection and keeps customizing the 1 connection it is on");
            Run inactive = ok("modules", "state", "tag", "inactive");
            assertThat(inactive.out()).contains("tag@1.0.0: DEPRECATED -> INACTIVE: it attaches to new connections its selector matches but passes"
                    + " their traffic untouched, and the traffic of the 1 connection it is on");
            // what the reply says is what happens: no tags on the open connection
            assertThat(a.exchange(250)).isEqualTo(a.lastSent);
            assertThat(ok("modules", "state", "tag", "active").out()).contains("INACTIVE -> ACTIVE", "its data hooks run again on the 1 connection");
        }
    }

    /** A socket module named {@code ctl} at {@code version} whose control request {@code version} answers its version. */
    Path ctlJar(String version) {
        String cls = "v" + version.replace('.', '_') + ".Ctl";
        return TestJars.jar().source(cls, """
                package %s;
                import dev.interlayer.api.*;
                public class Ctl implements SocketModule<Object> {
                    public ModuleDescriptor descriptor() {
                        return ModuleDescriptor.builder("ctl", "%s").implement(InterfaceType.SOCKET, 1, 0).build();
                    }
                    public ControlResponse control(ControlRequest r) {
                        return ControlResponse.ok("%s");
                    }
                }
                """.formatted(cls.substring(0, cls.indexOf('.')), version, version)).service(cls).write(dir.resolve("ctl-" + version + ".jar"));
    }

    @Test
    void moduleControlAddressesALoadedVersionAsNameAtVersion() throws Exception {
        assertThat(ok("modules", "load", ctlJar("1.0.0").toString()).out()).contains("loaded ctl@1.0.0: ACTIVE");
        try (Conn a = new Conn(31)) {
            a.exchange(10);
            assertThat(a.modules()).contains("ctl@1.0.0");
            assertThat(ok("modules", "load", ctlJar("2.0.0").toString()).out()).contains("loaded ctl@2.0.0: ACTIVE");
            assertThat(ok("modules", "stats").out()).contains("ctl@1.0.0", "ctl@2.0.0");

            // the form modules stats prints reaches the deprecated version; the bare name the current one
            assertThat(ok("module", "control", "ctl@1.0.0", "version").out().strip()).isEqualTo("1.0.0");
            assertThat(ok("module", "control", "ctl@2.0.0", "version").out().strip()).isEqualTo("2.0.0");
            assertThat(ok("module", "control", "ctl", "version").out().strip()).isEqualTo("2.0.0");
            Run absent = cli("module", "control", "ctl@3.0.0", "version");
            assertThat(absent.code()).isEqualTo(1);
            assertThat(absent.err()).contains("no module ctl@3.0.0 is loaded; the loaded versions of ctl are 1.0.0 (DEPRECATED), 2.0.0 (ACTIVE)");
        }
        for (String bad : List.of("Ctl", "ctl@", "ctl@1.0", "ctl@1.0.0@2")) {
            Run r = cli("module", "control", bad, "version");
            assertThat(r.code()).as(bad).isEqualTo(5);
            assertThat(r.err()).as(bad).contains("'" + bad + "' is not NAME or NAME@VERSION of a module",
                    ModuleDescriptor.NAME.pattern(), ModuleDescriptor.VERSION.pattern());
        }
    }

    @Test
    void logTailShowsTheTcplogRecordOfAConnectionAsItEnds() throws Exception {
        Process tail = new ProcessBuilder(java(), "--sun-misc-unsafe-memory-access=allow", "--enable-native-access=ALL-UNNAMED", "-jar", jar.toString(),
                "log", "tail", "--count", "1", "--json", "--socket", socket.toString()).start();
        try {
            // wait until the stream is in place: the agent shows the subscription in the audit log
            Agents.waitFor("log tail subscribed", () -> {
                try {
                    return ok("audit", "tail", "--no-follow", "--endpoint", "Events", "--decision", "granted").out().contains("Events.Subscribe response");
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            long sent;
            try (Conn a = new Conn(9)) {
                a.exchange(1234);
                a.exchange(766);
                sent = 2000;
            }
            assertThat(tail.waitFor(30, TimeUnit.SECONDS)).isTrue();
            String line = new String(tail.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            assertThat(tail.exitValue()).as(new String(tail.getErrorStream().readAllBytes(), StandardCharsets.UTF_8)).isZero();
            Event.Builder e = Event.newBuilder();
            JsonFormat.parser().merge(line, e);
            assertThat(e.getModule()).isEqualTo("tcplog");
            assertThat(e.getKind()).isEqualTo("record");
            // the network side carried tag's 32-byte tags, one per 100 bytes sent (the echo brings them back)
            long fromNetwork = sent + (sent / EVERY) * TAG.length;
            assertThat(e.getText()).contains("\"listener\":\"app\"", "\"bytesSent\":" + sent, "\"bytesReceived\":" + fromNetwork);
        } finally {
            tail.destroyForcibly();
        }
    }

    @Test
    void exitCodesTellScriptsWhatHappened() throws Exception {
        Run absent = cli("status", "--socket", dir.resolve("nothing.sock").toString());
        assertThat(absent.code()).isEqualTo(3);
        assertThat(absent.err()).contains("no agent at " + dir.resolve("nothing.sock") + ": start one with interlayer run --config FILE");
        Run invalid = cli("modules", "unload", "Not/A/Module");
        assertThat(invalid.code()).isEqualTo(5);
        assertThat(invalid.err()).contains("invalid request: field 'name' must match format module-name");
        Run usage = cli("modules", "state", "tag", "sideways");
        assertThat(usage.code()).isEqualTo(2);
        Run missing = cli("modules", "unload", "nosuchmodule");
        assertThat(missing.code()).isEqualTo(1);
        assertThat(missing.err()).contains("no module named 'nosuchmodule' is loaded");
        assertThat(ok("status").out()).contains("serving", "modules: 2", "you: uds:uid=");
        assertThat(ok("completion", "bash").out()).contains("complete -F", "modules", "conns");
    }

    @Test
    void anotherUserIsDeniedChangesByTheDefaultPolicyAndMayRead() throws Exception {
        assumeTrue(OtherUser.available(), "needs root and runuser to call as a second real user");
        OtherUser.ensure();
        List<String> base = List.of("runuser", "-u", OtherUser.NAME, "--", java(), "--sun-misc-unsafe-memory-access=allow",
                "--enable-native-access=ALL-UNNAMED", "-jar", jar.toString());
        List<String> revoke = new ArrayList<>(base);
        revoke.addAll(List.of("modules", "state", "tag", "revoke", "--socket", socket.toString()));
        Run denied = run(revoke);
        assertThat(denied.code()).as(denied.err()).isEqualTo(4);
        assertThat(denied.err()).contains("interlayer: denied by rule 'default'", "uid=", "(" + OtherUser.NAME + ")");
        assertThat(module("tag").orElseThrow().getState().name()).isEqualTo("ACTIVE");
        List<String> list = new ArrayList<>(base);
        list.addAll(List.of("modules", "list", "--socket", socket.toString()));
        Run read = run(list);
        assertThat(read.code()).as(read.err()).isZero();
        assertThat(read.out()).contains("tag", "tcplog");
        assertThat(ok("audit", "tail", "--no-follow", "--decision", "denied").out()).contains("Modules.SetState request", OtherUser.NAME, "rule default");
    }
}
