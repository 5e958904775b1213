package dev.interlayer.api;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** Control requests and answers print their bodies readably and compare by content, as a module author expects of a record. */
class ControlMessagesTest {

    @Test
    void aTextBodyPrintsAsQuotedTextWithItsSize() {
        assertThat(ControlResponse.ok("3 records\n").toString()).isEqualTo("ControlResponse[ok=true, body=\"3 records\\n\" (10 bytes)]");
        assertThat(ControlResponse.error("no \"x\"").toString()).isEqualTo("ControlResponse[ok=false, body=\"no \\\"x\\\"\" (6 bytes)]");
        assertThat(new ControlRequest("dump", "é".getBytes(StandardCharsets.UTF_8), "uid 0").toString())
                .isEqualTo("ControlRequest[command=dump, body=\"é\" (2 bytes), caller=uid 0]");
    }

    @Test
    void aBinaryBodyPrintsItsFirstBytesInHex() {
        byte[] b = new byte[40];
        b[0] = (byte) 0xff;
        b[1] = 1;
        assertThat(ControlResponse.ok(b).toString()).startsWith("ControlResponse[ok=true, body=ff01000000").endsWith("… (40 bytes)]");
        assertThat(ControlResponse.ok(new byte[] {0, 7}).toString()).isEqualTo("ControlResponse[ok=true, body=0007 (2 bytes)]");
    }

    @Test
    void equalBodiesMakeEqualMessages() {
        assertThat(ControlResponse.ok("a")).isEqualTo(ControlResponse.ok("a")).hasSameHashCodeAs(ControlResponse.ok("a"))
                .isNotEqualTo(ControlResponse.error("a")).isNotEqualTo(ControlResponse.ok("b"));
        assertThat(new ControlRequest("c", new byte[] {1}, "x")).isEqualTo(new ControlRequest("c", new byte[] {1}, "x"))
                .hasSameHashCodeAs(new ControlRequest("c", new byte[] {1}, "x")).isNotEqualTo(new ControlRequest("c", new byte[] {2}, "x"));
    }
}
