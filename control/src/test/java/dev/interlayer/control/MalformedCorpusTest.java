package dev.interlayer.control;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.DynamicMessage;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import com.google.protobuf.util.JsonFormat;
import dev.interlayer.control.testing.ControlFixture;
import dev.interlayer.control.testing.CountingControlModule;
import dev.interlayer.control.v1.AuditEntry;
import dev.interlayer.control.v1.AuditQuery;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The malformed-message corpus ({@code src/test/resources/malformed}): every message is refused by the
 * structure check with the field and the constraint named, both when checked directly and when sent as
 * raw bytes to a live agent, and no handler ever runs.
 */
class MalformedCorpusTest {

    /** One corpus entry. */
    record Entry(String name, Idl.Method method, byte[] wire, List<String> expect) {}

    static List<Entry> corpus() throws IOException, URISyntaxException {
        Path dir = Path.of(MalformedCorpusTest.class.getResource("/malformed").toURI());
        List<Entry> out = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".json")).sorted().toList()) {
                out.add(entry(f));
            }
        }
        return out;
    }

    static Entry entry(Path f) throws IOException {
        Struct.Builder sb = Struct.newBuilder();
        JsonFormat.parser().merge(Files.readString(f, StandardCharsets.UTF_8), sb);
        Struct s = sb.build();
        String name = f.getFileName().toString();
        Idl.Method m = Idl.control().method(s.getFieldsOrThrow("call").getStringValue());
        assertThat(m).as(name + ": call").isNotNull();
        Descriptor type = m.descriptor().getInputType();
        byte[] wire;
        if (s.containsFields("hex")) {
            wire = HexFormat.of().parseHex(s.getFieldsOrThrow("hex").getStringValue());
        } else {
            DynamicMessage.Builder b = DynamicMessage.newBuilder(type);
            JsonFormat.parser().merge(JsonFormat.printer().print(s.getFieldsOrThrow("json")), b);
            if (s.containsFields("fill")) {
                Struct fill = s.getFieldsOrThrow("fill").getStructValue();
                FieldDescriptor fd = type.findFieldByName(fill.getFieldsOrThrow("field").getStringValue());
                if (fill.containsFields("bytes")) {
                    b.setField(fd, ByteString.copyFrom(new byte[(int) fill.getFieldsOrThrow("bytes").getNumberValue()]));
                } else {
                    for (int i = 0; i < (int) fill.getFieldsOrThrow("items").getNumberValue(); i++) {
                        b.addRepeatedField(fd, fill.getFieldsOrThrow("value").getStringValue());
                    }
                }
            }
            wire = b.build().toByteArray();
        }
        List<String> expect = s.getFieldsOrThrow("expect").getListValue().getValuesList().stream().map(Value::getStringValue).toList();
        return new Entry(name, m, wire, expect);
    }

    @Test
    void everyCorpusMessageIsRefusedByTheStructureCheckNamingFieldAndConstraint() throws Exception {
        List<Entry> corpus = corpus();
        assertThat(corpus).hasSizeGreaterThanOrEqualTo(30);
        Constraints constraints = Constraints.builtin();
        SecurityModule security = new SecurityModule(constraints, PolicyHolder.of(Policy.parse("allow-all", """
                rules:
                  - {name: everyone, on: both, decision: granted}
                """, 0)), null, true);
        Caller root = new Caller("uds", 0, 0, 1, "root", "test", "", List.of());
        for (Entry e : corpus) {
            Message m;
            try {
                m = DynamicMessage.parseFrom(e.method().descriptor().getInputType(), e.wire());
            } catch (InvalidProtocolBufferException notAMessage) {
                assertThat(e.expect()).as(e.name() + " does not decode: " + notAMessage.getMessage()).contains("not a valid " + e.method().id() + " request");
                continue;
            }
            SecurityModule.Verdict v = security.check(root, e.method(), Policy.Kind.REQUEST, m);
            assertThat(v.decision()).as(e.name()).isEqualTo("invalid");
            assertThat(v.rule()).isEqualTo("structure");
            assertThat(v.reason()).as(e.name()).contains(e.expect());
        }
    }

    @Test
    void everyCorpusMessageSentToALiveAgentIsRefusedAndNoHandlerRuns() throws Exception {
        List<Entry> corpus = corpus();
        try (ControlFixture f = new ControlFixture(); ControlClient c = f.client()) {
            CountingControlModule ctl = new CountingControlModule("tcplog");
            f.engine.add(ctl);
            for (Entry e : corpus) {
                Status s = sendRaw(c, e.method(), e.wire());
                assertThat(s.getCode()).as(e.name() + ": " + s).isEqualTo(Status.Code.INVALID_ARGUMENT);
                if (decodes(e)) {
                    assertThat(s.getDescription()).as(e.name()).startsWith("invalid request: ").contains(e.expect());
                } else {
                    // bytes that are no message: the caller learns that, the audit log gets the decoder's own words
                    assertThat(s.getDescription()).as(e.name()).startsWith("invalid request: ").contains(e.expect().getFirst())
                            .contains("do not decode as " + e.method().descriptor().getInputType().getFullName())
                            .doesNotContain(e.expect().subList(1, e.expect().size()));
                    AuditEntry audited = c.audit().query(AuditQuery.newBuilder().setDecision("invalid").setLimit(1).build()).getEntries(0);
                    assertThat(audited.getReason()).as(e.name()).contains(e.expect());
                }
            }
            assertThat(ctl.calls).hasValue(0);
            assertThat(f.engine.registry.find("tcplog").orElseThrow().state()).isEqualTo(dev.interlayer.runtime.ModuleState.ACTIVE);
            assertThat(c.audit().query(AuditQuery.newBuilder().setDecision("invalid").setLimit(1000).build()).getEntriesCount()).isEqualTo(corpus.size());
        }
    }

    private static boolean decodes(Entry e) {
        try {
            DynamicMessage.parseFrom(e.method().descriptor().getInputType(), e.wire());
            return true;
        } catch (InvalidProtocolBufferException notAMessage) {
            return false;
        }
    }

    /** Sends one raw message on {@code method} and returns the status the call ends with. */
    static Status sendRaw(ControlClient c, Idl.Method method, byte[] wire) throws Exception {
        MethodDescriptor.Marshaller<byte[]> raw = new MethodDescriptor.Marshaller<>() {
            @Override
            public InputStream stream(byte[] value) {
                return new ByteArrayInputStream(value);
            }

            @Override
            public byte[] parse(InputStream stream) {
                try {
                    return stream.readAllBytes();
                } catch (IOException e) {
                    throw new IllegalStateException(e);
                }
            }
        };
        MethodDescriptor.MethodType type = method.descriptor().isClientStreaming()
                ? (method.descriptor().isServerStreaming() ? MethodDescriptor.MethodType.BIDI_STREAMING : MethodDescriptor.MethodType.CLIENT_STREAMING)
                : (method.descriptor().isServerStreaming() ? MethodDescriptor.MethodType.SERVER_STREAMING : MethodDescriptor.MethodType.UNARY);
        MethodDescriptor<byte[], byte[]> md = MethodDescriptor.<byte[], byte[]>newBuilder().setType(type).setFullMethodName(method.grpcName())
                .setRequestMarshaller(raw).setResponseMarshaller(raw).build();
        ClientCall<byte[], byte[]> call = c.channel().newCall(md, CallOptions.DEFAULT.withDeadlineAfter(10, TimeUnit.SECONDS));
        CompletableFuture<Status> done = new CompletableFuture<>();
        boolean stream = method.descriptor().isServerStreaming();
        call.start(new ClientCall.Listener<>() {
            @Override
            public void onMessage(byte[] message) {
                if (stream) {
                    // a live stream does not end by itself: its first message shows the call was granted and answered (the
                    // caller cancels it below, on its own thread: a ClientCall is not for two threads at once, and a cancel
                    // from here could come before its halfClose)
                    done.complete(Status.OK);
                }
            }

            @Override
            public void onClose(Status status, Metadata trailers) {
                done.complete(status);
            }
        }, new Metadata());
        call.request(1);
        call.sendMessage(wire);
        call.halfClose();
        Status status = done.get(15, TimeUnit.SECONDS);
        if (stream) call.cancel("got the first message", null); // nothing after the call's close
        return status;
    }
}
