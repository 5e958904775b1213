package dev.interlayer.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class DemoEndToEndTest {

    @Test
    void theDemoDeliversExactlyWhatTheClientSentAndExitsZeroWithinTwentySeconds() {
        long t0 = System.nanoTime();
        MainTest.Run r = MainTest.run("demo");
        Duration took = Duration.ofNanos(System.nanoTime() - t0);

        assertThat(r.err()).as("stderr").doesNotContain("FAILED");
        assertThat(r.code()).as("exit code; stdout:%n%s%nstderr:%n%s", r.out(), r.err()).isZero();
        assertThat(took).isLessThan(Duration.ofSeconds(20));
        String out = r.out();
        assertThat(out).contains("client ──▶ client agent", "wire tap", "server agent", "──▶ server");
        assertThat(out).contains("<interlayer-layer4.5-sample-tag>");
        assertThat(out).containsPattern("server got: +181 bytes +sha256 [0-9a-f]{16} += what the client sent");
        assertThat(out).containsPattern("server got: +262,144 bytes +sha256 [0-9a-f]{16} += what the client sent");
        assertThat(out).containsPattern("on the wire: +346,016 bytes +\\(\\+83,872: 2621 tags");
        assertThat(out).contains("hold delay:   the first byte reached the server");
        assertThat(out).contains("steady rate");
        assertThat(out).contains("client agent: 2 records", "server agent: 2 records", "\"bytesSent\":262144");
        assertThat(out).containsPattern("client +tag@\\S+ +ACTIVE +2 ");
        assertThat(out).containsPattern("client +hold-release@\\S+ +ACTIVE +2 .*HOLD");
        assertThat(out).containsPattern("server +tcplog@\\S+ +ACTIVE +2 ");
        assertThat(out).contains("OK: all checks passed");
    }
}
