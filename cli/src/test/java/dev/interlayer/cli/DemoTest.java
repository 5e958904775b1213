package dev.interlayer.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class DemoTest {

    @Test
    void theSampleModuleJarsAreFoundForTheDemo() {
        Path dir = DemoCommand.findSampleModules();
        assertThat(dir).as("sample modules (-Dinterlayer.sampleModules=%s)", System.getProperty("interlayer.sampleModules")).isNotNull();
        assertThat(dir.resolve("module-tag.jar")).satisfies(p -> assertThat(Files.isRegularFile(p)).isTrue());
    }

    @Test
    void hexdumpsShowOffsetsHexAndText() {
        byte[] b = "0123456789abcdefXYZ".getBytes();
        assertThat(DemoCommand.hexdump(b, 0, b.length)).containsExactly(
                "00000000  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  |0123456789abcdef|",
                "00000010  58 59 5a                                          |XYZ|");
        assertThat(DemoCommand.escape(new byte[] {'a', '\n', 0, (byte) 0xff}, 4)).isEqualTo("a\\n\\x00\\xff");
    }
}
