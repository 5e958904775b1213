package dev.interlayer.bench.suite;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class JsonTest {

    @Test
    void readsTheFiguresOfAnIperf3Report() {
        String report = """
                {"start": {"connected": [{"socket": 5}], "version": "iperf 3.12"},
                 "intervals": [],
                 "end": {"sum_sent": {"bytes": 1.2e10, "bits_per_second": 3.1e10},
                         "sum_received": {"bytes": 11811160064, "bits_per_second": 31496426837.5, "sender": false}}}
                """;
        Object json = Json.parse(report);
        assertThat(Json.at(json, "end.sum_received.bits_per_second")).isEqualTo(31496426837.5);
        assertThat(Json.at(json, "end.sum_received.bytes")).isEqualTo(11811160064.0);
        assertThat(Json.at(json, "end.sum_received.sender")).isEqualTo(false);
        assertThat(Json.at(json, "end.nothing.here")).isNull();
        assertThat(Json.at(json, "error")).isNull();
    }

    @Test
    void readsAnIperf3ErrorWithEscapes() {
        Object json = Json.parse("{\"start\":{},\"error\":\"unable to connect to server: Connection refused \\\"x\\\" \\u00e9\"}");
        assertThat(Json.at(json, "error")).isEqualTo("unable to connect to server: Connection refused \"x\" é");
    }

    @Test
    void textThatIsNotJsonIsAClearError() {
        assertThatThrownBy(() -> Json.parse("iperf3: error - unable to connect"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("offset 0");
        assertThatThrownBy(() -> Json.parse("{\"a\": 1} trailing")).hasMessageContaining("trailing text");
    }
}
