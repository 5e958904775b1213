package dev.interlayer.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.interlayer.control.testing.Certs;
import dev.interlayer.control.testing.TempDirs;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The control endpoint of a real agent process ({@code interlayer run}) against what issue 16 found: its log
 * flooded through the control socket, its audit file readable by everyone and impossible to rotate, a
 * refused policy edit nowhere to be seen, TLS refusals unexplained. The CLI runs as a process too.
 */
class ControlHardeningTest {

    Path dir;
    Path jar;
    Path socket;
    Path audit;
    Path policy;
    Process agent;
    int tlsPort;
    Certs ca;

    @BeforeEach
    void start() throws Exception {
        dir = Files.createTempDirectory("interlayer-hardening-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        jar = Files.copy(Path.of(System.getProperty("interlayer.distJar", "../cli/target/interlayer.jar")), dir.resolve("interlayer.jar"));
        socket = dir.resolve("control.sock");
        audit = dir.resolve("audit.jsonl");
        policy = dir.resolve("policy.yaml");
        Files.writeString(policy, "rules:\n  - {name: everyone, on: both, decision: granted}\n");
        ca = Certs.newCa(dir.resolve("pki"), "test-ca");
        Certs.Issued server = ca.server(dir.resolve("pki"), "agent");
        Files.writeString(dir.resolve("agent.yaml"), """
                agent:
                  control:
                    socket: control.sock
                    policy: policy.yaml
                    audit-file: audit.jsonl
                    audit-max-size: 8KiB
                    audit-keep: 2
                    tls: {listen: 127.0.0.1:0, cert: %s, key: %s, client-ca: %s}
                listeners:
                  - {name: app, listen: 127.0.0.1:0, upstream: 127.0.0.1:9, role: client}
                """.formatted(server.certFile(), server.keyFile(), ca.ca().certFile()));
        agent = Agents.runProcess(jar, dir);
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        Matcher tls;
        while (!(tls = Pattern.compile("mutual TLS on 127\\.0\\.0\\.1:(\\d+)").matcher(log())).find()) {
            assertThat(agent.isAlive()).as("agent exited: " + log()).isTrue();
            assertThat(System.nanoTime()).as("agent did not start within 30 s").isLessThan(deadline);
            Thread.sleep(200);
        }
        tlsPort = Integer.parseInt(tls.group(1));
    }

    @AfterEach
    void stop() throws Exception {
        if (agent != null) {
            Agents.stopProcess(agent, dir);
        }
        TempDirs.delete(dir);
    }

    private String log() throws IOException {
        return Files.readString(dir.resolve("agent.log"));
    }

    private ControlCliTest.Run cli(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(ControlCliTest.java(), "--sun-misc-unsafe-memory-access=allow", "--enable-native-access=ALL-UNNAMED",
                "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-jar", jar.toString()));
        cmd.addAll(List.of(args));
        if (!List.of(args).contains("--remote")) {
            cmd.addAll(List.of("--socket", socket.toString()));
        }
        return ControlCliTest.run(cmd);
    }

    private ControlCliTest.Run ok(String... args) throws Exception {
        ControlCliTest.Run r = cli(args);
        assertThat(r.code()).as(String.join(" ", args) + "\nstdout: " + r.out() + "\nstderr: " + r.err()).isZero();
        return r;
    }

    @Test
    void aFloodOfJunkConnectionsLeavesTheAgentsLogAFewLinesLong() throws Exception {
        long before = log().lines().count();
        for (int i = 0; i < 200; i++) {
            try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                ch.connect(UnixDomainSocketAddress.of(socket));
                ch.write(ByteBuffer.wrap("GET / HTTP/1.1\r\nHost: agent\r\n\r\n".getBytes(StandardCharsets.US_ASCII)));
                ByteBuffer b = ByteBuffer.allocate(1024);
                while (ch.read(b) >= 0) {
                    b.clear();
                }
            }
        }
        Thread.sleep(11_000); // one window of the rate limit: its summary line
        List<String> added = log().lines().skip(before).toList();
        assertThat(added).as("was ~4,600 lines of stack traces").hasSizeLessThanOrEqualTo(10)
                .noneMatch(l -> l.startsWith("\tat ") || l.contains("Exception"))
                .anyMatch(l -> l.contains("control: refused a connection of uds:uid=") && l.contains("(rule not-http2)"))
                .anyMatch(l -> l.matches(".*control: refused \\d+ more like a connection of uds:uid=.*"));
    }

    @Test
    void theAuditFileIsPrivateRotatesBySizeAndIsReopenedAfterAMoveByCommandAndBySigusr1() throws Exception {
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(audit))).isEqualTo("rw-------");
        Path rotated = dir.resolve("audit.jsonl.1");
        for (int i = 0; i < 40 && !Files.exists(rotated); i++) {
            ok("status");
        }
        assertThat(rotated).as("rotated at 8 KiB").exists();
        assertThat(Files.size(rotated)).isLessThanOrEqualTo(8192);
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(rotated))).isEqualTo("rw-------");

        // a rotation tool moves the file away; the agent keeps writing the moved file until told to reopen
        Path moved = dir.resolve("moved.jsonl");
        Files.move(audit, moved);
        ok("status");
        assertThat(audit).doesNotExist();
        assertThat(ok("audit", "reopen").out()).isEqualTo("audit file " + audit + " reopened (0 bytes)\n");
        long movedSize = Files.size(moved);
        ok("status");
        assertThat(Files.readString(audit)).contains("\"endpoint\":\"Health\",\"method\":\"Check\"");
        assertThat(Files.size(moved)).as("the moved file is left alone").isEqualTo(movedSize);

        // SIGUSR1 does the same (logrotate's postrotate)
        Path moved2 = dir.resolve("moved2.jsonl");
        Files.move(audit, moved2);
        assertThat(new ProcessBuilder("kill", "-USR1", Long.toString(agent.pid())).start().waitFor()).isZero();
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (!Files.exists(audit) && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        ok("status");
        assertThat(Files.readString(audit)).contains("\"endpoint\":\"Health\",\"method\":\"Check\"");
        assertThat(log()).contains("audit file " + audit + " reopened");
    }

    @Test
    void statusShowsARefusedPolicyEditUntilTheFileIsFixed() throws Exception {
        Files.writeString(policy, "rules:\n  - {name: x, decision: maybe}\n");
        long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
        String status;
        while (!(status = ok("status").out()).contains("policy edit REFUSED") && System.nanoTime() < deadline) {
            Thread.sleep(200);
        }
        assertThat(status).containsPattern("policy edit REFUSED at [0-9:.]+, the policy loaded at [0-9:.]+ stays in force: " + Pattern.quote(policy
                + ":2: rule 'x': decision must be granted or denied, got 'maybe'"));
        Files.writeString(policy, "rules:\n  - {name: everyone, on: both, decision: granted}\n  - {name: spare, decision: denied}\n");
        ok("policy", "reload");
        assertThat(ok("status").out()).doesNotContain("REFUSED").contains("(2 rules)");
    }

    @Test
    void aRefusedTlsHandshakeIsExplainedByTheCliAndLoggedInOneLineByTheAgent() throws Exception {
        Certs.Issued expired = ca.expiredClient(dir.resolve("pki"), "old");
        ControlCliTest.Run r = cli("status", "--remote", "127.0.0.1:" + tlsPort, "--cert", expired.certFile().toString(), "--key",
                expired.keyFile().toString(), "--ca", ca.ca().certFile().toString());
        assertThat(r.code()).isEqualTo(3);
        assertThat(r.err()).startsWith("interlayer: TLS handshake with the agent at 127.0.0.1:" + tlsPort + " failed: certificate expired: your client"
                + " certificate " + expired.certFile() + " expired on ");

        Certs rogue = Certs.newCa(dir.resolve("rogue"), "rogue-ca");
        Certs.Issued stranger = rogue.client(dir.resolve("rogue"), "stranger");
        r = cli("status", "--remote", "127.0.0.1:" + tlsPort, "--cert", stranger.certFile().toString(), "--key", stranger.keyFile().toString(),
                "--ca", ca.ca().certFile().toString());
        assertThat(r.code()).isEqualTo(3);
        assertThat(r.err()).contains("failed: the agent requires a client certificate signed by its client-ca", "issued by CN=rogue-ca",
                "(unknown CA)");

        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (!log().contains("the client sent no certificate") && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        // (a CLI that gives up on a handshake it cannot win may leave one more: "the client closed the connection")
        assertThat(log().lines().filter(l -> l.contains("TLS handshake from 127.0.0.1 refused")).toList())
                .anySatisfy(l -> assertThat(l).contains("the client certificate CN=old has expired"))
                .anySatisfy(l -> assertThat(l).contains("the client sent no certificate"))
                .allSatisfy(l -> assertThat(l).contains("WARNING interlayer.control: control: refused a connection: TLS handshake"));
        assertThat(log()).doesNotContain("\tat ");
        assertThat(ok("audit", "tail", "--no-follow", "--endpoint", "Transport").out()).contains("Transport.Connect connection", "rule tls-handshake");
    }
}
